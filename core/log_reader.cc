#include "core/log_reader.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/term_runs.h"

namespace walrus {

std::string LogDamage::Where() const {
  std::string affected =
      affected_to.has_value()
          ? absl::StrCat("entries ", affected_from, " to ", *affected_to, " affected")
          : absl::StrCat("entries from index ", affected_from, " on affected");
  return absl::StrCat(file, " at offset ", offset, " (", reason, "); ", affected);
}

std::string LogDamage::Describe() const {
  switch (kind) {
    case kNone:
      return "clean";
    case kTornTail:
      return absl::StrCat("torn tail in ", Where());
    case kCorrupt:
      return absl::StrCat("corruption in ", Where());
  }
  return "";
}

absl::StatusOr<LogSegments> SelectSegments(FileSystem* fs, const std::string& dir,
                                           const std::optional<walpb::Snapshot>& snapshot,
                                           std::optional<LogPosition> until) {
  absl::StatusOr<std::vector<SegmentFile>> listed = ListSegments(fs, dir);
  if (!listed.ok()) {
    if (listed.status().code() != absl::StatusCode::kNotFound) return listed.status();
    return absl::NotFoundError(absl::StrCat("wal: file not found: ", listed.status().message()));
  }
  if (until.has_value()) {
    // Segments cut after the reader's limit do not exist for it.
    while (!listed->empty() && listed->back().id.seq > until->seq) listed->pop_back();
  }
  if (listed->empty()) return absl::NotFoundError(absl::StrCat("wal: file not found in ", dir));
  LogSegments segments;
  segments.dir = dir;
  if (snapshot.has_value()) {
    std::optional<size_t> first = SearchIndex(*listed, snapshot->index());
    if (!first.has_value()) {
      return absl::NotFoundError(absl::StrCat("wal: file not found: no segment in ", dir,
                                              " holds index ", snapshot->index()));
    }
    segments.first = *first;
  }
  if (until.has_value() && listed->back().id.seq == until->seq) segments.last_limit = until->offset;
  segments.listed = std::move(*listed);
  return segments;
}

namespace {

// Applies records to the log, one rule set for every reader.
class Resolver {
 public:
  Resolver(const LogSegments& segments, const LogReadOptions& options, ReplayedLog* log)
      : segments_(segments), options_(options), log_(log) {
    if (options.snapshot.has_value()) {
      log->base_index = options.snapshot->index();
    } else {
      // Everything up to the index before the oldest segment's name was
      // saved before that segment was cut.
      log->base_index = std::max<uint64_t>(segments.listed[segments.first].id.index, 1) - 1;
    }
    log->last_index = log->base_index;
    last_entry_read_ = log->base_index;
  }

  // OK with an empty `*damage` if the record applies; a non-empty `*damage`
  // if it breaks the rules; an error status for what is not damage.
  [[nodiscard]] absl::Status Apply(const Payload& payload, std::string* damage) {
    switch (payload.type) {
      case RecordType::kEntry:
        return ApplyEntry(payload.entry, damage);
      case RecordType::kState:
        log_->state = payload.state;
        return absl::OkStatus();
      case RecordType::kMetadata:
        if (metadata_seen_ && log_->metadata != payload.metadata) {
          *damage = "conflicting metadata";
          return absl::OkStatus();
        }
        log_->metadata = std::string(payload.metadata);
        metadata_seen_ = true;
        return absl::OkStatus();
      case RecordType::kCrc:
        // The decoder checked the chain. A crc record opens a segment.
        if (position_.file_index > 0) StartSegment(position_.file_index);
        return absl::OkStatus();
      case RecordType::kSnapshot:
        return ApplySnapshot(payload.snapshot);
    }
    return absl::OkStatus();
  }

  // Call at the end of the read: a gap no marker bridged is damage at the
  // entry after it; the log is then what preceded the gap.
  std::optional<std::pair<RecordPosition, std::string>> UnbridgedGap() {
    if (!gap_.has_value()) return std::nullopt;
    log_->base_index = gap_->base_before;
    log_->last_index = gap_->last_before;
    last_entry_read_ = gap_->last_before;
    terms_ = std::move(gap_->terms_before);
    log_->entries = std::move(gap_->entries_before);
    log_->runs = std::move(gap_->runs_before);
    return std::make_pair(gap_->position, gap_->reason);
  }

  // Call last, for a read from a snapshot: the log is the entries after the
  // snapshot's index, if the log that the whole read resolved still holds
  // that index.
  absl::Status CutAtSnapshot() {
    ReplayedLog& log = *log_;
    const walpb::Snapshot& start = *options_.snapshot;
    const uint64_t s = start.index();
    if (log.base_index > s) {
      // A later marker (a follower installing its leader's snapshot)
      // replaced the log this read started in.
      walpb::Snapshot by = log.last_snapshot();
      for (auto it = log.markers.rbegin(); it != log.markers.rend(); ++it) {
        if (it->snapshot.index() == log.base_index) {
          by = it->snapshot;
          break;
        }
      }
      return ReplacedBySnapshot(s + 1, log.base_index, by);
    }
    const std::optional<uint64_t> term_at_s = terms_.TermAt(s);
    if (term_at_s.has_value() && *term_at_s != start.term()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "wal: entry ", s, " has term ", *term_at_s, ", not the term ", start.term(),
          " of the snapshot at that index: the entries after it ", "do not follow that snapshot"));
    }
    if (s > log.base_index) {
      terms_.TrimBefore(s + 1);
      log.base_index = s;
      log.last_index = std::max(log.last_index, s);
      // The runs start with the one holding s + 1.
      std::vector<ReplayedLog::EntryRun>& runs = log.runs;
      size_t first = 0;
      while (first + 1 < runs.size() && runs[first + 1].first_index <= s + 1) ++first;
      runs.erase(runs.begin(), runs.begin() + static_cast<ptrdiff_t>(first));
      if (!runs.empty() && runs.front().first_index <= s) runs.front().first_index = s + 1;
    }
    return absl::OkStatus();
  }

  // The terms of the resolved log; call once, after everything else.
  TermRuns TakeTerms() { return std::move(terms_); }
  bool snapshot_found() const { return snapshot_found_; }
  uint64_t last_entry_read() const { return last_entry_read_; }
  void set_position(const RecordPosition& position) { position_ = position; }

 private:
  // Entries at or below this index are not kept: a read from a snapshot
  // returns none of them (their terms are kept all the same).
  uint64_t kept_after() const {
    return std::max(log_->base_index,
                    options_.snapshot.has_value() ? options_.snapshot->index() : uint64_t{0});
  }

  // A segment is named after the index that followed the writer's log when
  // it was cut: whatever this read holds past that was gone by then (a
  // marker that replaced the log ends its segment for this reason; see
  // Wal::AppendSnapshot). etcd names segments the same way.
  void StartSegment(size_t file_index) {
    const uint64_t name_index = segments_.listed[segments_.first + file_index].id.index;
    ReplayedLog& log = *log_;
    if (name_index == 0 || log.last_index <= name_index - 1 || gap_.has_value()) return;
    const uint64_t end = name_index - 1;
    if (end <= log.base_index) {
      log.base_index = end;
      log.last_index = end;
      Clear();
      return;
    }
    terms_.TruncateAfter(end);
    if (options_.keep_entries) {
      const uint64_t after = kept_after();
      log.entries.resize(end > after ? static_cast<size_t>(end - after) : 0);
    }
    DropRunsFrom(end + 1);
    log.last_index = end;
  }

  absl::Status ApplyEntry(const raftpb::Entry& entry, std::string* damage) {
    const uint64_t index = entry.index();
    if (index == 0) {
      *damage = "entry with index 0";
      return absl::OkStatus();
    }
    last_entry_read_ = index;
    ReplayedLog& log = *log_;
    if (index <= log.base_index) {
      // Truncation below everything this read holds: the log now ends here.
      log.base_index = index - 1;
      log.last_index = log.base_index;
      Clear();
    }
    if (index > log.last_index + 1) {
      std::string reason =
          absl::StrCat("entry ", index, " follows entry ", log.last_index, "; entries ",
                       log.last_index + 1, " to ", index - 1, " are missing");
      if (gap_.has_value()) {
        *damage = std::move(reason);
        return absl::OkStatus();
      }
      // Raft may save a Ready's entries before the snapshot they follow
      // (etcd's raftexample does): a marker later in the log can still
      // bridge the gap. Until one does, the gap is pending damage.
      gap_ = Gap{log.last_index + 1, index - 1,         log.base_index,    log.last_index,
                 position_,          std::move(reason), std::move(terms_), std::move(log.entries),
                 std::move(log.runs)};
      log.base_index = index - 1;
      log.last_index = index - 1;
      Clear();
    }
    if (index <= log.last_index || log.runs.empty()) {
      // A rewrite (or the first entry): the entries from here on are the
      // ones written from this record on.
      DropRunsFrom(index);
      log.runs.push_back({index, position_});
    }
    terms_.Put(index, entry.term());
    if (options_.keep_entries) {
      const uint64_t after = kept_after();
      log.entries.resize(index > after ? static_cast<size_t>(index - after - 1) : 0);
      if (index > after) log.entries.push_back(entry);
    }
    log.last_index = index;
    return absl::OkStatus();
  }

  absl::Status ApplySnapshot(const walpb::Snapshot& snapshot) {
    ReplayedLog& log = *log_;
    log.markers.push_back({snapshot, position_});
    const uint64_t index = snapshot.index();
    if (options_.snapshot.has_value() && index == options_.snapshot->index()) {
      if (snapshot.term() != options_.snapshot->term()) {
        return absl::FailedPreconditionError(
            absl::StrCat("wal: snapshot mismatch: snapshot at index ", index, " has term ",
                         snapshot.term(), ", expected ", options_.snapshot->term()));
      }
      snapshot_found_ = true;
    }
    if (gap_.has_value() && index >= gap_->to) gap_.reset();  // bridged
    if (index <= log.base_index) return absl::OkStatus();
    if (terms_.TermAt(index) == snapshot.term()) {
      return absl::OkStatus();  // compaction: the log holds the snapshot's entry
    }
    // A snapshot past the log or over a divergent tail replaces the log.
    log.base_index = index;
    log.last_index = index;
    Clear();
    return absl::OkStatus();
  }

  void Clear() {
    terms_ = TermRuns();
    log_->entries.clear();
    log_->runs.clear();
  }

  // Forgets the runs of entries at `index` and later.
  void DropRunsFrom(uint64_t index) {
    std::vector<ReplayedLog::EntryRun>& runs = log_->runs;
    while (!runs.empty() && runs.back().first_index >= index) runs.pop_back();
  }

  // A snapshot marker stands for entries the read cannot return: not damage
  // (a follower installed a snapshot), but readable only from that marker.
  static absl::Status ReplacedBySnapshot(uint64_t from, uint64_t to,
                                         const walpb::Snapshot& snapshot) {
    return absl::FailedPreconditionError(
        absl::StrCat("wal: entries ", from, " to ", to, " were replaced by the snapshot at index ",
                     snapshot.index(), " (term ", snapshot.term(), "); read from that snapshot"));
  }

  // Entries missing before the entry at `position`, not yet bridged.
  struct Gap {
    uint64_t from = 0, to = 0;                  // the missing entries
    uint64_t base_before = 0, last_before = 0;  // the log before the gap
    RecordPosition position;
    std::string reason;
    TermRuns terms_before;                      // the log before the gap,
    std::vector<raftpb::Entry> entries_before;  // restored if none bridges it
    std::vector<ReplayedLog::EntryRun> runs_before;
  };

  const LogSegments& segments_;
  const LogReadOptions& options_;
  ReplayedLog* log_;
  TermRuns terms_;  // of the entries (base_index, last_index]
  bool metadata_seen_ = false;
  bool snapshot_found_ = false;
  uint64_t last_entry_read_ = 0;
  RecordPosition position_;  // of the record being applied
  std::optional<Gap> gap_;
};

}  // namespace

absl::StatusOr<ReplayedLog> Replay(FileSystem* fs, const LogSegments& segments,
                                   const LogReadOptions& options) {
  ReplayedLog log;
  Resolver resolver(segments, options, &log);
  // Sequence numbers must be consecutive: a missing segment is damage at the
  // segment after the hole.
  std::optional<size_t> gap;
  for (size_t i = segments.first + 1; i < segments.listed.size() && !gap.has_value(); ++i) {
    if (segments.listed[i].id.seq != segments.listed[i - 1].id.seq + 1) gap = i;
  }
  const size_t end = gap.value_or(segments.listed.size());
  std::vector<std::string> paths;
  for (size_t i = segments.first; i < end; ++i) paths.push_back(segments.PathOf(i));
  Decoder decoder(fs, paths);
  decoder.set_window_bytes(options.window_bytes);
  if (!gap.has_value() && segments.last_limit.has_value()) {
    decoder.LimitLastFile(*segments.last_limit);
  }

  std::string bad_record;
  RecordPosition bad_position;
  Payload payload;
  absl::Status status =
      decoder.Decode([&](const RecordView& record, const RecordPosition& pos) -> absl::Status {
        // A record that verifies but does not parse as its type is damage
        // like a CRC mismatch.
        bad_record = ParsePayload(record, &payload);
        if (bad_record.empty()) {
          ++log.records;
          if (options.on_record) options.on_record(pos, payload);
          resolver.set_position(pos);
          if (absl::Status s = resolver.Apply(payload, &bad_record); !s.ok()) return s;
          if (bad_record.empty()) {
            if (log.file_ends.size() <= pos.file_index) log.file_ends.resize(pos.file_index + 1);
            log.file_ends[pos.file_index] = pos.end;
          }
        }
        if (!bad_record.empty()) {
          bad_position = pos;
          return absl::DataLossError(bad_record);
        }
        return absl::OkStatus();
      });
  if (!status.ok() && bad_record.empty()) return status;

  auto set_damage = [&](LogDamage::Kind kind, size_t listed_index, uint64_t offset,
                        std::string reason) {
    LogDamage& damage = log.damage;
    damage.kind = kind;
    damage.file = segments.PathOf(listed_index);
    damage.offset = offset;
    damage.reason = std::move(reason);
    damage.affected_from = resolver.last_entry_read() + 1;
    if (listed_index + 1 < segments.listed.size() &&
        segments.listed[listed_index + 1].id.index > damage.affected_from) {
      damage.affected_to = segments.listed[listed_index + 1].id.index - 1;
    }
  };
  const LogEnd& stop = decoder.end();
  if (auto pending = resolver.UnbridgedGap(); pending.has_value()) {
    // The gap comes before wherever else the read stopped.
    set_damage(LogDamage::kCorrupt, segments.first + pending->first.file_index,
               pending->first.offset, pending->second);
  } else if (!bad_record.empty()) {
    set_damage(LogDamage::kCorrupt, segments.first + bad_position.file_index, bad_position.offset,
               bad_record);
  } else if (stop.kind != LogEnd::kClean) {
    // Before a hole in the sequence no segment is the last one.
    LogDamage::Kind kind = stop.kind == LogEnd::kTornTail && !gap.has_value() ? LogDamage::kTornTail
                                                                              : LogDamage::kCorrupt;
    set_damage(kind, segments.first + stop.file_index, stop.offset, stop.reason);
  } else if (gap.has_value()) {
    set_damage(LogDamage::kCorrupt, *gap, 0,
               absl::StrCat("segment sequence gap: ", segments.listed[*gap].name,
                            " does not follow ", segments.listed[*gap - 1].name));
  }
  log.segments = paths.size();
  log.end_offset = decoder.last_valid_end();
  log.end_crc = decoder.last_crc();
  if (options.snapshot.has_value()) {
    if (!resolver.snapshot_found()) {
      if (log.damage.kind == LogDamage::kCorrupt) {
        log.terms = resolver.TakeTerms();
        return log;
      }
      return absl::NotFoundError(absl::StrCat("wal: snapshot not found: no marker at index ",
                                              options.snapshot->index(), " term ",
                                              options.snapshot->term()));
    }
    if (absl::Status s = resolver.CutAtSnapshot(); !s.ok()) return s;
  }
  log.terms = resolver.TakeTerms();
  return log;
}

absl::StatusOr<ReplayedLog> ReplayBesideWriter(FileSystem* fs, const LogSegments& segments,
                                               const LogReadOptions& options) {
  absl::StatusOr<ReplayedLog> log = Replay(fs, segments, options);
  if (!segments.last_limit.has_value() && log.ok() && log->damage.kind == LogDamage::kCorrupt &&
      log->damage.file == segments.PathOf(segments.listed.size() - 1)) {
    log = Replay(fs, segments, options);
  }
  return log;
}

absl::StatusOr<ReplayedLog> ReadLog(FileSystem* fs, const std::string& dir,
                                    const LogReadOptions& options) {
  absl::StatusOr<LogSegments> segments = SelectSegments(fs, dir, options.snapshot);
  if (!segments.ok()) return segments.status();
  return Replay(fs, *segments, options);
}

}  // namespace walrus
