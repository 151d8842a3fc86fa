#include "client/bench/latency_stats.h"

#include <algorithm>
#include <cmath>

namespace walrus {

int64_t PercentileNearestRank(absl::Span<const int64_t> sorted, double p) {
  if (sorted.empty()) return 0;
  const double n = static_cast<double>(sorted.size());
  // The epsilon keeps 99.9% of 1000 at rank 999: p/100*n is 999.0000000001
  // in binary floating point.
  double rank = std::ceil(p / 100.0 * n - 1e-9);
  rank = std::clamp(rank, 1.0, n);
  return sorted[static_cast<size_t>(rank) - 1];
}

LatencySummary SummarizeLatencies(std::vector<int64_t>* samples_ns) {
  LatencySummary summary;
  if (samples_ns->empty()) return summary;
  std::sort(samples_ns->begin(), samples_ns->end());
  const absl::Span<const int64_t> sorted(*samples_ns);
  auto ms = [](int64_t ns) { return static_cast<double>(ns) / 1e6; };
  double total = 0;
  for (int64_t ns : sorted) total += static_cast<double>(ns);
  summary.count = sorted.size();
  summary.mean_ms = total / static_cast<double>(sorted.size()) / 1e6;
  summary.p50_ms = ms(PercentileNearestRank(sorted, 50));
  summary.p90_ms = ms(PercentileNearestRank(sorted, 90));
  summary.p99_ms = ms(PercentileNearestRank(sorted, 99));
  summary.p999_ms = ms(PercentileNearestRank(sorted, 99.9));
  summary.max_ms = ms(sorted.back());
  return summary;
}

}  // namespace walrus
