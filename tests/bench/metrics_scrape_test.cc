// Reading walrusd's fsync counter out of a Prometheus exposition.
#include "client/bench/metrics_scrape.h"

#include <gtest/gtest.h>

namespace walrus {
namespace {

constexpr char kName[] = "walrus_wal_fsync_duration_seconds_count";

TEST(SumMetricSamples, UnlabelledSample_IsItsValue) {
  absl::StatusOr<double> v = SumMetricSamples(
      "# HELP walrus_wal_fsync_duration_seconds fsync latency\n"
      "# TYPE walrus_wal_fsync_duration_seconds histogram\n"
      "walrus_wal_fsync_duration_seconds_bucket{le=\"0.001\"} 5\n"
      "walrus_wal_fsync_duration_seconds_sum 0.25\n"
      "walrus_wal_fsync_duration_seconds_count 1234\n",
      kName);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 1234);
}

TEST(SumMetricSamples, LabelledSamples_AreSummed) {
  absl::StatusOr<double> v = SumMetricSamples(
      "walrus_wal_fsync_duration_seconds_count{dir=\"a\"} 10\n"
      "walrus_wal_fsync_duration_seconds_count{dir=\"b\"} 5 1700000000000\n",
      kName);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 15);
}

TEST(SumMetricSamples, BraceAndSpaceInsideAQuotedLabel_DoNotEndTheLabels) {
  absl::StatusOr<double> v =
      SumMetricSamples("walrus_wal_fsync_duration_seconds_count{path=\"x} \\\"y\"} 3\n", kName);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 3);
}

TEST(SumMetricSamples, MetricWhoseNameMerelyStartsTheSame_IsNotCounted) {
  absl::StatusOr<double> v = SumMetricSamples(
      "walrus_wal_fsync_duration_seconds_count_total 99\n"
      "walrus_wal_fsync_duration_seconds_count 1e3\n",
      kName);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(*v, 1000);
}

TEST(SumMetricSamples, NoSample_IsNotFound) {
  EXPECT_EQ(SumMetricSamples("# TYPE walrus_wal_fsync_duration_seconds_count counter\n", kName)
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST(HttpResponseBody, Ok_ReturnsTheBody) {
  absl::StatusOr<std::string> body =
      HttpResponseBody("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nm 1\n");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "m 1\n");
}

TEST(HttpResponseBody, ChunkedEncoding_IsUndone) {
  absl::StatusOr<std::string> body = HttpResponseBody(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nm 1\n\r\n3;ext=1\r\nn "
      "2\r\n0\r\n\r\n");
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "m 1\nn 2");
}

TEST(HttpResponseBody, Not200_IsUnavailable) {
  EXPECT_EQ(HttpResponseBody("HTTP/1.1 404 Not Found\r\n\r\n").status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(HttpResponseBody("garbage").status().code(), absl::StatusCode::kUnavailable);
}

TEST(FetchMetrics, AddressWithoutPort_IsInvalid) {
  EXPECT_EQ(FetchMetrics("localhost", std::chrono::milliseconds(100)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace walrus
