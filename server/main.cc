// walrusd: serves one WAL directory to a Raft node over gRPC.
//
// Start-up: parse flags, take the data directory's lock (a second daemon on
// it exits at once naming the holder), recover the WAL (repair a torn tail,
// refuse corruption), serve metrics, then gRPC with health SERVING.
// SIGTERM/SIGINT: health NOT_SERVING, stop taking calls, let in-flight ones
// finish (the committer syncs them), close the WAL, exit 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/config.h"
#include "server/data_dir.h"
#include "server/listeners.h"
#include "server/local_socket.h"
#include "server/logging.h"
#include "server/metrics.h"
#include "server/wal_service.h"
#include "server/wal_store.h"

namespace walrus {
namespace {

constexpr char kServiceName[] = "walrus.v1.WAL";
constexpr auto kDrainTimeout = std::chrono::seconds(3);

// Fsync latency above the threshold is logged; the histogram has the rest.
class LoggingMetrics : public ServerMetrics {
 public:
  explicit LoggingMetrics(std::chrono::microseconds slow) : slow_seconds_(slow.count() / 1e6) {}
  void ObserveFsync(double seconds) override {
    ServerMetrics::ObserveFsync(seconds);
    if (slow_seconds_ > 0 && seconds >= slow_seconds_) {
      spdlog::warn("slow fsync: {:.3f} s (threshold {:.3f} s)", seconds, slow_seconds_);
    }
  }
  void SegmentCut(uint64_t seq) override {
    ServerMetrics::SegmentCut(seq);
    if (deferring_) {
      spdlog::info("segment cut: new segment {} started after {} deferred cuts", seq, deferred_);
    } else {
      spdlog::info("segment cut: new segment {} started", seq);
    }
    deferring_ = false;
    deferred_ = 0;
  }
  // Once per streak of deferrals (each sync retries the cut), so a disk that
  // stays full does not flood the log; the counter has every one.
  void SegmentCutDeferred(const absl::Status& why, uint64_t tail_bytes) override {
    ServerMetrics::SegmentCutDeferred(why, tail_bytes);
    ++deferred_;
    if (deferring_) return;
    deferring_ = true;
    spdlog::warn(
        "segment cut deferred: {}; appends go on into the tail segment ({} bytes, past the "
        "segment size) and every sync tries again",
        std::string(why.message()), tail_bytes);
  }

 private:
  double slow_seconds_;
  // Called from the committer thread only.
  bool deferring_ = false;
  uint64_t deferred_ = 0;
};

// Takes every builder plugin off a server. Linking the reflection library
// registers its plugin for every builder at load time, before main; the
// health-only server must serve grpc.health.v1 (built in, not a plugin) and
// nothing else, so neither reflection nor the descriptors it would hand out.
class NoPlugins : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

int Run(const Config& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  // Blocked in every thread (they inherit the mask); main waits for them.
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  const std::string listeners = absl::StrJoin(config.listen, ",");
  // Before anything else (the lock, recovery, any bind): a configuration the
  // security policy refuses opens nothing.
  absl::StatusOr<ListenerPlan> plan = PlanListeners(config);
  if (!plan.ok()) {
    spdlog::critical("cannot start: {}", std::string(plan.status().message()));
    return 64;  // EX_USAGE
  }
  for (const PlannedListener& l : plan->listeners) {
    if (l.plaintext_on_network) {
      spdlog::warn(
          "--insecure: serving PLAINTEXT on non-loopback {}: anyone who can reach it can read "
          "and write the log",
          l.address.address);
    }
  }
  if (!config.metrics_listen.empty() &&
      !ParseListenAddress(config.metrics_listen).value_or(ListenAddress{}).loopback) {
    spdlog::warn("serving /metrics (plaintext, no authentication) on non-loopback {}",
                 config.metrics_listen);
  }
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock =
      DataDirLock::Acquire(PosixFs(), config.data_dir, config.LockPath(), listeners);
  if (!lock.ok()) {
    spdlog::critical("cannot start: {}", std::string(lock.status().message()));
    return 1;
  }

  auto metrics = std::make_unique<LoggingMetrics>(config.slow_fsync_threshold);
  StoreOptions store_options;
  store_options.wal_dir = config.WalDir();
  store_options.segment_size = config.segment_size_bytes;
  store_options.max_batch_bytes = config.max_batch_bytes;
  store_options.max_batch_delay = config.max_batch_delay;
  store_options.read_only = config.read_only;
  store_options.direct_io = config.direct_io;
  store_options.direct_io_min_bytes = config.direct_io_min_bytes;
  store_options.epoch_path = config.EpochPath();
  store_options.retain_released_segments = config.retain_released_segments;
  RecoverySummary recovery;
  absl::StatusOr<std::unique_ptr<WalStore>> store =
      WalStore::Open(store_options, metrics.get(), &recovery);
  if (!store.ok()) {
    spdlog::critical("cannot start: recovery of {} failed: {}", config.WalDir(),
                     std::string(store.status().message()));
    return 2;
  }
  if (recovery.repaired) spdlog::warn("recovery repaired a torn tail: {}", recovery.repair_detail);
  if (config.read_only && !recovery.repair_detail.empty()) {
    spdlog::warn("read-only start on a damaged log: {}", recovery.repair_detail);
  }
  if (!recovery.existed) {
    spdlog::info("recovery: no WAL in {} yet; waiting for Create", config.WalDir());
  } else {
    spdlog::info(
        "recovery: {} segments, entries {} to {}, hard state term={} vote={} commit={}, "
        "{:.3f} s",
        recovery.segments, recovery.first_index, recovery.last_index, recovery.state.term(),
        recovery.state.vote(), recovery.state.commit(), recovery.seconds);
  }

  if (!config.metrics_listen.empty()) {
    metrics->WatchDataDir(config.data_dir);
    if (absl::Status s = metrics->Serve(config.metrics_listen); !s.ok()) {
      spdlog::critical("cannot start: {}", std::string(s.message()));
      return 1;
    }
  }

  ServiceOptions service_options;
  service_options.stream_budget_bytes = config.stream_budget_bytes;
  service_options.append_budget_bytes = config.append_budget_bytes;
  service_options.read_workers = config.read_workers;
  service_options.read_queue_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.read_queue_timeout);
  service_options.backup_stall_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(config.backup_stall_timeout);
  WalService service(store->get(), metrics.get(), service_options);
  grpc::EnableDefaultHealthCheckService(true);
  // Answers every method the health server does not register UNIMPLEMENTED.
  // A server needs one service of its own to be polled; the built-in health
  // service is added only at start. Declared first: it outlives the server.
  grpc::CallbackGenericService unimplemented;
  std::unique_ptr<grpc::Server> health_server;
  if (!config.health_listen.empty()) {
    grpc::ServerBuilder health_builder;
    health_builder.SetOption(std::make_unique<NoPlugins>());
    health_builder.RegisterCallbackGenericService(&unimplemented);
    Config health_limits = config;
    health_limits.max_message_bytes = 64 << 10;
    health_limits.memory_quota_bytes = 16 << 20;
    ApplyLimits(health_limits, &health_builder);
    int port = 0;
    health_builder.AddListeningPort(config.health_listen, grpc::InsecureServerCredentials(), &port);
    health_server = health_builder.BuildAndStart();
    if (health_server == nullptr || port == 0) {
      spdlog::critical("cannot start: could not listen on --health-listen {}",
                       config.health_listen);
      return 1;
    }
  }
  // Before gRPC: once walrusd answers there, the local socket is up too.
  std::unique_ptr<LocalSocketServer> local;
  if (!config.local_socket.empty()) {
    LocalSocketOptions local_options;
    local_options.path = config.local_socket;
    local_options.mode = static_cast<mode_t>(config.unix_socket_mode);
    local_options.max_frame_bytes = config.max_message_bytes;
    local_options.max_connections = config.local_max_connections;
    local_options.connection_budget_bytes = config.stream_budget_bytes;
    local_options.max_inflight = service_options.max_stream_inflight;
    local_options.authenticator = plan->authenticator;
    absl::StatusOr<std::unique_ptr<LocalSocketServer>> started = LocalSocketServer::Start(
        store->get(), &service.append_budget(), metrics.get(), std::move(local_options));
    if (!started.ok()) {
      spdlog::critical("cannot start: {}", std::string(started.status().message()));
      if (health_server != nullptr) health_server->Shutdown();
      return 1;
    }
    local = std::move(*started);
  }
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  ApplyLimits(config, &builder);
  std::vector<int> ports(plan->listeners.size(), 0);
  for (size_t i = 0; i < plan->listeners.size(); ++i) {
    builder.AddListeningPort(plan->listeners[i].address.address, plan->listeners[i].credentials,
                             &ports[i]);
  }
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server;
  {
    // Unix sockets are bound here; they come into existence with the mode.
    ScopedSocketUmask umask(static_cast<mode_t>(config.unix_socket_mode));
    server = builder.BuildAndStart();
  }
  auto stop_health = [&health_server] {
    if (health_server != nullptr) health_server->Shutdown();
  };
  if (server == nullptr) {
    spdlog::critical("cannot start: could not listen on {}", listeners);
    stop_health();
    return 1;
  }
  for (size_t i = 0; i < plan->listeners.size(); ++i) {
    const ListenAddress& address = plan->listeners[i].address;
    absl::Status problem;
    if (address.kind == ListenAddress::Kind::kUnix) {
      problem = FinishUnixSocket(address.path, static_cast<mode_t>(config.unix_socket_mode));
    } else if (ports[i] == 0) {
      problem = absl::UnavailableError(absl::StrCat("could not listen on ", address.address));
    }
    if (!problem.ok()) {
      spdlog::critical("cannot start: {}", std::string(problem.message()));
      server->Shutdown();
      stop_health();
      return 1;
    }
  }
  // Both servers' health services say the same thing.
  std::vector<grpc::HealthCheckServiceInterface*> healths = {server->GetHealthCheckService()};
  if (health_server != nullptr) healths.push_back(health_server->GetHealthCheckService());
  auto set_serving = [healths](bool serving) {
    for (grpc::HealthCheckServiceInterface* h : healths) {
      h->SetServingStatus(kServiceName, serving);
      h->SetServingStatus(serving);
    }
  };
  (*store)->set_on_fail_stop([set_serving, &metrics](const absl::Status& failure) {
    spdlog::critical("fail-stop: the WAL takes no more writes: {}", std::string(failure.message()));
    set_serving(false);
    metrics->SetServing(false);
  });
  set_serving(true);
  metrics->SetServing(true);
  spdlog::info(
      "walrusd {} serving {} on {} ({}{}; local socket {}; metrics on {}; health-only on {})",
      WALRUS_VERSION, config.WalDir(), listeners, plan->tls ? "TLS" : "plaintext",
      plan->authenticator != nullptr ? ", bearer token required" : "",
      config.local_socket.empty() ? "off" : config.local_socket,
      config.metrics_listen.empty() ? "nothing" : config.metrics_listen,
      config.health_listen.empty() ? "nothing" : config.health_listen);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  auto stopping = std::chrono::steady_clock::now();
  spdlog::info("received {}, shutting down: draining in-flight calls",
               signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  for (grpc::HealthCheckServiceInterface* h : healths) {
    h->Shutdown();  // every service NOT_SERVING from here on
  }
  service.BeginShutdown();
  if (local != nullptr) local->BeginShutdown();
  metrics->SetServing(false);
  // Calls in flight finish (the committer syncs them); then stop. gRPC's own
  // Shutdown would also wait for idle client connections to close, which
  // clients that are not polling never do, so it gets a short deadline once
  // nothing is in flight.
  const auto drain_deadline = std::chrono::steady_clock::now() + kDrainTimeout;
  const bool local_idle = local == nullptr || local->WaitIdle(drain_deadline);
  if (!service.WaitIdle(drain_deadline) || !local_idle) {
    spdlog::warn("calls still in flight after {} s; cancelling them", kDrainTimeout.count());
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  if (health_server != nullptr) {
    health_server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(100));
  }
  if (local != nullptr) local->Stop();
  (*store)->Shutdown();
  server->Wait();
  if (health_server != nullptr) health_server->Wait();
  spdlog::info("shutdown complete in {:.3f} s; WAL closed",
               std::chrono::duration<double>(std::chrono::steady_clock::now() - stopping).count());
  return 0;
}

}  // namespace
}  // namespace walrus

int main(int argc, char** argv, char** envp) {
  absl::StatusOr<walrus::Config> config = walrus::ParseConfig(argc, argv, envp);
  if (!config.ok()) {
    std::fprintf(stderr, "walrusd: %s\n", std::string(config.status().message()).c_str());
    return 64;  // EX_USAGE
  }
  if (config->help) {
    std::fputs(walrus::ConfigHelp().c_str(), stdout);
    return 0;
  }
  if (config->version) {
    std::printf("walrusd %s\n", WALRUS_VERSION);
    return 0;
  }
  walrus::InitLogging(config->log_format, config->log_level);
  return walrus::Run(*config);
}
