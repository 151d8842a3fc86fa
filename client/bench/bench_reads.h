// walrus-bench --mode entries: ranged reads (Entries) of random ranges of an
// existing log, as a Raft node's Storage makes them; reads/s, entries/s and
// latency percentiles (send to answer).
#ifndef WALRUS_CLIENT_BENCH_BENCH_READS_H_
#define WALRUS_CLIENT_BENCH_BENCH_READS_H_

#include <cstdint>
#include <string>

#include "client/client.h"

namespace walrus {

struct ReadBenchConfig {
  std::string server;
  ClientOptions options;
  uint64_t clients = 1;
  uint64_t range = 100;  // entries per read
  double duration_seconds = 10;
  uint64_t seed = 1;
  bool json = false;
};

// Runs the reads and prints the report; the process exit code.
int RunReadBench(const ReadBenchConfig& config);

}  // namespace walrus

#endif  // WALRUS_CLIENT_BENCH_BENCH_READS_H_
