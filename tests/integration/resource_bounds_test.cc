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
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/proc_sample.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

constexpr uint64_t kMiB = 1 << 20;
// What one 4 MiB append holds: the encoded request (the entry, its framing and
// the hard state) and its acknowledgement.
constexpr uint64_t kOneAppendBytes = 4 * kMiB + 64 * 1024;

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
// `mib` MiB of entries of `entry_bytes` each, appended about 1 MiB at a time.
// Returns the number of entries.
uint64_t FillLog(v1::WAL::Stub* stub, uint64_t mib, uint64_t entry_bytes = kMiB) {
  EXPECT_TRUE(CreateWal(stub, "meta").ok());
  const uint64_t count = mib * kMiB / entry_bytes;
  const uint64_t per_append = std::max<uint64_t>(1, kMiB / entry_bytes);
  for (uint64_t i = 1; i <= count; i += per_append) {
    const uint64_t last = std::min(count, i + per_append - 1);
    grpc::Status status = Append(stub, MakeAppend(i, last, 1, i - 1, entry_bytes));
    EXPECT_TRUE(status.ok()) << "append " << i << ": " << status.error_message();
    if (!status.ok()) return 0;
  }
  return count;
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

// jemalloc options for the daemons of the RSS tests
// (WALRUS_BUDGET_TEST_MALLOC_CONF, e.g. "dirty_decay_ms:0" to measure only
// what walrusd holds, without the pages jemalloc keeps for 10 s after they
// are freed); by default walrusd's own.
std::vector<std::string> MallocConf() {
  const char* conf = std::getenv("WALRUS_BUDGET_TEST_MALLOC_CONF");
  if (conf == nullptr) return {};
  return {absl::StrCat("MALLOC_CONF=", conf)};
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

// What a daemon held while one AppendStream sent 4 MiB appends without reading
// an acknowledgement until all were sent.
struct NeverReadingRun {
  uint64_t rss_before = 0;
  uint64_t rss_peak = 0;
  double most_held = -1;  // walrus_append_held_bytes; -1 if it is missing
  uint64_t acks = 0;
};

// Runs walrusd with `env` (WALRUS_* budgets) and one never-reading stream of
// `appends` appends; the figures in *run. Stops a daemon whose RSS passes
// 2 GiB (fatal failure).
void RunNeverReadingStream(const std::vector<std::string>& env, uint64_t appends,
                           NeverReadingRun* run) {
  TempDir tmp;
  const int port = UnusedLoopbackPort();
  // A disk slower than the client (one append per batch, 20 ms between
  // batches), as it is for large appends on most volumes: a daemon that
  // reads ahead of it fills with requests.
  Daemon daemon(tmp.Sub("data"), {"--metrics-listen", absl::StrCat("127.0.0.1:", port),
                                  "--max-batch-bytes", "4194304", "--max-batch-delay", "20ms"});
  std::vector<std::string> prefix = {"/usr/bin/env"};
  prefix.insert(prefix.end(), env.begin(), env.end());
  for (std::string& conf : MallocConf()) prefix.push_back(conf);
  daemon.set_command_prefix(prefix);
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
  run->rss_before = run->rss_peak = SampleProcess(daemon.pid()).rss_bytes;
  ASSERT_GT(run->rss_before, 0u) << "cannot read /proc/" << daemon.pid() << "/status";

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
  bool runaway = false;
  while (!written) {
    run->rss_peak = std::max(run->rss_peak, SampleProcess(daemon.pid()).rss_bytes);
    // A daemon without budgets would take the machine down: stop it at 2 GiB.
    if (run->rss_peak > 2048 * kMiB && !runaway) {
      runaway = true;
      daemon.Kill9();
    }
    run->most_held = std::max(run->most_held, ScrapeMetric(port, "walrus_append_held_bytes"));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  writer.join();
  ASSERT_FALSE(runaway) << "RSS passed 2 GiB (+" << (run->rss_peak - run->rss_before) / kMiB
                        << " MiB); stopped";
  v1::AppendResponse ack;
  while (stream->Read(&ack)) {
    ASSERT_EQ(ack.sequence(), ++run->acks);
    run->rss_peak = std::max(run->rss_peak, SampleProcess(daemon.pid()).rss_bytes);
  }
  grpc::Status status = stream->Finish();
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::printf(
      "RSS before %.1f MiB, peak %.1f MiB (+%.1f MiB) over %llu appends of 4 MiB, most held "
      "%.1f MiB\n",
      double(run->rss_before) / kMiB, double(run->rss_peak) / kMiB,
      double(run->rss_peak - run->rss_before) / kMiB, static_cast<unsigned long long>(appends),
      run->most_held / kMiB);
}

TEST(ResourceBounds, AppendStream_LargeAppendsAcksNeverRead_RssWithinStreamBudget) {
  const uint64_t budget = EnvCount("WALRUS_BUDGET_TEST_BUDGET_MIB", 16) * kMiB;
  const uint64_t appends = EnvCount("WALRUS_BUDGET_TEST_APPENDS", 256);  // 1 GiB
  NeverReadingRun run;
  ASSERT_NO_FATAL_FAILURE(
      RunNeverReadingStream({absl::StrCat("WALRUS_STREAM_BUDGET_BYTES=", budget)}, appends, &run));
  EXPECT_EQ(run.acks, appends);
  EXPECT_GE(run.most_held, 0) << "walrus_append_held_bytes missing";
  EXPECT_LE(run.most_held, double(budget + kOneAppendBytes))
      << "the stream took more than its budget and one append";
  // Beyond the budget: the committer's encoded batch (--max-batch-bytes,
  // 16 MiB by default), gRPC's buffers, and the pages jemalloc keeps for 10 s
  // after they are freed (docs/benchmarks.md: ~90-110 MiB under this load).
  // Under a sanitizer the daemon's allocator keeps freed memory in a
  // quarantine (256 MiB for ASan), so RSS says nothing there; the held-bytes
  // gauge above still bounds what the stream took.
  if (!kSanitizerBuild) {
    EXPECT_LE(run.rss_peak - run.rss_before, budget + 16 * kMiB + 64 * kMiB + 128 * kMiB)
        << "walrusd read appends faster than it made them durable, past its stream budget";
  }
}

TEST(ResourceBounds, AppendStream_DaemonBudgetBelowStreamBudget_StreamWaitsForDaemonBudget) {
  const uint64_t budget = 16 * kMiB;
  NeverReadingRun run;
  ASSERT_NO_FATAL_FAILURE(
      RunNeverReadingStream({"WALRUS_STREAM_BUDGET_BYTES=1073741824",
                             absl::StrCat("WALRUS_APPEND_BUDGET_BYTES=", budget)},
                            64, &run));
  EXPECT_EQ(run.acks, 64u);
  EXPECT_GE(run.most_held, 0) << "walrus_append_held_bytes missing";
  EXPECT_LE(run.most_held, double(budget + kOneAppendBytes))
      << "the streams took more than the daemon's budget and one append";
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

// A ReadAll whose client takes the first message and then nothing more.
struct StalledRead {
  std::unique_ptr<v1::WAL::Stub> stub;
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<v1::ReadAllResponse>> reader;
  v1::ReadAllResponse first;
};

// Many readers of a large log, each reading only the first message: walrusd
// used to decode the whole log for each call before sending anything (about
// 1.3 times the log's size per call). Streamed, a call holds one message and
// one read window. WALRUS_READALL_TEST_MIB sets the log's size (500 for the
// figure in docs/benchmarks.md), WALRUS_READALL_TEST_ENTRY_BYTES the size of
// its entries (small entries: memory must not grow with their number either).
TEST(ResourceBounds, ReadAll_ManyClientsReadingOnlyTheFirstMessage_RssIncreaseBounded) {
  if (kSanitizerBuild) GTEST_SKIP() << "RSS under a sanitizer says nothing about walrusd's";
  TempDir tmp;
  const int readers = EnvCount("WALRUS_READALL_TEST_READERS", 16);
  const uint64_t mib = EnvCount("WALRUS_READALL_TEST_MIB", 128);
  const uint64_t entry_bytes = EnvCount("WALRUS_READALL_TEST_ENTRY_BYTES", kMiB);
  Daemon daemon(tmp.Sub("data"));
  std::vector<std::string> prefix = {"/usr/bin/env", absl::StrCat("WALRUS_READ_WORKERS=", readers)};
  for (std::string& conf : MallocConf()) prefix.push_back(conf);
  daemon.set_command_prefix(prefix);
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  const uint64_t count = FillLog(daemon.stub(), mib, entry_bytes);
  ASSERT_GT(count, 0u);
  const uint64_t before = SampleProcess(daemon.pid()).rss_bytes;
  ASSERT_GT(before, 0u) << "cannot read /proc/" << daemon.pid() << "/status";
  {
    // How long one reader alone waits for its first message (a figure, not a
    // bound: the read resolves the whole log before it sends an entry).
    StalledRead alone;
    alone.stub = OwnConnectionStub(daemon);
    const auto asked = std::chrono::steady_clock::now();
    alone.reader = alone.stub->ReadAll(&alone.context, v1::ReadAllRequest());
    ASSERT_TRUE(alone.reader->Read(&alone.first)) << alone.reader->Finish().error_message();
    std::printf("one ReadAll alone: first message after %.1f ms\n",
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - asked)
                    .count());
    alone.context.TryCancel();
    (void)alone.reader->Finish();
  }

  std::vector<std::unique_ptr<StalledRead>> reads;
  for (int i = 0; i < readers; ++i) {
    auto read = std::make_unique<StalledRead>();
    read->stub = OwnConnectionStub(daemon);
    read->reader = read->stub->ReadAll(&read->context, v1::ReadAllRequest());
    reads.push_back(std::move(read));
  }
  uint64_t peak = before;
  int started = 0;
  for (auto& read : reads) {
    ASSERT_TRUE(read->reader->Read(&read->first)) << read->reader->Finish().error_message();
    EXPECT_TRUE(read->first.has_header());
    ++started;
    peak = std::max(peak, SampleProcess(daemon.pid()).rss_bytes);
  }
  // Every call is streaming now and waits for its client; give the
  // workers time to read ahead as far as they would.
  for (int i = 0; i < 20; ++i) {
    peak = std::max(peak, SampleProcess(daemon.pid()).rss_bytes);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf(
      "%d ReadAll of a %llu MiB log of %llu entries, each reading one message: RSS %.1f MiB "
      "before, peak %.1f MiB (+%.1f MiB)\n",
      started, static_cast<unsigned long long>(mib), static_cast<unsigned long long>(count),
      double(before) / kMiB, double(peak) / kMiB, double(peak - before) / kMiB);
  EXPECT_EQ(started, readers);
  EXPECT_LE(peak - before, 256 * kMiB) << "memory grows with the log's size";
  // The readers that do go on read the whole log.
  v1::ReadAllResponse response;
  uint64_t entries = reads[0]->first.entries_size();
  while (reads[0]->reader->Read(&response)) entries += response.entries_size();
  EXPECT_TRUE(reads[0]->reader->Finish().ok());
  EXPECT_EQ(entries, count);
  for (size_t i = 1; i < reads.size(); ++i) reads[i]->context.TryCancel();
}

// A ReadAll whose client stops reading holds a read worker and pins the
// segments it reads (so a purge cannot take them away mid-stream): the stall
// timeout cancels it and frees both.
TEST(ResourceBounds, ReadAll_ClientStopsReading_CancelledAfterStallTimeoutAndWorkerFreed) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"));
  daemon.set_command_prefix({"/usr/bin/env", "WALRUS_BACKUP_STALL_TIMEOUT=1s",
                             "WALRUS_READ_WORKERS=1", "WALRUS_READ_QUEUE_TIMEOUT=300ms"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  FillLog(daemon.stub(), 64);
  auto read = std::make_unique<StalledRead>();
  read->stub = OwnConnectionStub(daemon);
  read->reader = read->stub->ReadAll(&read->context, v1::ReadAllRequest());
  ASSERT_TRUE(read->reader->Read(&read->first));
  // The one worker streams the stalled read: Status, which needs a worker
  // too, is refused meanwhile, and the segments are pinned.
  grpc::ClientContext status_context;
  v1::StatusResponse status;
  EXPECT_EQ(daemon.stub()->Status(&status_context, v1::StatusRequest(), &status).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Eventually([&] {
    grpc::ClientContext context;
    v1::StatusResponse response;
    if (!daemon.stub()->Status(&context, v1::StatusRequest(), &response).ok()) return false;
    for (const v1::SegmentStatus& segment : response.segments()) {
      if (segment.pinned()) return false;
    }
    return true;
  })) << "a ReadAll whose client reads nothing keeps its worker and pin";
  v1::ReadAllResponse response;
  while (read->reader->Read(&response)) {
  }
  EXPECT_EQ(read->reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace walrus::testing
