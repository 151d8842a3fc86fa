// The write-ahead log: etcd's WAL semantics on a FileSystem.
//
// A Wal is in one of two modes, as in etcd:
//  - write mode (Create, or Open followed by ReadAll): appends records to the
//    last segment, cuts a new segment when it is full, holds an exclusive lock
//    on every segment file from the one holding the opening snapshot on.
//  - read mode (OpenForRead): reads only, takes no locks, may run while another
//    process writes the directory; a torn tail ends the read cleanly.
//
// Appending and syncing are separate steps: Append() encodes records into
// memory; Sync() writes everything encoded with one write, one fdatasync, and
// cuts the segment if it is full. Save() is Append()+Sync() when Raft requires
// the sync (entries present, or term or vote changed), like etcd's Save. A
// group-commit batcher calls Append() for each request and Sync() once.
//
// The log's state (the terms of the entries held, the last index, the hard
// state, the snapshot markers) has one owner, the LogModel (core/log_model.h)
// inside the Wal: every append records into it, Sync() commits it together
// with the bytes, and a failed write rolls both back. The checked methods
// (AppendChecked, AppendSnapshotChecked, ReleaseToSnapshot) validate requests
// from remote Raft nodes against it; the etcd API (Append, Save,
// AppendSnapshot, SaveSnapshot, ReleaseTo) records what it is given.
//
// Failure model: a failed write or fdatasync makes the Wal fail-stop: every
// later mutating call returns UNAVAILABLE naming the first error, and an
// fdatasync is never retried (after a failed fsync Linux may have dropped the
// dirty pages and cleared the error; a retry would "succeed" over lost data).
// The one exception is ENOSPC from a write: the unsynced bytes are cut off
// again, the call returns RESOURCE_EXHAUSTED, and the log stays usable.
// A tail segment that was deleted (or renamed over) under the Wal is a
// failure of the same kind: syncs into it still succeed, but no restart will
// read them. Each sync checks the tail's link count afterwards and goes
// fail-stop (UNAVAILABLE) instead of acknowledging records in a lost file.
//
// Thread-safety: none. One thread drives a Wal (walrusd's committer).
#ifndef WALRUS_CORE_WAL_H_
#define WALRUS_CORE_WAL_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/decoder.h"
#include "core/encoder.h"
#include "core/entry_index.h"
#include "core/fs.h"
#include "core/log_model.h"
#include "core/log_reader.h"
#include "core/segment.h"
#include "core/segment_preparer.h"
#include "core/wal_metrics.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus {

struct WalOptions {
  FileSystem* fs = PosixFs();
  uint64_t segment_size = kDefaultSegmentSize;
  WalMetrics* metrics = nullptr;  // not owned; may be null
  // What a new segment's space is on disk (core/segment_preparer.h). With
  // kWritten, segment 0 is zero-filled and synced by Create (about as long
  // as writing segment_size bytes takes), and later segments are zero-filled
  // in the background, paced by the writer, so every fdatasync into them
  // writes data only, without committing an extent conversion as well (on
  // ext4 up to twice as fast). A cut never waits for that zero-fill: a
  // segment not yet zero-filled is taken fallocated, and reported as such
  // (WalMetrics::SegmentPrepared). kFallocated only reserves the space
  // (fallocate), as etcd does: Create is quick, which suits tests that make
  // many WALs.
  SegmentBlocks segment_blocks = SegmentBlocks::kWritten;
  // Writes of at least direct_io_min_bytes to the tail segment (one Sync's
  // worth) go around the page cache (O_DIRECT, see WritableFile::UseDirectIo)
  // where the file system takes it; smaller ones, or all when off, are
  // buffered. Either way only Sync() makes them durable. Large writes gain
  // most: the copy into fresh page-cache pages is the largest cost of a
  // buffered 1-MiB write after the device's own. Small ones stay in the page
  // cache, where a Raft leader's reads of what it just appended find them.
  bool direct_io = true;
  uint64_t direct_io_min_bytes = kDefaultDirectIoMinBytes;
  // Prepare the next segment on a background thread. Tests that enumerate
  // crash points turn it off so every run makes the same calls in order: a
  // cut then prepares the segment inline (zero-filled too with kWritten).
  bool prepare_in_background = true;
  // Write mode: keep where each entry made durable lies on disk, for an
  // EntryIndex (TakeDurableLocations).
  bool track_entry_locations = false;
  // ReadAll returns the entries. A writer that serves them otherwise (walrusd:
  // ranged reads, streamed ReadAll) turns it off, so recovery holds the
  // entries' terms and positions, never the log.
  bool return_entries = true;
};

struct ReadAllResult {
  std::string metadata;
  raftpb::HardState state;
  std::vector<raftpb::Entry> entries;  // after the opening snapshot, in order (see return_entries)
  // The index before entries[0] (or before the next entry, if there is
  // none): the opening snapshot's index, or after OpenForRecovery the base
  // of the log the segments hold (core/log_reader.h).
  uint64_t base_index = 0;
  // The last snapshot marker in the segments read (index 0 if none).
  walpb::Snapshot last_snapshot;
  // Read mode only: the log ended in a torn tail (described here); the
  // records after it were never synced and are not returned.
  std::string torn_tail;
};

class Wal {
 public:
  // Creates a WAL in `dir`, which must not exist or be empty: builds it in
  // "<dir>.tmp" (segment 0, metadata, an empty snapshot marker; synced), renames
  // it into place and fsyncs the parent, so a crash leaves either no WAL or a
  // complete one. Returns a Wal in write mode. ALREADY_EXISTS if `dir` holds
  // anything.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Wal>> Create(const std::string& dir,
                                                                   absl::string_view metadata,
                                                                   const WalOptions& options);

  // Opens for writing at `snapshot` (which must have been saved, or ReadAll
  // fails). Locks every segment from the one holding the snapshot on;
  // FAILED_PRECONDITION if another process holds one. NOT_FOUND if there are
  // no segments or the sequence is broken. ReadAll() must be called next.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Wal>> Open(const std::string& dir,
                                                                 const walpb::Snapshot& snapshot,
                                                                 const WalOptions& options);
  // Opens for reading only; see the class comment. With `until`, reading
  // stops there (a writer's durable position): later segments and bytes are
  // ignored, so a reader never sees data the writer has not synced.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Wal>> OpenForRead(
      const std::string& dir, const walpb::Snapshot& snapshot, const WalOptions& options,
      std::optional<LogPosition> until = std::nullopt);
  // Opens for writing from the oldest segment present, without a snapshot:
  // ReadAll returns the log the segments hold, resolved from the oldest
  // segment's name on (core/log_reader.h), and checks no snapshot marker.
  // This is how a daemon recovers a log whose older segments may have been
  // purged; Verify reads the same way.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Wal>> OpenForRecovery(
      const std::string& dir, const WalOptions& options);

  // Closes as Close() does, ignoring errors.
  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  // Reads metadata, the last hard state and the entries after the snapshot
  // (or, after OpenForRecovery, the whole log the segments hold) by the rules
  // of core/log_reader.h. Errors:
  //  DATA_LOSS          corruption (file, offset, index range in the message),
  //                     metadata conflict, or, in write mode, a torn tail
  //                     (IsTornTail(): Repair() can fix it)
  //  FAILED_PRECONDITION the snapshot's term differs from the one on disk
  //  NOT_FOUND          the snapshot was not found
  // REQUIRES: called once, right after Open/OpenForRead. In write mode the Wal
  // is ready for appends afterwards, continuing the CRC chain.
  [[nodiscard]] absl::StatusOr<ReadAllResult> ReadAll();

  // Encodes a hard state (skipped if empty) and entries. Sets `*must_sync` if
  // Raft requires them durable before they are acknowledged. Nothing is
  // written to the file yet. INVALID_ARGUMENT (and nothing encoded) if an
  // entry is too large for the format.
  // REQUIRES: write mode, ready for appends.
  [[nodiscard]] absl::Status Append(const raftpb::HardState& state,
                                    absl::Span<const raftpb::Entry> entries, bool* must_sync);
  // The same for entries held by a protobuf repeated field, from `from` on.
  [[nodiscard]] absl::Status Append(
      const raftpb::HardState& state,
      const google::protobuf::RepeatedPtrField<raftpb::Entry>& entries, int from, bool* must_sync);
  // Writes everything encoded so far in one write, fdatasyncs, and cuts a new
  // segment if the tail reached the segment size. On OK every record appended
  // before the call is durable.
  [[nodiscard]] absl::Status Sync();
  // Append() and, if Raft requires it or the segment is full, Sync().
  [[nodiscard]] absl::Status Save(const raftpb::HardState& state,
                                  absl::Span<const raftpb::Entry> entries);
  // Encodes a snapshot marker (not yet written; see Append). A marker that
  // replaces the log (an entry of another term at its index, or none) below
  // the tail segment's name index must be the last record of its segment:
  // a reader starting at that segment could not tell it from a compaction.
  // Until the next Sync(), which cuts right after it, Append() and
  // AppendSnapshot() fail FAILED_PRECONDITION. If that cut finds no room for
  // a new segment, every later Sync() tries it again and, while it cannot,
  // refuses what was appended since with RESOURCE_EXHAUSTED (rolled back).
  [[nodiscard]] absl::Status AppendSnapshot(const walpb::Snapshot& snapshot);
  // True between such a marker and the next Sync(): the caller syncs now.
  bool marker_ends_segment() const { return marker_ends_segment_; }
  // True while the cut after such a marker is owed (no room for it yet).
  bool cut_owed() const { return cut_owed_; }
  // AppendSnapshot() and Sync().
  [[nodiscard]] absl::Status SaveSnapshot(const walpb::Snapshot& snapshot);

  // Releases the locks of segments wholly before the one holding `index`,
  // keeping that one and the one before it (etcd's ReleaseLockTo), so a
  // purge may delete their files.
  [[nodiscard]] absl::Status ReleaseTo(uint64_t index);

  // The checked path, for requests from remote Raft nodes. Append() and
  // AppendSnapshot() above are etcd's WAL API: they record what they are
  // given. These validate against the log model first (the rules are in
  // core/log_model.h) and encode only what is new; nothing is encoded when a
  // request is refused. OK means the request is accepted once the next Sync()
  // succeeds if `awaits_sync` is set, and right away otherwise.
  struct Accepted {
    bool awaits_sync = false;
    uint64_t last_index = 0;  // the log's last index with the request applied
  };
  [[nodiscard]] absl::StatusOr<Accepted> AppendChecked(const LogRequest& request);
  [[nodiscard]] absl::StatusOr<Accepted> AppendSnapshotChecked(uint64_t index, uint64_t term);
  // ReleaseTo(min(index, the newest durable snapshot marker)): a purge never
  // deletes entries no snapshot covers. Returns the index released to.
  [[nodiscard]] absl::StatusOr<uint64_t> ReleaseToSnapshot(uint64_t index);

  // Write mode: writes and syncs what is pending, closes the tail, removes a
  // prepared segment, releases all locks. Idempotent.
  [[nodiscard]] absl::Status Close();

  // The sticky error, OK while healthy.
  const absl::Status& failure() const { return failure_; }
  bool write_mode() const { return write_mode_; }
  const std::string& dir() const { return dir_; }
  // Index of the last entry appended (or of the last snapshot saved, if later).
  uint64_t last_index() const { return model_.encoded().last_index(); }
  // The last hard state appended.
  const raftpb::HardState& hard_state() const { return model_.encoded().hard_state; }
  // What the log holds: synced, and with what is encoded but not yet synced.
  const LogModel& model() const { return model_; }
  const std::string& metadata() const { return metadata_; }
  // End of the data made durable by the last successful sync.
  LogPosition durable_position() const { return durable_; }
  // Segments this Wal holds locked, oldest first (write mode).
  std::vector<SegmentId> locked_segments() const;
  // With track_entry_locations: the changes to where the durable log's
  // entries lie since the last call, in order, for EntryIndex::Apply. After
  // ReadAll they start with a restart and every entry recovered;
  // then what each successful sync made durable (nothing of a batch that
  // failed).
  std::vector<EntryIndexEvent> TakeDurableLocations();
  uint64_t segment_size() const { return options_.segment_size; }

 private:
  struct LockedSegment {
    SegmentId id;
    std::unique_ptr<FileLock> lock;
  };

  Wal(std::string dir, const WalOptions& options, bool write_mode);

  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Wal>> OpenAt(
      const std::string& dir, const walpb::Snapshot* snapshot, const WalOptions& options,
      bool write_mode, std::optional<LogPosition> until);
  // Append() over any indexable run of entries.
  template <typename Entries>
  [[nodiscard]] absl::Status AppendRun(const raftpb::HardState& state, const Entries& entries,
                                       size_t from, size_t to, bool* must_sync);
  [[nodiscard]] absl::Status CheckWritable() const;
  // Writes pending bytes and fdatasyncs the tail; on failure sets failure_
  // (except ENOSPC on the write, which rolls back).
  [[nodiscard]] absl::Status WriteAndSync();
  // OK while the tail still has a name in the directory.
  [[nodiscard]] absl::Status CheckTailLinked() const;
  [[nodiscard]] absl::Status Cut();
  // FAILED_PRECONDITION while a marker that ends its segment awaits Sync().
  [[nodiscard]] absl::Status CheckNoMarkerPending() const;
  absl::Status Fail(absl::Status status);
  // Forgets everything encoded since the last sync (a write found no space).
  void RollbackPending();
  // Makes `file` the tail segment, its appends direct if options_.direct_io
  // and its file system takes it.
  void AdoptTail(std::unique_ptr<WritableFile> file);
  // Sets direct_io_ and the metric from the tail file.
  void ReportDirectIo();
  std::string SegmentPath(SegmentId id) const { return JoinPath(dir_, SegmentName(id)); }

  const std::string dir_;
  const WalOptions options_;
  FileSystem* const fs_;
  const bool write_mode_;
  bool ready_ = false;  // write mode: ReadAll done (or created)
  bool closed_ = false;
  bool marker_ends_segment_ = false;  // see AppendSnapshot()
  bool cut_owed_ = false;

  // Read state, between Open and ReadAll.
  std::optional<walpb::Snapshot> start_;  // none for OpenForRecovery
  std::optional<LogSegments> to_read_;

  // Write state.
  std::string metadata_;
  // The log's state; rolled back with the encoder if a write runs out of space.
  LogModel model_;
  Encoder encoder_{0};
  Encoder::Mark synced_mark_{};
  std::vector<LockedSegment> locks_;  // oldest first; back() is the tail
  std::unique_ptr<WritableFile> tail_;
  bool direct_io_ = false;  // the tail's appends go around the page cache
  LogPosition durable_;
  std::unique_ptr<SegmentPreparer> preparer_;
  absl::Status failure_;
  // With track_entry_locations: encoded since the last sync, and made
  // durable but not yet taken.
  std::vector<EntryIndexEvent> encoded_locations_;
  std::vector<EntryIndexEvent> durable_locations_;
};

// True if `state` carries nothing (etcd's IsEmptyHardState).
inline bool IsEmptyHardState(const raftpb::HardState& s) {
  return s.term() == 0 && s.vote() == 0 && s.commit() == 0;
}

}  // namespace walrus

#endif  // WALRUS_CORE_WAL_H_
