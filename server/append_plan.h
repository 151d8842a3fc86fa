// Validates an append against the log and decides what to write, applying
// Raft's append rule so a retried append is harmless.
//
// Rules (nothing is written when one fails):
//  INVALID_ARGUMENT    an entry index of 0; indexes not contiguous; terms
//                      decreasing; entry_crc32c present but not one per entry
//                      or not matching the data; the first new entry leaves a
//                      gap after the last entry or snapshot index; the commit
//                      index beyond what the log will hold.
//  FAILED_PRECONDITION a new entry at or below the saved commit index (it
//                      would overwrite a committed entry); a different vote in
//                      the same term; an entry below the oldest index held.
//
// Retries: entries already in the log with the same index and term are
// skipped (Raft's Log Matching property makes them identical), so re-sending
// an append whose answer was lost neither truncates later entries nor trips
// the commit rule. A hard state older than the saved one (lower term, or the
// same term with a lower commit) is stale and not written.
#ifndef WALRUS_SERVER_APPEND_PLAN_H_
#define WALRUS_SERVER_APPEND_PLAN_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/statusor.h"
#include "raft.pb.h"
#include "server/term_log.h"
#include "walrus.pb.h"

namespace walrus {

// What the log holds, as far as validation is concerned.
struct LogTip {
  TermLog terms;
  uint64_t snapshot_index = 0;  // the last snapshot marker saved
  uint64_t snapshot_term = 0;
  raftpb::HardState state;
  uint64_t last_index() const { return terms.last_index(); }
};

struct AppendPlan {
  size_t skip = 0;           // leading entries already present
  bool write_state = false;  // the hard state is new and must be written
};

[[nodiscard]] absl::StatusOr<AppendPlan> PlanAppend(const LogTip& tip,
                                                    const v1::AppendRequest& request);

// Whether a snapshot marker at (index, term) should be written: OK(true) to
// write it, OK(false) if it is already there or older than the last one (a
// retry; nothing to do), FAILED_PRECONDITION if it contradicts the log (another
// term at the same index than the last marker or the entry there).
[[nodiscard]] absl::StatusOr<bool> PlanSnapshot(const LogTip& tip, uint64_t index, uint64_t term);

// Applies a plan to `tip` once its records were encoded.
void ApplyPlan(const AppendPlan& plan, const v1::AppendRequest& request, LogTip* tip);

}  // namespace walrus

#endif  // WALRUS_SERVER_APPEND_PLAN_H_
