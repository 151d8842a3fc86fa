// Recovery: what walrusd does with its WAL directory at start.
//
// One read of the log: the writer's own ReadAll tells a torn tail (repaired,
// keeping a .broken copy, then read again) from corruption (refused with
// DATA_LOSS and what to do about it). Verify runs only on the read-only path,
// to say what state the log is in. The Wal returned is ready for appends, its
// log model seeded from what was read.
#ifndef WALRUS_SERVER_RECOVERY_H_
#define WALRUS_SERVER_RECOVERY_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/fs.h"
#include "core/wal.h"
#include "raft.pb.h"

namespace walrus {

// What recovery found, for the start-up log line.
struct RecoverySummary {
  bool existed = false;
  bool repaired = false;
  std::string repair_detail;
  size_t segments = 0;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  raftpb::HardState state;
  double seconds = 0;
};

// Recovers the WAL in `dir` for writing with `wal_options`. Returns null
// (and OK) if there is no WAL yet, or if `read_only` (then the summary only
// describes the log). DATA_LOSS: corruption; the daemon must not start.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Wal>> RecoverWal(const std::string& dir,
                                                              const WalOptions& wal_options,
                                                              bool read_only,
                                                              RecoverySummary* summary);

}  // namespace walrus

#endif  // WALRUS_SERVER_RECOVERY_H_
