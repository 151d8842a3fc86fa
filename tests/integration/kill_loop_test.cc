// Kill loop: a real walrusd under a pipelined appender that records every
// acknowledged index; kill -9 at random moments, restart, check that every
// acknowledged entry reads back intact and that appends continue. Every round
// must acknowledge something before its kill (a round that acknowledges
// nothing proves nothing), so the kill comes a random time after the
// round's first acknowledgement.
//
// WALRUS_KILLS (default 50) sets the number of kills.
#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <random>
#include <thread>

#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

int Kills() { return EnvCount("WALRUS_KILLS", 50); }

// Entry i's data, so a reader can check every byte it gets back.
std::string DataFor(uint64_t index) { return IndexedData("entry", index, 100, 200); }

v1::AppendRequest AppendOf(uint64_t first, uint64_t count) {
  return IndexedAppend("entry", first, count, 100, 200);
}

TEST(KillLoop, Kill9AtRandomMoments_NoAcknowledgedEntryLost) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--segment-size-bytes", "262144"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "kill-loop").ok());
  std::mt19937_64 rng(42);
  uint64_t acked = 0;               // every index up to here was acknowledged durable
  uint64_t acknowledged_total = 0;  // acknowledgements received, over all rounds
  double recovery_max = 0, recovery_total = 0;
  const int kills = Kills();
  for (int kill = 0; kill < kills; ++kill) {
    std::atomic<uint64_t> acked_now{acked};
    std::atomic<bool> stop{false};
    std::thread appender([&] {
      auto stub = daemon.NewStub();
      grpc::ClientContext context;
      auto stream = stub->AppendStream(&context);
      std::thread reader([&] {
        v1::AppendResponse response;
        // The log's last index once this append is durable.
        while (stream->Read(&response)) acked_now = response.last_index();
      });
      for (uint64_t next = acked + 1; !stop; next += 4) {
        if (!stream->Write(AppendOf(next, 4))) break;
        // Keep a window in flight, not an unbounded backlog.
        while (!stop && next > acked_now.load() + 256) std::this_thread::yield();
      }
      context.TryCancel();
      reader.join();
      (void)stream->Finish();
    });
    const uint64_t round_start = acked;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (acked_now.load() == round_start && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::yield();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    daemon.Kill9();
    stop = true;
    appender.join();
    acked = acked_now.load();
    ASSERT_GT(acked, round_start) << "kill " << kill
                                  << ": nothing was acknowledged in this round:\n"
                                  << daemon.log();
    acknowledged_total += acked - round_start;

    auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(daemon.Start()) << "restart after kill " << kill << ":\n" << daemon.log();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    recovery_max = std::max(recovery_max, seconds);
    recovery_total += seconds;

    ReadBack back = ReadAll(daemon.stub());
    ASSERT_TRUE(back.status.ok()) << "kill " << kill << ": " << back.status.error_message();
    ASSERT_GE(back.entries.size(), acked) << "kill " << kill << ": acknowledged entries lost";
    for (uint64_t i = 0; i < back.entries.size(); ++i) {
      ASSERT_EQ(back.entries[i].index(), i + 1) << "kill " << kill;
      ASSERT_EQ(back.entries[i].data(), DataFor(i + 1)) << "kill " << kill << " entry " << i + 1;
    }
    // Unacknowledged entries may have survived; the next appends continue
    // after whatever the log holds.
    acked = back.entries.size();
  }
  std::printf(
      "kills: %d, entries acknowledged: %lu (each read back after the kill that followed), "
      "log length at the end: %lu, recovery (start to serving) avg %.3f s, max %.3f s\n",
      kills, static_cast<unsigned long>(acknowledged_total), static_cast<unsigned long>(acked),
      recovery_total / kills, recovery_max);
}

}  // namespace
}  // namespace walrus::testing
