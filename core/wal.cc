#include "core/wal.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/payload.h"

namespace walrus {
namespace {

absl::Status FailStopped(const absl::Status& first) {
  return absl::UnavailableError(
      absl::StrCat("wal is fail-stopped after an I/O error: ", first.message()));
}

// Describes the entries a damaged region affects, for error messages.
std::string AffectedRange(uint64_t last_good_index, std::optional<uint64_t> next_known_index) {
  if (next_known_index.has_value() && *next_known_index > last_good_index + 1) {
    return absl::StrCat("entries ", last_good_index + 1, " to ", *next_known_index - 1);
  }
  return absl::StrCat("entries after index ", last_good_index);
}

}  // namespace

Wal::Wal(std::string dir, const WalOptions& options, bool write_mode)
    : dir_(std::move(dir)), options_(options), fs_(options.fs), write_mode_(write_mode) {}

Wal::~Wal() { (void)Close(); }

absl::StatusOr<std::unique_ptr<Wal>> Wal::Create(const std::string& dir, absl::string_view metadata,
                                                 const WalOptions& options) {
  FileSystem* fs = options.fs;
  if (fs->Exists(dir)) {
    absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
    if (!names.ok()) return names.status();
    if (!names->empty()) {
      return absl::AlreadyExistsError(
          absl::StrCat("wal: ", dir, " already exists and is not empty"));
    }
  }
  // Build the whole WAL beside its final place, then rename it in: a crash
  // leaves either no WAL or a complete one, never a half-created one that Open
  // would take for a damaged log.
  const std::string tmp = dir + ".tmp";
  if (absl::Status s = fs->RemoveAll(tmp); !s.ok()) return s;
  if (absl::Status s = fs->CreateDir(tmp); !s.ok()) return s;
  const SegmentId first{0, 0};
  const std::string tmp_path = JoinPath(tmp, SegmentName(first));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs->NewWritableFile(tmp_path);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Preallocate(options.segment_size); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(tmp_path);
  if (!lock.ok()) return lock.status();

  auto wal = std::unique_ptr<Wal>(new Wal(dir, options, /*write_mode=*/true));
  wal->metadata_ = std::string(metadata);
  wal->tail_ = std::move(*file);
  wal->locks_.push_back({first, std::move(*lock)});
  wal->encoder_.AddCrcRecord();
  wal->encoder_.AddMetadata(metadata);
  wal->encoder_.AddSnapshot(walpb::Snapshot());
  wal->ready_ = true;
  if (absl::Status s = wal->WriteAndSync(); !s.ok()) return s;
  // The segment's directory entry must be durable before the directory is
  // published, or a crash could leave an empty WAL directory.
  if (absl::Status s = fs->SyncDir(tmp); !s.ok()) return s;
  if (fs->Exists(dir)) {
    if (absl::Status s = fs->RemoveAll(dir); !s.ok()) return s;
  }
  // The lock and the descriptor follow the file across the rename.
  if (absl::Status s = fs->Rename(tmp, dir); !s.ok()) return s;
  if (absl::Status s = fs->SyncDir(ParentDir(dir)); !s.ok()) return s;
  wal->preparer_ = std::make_unique<SegmentPreparer>(fs, dir, options.segment_size,
                                                     options.prepare_in_background);
  if (options.metrics != nullptr) options.metrics->SetLockedSegments(1);
  return wal;
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::Open(const std::string& dir,
                                               const walpb::Snapshot& snapshot,
                                               const WalOptions& options) {
  return OpenAt(dir, &snapshot, options, /*write_mode=*/true, std::nullopt);
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::OpenForRead(const std::string& dir,
                                                      const walpb::Snapshot& snapshot,
                                                      const WalOptions& options,
                                                      std::optional<LogPosition> until) {
  return OpenAt(dir, &snapshot, options, /*write_mode=*/false, until);
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::OpenForRecovery(const std::string& dir,
                                                          const WalOptions& options) {
  return OpenAt(dir, nullptr, options, /*write_mode=*/true, std::nullopt);
}

absl::StatusOr<std::unique_ptr<Wal>> Wal::OpenAt(const std::string& dir,
                                                 const walpb::Snapshot* snapshot,
                                                 const WalOptions& options, bool write_mode,
                                                 std::optional<LogPosition> until) {
  FileSystem* fs = options.fs;
  absl::StatusOr<std::vector<SegmentFile>> listed = ListSegments(fs, dir);
  if (!listed.ok()) {
    return absl::NotFoundError(absl::StrCat("wal: file not found: ", listed.status().message()));
  }
  if (listed->empty()) return absl::NotFoundError(absl::StrCat("wal: file not found in ", dir));
  if (until.has_value()) {
    // Segments cut after the reader's limit do not exist for it.
    while (!listed->empty() && listed->back().id.seq > until->seq) listed->pop_back();
    if (listed->empty()) return absl::NotFoundError(absl::StrCat("wal: file not found in ", dir));
  }
  std::optional<size_t> first =
      snapshot != nullptr ? SearchIndex(*listed, snapshot->index()) : std::optional<size_t>(0);
  if (!first.has_value()) {
    return absl::NotFoundError(absl::StrCat("wal: file not found: no segment in ", dir,
                                            " holds index ", snapshot->index()));
  }
  if (!IsContiguous(*listed, *first)) {
    return absl::NotFoundError(
        absl::StrCat("wal: file not found: segment sequence in ", dir, " has a gap"));
  }
  auto wal = std::unique_ptr<Wal>(new Wal(dir, options, write_mode));
  if (snapshot != nullptr) wal->start_ = *snapshot;
  wal->check_snapshot_ = snapshot != nullptr;
  if (until.has_value() && listed->back().id.seq == until->seq) wal->read_limit_ = until->offset;
  for (size_t i = *first; i < listed->size(); ++i) {
    const SegmentFile& segment = (*listed)[i];
    std::string path = JoinPath(dir, segment.name);
    if (write_mode) {
      absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(path);
      if (!lock.ok()) return lock.status();
      wal->locks_.push_back({segment.id, std::move(*lock)});
    }
    wal->read_paths_.push_back(std::move(path));
  }
  wal->listed_ = std::move(*listed);
  wal->read_first_ = *first;
  return wal;
}

absl::StatusOr<ReadAllResult> Wal::ReadAll() {
  if (ready_ || closed_ || read_paths_.empty()) {
    return absl::FailedPreconditionError("wal: ReadAll must be called once, right after Open");
  }
  Decoder decoder(fs_, read_paths_);
  if (read_limit_.has_value()) decoder.LimitLastFile(*read_limit_);
  absl::StatusOr<ReadAllResult> result = DecodeAll(&decoder);
  if (!write_mode_ && !read_limit_.has_value() && !result.ok() &&
      decoder.end().kind == LogEnd::kCorrupt &&
      decoder.end().file_index + 1 == read_paths_.size()) {
    // A reader racing the writer can see the pages of an in-flight write out
    // of order; what is real corruption is still there on a second look.
    Decoder again(fs_, read_paths_);
    result = DecodeAll(&again);
  }
  if (!result.ok() || !write_mode_) {
    read_paths_.clear();
    return result;
  }

  // Ready for appends: continue the last segment right after its last valid
  // record, chaining the CRC.
  const SegmentId tail_id = locks_.back().id;
  absl::StatusOr<std::unique_ptr<WritableFile>> tail =
      fs_->OpenWritableFile(read_paths_.back(), decoder.last_valid_end());
  if (!tail.ok()) return tail.status();
  tail_ = std::move(*tail);
  encoder_ = Encoder(decoder.last_crc());
  metadata_ = result->metadata;
  model_.Reset(result->entries, result->last_snapshot.index(), result->last_snapshot.term(),
               locks_.front().id.seq, result->state);
  durable_ = {tail_id.seq, decoder.last_valid_end()};
  synced_mark_ = encoder_.mark();
  // Segments prepared by a previous incarnation that never got used.
  if (absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(dir_); names.ok()) {
    for (const std::string& name : *names) {
      if (absl::EndsWith(name, ".tmp")) (void)fs_->RemoveFile(JoinPath(dir_, name));
    }
  }
  preparer_ = std::make_unique<SegmentPreparer>(fs_, dir_, options_.segment_size,
                                                options_.prepare_in_background);
  read_paths_.clear();
  ready_ = true;
  if (options_.metrics != nullptr) {
    options_.metrics->SetLastIndexSaved(last_index());
    options_.metrics->SetLockedSegments(locks_.size());
  }
  return result;
}

absl::StatusOr<ReadAllResult> Wal::DecodeAll(Decoder* decoder) {
  ReadAllResult out;
  bool metadata_seen = false;
  bool snapshot_found = false;
  uint64_t last_entry = 0;
  const uint64_t start = start_.index();
  auto where = [&](const RecordPosition& pos) {
    return absl::StrCat(read_paths_[pos.file_index], " at offset ", pos.offset);
  };
  // A record that verifies but does not parse as its type is damage like a
  // CRC mismatch: reported with the affected range below.
  std::string bad_record;
  RecordPosition bad_position;
  std::optional<uint64_t> recovery_base;  // OpenForRecovery: index before entries[0]
  bool base_from_snapshot = false;
  size_t reserved_for = 0;
  Payload payload;
  absl::Status status =
      decoder->Decode([&](const RecordView& record, const RecordPosition& pos) -> absl::Status {
        if (std::string why = ParsePayload(record, &payload); !why.empty()) {
          bad_record = why;
          bad_position = pos;
          return absl::DataLossError(why);
        }
        switch (payload.type) {
          case RecordType::kEntry: {
            raftpb::Entry& entry = payload.entry;
            if (!check_snapshot_) {
              // Recovery reads whatever the oldest segment holds: the first
              // entry sets the base; an earlier one replaces everything,
              // unless a snapshot marker set the base (Raft writes nothing
              // at or below a snapshot).
              if (!recovery_base.has_value() ||
                  (entry.index() <= *recovery_base && !base_from_snapshot)) {
                recovery_base = entry.index() - 1;
                base_from_snapshot = false;
                out.entries.clear();
              }
            }
            if (pos.file_index > 0 && pos.file_index != reserved_for) {
              // Segments hold about as many entries as the ones before them:
              // reserve for the rest rather than grow by doubling.
              reserved_for = pos.file_index;
              out.entries.reserve(out.entries.size() * decoder->paths().size() / pos.file_index);
            }
            const uint64_t base = check_snapshot_ ? start : *recovery_base;
            if (entry.index() > base) {
              uint64_t up = entry.index() - base - 1;
              if (up > out.entries.size()) {
                const uint64_t last = base + out.entries.size();
                if (out.last_snapshot.index() + 1 >= entry.index()) {
                  // A snapshot marker past the last entry bridges the gap (a
                  // follower installed a snapshot): not damage, but readable
                  // only from that snapshot on.
                  return absl::FailedPreconditionError(absl::StrCat(
                      "wal: entries ", last + 1, " to ", entry.index() - 1,
                      " were replaced by the snapshot at index ", out.last_snapshot.index(),
                      " (term ", out.last_snapshot.term(), "); read from that snapshot"));
                }
                return absl::DataLossError(absl::StrCat(
                    "wal: corruption in ", where(pos), ": entry ", entry.index(), " follows entry ",
                    last, "; entries ", last + 1, " to ", entry.index() - 1, " are missing"));
              }
              out.entries.resize(up);
              out.entries.push_back(std::move(entry));
              last_entry = out.entries.back().index();
            } else {
              last_entry = entry.index();
            }
            break;
          }
          case RecordType::kState:
            out.state = payload.state;
            break;
          case RecordType::kMetadata:
            if (metadata_seen && out.metadata != payload.metadata) {
              return absl::DataLossError(
                  absl::StrCat("wal: conflicting metadata found in ", where(pos)));
            }
            out.metadata = std::string(payload.metadata);
            metadata_seen = true;
            break;
          case RecordType::kCrc:
            break;  // the decoder checked the chain
          case RecordType::kSnapshot: {
            const walpb::Snapshot& snapshot = payload.snapshot;
            out.last_snapshot = snapshot;
            if (!check_snapshot_ && (!recovery_base.has_value() ||
                                     snapshot.index() > *recovery_base + out.entries.size())) {
              // A snapshot past the last entry supersedes the entries.
              out.entries.clear();
              recovery_base = snapshot.index();
              base_from_snapshot = true;
            }
            if (check_snapshot_ && snapshot.index() == start) {
              if (snapshot.term() != start_.term()) {
                return absl::FailedPreconditionError(
                    absl::StrCat("wal: snapshot mismatch: snapshot at index ", start, " has term ",
                                 snapshot.term(), ", expected ", start_.term()));
              }
              snapshot_found = true;
            }
            break;
          }
        }
        return absl::OkStatus();
      });
  if (!bad_record.empty()) {
    std::optional<uint64_t> next_index;
    size_t listed_index = read_first_ + bad_position.file_index;
    if (listed_index + 1 < listed_.size()) next_index = listed_[listed_index + 1].id.index;
    return absl::DataLossError(absl::StrCat("wal: corruption in ", where(bad_position), " (",
                                            bad_record, "); ",
                                            AffectedRange(last_entry, next_index)));
  }
  if (!status.ok()) return status;

  const LogEnd& end = decoder->end();
  if (end.kind != LogEnd::kClean) {
    const std::string& path = decoder->paths()[end.file_index];
    std::optional<uint64_t> next_index;
    size_t listed_index = read_first_ + end.file_index;
    if (listed_index + 1 < listed_.size()) next_index = listed_[listed_index + 1].id.index;
    std::string what = absl::StrCat(path, " at offset ", end.offset, " (", end.reason, "); ",
                                    AffectedRange(last_entry, next_index));
    if (end.kind == LogEnd::kCorrupt) {
      return absl::DataLossError(absl::StrCat("wal: corruption in ", what));
    }
    if (write_mode_) {
      return TornTailError(
          absl::StrCat("wal: torn tail in ", what, " were never synced; repair truncates them"));
    }
    out.torn_tail = what;
  }
  if (check_snapshot_ && !snapshot_found) {
    return absl::NotFoundError(absl::StrCat("wal: snapshot not found: no marker at index ", start,
                                            " term ", start_.term()));
  }
  return out;
}

absl::Status Wal::CheckWritable() const {
  if (!write_mode_) return absl::FailedPreconditionError("wal: opened for reading only");
  if (closed_) return absl::FailedPreconditionError("wal: closed");
  if (!ready_) return absl::FailedPreconditionError("wal: ReadAll must finish before appends");
  if (!failure_.ok()) return FailStopped(failure_);
  return absl::OkStatus();
}

template <typename Entries>
absl::Status Wal::AppendRun(const raftpb::HardState& state, const Entries& entries, size_t from,
                            size_t to, bool* must_sync) {
  *must_sync = false;
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (IsEmptyHardState(state) && from == to) return absl::OkStatus();
  for (size_t i = from; i < to; ++i) {
    const raftpb::Entry& entry = entries[i];
    // Record overhead: three tags, a type and a crc varint, a length varint.
    uint64_t record_len = entry.ByteSizeLong() + 32;
    if (!FrameBodyFits(record_len, kFrameAlignment)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "wal: entry ", entry.index(), " is ", entry.data().size(),
          " bytes, over the format's limit of ", kMaxFrameBody - 64, " bytes per record"));
    }
  }
  // Raft's MustSync: new entries, or a changed term or vote, must be durable
  // before the node acts on them; a commit-only change need not be.
  const raftpb::HardState& saved = model_.encoded().hard_state;
  bool must = from != to || state.term() != saved.term() || state.vote() != saved.vote();
  for (size_t i = from; i < to; ++i) {
    encoder_.AddEntry(entries[i]);
    model_.RecordEntry(entries[i].index(), entries[i].term());
  }
  if (!IsEmptyHardState(state)) {
    encoder_.AddHardState(state);
    model_.RecordState(state);
  }
  *must_sync = must || tail_->Offset() + encoder_.pending_size() >= options_.segment_size;
  return absl::OkStatus();
}

absl::Status Wal::Append(const raftpb::HardState& state, absl::Span<const raftpb::Entry> entries,
                         bool* must_sync) {
  return AppendRun(state, entries, 0, entries.size(), must_sync);
}

absl::Status Wal::Append(const raftpb::HardState& state,
                         const google::protobuf::RepeatedPtrField<raftpb::Entry>& entries, int from,
                         bool* must_sync) {
  return AppendRun(state, entries, static_cast<size_t>(from), static_cast<size_t>(entries.size()),
                   must_sync);
}

absl::Status Wal::Sync() {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  if (absl::Status s = WriteAndSync(); !s.ok()) return s;
  if (tail_->Offset() >= options_.segment_size) {
    if (absl::Status s = Cut(); !s.ok()) return s;
  }
  if (options_.metrics != nullptr) options_.metrics->SetLastIndexSaved(last_index());
  return absl::OkStatus();
}

absl::Status Wal::Save(const raftpb::HardState& state, absl::Span<const raftpb::Entry> entries) {
  bool must_sync = false;
  if (absl::Status s = Append(state, entries, &must_sync); !s.ok()) return s;
  return must_sync ? Sync() : absl::OkStatus();
}

absl::Status Wal::AppendSnapshot(const walpb::Snapshot& snapshot) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  encoder_.AddSnapshot(snapshot);
  model_.RecordSnapshot(snapshot.index(), snapshot.term(), locks_.back().id.seq);
  return absl::OkStatus();
}

absl::Status Wal::SaveSnapshot(const walpb::Snapshot& snapshot) {
  if (absl::Status s = AppendSnapshot(snapshot); !s.ok()) return s;
  return Sync();
}

absl::Status Wal::Fail(absl::Status status) {
  if (failure_.ok()) failure_ = status;
  // Nothing encoded since the last sync may be taken for durable.
  model_.Rollback();
  return status;
}

absl::Status Wal::WriteAndSync() {
  const bool wrote = encoder_.pending_size() > 0;
  if (!wrote && durable_.offset == tail_->Offset() && durable_.seq == locks_.back().id.seq) {
    return absl::OkStatus();  // nothing new since the last sync
  }
  if (wrote) {
    const uint64_t before = tail_->Offset();
    absl::Status s = tail_->Append(encoder_.pending());
    if (!s.ok()) {
      if (s.code() != absl::StatusCode::kResourceExhausted) return Fail(s);
      // Out of space: cut off whatever part of the write landed, make that
      // durable, and forget the unsynced records, so the log stays valid and
      // appends can resume when space returns.
      if (absl::Status t = tail_->Truncate(before); !t.ok()) return Fail(t);
      if (absl::Status t = tail_->Sync(); !t.ok()) return Fail(t);
      encoder_.RollbackTo(synced_mark_);
      model_.Rollback();
      return s;
    }
    encoder_.ClearPending();
    if (options_.metrics != nullptr) {
      options_.metrics->AddBytesWritten(tail_->Offset() - before);
    }
  }
  auto started = std::chrono::steady_clock::now();
  absl::Status s = tail_->Sync();
  if (options_.metrics != nullptr) {
    options_.metrics->ObserveFsync(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  if (!s.ok()) return Fail(s);
  durable_ = {locks_.back().id.seq, tail_->Offset()};
  model_.Commit();
  synced_mark_ = encoder_.mark();
  return absl::OkStatus();
}

absl::Status Wal::Cut() {
  // Seal the tail: cut off its unused preallocated space so a sealed segment
  // ends at its data, and make that durable before the next segment exists.
  const uint64_t end = tail_->Offset();
  if (absl::Status s = tail_->Truncate(end); !s.ok()) return Fail(s);
  if (absl::Status s = tail_->Sync(); !s.ok()) return Fail(s);

  absl::StatusOr<PreparedSegment> prepared = preparer_->Take();
  if (!prepared.ok()) {
    // No new segment (often: no space to preallocate one). Keep appending to
    // the current one; the next sync tries again.
    return absl::OkStatus();
  }
  const SegmentId next{locks_.back().id.seq + 1, last_index() + 1};
  const std::string path = SegmentPath(next);
  // The new segment opens with the chain's CRC so far, the metadata and the
  // last hard state: it can be read on its own once older ones are purged.
  encoder_.AddCrcRecord();
  encoder_.AddMetadata(metadata_);
  if (!IsEmptyHardState(hard_state())) encoder_.AddHardState(hard_state());
  if (absl::Status s = prepared->file->Append(encoder_.pending()); !s.ok()) return Fail(s);
  if (absl::Status s = prepared->file->Sync(); !s.ok()) return Fail(s);
  // Lock before the file gets its .wal name (the lock follows it across the
  // rename): once named, anyone may try to lock it (an offline backup locks
  // every segment it can), and the writer must never lose that race.
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs_->TryLockFile(prepared->path);
  if (!lock.ok()) return Fail(lock.status());
  // Only a complete, synced segment gets a .wal name; the rename is made
  // durable before anything is acknowledged from the new segment.
  if (absl::Status s = fs_->Rename(prepared->path, path); !s.ok()) return Fail(s);
  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return Fail(s);
  (void)tail_->Close();
  tail_ = std::move(prepared->file);
  locks_.push_back({next, std::move(*lock)});
  encoder_.ClearPending();
  durable_ = {next.seq, tail_->Offset()};
  synced_mark_ = encoder_.mark();
  if (options_.metrics != nullptr) {
    options_.metrics->SegmentCut(next.seq);
    options_.metrics->SetLockedSegments(locks_.size());
  }
  return absl::OkStatus();
}

absl::Status Wal::ReleaseTo(uint64_t index) {
  if (!write_mode_ || closed_) return absl::FailedPreconditionError("wal: not open for writing");
  if (locks_.empty()) return absl::OkStatus();
  // Keep the last segment starting below `index` (it may hold entries up to
  // index-1 that are still needed) and everything after it.
  size_t smaller = locks_.size() - 1;
  for (size_t i = 0; i < locks_.size(); ++i) {
    if (locks_[i].id.index >= index) {
      smaller = i == 0 ? 0 : i - 1;
      break;
    }
  }
  if (smaller > 0) {
    locks_.erase(locks_.begin(), locks_.begin() + static_cast<ptrdiff_t>(smaller));
    if (options_.metrics != nullptr) options_.metrics->SetLockedSegments(locks_.size());
  }
  model_.Release(index, locks_.front().id.seq);
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> Wal::ReleaseToSnapshot(uint64_t index) {
  const uint64_t limit = model_.ReleaseLimit(index);
  if (absl::Status s = ReleaseTo(limit); !s.ok()) return s;
  return limit;
}

absl::StatusOr<Wal::Accepted> Wal::AppendChecked(const LogRequest& request) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  absl::StatusOr<AppendPlan> plan = model_.PlanAppend(request);
  if (!plan.ok()) return plan.status();
  static const google::protobuf::RepeatedPtrField<raftpb::Entry> kNone;
  const auto& entries = request.entries != nullptr ? *request.entries : kNone;
  const raftpb::HardState state = plan->write_state ? request.hard_state : raftpb::HardState();
  bool must_sync = false;
  if (absl::Status s = Append(state, entries, static_cast<int>(plan->skip), &must_sync); !s.ok()) {
    return s;
  }
  return Accepted{plan->awaits_sync, last_index()};
}

absl::StatusOr<Wal::Accepted> Wal::AppendSnapshotChecked(uint64_t index, uint64_t term) {
  if (absl::Status s = CheckWritable(); !s.ok()) return s;
  absl::StatusOr<SnapshotPlan> plan = model_.PlanSnapshot(index, term);
  if (!plan.ok()) return plan.status();
  if (plan->write) {
    walpb::Snapshot snapshot;
    snapshot.set_index(index);
    snapshot.set_term(term);
    if (absl::Status s = AppendSnapshot(snapshot); !s.ok()) return s;
  }
  return Accepted{plan->awaits_sync, last_index()};
}

absl::Status Wal::Close() {
  if (closed_) return absl::OkStatus();
  closed_ = true;
  absl::Status status;
  if (write_mode_ && ready_ && tail_ != nullptr) {
    if (failure_.ok()) status = WriteAndSync();
    if (absl::Status s = tail_->Close(); status.ok()) status = s;
  }
  preparer_.reset();
  locks_.clear();
  return status;
}

std::vector<SegmentId> Wal::locked_segments() const {
  std::vector<SegmentId> ids;
  for (const LockedSegment& locked : locks_) ids.push_back(locked.id);
  return ids;
}

}  // namespace walrus
