// SIGTERM under load: a pipelined appender keeps a deep window of appends in
// flight on one AppendStream (plus a reader of the log) when walrusd gets
// SIGTERM. Every acknowledged entry must be durable and intact, the log must
// be clean (no torn tail: the drain syncs what it took), and the daemon must
// exit 0 having drained every call itself (it never reaches the drain
// deadline, after which it would cancel calls). How long the exit takes is
// measured and printed, not asserted.
//
// WALRUS_SIGTERM_ROUNDS (default 3) repeats it on the same directory.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <thread>

#include "core/verify.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

int Rounds() { return EnvCount("WALRUS_SIGTERM_ROUNDS", 3); }

// Entry i's data, so a reader can check every byte it gets back.
std::string DataFor(uint64_t index) { return IndexedData("sigterm", index, 64, 300); }

v1::AppendRequest AppendOf(uint64_t first, uint64_t count) {
  return IndexedAppend("sigterm", first, count, 64, 300);
}

TEST(Shutdown, SigtermUnderPipelinedLoad_EveryAckDurable_CleanLog_DrainedExitZero) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--segment-size-bytes", "1048576"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "sigterm").ok());
  uint64_t acked = 0;
  double slowest = 0;
  for (int round = 0; round < Rounds(); ++round) {
    if (round > 0) {
      ASSERT_TRUE(daemon.Start()) << "round " << round << ":\n" << daemon.log();
    }
    const uint64_t start = acked;
    std::atomic<uint64_t> acked_now{start};
    std::atomic<bool> out_of_order{false};
    std::atomic<bool> stop_reading{false};
    std::atomic<bool> appender_done{false};
    std::thread appender([&] {
      auto stub = daemon.NewStub();
      grpc::ClientContext context;
      auto stream = stub->AppendStream(&context);
      std::atomic<bool> stream_ended{false};
      std::thread reader([&] {
        v1::AppendResponse response;
        // Acknowledgements carry the log's last index: each one must be
        // past the one before it.
        while (stream->Read(&response)) {
          if (response.last_index() <= acked_now.load()) out_of_order = true;
          acked_now = response.last_index();
        }
        stream_ended = true;
      });
      for (uint64_t next = start + 1;; next += 8) {
        if (!stream->Write(AppendOf(next, 8))) break;
        // A deep window: up to 1024 entries sent but not yet acknowledged.
        while (next > acked_now.load() + 1024 && !stream_ended) std::this_thread::yield();
        if (stream_ended) break;
      }
      reader.join();
      (void)stream->Finish();
      appender_done = true;
    });
    // Readers of the log add load on the daemon while it drains.
    std::thread log_reader([&] {
      auto stub = daemon.NewStub();
      while (!stop_reading) (void)GetStatus(stub.get());
    });
    // Load first: SIGTERM once a few thousand entries went through.
    while (acked_now.load() < start + 3000 && !appender_done) std::this_thread::yield();
    ASSERT_FALSE(appender_done.load()) << "the stream ended before SIGTERM:\n" << daemon.log();
    auto signalled = std::chrono::steady_clock::now();
    int code = daemon.Signal(SIGTERM, 30);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
    appender.join();
    stop_reading = true;
    log_reader.join();
    ASSERT_EQ(code, 0) << "round " << round << ":\n" << daemon.log();
    EXPECT_EQ(daemon.log().find("calls still in flight"), std::string::npos)
        << "round " << round << ": the drain hit its deadline and cancelled calls:\n"
        << daemon.log();
    EXPECT_FALSE(out_of_order.load()) << "acknowledgements out of order";
    slowest = std::max(slowest, seconds);
    acked = acked_now.load();

    // The directory as the daemon left it: clean, every acknowledged entry
    // intact (later, unacknowledged ones may be there too).
    absl::StatusOr<VerifyReport> report = Verify(PosixFs(), daemon.wal_dir());
    ASSERT_TRUE(report.ok()) << report.status();
    ASSERT_EQ(report->outcome, VerifyReport::kClean)
        << "round " << round << ": " << report->Describe();
    absl::StatusOr<std::unique_ptr<Wal>> wal =
        Wal::OpenForRead(daemon.wal_dir(), walpb::Snapshot(), WalOptions());
    ASSERT_TRUE(wal.ok()) << wal.status();
    absl::StatusOr<ReadAllResult> read = (*wal)->ReadAll();
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_GE(read->entries.size(), acked) << "round " << round << ": acknowledged entries lost";
    for (uint64_t i = 0; i < read->entries.size(); ++i) {
      ASSERT_EQ(read->entries[i].index(), i + 1) << "round " << round;
      ASSERT_EQ(read->entries[i].data(), DataFor(i + 1)) << "round " << round << " entry " << i + 1;
    }
    acked = read->entries.size();
  }
  std::printf("SIGTERM under load: %d rounds, %lu entries acknowledged, slowest exit %.3f s\n",
              Rounds(), static_cast<unsigned long>(acked), slowest);
}

}  // namespace
}  // namespace walrus::testing
