// libFuzzer target: request validation (server/append_plan.h) on arbitrary
// AppendRequests against a log tip built from the input.
//
// Input layout: 8 bytes describe the tip (number of entries held, their term
// steps, commit, snapshot, vote); the rest is a serialized AppendRequest.
//
// Invariants, for every request PlanAppend accepts: the CRC-32C of every
// entry matches (checked with an independent CRC); indexes are contiguous
// and terms do not decrease; the first entry written leaves no gap and does
// not touch a committed index; the hard state written never commits past the
// log; after ApplyPlan the log ends at the request's last entry. And no crash
// or sanitizer report for any input.
#include <cstddef>
#include <cstdint>
#include <string>

#include "server/append_plan.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  walrus::LogTip tip;
  const uint64_t first = 1 + data[0] % 4 * 50;  // the log may start after a purge
  const uint64_t held = data[1] % 64;
  tip.terms = walrus::TermLog(first);
  uint64_t term = 1 + data[2] % 3;
  for (uint64_t i = 0; i < held; ++i) {
    if ((data[3] >> (i % 8)) & 1) ++term;
    tip.terms.Put(first + i, term);
  }
  tip.terms.Checkpoint();
  const uint64_t last = tip.last_index();
  tip.snapshot_index = data[4] % 2 == 0 ? 0 : first - 1 + data[4] % (held + 1);
  tip.snapshot_term = tip.terms.TermAt(tip.snapshot_index).value_or(1);
  if (last > 0) tip.state.set_commit(std::min<uint64_t>(data[5] % (last + 1), last));
  tip.state.set_term(term);
  tip.state.set_vote(data[6] % 3);

  walrus::v1::AppendRequest request;
  if (!request.ParseFromArray(data + 8, static_cast<int>(size - 8))) return 0;
  absl::StatusOr<walrus::AppendPlan> plan = walrus::PlanAppend(tip, request);
  if (!plan.ok()) {
    FUZZ_CHECK(!plan.status().message().empty(), "a rejection without a reason");
    return 0;
  }
  const auto& entries = request.entries();
  FUZZ_CHECK(plan->skip <= static_cast<size_t>(entries.size()), "skip past the request");
  if (request.entry_crc32c_size() != 0) {
    FUZZ_CHECK(request.entry_crc32c_size() == entries.size(), "CRC count mismatch accepted");
    for (int i = 0; i < entries.size(); ++i) {
      FUZZ_CHECK(walrus::fuzz::SlowCrc32c(0, entries[i].data()) == request.entry_crc32c(i),
                 "entry %d accepted with a wrong CRC-32C", i);
    }
  }
  for (int i = 0; i < entries.size(); ++i) {
    FUZZ_CHECK(entries[i].index() != 0, "index 0 accepted");
    if (i > 0) {
      FUZZ_CHECK(entries[i].index() == entries[i - 1].index() + 1, "non-contiguous accepted");
      FUZZ_CHECK(entries[i].term() >= entries[i - 1].term(), "decreasing terms accepted");
    }
  }
  for (size_t i = 0; i < plan->skip; ++i) {
    const walrus::raftpb::Entry& e = entries[static_cast<int>(i)];
    FUZZ_CHECK(tip.terms.TermAt(e.index()) == e.term(), "skipped an entry the log lacks");
  }
  const bool writes = plan->skip < static_cast<size_t>(entries.size());
  if (writes) {
    const walrus::raftpb::Entry& e = entries[static_cast<int>(plan->skip)];
    FUZZ_CHECK(e.index() <= std::max(last, tip.snapshot_index) + 1, "gap accepted");
    FUZZ_CHECK(e.index() > tip.state.commit(), "overwrite of a committed entry accepted");
  }
  walrus::LogTip after = tip;
  walrus::ApplyPlan(*plan, request, &after);
  if (writes) {
    FUZZ_CHECK(after.last_index() == entries[entries.size() - 1].index(),
               "the log does not end at the last entry written");
  } else {
    FUZZ_CHECK(after.last_index() == last, "a no-op changed the log");
  }
  if (plan->write_state) {
    FUZZ_CHECK(after.state.commit() <= std::max(after.last_index(), tip.snapshot_index),
               "commit index past the log accepted");
    FUZZ_CHECK(after.state.term() >= tip.state.term(), "a stale hard state written");
  }
  return 0;
}
