// wal_workload DIR --seed S --entries N [--segment-size BYTES]
// Writes a seeded Raft-like workload into a new WAL with walrus's core (used by
// the etcd interoperability test: etcd's reader must read it identically).
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/numbers.h"
#include "core/wal.h"
#include "tests/support/workload.h"

int main(int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') {
    std::fprintf(stderr, "usage: wal_workload DIR --seed S --entries N [--segment-size BYTES]\n");
    return 1;
  }
  std::string dir = argv[1];
  uint64_t seed = 1, entries = 1000, segment_size = walrus::kDefaultSegmentSize;
  for (int i = 2; i + 1 < argc; i += 2) {
    uint64_t* target = std::strcmp(argv[i], "--seed") == 0           ? &seed
                       : std::strcmp(argv[i], "--entries") == 0      ? &entries
                       : std::strcmp(argv[i], "--segment-size") == 0 ? &segment_size
                                                                     : nullptr;
    if (target == nullptr || !absl::SimpleAtoi(argv[i + 1], target)) {
      std::fprintf(stderr, "wal_workload: bad argument %s\n", argv[i]);
      return 1;
    }
  }
  walrus::WalOptions options;
  options.segment_size = segment_size;
  walrus::testing::Workload workload(seed);
  auto wal = walrus::Wal::Create(dir, workload.Metadata(), options);
  if (!wal.ok()) {
    std::fprintf(stderr, "wal_workload: %s\n", wal.status().ToString().c_str());
    return 1;
  }
  uint64_t written = 0;
  while (written < entries) {
    walrus::testing::WorkloadStep step = workload.Next();
    absl::Status s = step.kind == walrus::testing::WorkloadStep::kSnapshot
                         ? (*wal)->SaveSnapshot(step.snapshot)
                         : (*wal)->Save(step.state, step.entries);
    if (!s.ok()) {
      std::fprintf(stderr, "wal_workload: %s\n", s.ToString().c_str());
      return 1;
    }
    written += step.entries.size();
  }
  if (absl::Status s = (*wal)->Close(); !s.ok()) {
    std::fprintf(stderr, "wal_workload: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}
