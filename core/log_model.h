// LogModel: the one owner of what the log holds, as far as anyone must know
// without reading it back: the term of every entry (as runs), the last index,
// the saved hard state and the snapshot markers. core::Wal owns one and keeps
// it in step with what it encodes; walrusd's committer plans requests from
// remote Raft nodes against it (through Wal's checked methods).
//
// Two views, and the model knows which is which:
//  - synced():  what the last successful fdatasync made durable;
//  - encoded(): synced() plus what this batch has encoded since.
// Requests are planned against encoded() (a batch may append 1..5 and then
// 6..9), but an answer that rests on anything not yet synced is marked
// `awaits_sync`: it shares the fate of the batch's sync. Commit() makes the
// encoded view the synced one after a sync; Rollback() forgets the batch
// after a failed write. Nothing is acknowledged on the strength of unsynced
// state: a duplicate of a marker or an entry only encoded in this batch fails
// with the batch.
//
// Rules for an append (nothing is encoded when one fails):
//  INVALID_ARGUMENT    an entry index of 0; indexes not contiguous; terms
//                      decreasing; an entry type other than normal (0),
//                      conf change (1) or conf change v2 (2); entry_crc32c
//                      present but not one per entry or not matching the data;
//                      the first new entry leaves a gap after the last entry or
//                      snapshot index; a new entry's term below the term of
//                      the entry before it (the snapshot marker's term when
//                      the entry directly follows the newest marker); a hard
//                      state that would lower the saved commit.
//  FAILED_PRECONDITION a new entry that replaces an entry at or below the saved
//                      commit; any entry at or below the newest snapshot
//                      marker, even one the log holds with the same term
//                      (Raft sends nothing a snapshot covers: it is a stale
//                      duplicate); a different vote in the same term; an
//                      entry below the oldest index whose term is still known.
//
// Accepted on purpose, as etcd's WAL accepts them for a valid Raft Ready:
//  - a hard state whose commit is beyond the last entry: raftexample saves
//    rd.HardState and rd.Entries before rd.Snapshot of the same Ready, so the
//    commit may run ahead of the log until the marker arrives. New entries up
//    to that commit are appends, not overwrites, and stay allowed.
//  - a snapshot marker over a divergent tail (an entry of another term at
//    its index, or no entry: past the end), as a follower installing its
//    leader's snapshot saves it; also when the saved commit already covers
//    the index (raftexample saves the Ready's hard state first). Raft
//    discards the log on installing a snapshot, and so does the model: the
//    stale entries after the marker are no longer part of the log (the log
//    reader drops them too, so ReadAll from the marker returns none of
//    them), and the next entry follows the marker. Refused
//    (FAILED_PRECONDITION): such a marker while the log holds entries after
//    its index at or below the saved commit; discarding them would lose
//    committed entries.
//  Not accepted: entries that leave a gap before the snapshot that would close
//  it (a Ready carrying a snapshot and entries must save the snapshot first,
//  as etcd's server does); etcd's own WAL cannot be read back after a crash
//  between those two writes.
//
// Retries: entries already in the log with the same index and term are
// skipped (Raft's Log Matching property makes them identical), so re-sending
// an append whose answer was lost neither truncates later entries nor trips
// the commit rule. A hard state older than the saved one (a lower term; or
// the same term, a commit no higher and the same vote or none) is stale and
// not written. Any other hard state with a lower commit is refused: Raft
// never lowers a node's commit, and once lowered, committed entries could be
// overwritten.
//
// Memory: terms are stored as runs of (first index, term), so the model grows
// with the number of term changes, not entries; ReleaseTo trims the runs and
// the markers below what a durable snapshot covers.
//
// Thread-safety: none; owned by one Wal, driven by one thread.
#ifndef WALRUS_CORE_LOG_MODEL_H_
#define WALRUS_CORE_LOG_MODEL_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/term_runs.h"
#include "raft.pb.h"

namespace walrus {

struct SnapshotMarker {
  uint64_t index = 0;
  uint64_t term = 0;
  uint64_t seq = 0;  // the segment the marker was written to
};

// One view of the log.
struct LogState {
  TermRuns terms;
  raftpb::HardState hard_state;
  // Markers in retained segments, in the order written; never empty once a
  // log exists (Create writes the marker (0, 0)). back() is the newest.
  std::vector<SnapshotMarker> markers{SnapshotMarker{}};

  const SnapshotMarker& newest_marker() const { return markers.back(); }
  // The last entry's index, or the newest marker's if that is later.
  uint64_t last_index() const;
};

// A write request from a Raft node, in core terms.
struct LogRequest {
  raftpb::HardState hard_state;                                                // empty: none
  const google::protobuf::RepeatedPtrField<raftpb::Entry>* entries = nullptr;  // null: none
  absl::Span<const uint32_t> entry_crc32c;  // empty, or one per entry
};

struct AppendPlan {
  size_t skip = 0;           // leading entries already present
  bool write_state = false;  // the hard state is new and must be written
  // The answer depends on this batch's sync (see the file comment).
  bool awaits_sync = false;
};

struct SnapshotPlan {
  bool write = false;  // false: already there, or superseded by a newer one
  bool awaits_sync = false;
};

class LogModel {
 public:
  // Replaces both views with a log read back from disk: `entries` in order,
  // the markers read (in the order written; none: the marker (0, 0)), the
  // hard state. `base_index` is the index before entries[0] (or before the
  // next entry when there are none): after a purge it may lie above the last
  // marker.
  void Reset(absl::Span<const raftpb::Entry> entries, uint64_t base_index,
             absl::Span<const SnapshotMarker> markers, const raftpb::HardState& state);
  // The same with the entries' terms only (what a read that keeps no
  // entries resolves): `terms` covers (base_index, last entry].
  void Reset(TermRuns terms, uint64_t base_index, absl::Span<const SnapshotMarker> markers,
             const raftpb::HardState& state);

  // Validates an append against encoded(); see the rules above.
  [[nodiscard]] absl::StatusOr<AppendPlan> PlanAppend(const LogRequest& request) const;
  // Whether a marker at (index, term) should be written: write=false if it is
  // already there or older than the newest one (a retry: nothing to do).
  // INVALID_ARGUMENT: index 2^64-1 (no entry could follow it), or index 0
  // with a term. FAILED_PRECONDITION: another term than the newest marker at
  // the same index, or a term below the newest marker's. A marker over an
  // entry of another term replaces the log (see the file comment).
  [[nodiscard]] absl::StatusOr<SnapshotPlan> PlanSnapshot(uint64_t index, uint64_t term) const;
  // How far a release of `index` may go: no further than the newest durable
  // snapshot marker, so a purge never deletes entries no snapshot covers.
  uint64_t ReleaseLimit(uint64_t index) const;

  // Whether a marker (index, term) would replace the encoded log: it is
  // newer than the newest marker, and the log holds no entry of that term
  // there (another term, or none: past the end). Below the oldest entry whose
  // term is still known (released: a durable marker covers it) it is taken
  // for a compaction.
  bool ReplacesLog(uint64_t index, uint64_t term) const;

  // Records what was encoded (after planning, or unchecked for etcd's API).
  void RecordEntry(uint64_t index, uint64_t term);
  void RecordState(const raftpb::HardState& state);
  void RecordSnapshot(uint64_t index, uint64_t term, uint64_t seq);

  // After a successful sync: everything encoded is durable.
  void Commit();
  // After a failed write: forget everything encoded since the last Commit().
  void Rollback();
  // Segments before `first_locked_seq` were released up to `index`: forget
  // markers they hold (keeping the newest) and terms a durable marker covers.
  void Release(uint64_t index, uint64_t first_locked_seq);

  const LogState& encoded() const { return encoded_; }
  const LogState& synced() const { return synced_; }
  // Something was recorded since the last Commit() or Rollback().
  bool dirty() const { return dirty_; }

 private:
  LogState synced_;
  LogState encoded_;
  bool dirty_ = false;
};

}  // namespace walrus

#endif  // WALRUS_CORE_LOG_MODEL_H_
