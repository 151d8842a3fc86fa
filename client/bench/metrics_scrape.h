// Reads walrusd's Prometheus metrics for walrus-bench: one HTTP/1.0 GET of
// /metrics over a plain TCP socket (no HTTP library: the bench needs one
// counter, and the endpoint is on the same host), and a sum over the samples
// of one metric in the text exposition format.
#ifndef WALRUS_CLIENT_BENCH_METRICS_SCRAPE_H_
#define WALRUS_CLIENT_BENCH_METRICS_SCRAPE_H_

#include <chrono>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walrus {

// GET http://ADDRESS/metrics; `address` is "host:port" or "[v6]:port".
// Returns the body. UNAVAILABLE if the endpoint cannot be reached or answers
// anything but 200 within `timeout`; INVALID_ARGUMENT for a bad address.
[[nodiscard]] absl::StatusOr<std::string> FetchMetrics(const std::string& address,
                                                       std::chrono::milliseconds timeout);

// The body of an HTTP/1.x response: checks the status is 200 and undoes a
// chunked transfer encoding.
[[nodiscard]] absl::StatusOr<std::string> HttpResponseBody(absl::string_view response);

// Sums the values of every sample of `name` (whatever its labels) in a
// Prometheus text exposition. NOT_FOUND if there is none.
[[nodiscard]] absl::StatusOr<double> SumMetricSamples(absl::string_view exposition,
                                                      absl::string_view name);

}  // namespace walrus

#endif  // WALRUS_CLIENT_BENCH_METRICS_SCRAPE_H_
