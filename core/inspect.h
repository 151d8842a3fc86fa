// Inspect: what a WAL directory holds, read by a tool that is not its writer
// (`walrusctl status DIR`). Verify (core/verify.h) answers "is the log
// intact"; Inspect answers "what is in it, and where": per segment its size,
// lock and entries, the hard state, every snapshot marker, and the damage, if
// any. Both read through the log reader (core/log_reader.h), so they agree
// with each other and with recovery on what the log holds.
#ifndef WALRUS_CORE_INSPECT_H_
#define WALRUS_CORE_INSPECT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/fs.h"
#include "core/log_model.h"
#include "core/log_reader.h"
#include "raft.pb.h"

namespace walrus {

struct SegmentInspection {
  std::string name;
  uint64_t seq = 0;
  uint64_t first_index = 0;  // from the name: the first index it may hold
  uint64_t size_bytes = 0;   // 0 if its size could not be read
  // Another holder has its lock: a writer that has not released it, or a
  // backup reading it.
  bool locked = false;
  // The entry records that verified in it, in file order: how many, and the
  // index of the first and of the last (0 when there are none). Records a
  // later entry overwrote count too: this is what the file holds, not the
  // resolved log.
  uint64_t entries = 0;
  uint64_t first_entry = 0;
  uint64_t last_entry = 0;
};

struct DirInspection {
  std::string dir;
  std::vector<SegmentInspection> segments;  // every segment of `dir`, oldest first
  uint64_t total_bytes = 0;                 // of every file in `dir`, segments or not
  // The log as recovery resolves it, up to the damage: what walrusd would
  // serve from this directory.
  uint64_t first_index = 0;               // the oldest segment's base + 1
  uint64_t last_index = 0;                // of the last entry; first_index - 1 if there is none
  raftpb::HardState hard_state;           // the last one saved
  std::vector<SnapshotMarker> snapshots;  // every marker read, in log order
  // The valid end: the newest segment (seq) and the end of
  // the last record that verified (offset). When damage stopped the read
  // before the newest segment, the offset is in the segment `damage` names.
  LogPosition end;
  LogDamage damage;  // kind kNone: the log reads cleanly

  // The last marker read ({0, 0} if there is none).
  SnapshotMarker last_snapshot() const {
    return snapshots.empty() ? SnapshotMarker() : snapshots.back();
  }
};

// Reads every segment of `dir` once, as recovery does, plus each segment's
// size and lock. Takes each lock only for an instant to probe it and changes
// nothing, so a live walrusd may own `dir`. Damage does not fail the call: it
// is in `damage`, and what precedes it is reported. NOT_FOUND if `dir` holds
// no segments; other I/O errors as they come.
[[nodiscard]] absl::StatusOr<DirInspection> InspectDir(FileSystem* fs, const std::string& dir);

}  // namespace walrus

#endif  // WALRUS_CORE_INSPECT_H_
