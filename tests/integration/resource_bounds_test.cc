// What a careless or hostile client can make walrusd hold: an AppendStream
// that sends large appends and never reads its acknowledgements stays within
// its byte budget; ReadAll, Backup and Status run on a fixed number of read
// workers (more callers are refused, not given threads); a backup whose client
// stops reading is cancelled and its pin released. Budgets and pool sizes are
// set through the environment (WALRUS_*), which a daemon without them ignores,
// so each test fails on such a daemon for what it checks, not for a flag.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/proc_sample.h"
#include "tests/integration/rpc_util.h"
#include "tests/unit/test_util.h"

namespace walrus::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;

// A channel with a connection of its own: gRPC shares one connection between
// channels to the same target, and a stalled stream's flow-control window
// must not hold back the others'.
std::unique_ptr<v1::WAL::Stub> OwnConnectionStub(const Daemon& daemon) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::WAL::NewStub(
      grpc::CreateCustomChannel(daemon.target(), grpc::InsecureChannelCredentials(), args));
}

// Appends `mib` entries of 1 MiB each: more than gRPC and the kernel buffer
// between a server and a client that stopped reading, so a backup of it
// cannot finish unread.
void FillLog(v1::WAL::Stub* stub, uint64_t mib) {
  ASSERT_TRUE(CreateWal(stub, "meta").ok());
  for (uint64_t i = 1; i <= mib; ++i) {
    ASSERT_TRUE(Append(stub, MakeAppend(i, i, 1, i - 1, kMiB)).ok()) << "append " << i;
  }
}

// A Backup whose client takes the first message and then nothing more.
struct StalledBackup {
  std::unique_ptr<v1::WAL::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::BackupChunk>> reader;
  v1::BackupChunk first;
  bool got_first = false;
};

std::unique_ptr<StalledBackup> StartBackup(const Daemon& daemon) {
  auto backup = std::make_unique<StalledBackup>();
  backup->stub = OwnConnectionStub(daemon);
  backup->reader = backup->stub->Backup(&backup->context, v1::BackupRequest());
  return backup;
}

// True if a running backup pins any segment.
bool AnyPinned(v1::WAL::Stub* stub) {
  v1::StatusResponse status = GetStatus(stub);
  for (const v1::SegmentStatus& segment : status.segments()) {
    if (segment.pinned()) return true;
  }
  return false;
}

// Polls `condition` until it holds or `seconds` pass (the daemon's own
// timers decide when; this only bounds how long the test waits for them).
template <typename Condition>
bool Eventually(Condition condition, int seconds = 60) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return condition();
}

TEST(ResourceBounds, AppendStream_LargeAppendsAcksNeverRead_RssWithinStreamBudget) {
  TempDir tmp;
  const uint64_t budget = 16 * kMiB;
  const uint64_t appends = EnvCount("WALRUS_BUDGET_TEST_APPENDS", 128);  // 4 MiB each
  const int port = UnusedLoopbackPort();
  Daemon daemon(tmp.Sub("data"), {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  // jemalloc keeps freed pages for 10 s before it returns them (~80 MiB here
  // under this load, whatever the budget): without that cache, RSS measures
  // what walrusd holds.
  daemon.set_command_prefix({"/usr/bin/env", absl::StrCat("WALRUS_STREAM_BUDGET_BYTES=", budget),
                             "MALLOC_CONF=dirty_decay_ms:0"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
  const ProcSample before = SampleProcess(daemon.pid());
  ASSERT_GT(before.rss_bytes, 0u) << "cannot read /proc/" << daemon.pid() << "/status";

  grpc::ClientContext context;
  auto stream = daemon.stub()->AppendStream(&context);
  std::atomic<bool> written{false};
  std::thread writer([&] {
    for (uint64_t i = 1; i <= appends; ++i) {
      v1::AppendRequest request = MakeAppend(i, i, 1, i - 1, 4 * kMiB);
      request.set_sequence(i);
      if (!stream->Write(request)) break;
    }
    stream->WritesDone();
    written = true;
  });
  // Resource sampling while the client sends and reads nothing.
  uint64_t peak = before.rss_bytes;
  double held = -1;
  while (!written) {
    peak = std::max(peak, SampleProcess(daemon.pid()).rss_bytes);
    held = std::max(held, ScrapeMetric(port, "walrus_append_held_bytes"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  writer.join();
  v1::AppendResponse ack;
  uint64_t acks = 0;
  while (stream->Read(&ack)) {
    ASSERT_EQ(ack.sequence(), ++acks);
    peak = std::max(peak, SampleProcess(daemon.pid()).rss_bytes);
  }
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acks, appends);
  EXPECT_GE(held, 0) << "walrus_append_held_bytes missing";
  EXPECT_LE(held, double(budget + 4 * kMiB)) << "the stream took more than its budget and one";
  const double growth_mib = double(peak - before.rss_bytes) / kMiB;
  std::printf(
      "RSS before %.1f MiB, peak %.1f MiB (+%.1f MiB) over %llu appends of 4 MiB, "
      "stream budget %.0f MiB, most held %.1f MiB\n",
      double(before.rss_bytes) / kMiB, double(peak) / kMiB, growth_mib,
      static_cast<unsigned long long>(appends), double(budget) / kMiB, held / kMiB);
  // Beyond the budget: the committer's encoded batch (--max-batch-bytes,
  // 16 MiB by default) and gRPC's buffers.
  EXPECT_LE(peak - before.rss_bytes, budget + 16 * kMiB + 64 * kMiB)
      << "walrusd read appends faster than it made them durable, past its stream budget";
}

TEST(ResourceBounds, AppendStream_AppendLargerThanStreamBudget_GoesThrough) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"));
  daemon.set_command_prefix(
      {"/usr/bin/env", "WALRUS_STREAM_BUDGET_BYTES=1024", "WALRUS_APPEND_BUDGET_BYTES=1024"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
  grpc::ClientContext context;
  auto stream = daemon.stub()->AppendStream(&context);
  for (uint64_t i = 1; i <= 4; ++i) {
    v1::AppendRequest request = MakeAppend(i, i, 1, i - 1, kMiB);
    request.set_sequence(i);
    ASSERT_TRUE(stream->Write(request));
    v1::AppendResponse ack;
    ASSERT_TRUE(stream->Read(&ack)) << "append " << i << " over the budget was never taken";
    EXPECT_EQ(ack.last_index(), i);
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST(ResourceBounds, Backup_ManyStalledClients_ThreadsBoundedByReadWorkers) {
  TempDir tmp;
  const int clients = EnvCount("WALRUS_STALLED_BACKUPS", 40);
  const int workers = 2;
  Daemon daemon(tmp.Sub("data"));
  daemon.set_command_prefix({"/usr/bin/env", absl::StrCat("WALRUS_READ_WORKERS=", workers),
                             "WALRUS_READ_QUEUE_TIMEOUT=300ms"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  FillLog(daemon.stub(), 64);
  const ProcSample before = SampleProcess(daemon.pid());
  ASSERT_GT(before.threads, 0) << "cannot read /proc/" << daemon.pid() << "/status";

  std::vector<std::unique_ptr<StalledBackup>> backups;
  for (int i = 0; i < clients; ++i) backups.push_back(StartBackup(daemon));
  int started = 0;
  int refused = 0;
  std::string refusal;
  for (auto& backup : backups) {
    backup->got_first = backup->reader->Read(&backup->first);
    if (backup->got_first) {
      ++started;
      continue;
    }
    grpc::Status status = backup->reader->Finish();
    if (status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED) {
      ++refused;
      refusal = status.error_message();
    }
  }
  const ProcSample during = SampleProcess(daemon.pid());
  std::printf("%d stalled backups: %d streaming, %d refused; threads %d before, %d during\n",
              clients, started, refused, before.threads, during.threads);
  EXPECT_EQ(started, workers);
  EXPECT_EQ(refused, clients - workers);
  EXPECT_NE(refusal.find("read workers are busy"), std::string::npos) << refusal;
  EXPECT_LE(during.threads, before.threads + 4) << "a thread per backup";

  // Status shares the workers: it is refused too while both are stalled.
  grpc::ClientContext status_context;
  v1::StatusResponse response;
  grpc::Status status = daemon.stub()->Status(&status_context, v1::StatusRequest(), &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << status.error_message();

  // Stalled readers do not hold up a shutdown.
  EXPECT_EQ(daemon.Signal(SIGTERM, 30), 0) << daemon.log();
  for (auto& backup : backups) {
    if (backup->got_first) backup->context.TryCancel();
  }
}

TEST(ResourceBounds, Backup_ClientStopsReading_CancelledAfterStallTimeoutAndPinReleased) {
  TempDir tmp;
  const int port = UnusedLoopbackPort();
  Daemon daemon(tmp.Sub("data"), {"--metrics-listen", absl::StrCat("127.0.0.1:", port)});
  daemon.set_command_prefix({"/usr/bin/env", "WALRUS_BACKUP_STALL_TIMEOUT=1s"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  FillLog(daemon.stub(), 64);
  auto backup = StartBackup(daemon);
  ASSERT_TRUE(backup->reader->Read(&backup->first));
  ASSERT_TRUE(AnyPinned(daemon.stub())) << "the backup pins the segments";

  EXPECT_TRUE(Eventually([&] { return !AnyPinned(daemon.stub()); }))
      << "a backup whose client reads nothing keeps its pin";
  EXPECT_EQ(ScrapeMetric(port, "walrus_backups_stalled_total"), 1);
  EXPECT_NE(daemon.log().find("took no data"), std::string::npos) << daemon.log();
  v1::BackupChunk chunk;
  while (backup->reader->Read(&chunk)) {
  }
  EXPECT_EQ(backup->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace walrus::testing
