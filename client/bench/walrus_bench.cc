// walrus-bench: loads a walrusd with appends and measures throughput, append
// latency (send to durable acknowledgement) and group commit (fsyncs and
// entries per fsync, from the daemon's Prometheus endpoint).
//
// It writes one Raft-like log: on an empty daemon it creates the WAL; on one
// that holds a log it continues after the last index (from Status), in the
// term of the saved hard state. Entries are K per append, B bytes each.
//
// One log, several clients. The daemon takes an append only if its first
// index is at most last_index + 1 when it is committed, and it commits
// appends in the order they arrive; appends on different connections arrive
// in no guaranteed order, whatever order they were sent in. So:
//  - One client (either mode): one connection, appends allocated and sent in
//    index order; a stream keeps them in order by construction.
//  - Unary mode, N clients: each client allocates its K indexes from a shared
//    cursor and sends at once, so N appends are in flight and can share an
//    fsync. To be valid in whatever order they arrive, an append carries its
//    own entries preceded by every entry after the highest index the daemon
//    has acknowledged to any client: it then starts at most one past an index
//    already in the log, so it never leaves a gap. The entries it repeats are
//    harmless: the daemon skips entries it holds with the same index and term
//    (all of the bench's entries are identical wherever they are built), and
//    an append that arrives first writes its predecessors' entries for them.
//    The cost is bytes on the wire (reported as "repeated"), not failures or
//    extra round trips. (Resending only the appends refused for a gap was
//    tried first: with 8 clients nearly every append overtook another and
//    was refused once, which measured the retries more than the daemon.)
//  - Stream mode, N clients: N streams overtaking each other would be refused
//    nearly every time, so the clients take turns (a FIFO ticket lock): a
//    client holds the log for a burst of W appends on its stream and passes
//    the turn on only when the burst is acknowledged. Within a burst W appends
//    are in flight; between bursts the pipeline drains. It measures several
//    connections sharing a log, not more concurrency than one stream has.
//
// Exit codes: 0 done, 1 usage or setup error, 2 an append failed during the
// run (the message says which, and what the daemon answered).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/bench/bench_log.h"
#include "client/bench/bench_reads.h"
#include "client/bench/latency_stats.h"
#include "client/bench/metrics_scrape.h"
#include "client/bench/run_clients.h"
#include "client/cli/cli.h"
#include "client/client.h"
#include "client/local_appender.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

constexpr char kUsage[] = R"(usage: walrus-bench --server ADDR [FLAGS]

Appends to a walrusd for a while and reports appends/s, entries/s, MB/s of
entry data (1 MB = 10^6 bytes), append latency percentiles (send to durable
acknowledgement) and, from the daemon's /metrics, fsyncs/s and entries per
fsync. Creates the WAL on an empty daemon, continues the log of one that has
one. ADDR is host:port or unix:PATH (also from WALRUS_SERVER).

  --mode unary|stream      Append RPCs, or pipelined AppendStream (stream)
  --local-socket PATH      append through walrusd's local socket at PATH (its
                           --local-socket: frames on a Unix socket) instead of
                           gRPC; --server still creates and inspects the log
  --mode entries           instead of appending, read random ranges of the
                           existing log (Entries) and report reads/s and
                           latency; with --range N entries per read (100),
                           --clients, --duration, --json
  --clients N              connections, one thread each (1)
  --inflight W             stream mode: appends in flight per stream (32)
  --entries-per-append K   (10)
  --entry-bytes B          bytes of data per entry (256)
  --duration S             seconds to run (10)
  --metrics ADDR           the daemon's Prometheus endpoint, host:port
                           (127.0.0.1:9464); "none" to skip; unreachable: n/a
  --no-crc                 do not send per-entry CRC-32C
  --json                   one JSON object instead of text
  --tls-ca-file FILE       TLS: verify the daemon against this CA (PEM)
  --tls-cert-file FILE     mutual TLS: client certificate (with --tls-key-file)
  --tls-key-file FILE      mutual TLS: its private key
  --token-file FILE        bearer token to send (also WALRUS_TOKEN_FILE)
  --epoch N                writer epoch to write with (see walrusctl fence)

Several clients write one log; how they stay contiguous is described at the
top of client/bench/walrus_bench.cc (unary: each append also carries the entries
still unacknowledged before it; stream: clients take turns in bursts of W).
)";

constexpr char kMetadata[] = "walrus-bench v1";
constexpr char kFsyncCounter[] = "walrus_wal_fsync_duration_seconds_count";
// A unary append repeats at most this much of its predecessors' data; beyond
// it the client waits for them to be acknowledged first.
constexpr uint64_t kMaxRepeatBytes = 8 << 20;

struct BenchConfig {
  std::string server;
  std::string local_socket;  // appends through it instead of gRPC
  ClientOptions security;    // TLS, token and epoch fields only
  std::string metrics = "127.0.0.1:9464";
  bool stream = true;
  uint64_t clients = 1;
  uint64_t inflight = 32;
  uint64_t entries_per_append = 10;
  uint64_t entry_bytes = 256;
  double duration_seconds = 10;
  bool json = false;
  bool crc = true;
  bool read_entries = false;  // --mode entries
  uint64_t range = 100;
};

struct ClientResult {
  // A deque: growing it never copies what it holds. (A vector's doubling
  // copies megabytes on the thread that reads acknowledgements, which shows
  // as a stall of tens of milliseconds in the latencies it is recording.)
  std::deque<int64_t> latencies_ns;
  uint64_t appends = 0;
  uint64_t entries = 0;
  uint64_t repeated_entries = 0;  // unary: predecessors' entries sent again
  absl::Status error;
};

// A FIFO ticket lock: stream-mode clients take turns in arrival order.
class Turns {
 public:
  void Begin() {
    std::unique_lock<std::mutex> lock(mu_);
    uint64_t ticket = next_ticket_++;
    cv_.wait(lock, [&] { return serving_ == ticket; });
  }
  void End() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++serving_;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t next_ticket_ = 0;
  uint64_t serving_ = 0;
};

int Usage(const std::string& error) {
  std::fprintf(stderr, "walrus-bench: %s\n\n%s", error.c_str(), kUsage);
  return 1;
}

std::optional<BenchConfig> ParseConfig(int argc, char** argv, std::string* error) {
  cli::Args args = cli::ParseArgs(argc, argv, 1, {"json", "no-crc", "help"});
  BenchConfig config;
  if (const char* env = std::getenv("WALRUS_SERVER"); env != nullptr) config.server = env;
  if (const char* env = std::getenv("WALRUS_TOKEN_FILE"); env != nullptr) {
    config.security.token_file = env;
  }
  if (!args.error.empty()) {
    *error = args.error;
    return std::nullopt;
  }
  if (args.Has("help")) {
    error->clear();
    return std::nullopt;
  }
  if (!args.positional.empty()) {
    *error = absl::StrCat("unexpected argument '", args.positional[0], "'");
    return std::nullopt;
  }
  static const char* const kKnown[] = {
      "server",        "metrics",      "mode",       "clients", "inflight", "entries-per-append",
      "entry-bytes",   "duration",     "json",       "no-crc",  "help",     "tls-ca-file",
      "tls-cert-file", "tls-key-file", "token-file", "epoch",   "range",    "local-socket"};
  for (const auto& [name, value] : args.flags) {
    if (std::find(std::begin(kKnown), std::end(kKnown), name) == std::end(kKnown)) {
      *error = absl::StrCat("unknown flag --", name);
      return std::nullopt;
    }
  }
  if (args.Has("server")) config.server = args.flags["server"];
  if (args.Has("local-socket")) config.local_socket = args.flags["local-socket"];
  if (args.Has("metrics")) config.metrics = args.flags["metrics"];
  if (args.Has("tls-ca-file")) config.security.tls_ca_file = args.flags["tls-ca-file"];
  if (args.Has("tls-cert-file")) config.security.tls_cert_file = args.flags["tls-cert-file"];
  if (args.Has("tls-key-file")) config.security.tls_key_file = args.flags["tls-key-file"];
  if (args.Has("token-file")) config.security.token_file = args.flags["token-file"];
  if (!cli::GetUint(args, "epoch", &config.security.epoch, error)) return std::nullopt;
  if (args.Has("mode")) {
    const std::string& mode = args.flags["mode"];
    if (mode != "unary" && mode != "stream" && mode != "entries") {
      *error = "--mode must be unary, stream or entries";
      return std::nullopt;
    }
    config.stream = mode == "stream";
    config.read_entries = mode == "entries";
  }
  if (!cli::GetUint(args, "clients", &config.clients, error) ||
      !cli::GetUint(args, "inflight", &config.inflight, error) ||
      !cli::GetUint(args, "entries-per-append", &config.entries_per_append, error) ||
      !cli::GetUint(args, "entry-bytes", &config.entry_bytes, error) ||
      !cli::GetUint(args, "range", &config.range, error) ||
      !cli::GetDouble(args, "duration", &config.duration_seconds, error)) {
    return std::nullopt;
  }
  if (config.clients == 0 || config.inflight == 0 || config.entries_per_append == 0 ||
      config.range == 0) {
    *error = "--clients, --inflight, --entries-per-append and --range must be at least 1";
    return std::nullopt;
  }
  if (config.clients > 1024 || config.inflight > 100000 || config.entries_per_append > 1000000 ||
      config.entry_bytes > (64 << 20)) {
    *error =
        "a flag is beyond reason (clients <= 1024, inflight <= 100000, "
        "entries-per-append <= 10^6, entry-bytes <= 64 MiB)";
    return std::nullopt;
  }
  if (config.server.empty()) {
    *error = "no daemon: pass --server ADDR or set WALRUS_SERVER";
    return std::nullopt;
  }
  config.json = args.Has("json");
  config.crc = !args.Has("no-crc");
  return config;
}

// `append` sends one append and waits for it: WalClient::Append or
// LocalAppender::Append.
template <typename AppendFn>
void RunUnaryClient(AppendFn append, BenchLog* log, const std::atomic<bool>* stop,
                    ClientResult* out) {
  const uint64_t k = log->entries_per_append();
  while (!stop->load(std::memory_order_relaxed)) {
    const uint64_t first = log->Allocate();
    const uint64_t last = first + k - 1;
    const Clock::time_point start = Clock::now();
    // Start where the daemon's log is known to reach (see the file comment).
    uint64_t from = std::min(first, log->acknowledged() + 1);
    while (from < first && (last - from + 1) * log->entry_bytes() > kMaxRepeatBytes) {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
      from = std::min(first, log->acknowledged() + 1);
    }
    absl::StatusOr<uint64_t> acked = append(log->Build(from, last));
    if (!acked.ok()) {
      out->error = absl::Status(
          acked.status().code(),
          absl::StrCat("append of entries ", from, "..", last, ": ", acked.status().message()));
      return;
    }
    log->Acknowledged(*acked);
    out->latencies_ns.push_back(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count());
    ++out->appends;
    out->entries += k;
    out->repeated_entries += first - from;
  }
}

// What a stream client does with each acknowledgement.
std::function<void(const AppendAck&)> RecordAck(BenchLog* log, ClientResult* out) {
  return [log, out](const AppendAck& ack) {
    out->latencies_ns.push_back(ack.latency.count());
    log->Acknowledged(ack.last_index);
  };
}

// `stream` (an AppendStream or a LocalAppender) was opened with `window` and
// RecordAck(log, out). `turns` is null for a single client: it streams
// without pause.
template <typename Stream>
void RunStreamClient(Stream* stream, BenchLog* log, uint64_t window, Turns* turns,
                     const std::atomic<bool>* stop, ClientResult* out) {
  absl::Status status;
  while (status.ok() && !stop->load(std::memory_order_relaxed)) {
    if (turns == nullptr) {
      uint64_t first = log->Allocate();
      status = stream->Send(log->Build(first, first + log->entries_per_append() - 1)).status();
      continue;
    }
    turns->Begin();
    for (uint64_t i = 0; i < window && status.ok() && !stop->load(); ++i) {
      uint64_t first = log->Allocate();
      status = stream->Send(log->Build(first, first + log->entries_per_append() - 1)).status();
    }
    if (status.ok()) status = stream->Flush();
    turns->End();
  }
  absl::Status final_status = stream->Finish();
  if (status.ok()) status = final_status;
  out->appends = stream->acknowledged();
  out->entries = out->appends * log->entries_per_append();
  if (!status.ok()) {
    out->error =
        absl::Status(status.code(), absl::StrCat("the stream failed after ", out->appends,
                                                 " acknowledged appends: ", status.message()));
  }
}

// The daemon's fsync count, or nothing if its metrics cannot be read.
std::optional<double> FsyncCount(const BenchConfig& config, std::string* why) {
  if (config.metrics == "none") {
    *why = "--metrics none";
    return std::nullopt;
  }
  absl::StatusOr<std::string> page = FetchMetrics(config.metrics, std::chrono::seconds(3));
  absl::StatusOr<double> count =
      page.ok() ? SumMetricSamples(*page, kFsyncCounter) : absl::StatusOr<double>(page.status());
  if (!count.ok()) {
    *why = std::string(count.status().message());
    return std::nullopt;
  }
  return *count;
}

int Run(const BenchConfig& config) {
  ClientOptions options = config.security;
  options.entry_crc32c = config.crc;
  absl::StatusOr<std::unique_ptr<WalClient>> control = WalClient::Connect(config.server, options);
  if (!control.ok()) return Usage(std::string(control.status().message()));
  absl::StatusOr<BenchStart> start = PrepareLog(control->get(), kMetadata);
  if (!start.ok()) {
    std::fprintf(stderr, "walrus-bench: %s\n", start.status().ToString().c_str());
    return 1;
  }
  if (!start->note.empty() && !config.json)
    std::fprintf(stderr, "walrus-bench: %s\n", start->note.c_str());

  BenchLog log(start->first_index, start->term, config.entries_per_append, config.entry_bytes);
  std::vector<ClientResult> results(config.clients);
  std::vector<std::unique_ptr<WalClient>> clients;
  std::vector<std::unique_ptr<LocalAppender>> locals;
  for (uint64_t i = 0; i < config.clients && !config.local_socket.empty(); ++i) {
    LocalAppenderOptions local;
    local.window = config.stream ? static_cast<int>(config.inflight) : 1;
    local.entry_crc32c = config.crc;
    local.epoch = config.security.epoch;
    if (!config.security.token_file.empty()) {
      absl::StatusOr<std::string> token = ReadTokenFile(config.security.token_file);
      if (!token.ok()) return Usage(std::string(token.status().message()));
      local.token = *token;
    }
    if (config.stream) local.on_ack = RecordAck(&log, &results[i]);
    absl::StatusOr<std::unique_ptr<LocalAppender>> a =
        LocalAppender::Connect(config.local_socket, local);
    if (!a.ok()) {
      std::fprintf(stderr, "walrus-bench: client %lu: %s\n", static_cast<unsigned long>(i),
                   a.status().ToString().c_str());
      return 1;
    }
    locals.push_back(std::move(*a));
  }
  for (uint64_t i = 0; i < config.clients; ++i) {
    absl::StatusOr<std::unique_ptr<WalClient>> c = WalClient::Connect(config.server, options);
    // Connect before the clock starts, so no latency includes a handshake.
    absl::StatusOr<v1::StatusResponse> warm = c.ok() ? (*c)->Status() : c.status();
    if (!warm.ok()) {
      std::fprintf(stderr, "walrus-bench: client %lu: %s\n", static_cast<unsigned long>(i),
                   warm.status().ToString().c_str());
      return 1;
    }
    clients.push_back(std::move(*c));
  }

  std::string metrics_why;
  std::optional<double> fsyncs_before = FsyncCount(config, &metrics_why);
  std::atomic<bool> stop{false};
  Turns turns;
  const double elapsed =
      RunClientsFor(config.clients, config.duration_seconds, &stop, [&](uint64_t i) {
        Turns* const take_turns = config.clients > 1 ? &turns : nullptr;
        if (!locals.empty()) {
          LocalAppender* local = locals[i].get();
          if (!config.stream) {
            RunUnaryClient([local](v1::AppendRequest r) { return local->Append(std::move(r)); },
                           &log, &stop, &results[i]);
          } else {
            RunStreamClient(local, &log, config.inflight, take_turns, &stop, &results[i]);
          }
        } else if (!config.stream) {
          WalClient* client = clients[i].get();
          RunUnaryClient([client](v1::AppendRequest r) { return client->Append(std::move(r)); },
                         &log, &stop, &results[i]);
        } else {
          AppendStreamOptions options;
          options.window = static_cast<int>(config.inflight);
          options.on_ack = RecordAck(&log, &results[i]);
          std::unique_ptr<AppendStream> stream = clients[i]->OpenAppendStream(options);
          RunStreamClient(stream.get(), &log, config.inflight, take_turns, &stop, &results[i]);
        }
        if (!results[i].error.ok()) stop = true;
      });
  std::optional<double> fsyncs_after =
      fsyncs_before.has_value() ? FsyncCount(config, &metrics_why) : std::nullopt;

  std::vector<int64_t> latencies;
  uint64_t appends = 0, entries = 0, repeated = 0;
  absl::Status failure;
  for (ClientResult& r : results) {
    latencies.insert(latencies.end(), r.latencies_ns.begin(), r.latencies_ns.end());
    appends += r.appends;
    entries += r.entries;
    repeated += r.repeated_entries;
    if (failure.ok()) failure = r.error;
  }
  LatencySummary lat = SummarizeLatencies(&latencies);
  std::optional<double> fsyncs;
  if (fsyncs_before.has_value() && fsyncs_after.has_value())
    fsyncs = *fsyncs_after - *fsyncs_before;
  std::optional<double> fsyncs_per_sec, entries_per_fsync;
  if (fsyncs.has_value()) fsyncs_per_sec = *fsyncs / elapsed;
  if (fsyncs.has_value() && *fsyncs > 0) entries_per_fsync = static_cast<double>(entries) / *fsyncs;
  const double mb = static_cast<double>(entries) * static_cast<double>(config.entry_bytes) / 1e6;
  const std::string mode = config.stream ? "stream" : "unary";

  if (config.json) {
    cli::JsonObject json;
    // An absent measurement (no metrics to scrape) is null.
    auto optional = [&json](absl::string_view key, std::optional<double> v, int decimals) {
      if (v.has_value()) {
        json.Double(key, *v, decimals);
      } else {
        json.Null(key);
      }
    };
    json.String("mode", mode)
        .Number("clients", config.clients)
        .Number("inflight", config.inflight)
        .Number("entries_per_append", config.entries_per_append)
        .Number("entry_bytes", config.entry_bytes)
        .Double("duration_sec", elapsed, 3)
        .Number("appends", appends)
        .Number("entries", entries)
        .Double("appends_per_sec", appends / elapsed, 3)
        .Double("entries_per_sec", entries / elapsed, 3)
        .Double("mb_per_sec", mb / elapsed, 3)
        .Double("p50_ms", lat.p50_ms, 3)
        .Double("p90_ms", lat.p90_ms, 3)
        .Double("p99_ms", lat.p99_ms, 3)
        .Double("p999_ms", lat.p999_ms, 3)
        .Double("max_ms", lat.max_ms, 3)
        .Double("mean_ms", lat.mean_ms, 3);
    optional("fsyncs", fsyncs, 0);
    optional("fsyncs_per_sec", fsyncs_per_sec, 3);
    optional("entries_per_fsync", entries_per_fsync, 3);
    json.Number("repeated_entries", repeated)
        .Number("first_index", start->first_index)
        .Number("last_index", log.acknowledged());
    if (failure.ok()) {
      json.Null("error");
    } else {
      json.String("error", failure.ToString());
    }
    std::printf("%s\n", json.Build().c_str());
  } else {
    std::printf("walrus-bench: %s, %lu client%s%s, %lu entries x %lu bytes per append, %.1f s\n",
                mode.c_str(), static_cast<unsigned long>(config.clients),
                config.clients == 1 ? "" : "s",
                config.stream ? absl::StrCat(", ", config.inflight, " in flight").c_str() : "",
                static_cast<unsigned long>(config.entries_per_append),
                static_cast<unsigned long>(config.entry_bytes), elapsed);
    std::printf("appends:        %lu (%.1f/s)\n", static_cast<unsigned long>(appends),
                appends / elapsed);
    std::printf("entries:        %lu (%.1f/s), indexes %lu..%lu\n",
                static_cast<unsigned long>(entries), entries / elapsed,
                static_cast<unsigned long>(start->first_index),
                static_cast<unsigned long>(log.acknowledged()));
    std::printf("throughput:     %.2f MB/s of entry data\n", mb / elapsed);
    std::printf("latency (ms):   p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n", lat.p50_ms,
                lat.p90_ms, lat.p99_ms, lat.p999_ms, lat.max_ms);
    if (fsyncs.has_value()) {
      std::printf("fsyncs:         %.0f (%.1f/s), %s entries per fsync\n", *fsyncs, *fsyncs_per_sec,
                  entries_per_fsync.has_value()
                      ? absl::StrFormat("%.1f", *entries_per_fsync).c_str()
                      : "n/a");
    } else {
      std::printf("fsyncs:         n/a (%s); entries per fsync: n/a\n", metrics_why.c_str());
    }
    if (!config.stream && config.clients > 1) {
      std::printf(
          "repeated:       %lu entries sent again with a later append (%.0f%% extra)\n",
          static_cast<unsigned long>(repeated),
          entries > 0 ? 100.0 * static_cast<double>(repeated) / static_cast<double>(entries) : 0.0);
    }
  }
  if (!failure.ok()) {
    std::fprintf(stderr, "walrus-bench: %s\n", failure.ToString().c_str());
    return 2;
  }
  return 0;
}

}  // namespace
}  // namespace walrus

int main(int argc, char** argv) {
  std::string error;
  std::optional<walrus::BenchConfig> config = walrus::ParseConfig(argc, argv, &error);
  if (!config.has_value()) {
    if (error.empty()) {
      std::fputs(walrus::kUsage, stdout);
      return 0;
    }
    return walrus::Usage(error);
  }
  if (config->read_entries) {
    walrus::ReadBenchConfig reads;
    reads.server = config->server;
    reads.options = config->security;
    reads.clients = config->clients;
    reads.range = config->range;
    reads.duration_seconds = config->duration_seconds;
    reads.json = config->json;
    return walrus::RunReadBench(reads);
  }
  return walrus::Run(*config);
}
