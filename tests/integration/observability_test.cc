// What operators look at: health, /metrics (checked by promtool), TCP
// listeners, JSON logs, --help.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "server/config.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

std::string RunCommand(const std::string& command, int* code) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof(buf), pipe)) > 0;) out.append(buf, n);
  *code = pclose(pipe);
  return out;
}

grpc::health::v1::HealthCheckResponse::ServingStatus Health(const std::string& target,
                                                            const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  return status.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
}

TEST(Observability, Health_NamedServiceServingAfterRecovery) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"));
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  EXPECT_EQ(Health(daemon.target(), "walrus.v1.WAL"),
            grpc::health::v1::HealthCheckResponse::SERVING);
  EXPECT_EQ(Health(daemon.target(), ""), grpc::health::v1::HealthCheckResponse::SERVING);
}

TEST(Observability, Metrics_ExposedAndPassPromtool) {
  TempDir tmp;
  int port = UnusedLoopbackPort();
  Daemon daemon(tmp.Sub("data"), {"--metrics-listen", absl::StrCat("127.0.0.1:", port),
                                  "--segment-size-bytes", "65536"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
  for (uint64_t i = 1; i <= 200; i += 20) {
    ASSERT_TRUE(Append(daemon.stub(), MakeAppend(i, i + 19, 1, 0, 500)).ok());
  }
  EXPECT_EQ(Append(daemon.stub(), MakeAppend(500, 500, 1, 0)).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  std::string body = HttpGet(port, "/metrics");
  ASSERT_FALSE(body.empty());
  for (const char* name :
       {"walrus_wal_fsync_duration_seconds_bucket",
        "walrus_wal_last_index_saved 200",
        "walrus_wal_write_bytes_total",
        "walrus_append_duration_seconds_count",
        "walrus_commit_batch_entries_bucket",
        "walrus_commit_batch_requests_bucket",
        "walrus_commit_batch_bytes_bucket",
        "walrus_wal_segments",
        "walrus_wal_segment_cuts_total",
        "walrus_wal_segment_cuts_deferred_total 0",
        "walrus_wal_segments_prepared_total{blocks=\"written\"}",
        "walrus_wal_segments_prepared_total{blocks=\"fallocated\"}",
        "walrus_wal_direct_io",
        "walrus_entry_index_entries 200",
        "walrus_entry_index_bytes",
        "walrus_wal_purged_segments_total",
        "walrus_build_info",
        "walrus_rpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"Append\"} 1",
        "walrus_rpc_duration_seconds_bucket",
        "walrus_wal_fail_stop 0",
        "walrus_serving 1",
        "walrus_data_dir_free_bytes",
        "walrus_data_dir_capacity_bytes"}) {
    EXPECT_NE(body.find(name), std::string::npos) << name << " missing from:\n" << body;
  }
  std::string file = tmp.Sub("metrics.txt");
  WriteFile(file, body);
  int code = 0;
  std::string out = RunCommand(absl::StrCat("promtool check metrics < ", file, " 2>&1"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << "promtool found problems:\n" << out;
}

// --direct-io (default on) and --direct-io=false: the gauge says which the
// tail segment gets, and appends read back either way.
TEST(Observability, DirectIo_FlagChoosesAndTheGaugeSaysWhich) {
  for (bool direct : {true, false}) {
    SCOPED_TRACE(direct ? "--direct-io" : "--direct-io=false");
    TempDir tmp;
    int port = UnusedLoopbackPort();
    // The one 50-KB append below is a batch above the threshold.
    Daemon daemon(tmp.Sub("data"),
                  {"--metrics-listen", absl::StrCat("127.0.0.1:", port),
                   direct ? "--direct-io" : "--direct-io=false", "--direct-io-min-bytes", "4096"});
    ASSERT_TRUE(daemon.Start()) << daemon.log();
    ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
    ASSERT_TRUE(Append(daemon.stub(), MakeAppend(1, 10, 1, 0, 5000)).ok());
    const std::string body = HttpGet(port, "/metrics");
    if (direct && body.find("walrus_wal_direct_io 0") != std::string::npos) {
      GTEST_SKIP() << "the test directory's file system does not take O_DIRECT";
    }
    EXPECT_NE(body.find(direct ? "walrus_wal_direct_io 1" : "walrus_wal_direct_io 0"),
              std::string::npos)
        << body;
    daemon.Kill9();
    ASSERT_TRUE(daemon.Start()) << daemon.log();
    ReadBack all = ReadAll(daemon.stub());
    ASSERT_TRUE(all.status.ok()) << all.status.error_message();
    EXPECT_EQ(all.entries.size(), 10u);
  }
}

TEST(Observability, TcpLoopbackListener_Serves) {
  TempDir tmp;
  int port = UnusedLoopbackPort();
  std::string address = absl::StrCat("127.0.0.1:", port);
  Daemon daemon(tmp.Sub("data"), {"--listen", address});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  auto stub = v1::WAL::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  EXPECT_TRUE(CreateWal(stub.get(), "meta").ok());
  EXPECT_TRUE(Append(stub.get(), MakeAppend(1, 1, 1, 0)).ok());
  EXPECT_EQ(ReadAll(daemon.stub()).entries.size(), 1u) << "both listeners serve one WAL";
}

TEST(Observability, JsonLogs_EveryLineIsAnObjectWithTimeLevelMsg) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--log-format", "json"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_EQ(daemon.Signal(SIGTERM), 0);
  std::string log = daemon.log();
  int lines = 0;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    ++lines;
    EXPECT_EQ(line.substr(0, 9), "{\"time\":\"") << line;
    EXPECT_NE(line.find("\"level\":\"info\""), absl::string_view::npos) << line;
    EXPECT_NE(line.find(",\"msg\":\""), absl::string_view::npos) << line;
    EXPECT_EQ(line.back(), '}') << line;
  }
  EXPECT_GE(lines, 3) << log;
  int code = 0;
  std::string checked =
      RunCommand(absl::StrCat("python3 -c 'import json,sys\nfor l in open(sys.argv[1]): "
                              "json.loads(l)' ",
                              daemon.data_dir(), ".log 2>&1"),
                 &code);
  EXPECT_EQ(code, 0) << checked;
}

TEST(Observability, Help_DocumentsEveryFlagAndItsVariable) {
  int code = 0;
  std::string help = RunCommand(DaemonBinary() + " --help", &code);
  EXPECT_EQ(code, 0);
  // Every flag of the parser's table, each with its variable, on its own
  // line of the help.
  const auto flags = ConfigFlags();
  ASSERT_GT(flags.size(), 20u);
  for (const auto& [flag, variable] : flags) {
    // The whole flag: "--insecure" must not be found as the start of
    // "--insecure-metrics".
    std::string line;
    for (absl::string_view candidate : absl::StrSplit(help, '\n')) {
      const std::string head = absl::StrCat("  --", flag);
      if (absl::StartsWith(candidate, head) &&
          (candidate.size() == head.size() || candidate[head.size()] == ' ' ||
           candidate[head.size()] == '=')) {
        line = std::string(candidate);
        break;
      }
    }
    ASSERT_FALSE(line.empty()) << flag << " is missing from --help";
    EXPECT_NE(line.find(absl::StrCat("[", variable, "]")), std::string::npos) << line;
  }
  std::string bad = RunCommand(DaemonBinary() + " --no-such-flag 2>&1", &code);
  EXPECT_NE(code, 0);
  EXPECT_NE(bad.find("unknown flag"), std::string::npos) << bad;
}

TEST(Observability, EnvironmentVariable_SetsFlagAndCommandLineWins) {
  TempDir tmp;
  std::string data = tmp.Sub("from-env");
  setenv("WALRUS_DATA_DIR", data.c_str(), 1);
  setenv("WALRUS_LOG_FORMAT", "json", 1);
  Daemon daemon(data);  // passes --data-dir too; the same value
  bool started = daemon.Start();
  unsetenv("WALRUS_DATA_DIR");
  unsetenv("WALRUS_LOG_FORMAT");
  ASSERT_TRUE(started) << daemon.log();
  EXPECT_EQ(daemon.log().substr(0, 9), "{\"time\":\"") << "WALRUS_LOG_FORMAT ignored";
}

}  // namespace
}  // namespace walrus::testing
