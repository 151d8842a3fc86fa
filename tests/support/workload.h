// A seeded, Raft-like workload for tests and tools: batches of entries of
// varied sizes and types, hard states, snapshot markers, log truncations.
// The same seed gives the same sequence of steps.
#ifndef WALRUS_TESTS_SUPPORT_WORKLOAD_H_
#define WALRUS_TESTS_SUPPORT_WORKLOAD_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "raft.pb.h"
#include "record.pb.h"

namespace walrus::testing {

struct WorkloadStep {
  enum Kind { kSave, kSnapshot } kind = kSave;
  raftpb::HardState state;             // kSave
  std::vector<raftpb::Entry> entries;  // kSave
  walpb::Snapshot snapshot;            // kSnapshot
};

class Workload {
 public:
  explicit Workload(uint64_t seed, size_t max_entry_bytes = 2048)
      : rng_(seed), max_entry_bytes_(max_entry_bytes) {}

  std::string Metadata();
  // The next step. Entries continue from the last index, sometimes
  // overwriting uncommitted ones with a higher term, never at or below commit.
  WorkloadStep Next();

  uint64_t last_index() const { return last_index_; }

 private:
  raftpb::Entry MakeEntry(uint64_t index);

  std::mt19937_64 rng_;
  size_t max_entry_bytes_;
  uint64_t last_index_ = 0;
  uint64_t term_ = 1;
  uint64_t commit_ = 0;
  uint64_t last_snapshot_ = 0;
  std::vector<uint64_t> terms_;  // terms_[i] is the term of entry i+1
};

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_SUPPORT_WORKLOAD_H_
