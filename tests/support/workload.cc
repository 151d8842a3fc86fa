#include "tests/support/workload.h"

#include "absl/strings/str_cat.h"

namespace walrus::testing {

std::string Workload::Metadata() {
  return absl::StrCat("node-", rng_() % 1000, "-cluster-", rng_() % 1000);
}

raftpb::Entry Workload::MakeEntry(uint64_t index) {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term_);
  uint64_t kind = rng_() % 20;
  entry.set_type(kind == 0   ? raftpb::EntryConfChange
                 : kind == 1 ? raftpb::EntryConfChangeV2
                             : raftpb::EntryNormal);
  uint64_t shape = rng_() % 10;
  if (shape == 0) return entry;  // no data at all (Go's nil)
  size_t size = shape == 1 ? 0 : rng_() % (max_entry_bytes_ + 1);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>(rng_());
  entry.set_data(std::move(data));
  return entry;
}

WorkloadStep Workload::Next() {
  WorkloadStep step;
  uint64_t dice = rng_() % 100;
  if (dice < 5 && commit_ > last_snapshot_) {
    // As Raft does: a snapshot of applied (so committed) entries, each newer
    // than the last.
    step.kind = WorkloadStep::kSnapshot;
    uint64_t index = last_snapshot_ + 1 + rng_() % (commit_ - last_snapshot_);
    step.snapshot.set_index(index);
    step.snapshot.set_term(terms_[index - 1]);
    last_snapshot_ = index;
    return step;
  }
  uint64_t first = last_index_ + 1;
  if (dice < 12 && last_index_ > commit_ + 1) {
    // A new leader overwrites part of the uncommitted tail.
    ++term_;
    first = commit_ + 1 + rng_() % (last_index_ - commit_);
  } else if (dice < 15) {
    ++term_;
  }
  size_t count = rng_() % 10 == 0 ? 0 : 1 + rng_() % 16;
  terms_.resize(first - 1);
  for (size_t i = 0; i < count; ++i) {
    step.entries.push_back(MakeEntry(first + i));
    terms_.push_back(term_);
  }
  last_index_ = count > 0 ? first + count - 1 : first - 1;
  if (last_index_ > commit_ && rng_() % 2 == 0) {
    commit_ += 1 + rng_() % (last_index_ - commit_);
  }
  step.state.set_term(term_);
  step.state.set_vote(1 + term_ % 3);
  step.state.set_commit(commit_);
  return step;
}

}  // namespace walrus::testing
