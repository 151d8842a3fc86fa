// libFuzzer target: request validation (core/log_model.h) on arbitrary
// AppendRequests against a log built from the input.
//
// Input layout: 8 bytes describe the log (number of entries held, their term
// steps, commit, snapshot, vote); the rest is a serialized AppendRequest.
//
// Invariants, for every request PlanAppend accepts: the CRC-32C of every
// entry matches (checked with an independent CRC); indexes are contiguous,
// terms do not decrease and entry types are Raft's; the first entry written
// leaves no gap, lies after the newest snapshot marker and replaces no entry
// at or below the commit; a hard state written never lowers the commit nor
// the term; once recorded, the log ends at the request's last entry. And no
// crash or sanitizer report for any input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/log_model.h"
#include "tests/fuzz/fuzz_util.h"
#include "walrus.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  const uint64_t first = 1 + data[0] % 4 * 50;  // the log may start after a purge
  const uint64_t held = data[1] % 64;
  std::vector<walrus::raftpb::Entry> entries_held;
  uint64_t term = 1 + data[2] % 3;
  for (uint64_t i = 0; i < held; ++i) {
    if ((data[3] >> (i % 8)) & 1) ++term;
    walrus::raftpb::Entry& e = entries_held.emplace_back();
    e.set_index(first + i);
    e.set_term(term);
  }
  const uint64_t last = held == 0 ? first - 1 : first + held - 1;
  const uint64_t snapshot_index = data[4] % 2 == 0 ? first - 1 : first - 1 + data[4] % (held + 1);
  const uint64_t snapshot_term =
      snapshot_index >= first ? entries_held[snapshot_index - first].term() : 1;
  walrus::raftpb::HardState state;
  if (last > 0) state.set_commit(std::min<uint64_t>(data[5] % (last + 1), last));
  state.set_term(term);
  state.set_vote(data[6] % 3);
  walrus::LogModel model;
  const uint64_t base = entries_held.empty() ? snapshot_index : entries_held.front().index() - 1;
  const walrus::SnapshotMarker marker{snapshot_index, snapshot_term, 0};
  model.Reset(entries_held, base, {&marker, 1}, state);

  walrus::v1::AppendRequest request;
  if (!request.ParseFromArray(data + 8, static_cast<int>(size - 8))) return 0;
  walrus::LogRequest view;
  view.hard_state = request.hard_state();
  view.entries = &request.entries();
  view.entry_crc32c =
      absl::MakeConstSpan(request.entry_crc32c().data(), request.entry_crc32c_size());
  absl::StatusOr<walrus::AppendPlan> plan = model.PlanAppend(view);
  if (!plan.ok()) {
    FUZZ_CHECK(!plan.status().message().empty(), "a rejection without a reason");
    return 0;
  }
  const walrus::LogState& before = model.encoded();
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
    FUZZ_CHECK(entries[i].type() >= 0 && entries[i].type() <= 2, "unknown entry type accepted");
    if (i > 0) {
      FUZZ_CHECK(entries[i].index() == entries[i - 1].index() + 1, "non-contiguous accepted");
      FUZZ_CHECK(entries[i].term() >= entries[i - 1].term(), "decreasing terms accepted");
    }
  }
  for (size_t i = 0; i < plan->skip; ++i) {
    const walrus::raftpb::Entry& e = entries[static_cast<int>(i)];
    FUZZ_CHECK(before.terms.TermAt(e.index()) == e.term(), "skipped an entry the log lacks");
  }
  const bool writes = plan->skip < static_cast<size_t>(entries.size());
  if (writes) {
    const walrus::raftpb::Entry& e = entries[static_cast<int>(plan->skip)];
    FUZZ_CHECK(e.index() <= before.last_index() + 1, "gap accepted");
    FUZZ_CHECK(e.index() > snapshot_index, "an entry at or below the snapshot accepted");
    FUZZ_CHECK(e.index() > state.commit() || e.index() > last,
               "overwrite of a committed entry accepted");
  }
  FUZZ_CHECK(plan->awaits_sync == (writes || plan->write_state), "awaits_sync on a clean model");
  if (plan->write_state) {
    FUZZ_CHECK(request.hard_state().commit() >= state.commit(), "commit lowered");
    FUZZ_CHECK(request.hard_state().term() >= state.term(), "a stale hard state written");
  }
  for (int i = static_cast<int>(plan->skip); i < entries.size(); ++i) {
    model.RecordEntry(entries[i].index(), entries[i].term());
  }
  if (plan->write_state) model.RecordState(request.hard_state());
  const uint64_t after = model.encoded().last_index();
  if (writes) {
    FUZZ_CHECK(after == std::max(entries[entries.size() - 1].index(), snapshot_index),
               "the log does not end at the last entry written");
  } else {
    FUZZ_CHECK(after == std::max(last, snapshot_index), "a no-op changed the log");
  }
  model.Rollback();
  FUZZ_CHECK(model.encoded().last_index() == std::max(last, snapshot_index),
             "a rollback did not restore the log");
  return 0;
}
