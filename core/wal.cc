#include "core/wal.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/errors.h"
#include "core/log_stream.h"
#include "core/payload.h"

namespace walrus {
namespace {

absl::Status FailStopped(const absl::Status& first) {
  return absl::UnavailableError(
      absl::StrCat("wal is fail-stopped after an I/O error: ", first.message()));
}

// An error from building a new WAL in `tmp`: the same code and payloads, the
// files named by their place in `dir`, and what was being done.
absl::Status BuildError(const absl::Status& s, const std::string& tmp, const std::string& dir) {
  absl::Status renamed(s.code(),
                       absl::StrCat("wal: creating ", dir, ": ",
                                    absl::StrReplaceAll(s.message(), {{tmp + "/", dir + "/"}})));
  s.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { renamed.SetPayload(url, payload); });
  return renamed;
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
  // The build directory is gone once Create returns: an error names the
  // files as the operator will find them.
  auto fail = [&](const absl::Status& s) { return BuildError(s, tmp, dir); };
  if (absl::Status s = fs->RemoveAll(tmp); !s.ok()) return fail(s);
  if (absl::Status s = fs->CreateDir(tmp); !s.ok()) return fail(s);
  const SegmentId first{0, 0};
  const std::string tmp_path = JoinPath(tmp, SegmentName(first));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs->NewWritableFile(tmp_path);
  if (!file.ok()) return fail(file.status());
  if (absl::Status s = (*file)->Preallocate(options.segment_size); !s.ok()) return fail(s);
  if (options.segment_blocks == SegmentBlocks::kWritten) {
    // Written blocks from the start (see WalOptions::segment_blocks); the
    // sync below makes the zeros durable with the first records, before the
    // segment is renamed into place.
    absl::Status s =
        FillWithZeros(file->get(), options.segment_size, SegmentPreparer::kInlineChunk);
    if (!s.ok()) return fail(s);
  }
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(tmp_path);
  if (!lock.ok()) return fail(lock.status());

  auto wal = std::unique_ptr<Wal>(new Wal(dir, options, /*write_mode=*/true));
  wal->metadata_ = std::string(metadata);
  wal->tail_ = std::move(*file);
  wal->locks_.push_back({first, std::move(*lock)});
  wal->encoder_.AddCrcRecord();
  wal->encoder_.AddMetadata(metadata);
  wal->encoder_.AddSnapshot(walpb::Snapshot());
  wal->ready_ = true;
  if (absl::Status s = wal->WriteAndSync(); !s.ok()) return fail(s);
  // The segment's directory entry must be durable before the directory is
  // published, or a crash could leave an empty WAL directory.
  if (absl::Status s = fs->SyncDir(tmp); !s.ok()) return fail(s);
  if (fs->Exists(dir)) {
    if (absl::Status s = fs->RemoveAll(dir); !s.ok()) return fail(s);
  }
  // The lock and the descriptor follow the file across the rename.
  if (absl::Status s = fs->Rename(tmp, dir); !s.ok()) return s;
  if (absl::Status s = fs->SyncDir(ParentDir(dir)); !s.ok()) return s;
  // The handle still carries the build directory's path, which no longer
  // exists: reopen the segment under its real name, which every error about
  // it must show.
  absl::StatusOr<std::unique_ptr<WritableFile>> tail =
      fs->OpenWritableFile(JoinPath(dir, SegmentName(first)), wal->tail_->Offset());
  if (!tail.ok()) return tail.status();
  (void)wal->tail_->Close();
  wal->AdoptTail(std::move(*tail));
  wal->preparer_ = std::make_unique<SegmentPreparer>(
      fs, dir, options.segment_size, options.segment_blocks, options.prepare_in_background);
  wal->preparer_->SetTailWritten(wal->tail_->Offset());
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
  std::optional<walpb::Snapshot> start;
  if (snapshot != nullptr) start = *snapshot;
  absl::StatusOr<LogSegments> segments = SelectSegments(fs, dir, start, until);
  if (!segments.ok()) return segments.status();
  auto wal = std::unique_ptr<Wal>(new Wal(dir, options, write_mode));
  wal->start_ = start;
  if (write_mode) {
    for (size_t i = segments->first; i < segments->listed.size(); ++i) {
      absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(segments->PathOf(i));
      if (!lock.ok()) return lock.status();
      wal->locks_.push_back({segments->listed[i].id, std::move(*lock)});
    }
  }
  wal->to_read_ = std::move(*segments);
  return wal;
}

absl::StatusOr<ReadAllResult> Wal::ReadAll() {
  if (ready_ || closed_ || !to_read_.has_value()) {
    return absl::FailedPreconditionError("wal: ReadAll must be called once, right after Open");
  }
  const LogSegments segments = std::move(*to_read_);
  to_read_.reset();
  LogReadOptions read_options;
  read_options.snapshot = start_;
  read_options.keep_entries = options_.return_entries;
  absl::StatusOr<ReplayedLog> log = write_mode_ ? Replay(fs_, segments, read_options)
                                                : ReplayBesideWriter(fs_, segments, read_options);
  if (!log.ok()) return log.status();
  const LogDamage& damage = log->damage;
  ReadAllResult out;
  switch (damage.kind) {
    case LogDamage::kNone:
      break;
    case LogDamage::kCorrupt:
      return absl::DataLossError(absl::StrCat("wal: ", damage.Describe()));
    case LogDamage::kTornTail:
      if (write_mode_) {
        return TornTailError(
            absl::StrCat("wal: ", damage.Describe(), "; never synced, repair truncates it"));
      }
      out.torn_tail = damage.Where();
      break;
  }
  out.metadata = std::move(log->metadata);
  out.state = log->state;
  out.entries = std::move(log->entries);
  out.base_index = log->base_index;
  out.last_snapshot = log->last_snapshot();
  if (!write_mode_) return out;

  // Ready for appends: continue the last segment right after its last valid
  // record, chaining the CRC.
  const SegmentId tail_id = locks_.back().id;
  absl::StatusOr<std::unique_ptr<WritableFile>> tail =
      fs_->OpenWritableFile(SegmentPath(tail_id), log->end_offset);
  if (!tail.ok()) return tail.status();
  AdoptTail(std::move(*tail));
  // What was just read must be durable before anything is built on it: a
  // process killed before its fdatasync, or inside a cut before the
  // directory sync, leaves bytes in the page cache and a segment name in the
  // directory that a later power loss would take back, with entries
  // acknowledged on top of them.
  if (absl::Status s = tail_->Sync(); !s.ok()) return s;
  if (absl::Status s = fs_->SyncDir(dir_); !s.ok()) return s;
  encoder_ = Encoder(log->end_crc);
  encoder_.ClearPending(tail_->Offset());
  metadata_ = out.metadata;
  std::vector<SnapshotMarker> markers;
  for (const ReplayedLog::MarkerRead& m : log->markers) {
    markers.push_back({m.snapshot.index(), m.snapshot.term(), segments.SeqOf(m.at.file_index)});
  }
  model_.Reset(std::move(log->terms), out.base_index, markers, out.state);
  if (options_.track_entry_locations) {
    durable_locations_.assign(1, EntryIndexEvent{EntryIndexEvent::kRestart, {out.base_index}});
    absl::Status located = LocateEntries(fs_, segments, *log, [&](const EntryLocation& l) {
      durable_locations_.push_back({EntryIndexEvent::kEntry, l});
      return absl::OkStatus();
    });
    if (!located.ok()) return located;
  }
  durable_ = {tail_id.seq, log->end_offset};
  synced_mark_ = encoder_.mark();
  // Segments prepared by a previous incarnation that never got used.
  if (absl::StatusOr<std::vector<std::string>> names = fs_->ListDir(dir_); names.ok()) {
    for (const std::string& name : *names) {
      if (absl::EndsWith(name, ".tmp")) (void)fs_->RemoveFile(JoinPath(dir_, name));
    }
  }
  preparer_ = std::make_unique<SegmentPreparer>(
      fs_, dir_, options_.segment_size, options_.segment_blocks, options_.prepare_in_background);
  preparer_->SetTailWritten(tail_->Offset());
  ready_ = true;
  // A marker that replaced the log from below its segment's name index must
  // end that segment (AppendSnapshot). A crash inside the cut after it leaves
  // it the tail's last record with the cut still owed: cut now, before
  // anything is appended after it (or, with no room, when Sync finds some).
  const walpb::Snapshot marker = log->last_snapshot();
  if (marker.index() > 0 && log->base_index == marker.index() &&
      log->markers.back().at.file_index + 1 == segments.listed.size() - segments.first &&
      marker.index() < tail_id.index) {
    cut_owed_ = true;
    if (absl::Status s = Cut(); !s.ok()) return s;
  }
  if (options_.metrics != nullptr) {
    options_.metrics->SetLastIndexSaved(last_index());
    options_.metrics->SetLockedSegments(locks_.size());
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
  if (absl::Status s = CheckNoMarkerPending(); !s.ok()) return s;
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
    // The pending bytes go to the tail at its current end (nothing is
    // written between encoding and the next sync), so this is where the
    // entry's frame will be.
    const uint64_t at = tail_->Offset() + encoder_.pending_size();
    const uint32_t prev_crc = encoder_.crc();
    encoder_.AddEntry(entries[i]);
    model_.RecordEntry(entries[i].index(), entries[i].term());
    if (options_.track_entry_locations) {
      const uint64_t length = tail_->Offset() + encoder_.pending_size() - at;
      encoded_locations_.push_back(
          {EntryIndexEvent::kEntry,
           {entries[i].index(), locks_.back().id.seq, at, static_cast<uint32_t>(length), prev_crc,
            locks_.back().id.index}});
    }
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
  if (cut_owed_) {
    if (encoder_.pending_size() > 0) {
      // Nothing may follow the marker in its segment, and there is still no
      // room for the next one: refused like a write that found no space.
      RollbackPending();
      return absl::ResourceExhaustedError(
          "wal: no room for the segment that must follow a snapshot marker that replaced the "
          "log; nothing written (free space and retry)");
    }
    return Cut();
  }
  if (absl::Status s = WriteAndSync(); !s.ok()) return s;
  if (tail_->Offset() >= options_.segment_size || marker_ends_segment_) {
    // A marker that replaced the log owes the cut until one succeeds.
    cut_owed_ = marker_ends_segment_;
    marker_ends_segment_ = false;
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
  if (absl::Status s = CheckNoMarkerPending(); !s.ok()) return s;
  const bool replaces = model_.ReplacesLog(snapshot.index(), snapshot.term());
  encoder_.AddSnapshot(snapshot);
  model_.RecordSnapshot(snapshot.index(), snapshot.term(), locks_.back().id.seq);
  if (replaces && options_.track_entry_locations) {
    // Raft discards its whole log when it installs such a snapshot: the
    // entries up to the marker belong to it now, and none after it remain.
    encoded_locations_.push_back({EntryIndexEvent::kRestart, {snapshot.index()}});
  }
  // A reader that starts at the tail segment knows the log from the
  // segment's name index on: below that, a marker that replaces the log
  // reads like a compaction. The next segment's name (the index after the
  // marker) says where the log ends, so it must follow the marker directly.
  if (replaces && snapshot.index() < locks_.back().id.index) marker_ends_segment_ = true;
  return absl::OkStatus();
}

absl::Status Wal::CheckNoMarkerPending() const {
  if (!marker_ends_segment_) return absl::OkStatus();
  return absl::FailedPreconditionError(
      "wal: a snapshot marker that replaced the log must be synced before more records");
}

absl::Status Wal::SaveSnapshot(const walpb::Snapshot& snapshot) {
  if (absl::Status s = AppendSnapshot(snapshot); !s.ok()) return s;
  return Sync();
}

void Wal::AdoptTail(std::unique_ptr<WritableFile> file) {
  tail_ = std::move(file);
  // Direct I/O is an optimisation: where it cannot be had, appends are
  // buffered, and the metric says which.
  if (options_.direct_io) (void)tail_->UseDirectIo(options_.direct_io_min_bytes);
  ReportDirectIo();
}

void Wal::ReportDirectIo() {
  direct_io_ = tail_->direct_io();
  if (options_.metrics != nullptr) options_.metrics->SetDirectIo(direct_io_);
}

void Wal::RollbackPending() {
  encoder_.RollbackTo(synced_mark_);
  model_.Rollback();
  encoded_locations_.clear();
  marker_ends_segment_ = false;  // if such a marker was pending, it is gone
}

absl::Status Wal::Fail(absl::Status status) {
  if (failure_.ok()) failure_ = status;
  // Nothing encoded since the last sync may be taken for durable.
  model_.Rollback();
  encoded_locations_.clear();
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
      RollbackPending();
      return s;
    }
    encoder_.ClearPending(tail_->Offset());
    if (options_.metrics != nullptr) {
      options_.metrics->AddBytesWritten(tail_->Offset() - before);
    }
    if (direct_io_ && !tail_->direct_io()) ReportDirectIo();  // a direct write was refused
  }
  auto started = std::chrono::steady_clock::now();
  absl::Status s = tail_->Sync();
  if (options_.metrics != nullptr) {
    options_.metrics->ObserveFsync(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  if (!s.ok()) return Fail(s);
  if (absl::Status linked = CheckTailLinked(); !linked.ok()) return Fail(linked);
  durable_ = {locks_.back().id.seq, tail_->Offset()};
  if (preparer_ != nullptr) preparer_->SetTailWritten(durable_.offset);
  model_.Commit();
  synced_mark_ = encoder_.mark();
  durable_locations_.insert(durable_locations_.end(), encoded_locations_.begin(),
                            encoded_locations_.end());
  encoded_locations_.clear();
  return absl::OkStatus();
}

std::vector<EntryIndexEvent> Wal::TakeDurableLocations() {
  std::vector<EntryIndexEvent> taken;
  taken.swap(durable_locations_);
  return taken;
}

absl::Status Wal::CheckTailLinked() const {
  absl::StatusOr<uint64_t> links = tail_->LinkCount();
  if (links.ok() && *links > 0) return absl::OkStatus();
  if (!links.ok()) {
    if (links.status().code() == absl::StatusCode::kUnimplemented) return absl::OkStatus();
    return links.status();
  }
  return absl::UnavailableError(absl::StrCat(
      "wal: segment ", SegmentPath(locks_.back().id),
      " was deleted while in use: records synced to it since are in no file a restart would "
      "read"));
}

absl::Status Wal::Cut() {
  // Seal the tail: cut off its unused preallocated space so a sealed segment
  // ends at its data, and make that durable before the next segment exists.
  const uint64_t end = tail_->Offset();
  if (absl::Status s = tail_->Truncate(end); !s.ok()) return Fail(s);
  if (absl::Status s = tail_->Sync(); !s.ok()) return Fail(s);

  absl::StatusOr<PreparedSegment> prepared = preparer_->Take();
  if (!prepared.ok()) {
    // No space to preallocate a new segment: keep appending to the current
    // one (everything in it is durable) and try again at the next sync; the
    // deferral is counted and logged, as the tail grows past the segment
    // size. Any other error (permissions, I/O) is the directory's trouble,
    // not a full disk: fail-stop like every other step of a cut.
    if (prepared.status().code() != absl::StatusCode::kResourceExhausted) {
      return Fail(absl::Status(prepared.status().code(),
                               absl::StrCat("wal: preparing the next segment in ", dir_, ": ",
                                            prepared.status().message())));
    }
    if (options_.metrics != nullptr) options_.metrics->SegmentCutDeferred(prepared.status(), end);
    return absl::OkStatus();
  }
  if (options_.metrics != nullptr) options_.metrics->SegmentPrepared(prepared->blocks);
  const SegmentId next{locks_.back().id.seq + 1, last_index() + 1};
  const std::string path = SegmentPath(next);
  // The new segment opens with the chain's CRC so far, the metadata and the
  // last hard state: it can be read on its own once older ones are purged.
  encoder_.AddCrcRecord();
  encoder_.AddMetadata(metadata_);
  if (!IsEmptyHardState(hard_state())) encoder_.AddHardState(hard_state());
  if (absl::Status s = prepared->file->Append(encoder_.pending()); !s.ok()) {
    if (s.code() != absl::StatusCode::kResourceExhausted) return Fail(s);
    // No room even for the header (space taken since it was preallocated,
    // or a file system that allocates on write): no new segment this time.
    encoder_.RollbackTo(synced_mark_);
    (void)prepared->file->Close();
    (void)fs_->RemoveFile(prepared->path);
    if (options_.metrics != nullptr) options_.metrics->SegmentCutDeferred(s, end);
    return absl::OkStatus();
  }
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
  AdoptTail(std::move(prepared->file));
  locks_.push_back({next, std::move(*lock)});
  encoder_.ClearPending(tail_->Offset());
  durable_ = {next.seq, tail_->Offset()};
  preparer_->SetTailWritten(durable_.offset);
  synced_mark_ = encoder_.mark();
  cut_owed_ = false;
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
    // Nothing may follow a marker that owes its cut (see Sync).
    if (cut_owed_) RollbackPending();
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
