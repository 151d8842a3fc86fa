// walrus-bench's percentile math: nearest rank, always an observed sample.
#include "client/bench/latency_stats.h"

#include <gtest/gtest.h>

#include <vector>

namespace walrus {
namespace {

std::vector<int64_t> OneTo(int64_t n) {
  std::vector<int64_t> v;
  for (int64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

TEST(Percentile, NoSamples_IsZero) {
  EXPECT_EQ(PercentileNearestRank({}, 50), 0);
  std::vector<int64_t> none;
  LatencySummary s = SummarizeLatencies(&none);
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.p999_ms, 0);
}

TEST(Percentile, OneSample_IsEveryPercentile) {
  std::vector<int64_t> one = {7};
  for (double p : {1.0, 50.0, 99.9, 100.0}) EXPECT_EQ(PercentileNearestRank(one, p), 7) << p;
}

TEST(Percentile, OneToHundred_RankIsThePercent) {
  std::vector<int64_t> v = OneTo(100);
  EXPECT_EQ(PercentileNearestRank(v, 50), 50);
  EXPECT_EQ(PercentileNearestRank(v, 90), 90);
  EXPECT_EQ(PercentileNearestRank(v, 99), 99);
  EXPECT_EQ(PercentileNearestRank(v, 100), 100);
  EXPECT_EQ(PercentileNearestRank(v, 0.5), 1);  // rank rounds up, never 0
}

TEST(Percentile, P999OfAThousand_IsThe999thNotTheMaximum) {
  // 99.9 / 100 * 1000 is 999.0000000000001 in doubles; a naive ceil says 1000.
  std::vector<int64_t> v = OneTo(1000);
  EXPECT_EQ(PercentileNearestRank(v, 99.9), 999);
  EXPECT_EQ(PercentileNearestRank(v, 99), 990);
}

TEST(Percentile, P999OfFewerThanAThousand_IsTheMaximum) {
  std::vector<int64_t> v = OneTo(999);
  EXPECT_EQ(PercentileNearestRank(v, 99.9), 999);
  v = OneTo(10);
  EXPECT_EQ(PercentileNearestRank(v, 99.9), 10);
  EXPECT_EQ(PercentileNearestRank(v, 50), 5);
  EXPECT_EQ(PercentileNearestRank(v, 51), 6);
}

TEST(Percentile, Summary_SortsAndConvertsNanosecondsToMilliseconds) {
  std::vector<int64_t> ns = {4'000'000, 1'000'000, 3'000'000, 2'000'000};
  LatencySummary s = SummarizeLatencies(&ns);
  EXPECT_EQ(ns, (std::vector<int64_t>{1'000'000, 2'000'000, 3'000'000, 4'000'000}));
  EXPECT_EQ(s.count, 4u);
  EXPECT_DOUBLE_EQ(s.mean_ms, 2.5);
  EXPECT_DOUBLE_EQ(s.p50_ms, 2.0);
  EXPECT_DOUBLE_EQ(s.p90_ms, 4.0);
  EXPECT_DOUBLE_EQ(s.p99_ms, 4.0);
  EXPECT_DOUBLE_EQ(s.p999_ms, 4.0);
  EXPECT_DOUBLE_EQ(s.max_ms, 4.0);
}

}  // namespace
}  // namespace walrus
