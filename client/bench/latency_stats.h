// Latency percentiles for walrus-bench.
//
// Percentiles are nearest-rank: the p-th percentile of n sorted samples is
// the sample at rank ceil(p/100 * n) (1-based), i.e. the smallest sample that
// at least p% of the samples do not exceed. It is always an observed value,
// never an interpolation, so p99.9 of 1000 samples is the 999th, and of
// fewer than 1000 samples it is the maximum.
#ifndef WALRUS_CLIENT_BENCH_LATENCY_STATS_H_
#define WALRUS_CLIENT_BENCH_LATENCY_STATS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace walrus {

// REQUIRES: `sorted` ascending; 0 < p <= 100. 0 for no samples.
int64_t PercentileNearestRank(absl::Span<const int64_t> sorted, double p);

struct LatencySummary {
  size_t count = 0;
  double mean_ms = 0;
  double p50_ms = 0;
  double p90_ms = 0;
  double p99_ms = 0;
  double p999_ms = 0;
  double max_ms = 0;
};

// Sorts `samples_ns` (nanoseconds) in place and summarises them in ms.
LatencySummary SummarizeLatencies(std::vector<int64_t>* samples_ns);

}  // namespace walrus

#endif  // WALRUS_CLIENT_BENCH_LATENCY_STATS_H_
