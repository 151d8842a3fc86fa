#include "client/bench/bench_reads.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/bench/latency_stats.h"
#include "client/bench/run_clients.h"
#include "client/cli/cli.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

struct ReaderResult {
  std::deque<int64_t> latencies_ns;  // growing never copies (see walrus_bench.cc)
  uint64_t reads = 0;
  uint64_t entries = 0;
  uint64_t bytes = 0;
  absl::Status error;
};

}  // namespace

int RunReadBench(const ReadBenchConfig& config) {
  // The served bounds come with any ranged read: read the last entry.
  absl::StatusOr<std::unique_ptr<WalClient>> control =
      WalClient::Connect(config.server, config.options);
  absl::StatusOr<v1::StatusResponse> status =
      control.ok() ? (*control)->Status() : absl::StatusOr<v1::StatusResponse>(control.status());
  absl::StatusOr<v1::EntriesResponse> one =
      status.ok() ? (*control)->Entries(status->last_index(), status->last_index() + 1)
                  : absl::StatusOr<v1::EntriesResponse>(status.status());
  if (!one.ok()) {
    std::fprintf(stderr, "walrus-bench: %s\n", one.status().ToString().c_str());
    return 1;
  }
  const uint64_t first = one->first_index();
  const uint64_t last = one->last_index();
  if (last < first || last - first + 1 < config.range) {
    std::fprintf(stderr, "walrus-bench: the log serves %lu..%lu: fewer than %lu entries\n",
                 static_cast<unsigned long>(first), static_cast<unsigned long>(last),
                 static_cast<unsigned long>(config.range));
    return 1;
  }
  std::vector<std::unique_ptr<WalClient>> clients;
  for (uint64_t i = 0; i < config.clients; ++i) {
    absl::StatusOr<std::unique_ptr<WalClient>> c =
        WalClient::Connect(config.server, config.options);
    absl::StatusOr<v1::EntriesResponse> warm =
        c.ok() ? (*c)->Entries(first, first + 1) : c.status();
    if (!warm.ok()) {
      std::fprintf(stderr, "walrus-bench: client %lu: %s\n", static_cast<unsigned long>(i),
                   warm.status().ToString().c_str());
      return 1;
    }
    clients.push_back(std::move(*c));
  }
  std::vector<ReaderResult> results(config.clients);
  std::atomic<bool> stop{false};
  const uint64_t span = last - first + 2 - config.range;  // choices of lo
  const double elapsed =
      RunClientsFor(config.clients, config.duration_seconds, &stop, [&](uint64_t i) {
        std::mt19937_64 rng(config.seed + i);
        ReaderResult& out = results[i];
        while (!stop.load(std::memory_order_relaxed)) {
          const uint64_t lo = first + rng() % span;
          const Clock::time_point start = Clock::now();
          absl::StatusOr<v1::EntriesResponse> got = clients[i]->Entries(lo, lo + config.range);
          if (!got.ok()) {
            out.error = absl::Status(got.status().code(),
                                     absl::StrCat("Entries(", lo, ", ", lo + config.range,
                                                  "): ", got.status().message()));
            stop = true;
            return;
          }
          out.latencies_ns.push_back(
              std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
          ++out.reads;
          out.entries += static_cast<uint64_t>(got->entries_size());
          for (const raftpb::Entry& e : got->entries()) out.bytes += e.data().size();
        }
      });
  std::vector<int64_t> latencies;
  uint64_t reads = 0, entries = 0, bytes = 0;
  absl::Status failure;
  for (ReaderResult& r : results) {
    latencies.insert(latencies.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    reads += r.reads;
    entries += r.entries;
    bytes += r.bytes;
    if (failure.ok()) failure = r.error;
  }
  LatencySummary lat = SummarizeLatencies(&latencies);
  if (config.json) {
    cli::JsonObject json;
    json.String("mode", "entries")
        .Number("clients", config.clients)
        .Number("range", config.range)
        .Number("log_first", first)
        .Number("log_last", last)
        .Double("duration_sec", elapsed, 3)
        .Number("reads", reads)
        .Double("reads_per_sec", reads / elapsed, 3)
        .Double("entries_per_sec", entries / elapsed, 3)
        .Double("mb_per_sec", static_cast<double>(bytes) / 1e6 / elapsed, 3)
        .Double("p50_ms", lat.p50_ms, 3)
        .Double("p90_ms", lat.p90_ms, 3)
        .Double("p99_ms", lat.p99_ms, 3)
        .Double("p999_ms", lat.p999_ms, 3)
        .Double("max_ms", lat.max_ms, 3)
        .Double("mean_ms", lat.mean_ms, 3);
    if (failure.ok()) {
      json.Null("error");
    } else {
      json.String("error", failure.ToString());
    }
    std::printf("%s\n", json.Build().c_str());
  } else {
    std::printf("walrus-bench: entries, %lu client%s, random ranges of %lu in %lu..%lu, %.1f s\n",
                static_cast<unsigned long>(config.clients), config.clients == 1 ? "" : "s",
                static_cast<unsigned long>(config.range), static_cast<unsigned long>(first),
                static_cast<unsigned long>(last), elapsed);
    std::printf("reads:          %lu (%.1f/s), %.1f entries/s, %.2f MB/s of entry data\n",
                static_cast<unsigned long>(reads), reads / elapsed, entries / elapsed,
                static_cast<double>(bytes) / 1e6 / elapsed);
    std::printf("latency (ms):   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", lat.p50_ms,
                lat.p90_ms, lat.p99_ms, lat.p999_ms, lat.max_ms);
  }
  if (!failure.ok()) {
    std::fprintf(stderr, "walrus-bench: %s\n", failure.ToString().c_str());
    return 2;
  }
  return 0;
}

}  // namespace walrus
