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
#include <functional>
#include <random>
#include <thread>

#include "client/client.h"
#include "client/local_appender.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

int Kills() { return EnvCount("WALRUS_KILLS", 50); }

// Reads the log back from a restarted daemon and checks that it holds every
// index up to `acked`, each entry intact; returns its length.
uint64_t CheckLogAfterKill(Daemon& daemon, uint64_t acked, int kill);

// Sets *acked_now to the highest index acknowledged durable so far.
using Appender = std::function<void(uint64_t first, std::atomic<uint64_t>* acked_now,
                                    const std::atomic<bool>* stop)>;

// One round: `append` runs on its own thread from index acked + 1 until told
// to stop; once the round's first acknowledgement arrived, kill -9 after a
// further random 0-150 ms. Returns the highest index acknowledged; a round
// that acknowledged nothing is a failure (it would prove nothing).
uint64_t KillDuringRound(Daemon& daemon, std::mt19937_64& rng, uint64_t acked, int kill,
                         const Appender& append) {
  std::atomic<uint64_t> acked_now{acked};
  std::atomic<bool> stop{false};
  std::thread appender([&] { append(acked + 1, &acked_now, &stop); });
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (acked_now.load() == acked && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
  daemon.Kill9();
  stop = true;
  appender.join();
  EXPECT_GT(acked_now.load(), acked)
      << "kill " << kill << ": nothing was acknowledged in this round:\n"
      << daemon.log();
  return acked_now.load();
}

// Entry i's data, so a reader can check every byte it gets back.
std::string DataFor(uint64_t index) { return IndexedData("entry", index, 100, 200); }

v1::AppendRequest AppendOf(uint64_t first, uint64_t count) {
  return IndexedAppend("entry", first, count, 100, 200);
}

// `kills` rounds of KillDuringRound, each followed by a restart and the
// check that every acknowledged entry reads back; the log's length at the
// end (a failure has been reported if it returns early).
uint64_t KillRounds(Daemon& daemon, std::mt19937_64& rng, int kills, const Appender& append) {
  uint64_t acked = 0;
  for (int kill = 0; kill < kills; ++kill) {
    acked = KillDuringRound(daemon, rng, acked, kill, append);
    if (::testing::Test::HasFailure()) return acked;
    if (!daemon.Start()) {
      ADD_FAILURE() << "restart after kill " << kill << ":\n" << daemon.log();
      return acked;
    }
    acked = CheckLogAfterKill(daemon, acked, kill);
    if (::testing::Test::HasFailure()) return acked;
  }
  return acked;
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
    const uint64_t round_start = acked;
    acked = KillDuringRound(
        daemon, rng, acked, kill,
        [&](uint64_t first, std::atomic<uint64_t>* acked_now, const std::atomic<bool>* stop) {
          auto stub = daemon.NewStub();
          grpc::ClientContext context;
          auto stream = stub->AppendStream(&context);
          std::thread reader([&] {
            v1::AppendResponse response;
            // The log's last index once this append is durable.
            while (stream->Read(&response)) *acked_now = response.last_index();
          });
          for (uint64_t next = first; !*stop; next += 4) {
            if (!stream->Write(AppendOf(next, 4))) break;
            // Keep a window in flight, not an unbounded backlog.
            while (!*stop && next > acked_now->load() + 256) {
              std::this_thread::yield();
            }
          }
          context.TryCancel();
          reader.join();
          (void)stream->Finish();
        });
    if (::testing::Test::HasFailure()) return;
    acknowledged_total += acked - round_start;

    auto started = std::chrono::steady_clock::now();
    ASSERT_TRUE(daemon.Start()) << "restart after kill " << kill << ":\n" << daemon.log();
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    recovery_max = std::max(recovery_max, seconds);
    recovery_total += seconds;

    // Unacknowledged entries may have survived; the next appends continue
    // after whatever the log holds.
    acked = CheckLogAfterKill(daemon, acked, kill);
    if (::testing::Test::HasFailure()) return;
  }
  std::printf(
      "kills: %d, entries acknowledged: %lu (each read back after the kill that followed), "
      "log length at the end: %lu, recovery (start to serving) avg %.3f s, max %.3f s\n",
      kills, static_cast<unsigned long>(acknowledged_total), static_cast<unsigned long>(acked),
      recovery_total / kills, recovery_max);
}

uint64_t CheckLogAfterKill(Daemon& daemon, uint64_t acked, int kill) {
  ReadBack back = ReadAll(daemon.stub());
  EXPECT_TRUE(back.status.ok()) << "kill " << kill << ": " << back.status.error_message();
  EXPECT_GE(back.entries.size(), acked) << "kill " << kill << ": acknowledged entries lost";
  for (uint64_t i = 0; i < back.entries.size(); ++i) {
    if (back.entries[i].index() != i + 1 || back.entries[i].data() != DataFor(i + 1)) {
      ADD_FAILURE() << "kill " << kill << ": entry " << i + 1 << " reads back as index "
                    << back.entries[i].index() << " with other data";
      break;
    }
  }
  return back.entries.size();
}

// The same through the C++ client's AppendStream, one entry per append, so
// the client coalesces the appends queued behind each message: every append
// acknowledged (each by its own sequence, from a merged message's one
// acknowledgement) must survive the kill.
TEST(KillLoop, Kill9WhileTheClientCoalesces_EveryAcknowledgedAppendSurvives) {
  TempDir tmp;
  Daemon daemon(tmp.Sub("data"), {"--segment-size-bytes", "262144"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "kill-loop").ok());
  std::mt19937_64 rng(7);
  uint64_t appends_total = 0, messages_total = 0;
  const int kills = std::max(1, Kills() / 5);
  const uint64_t acked = KillRounds(
      daemon, rng, kills,
      [&](uint64_t first, std::atomic<uint64_t>* acked_now, const std::atomic<bool>* stop) {
        ClientOptions options;
        options.call_timeout = std::chrono::seconds(10);
        absl::StatusOr<std::unique_ptr<WalClient>> client =
            WalClient::Connect(daemon.target(), options);
        if (!client.ok()) return;
        AppendStreamOptions stream_options;
        stream_options.window = 128;
        // Append sequence s carries entry first + s - 1: its acknowledgement
        // says that entry (and every one before it) is durable.
        stream_options.on_ack = [&](const AppendAck& ack) {
          *acked_now = first + ack.sequence - 1;
        };
        std::unique_ptr<AppendStream> stream = (*client)->OpenAppendStream(stream_options);
        for (uint64_t next = first; !*stop; ++next) {
          // Entries only, as Raft sends them between hard-state changes: a
          // hard state would end each message (see CanCoalesce).
          v1::AppendRequest append = AppendOf(next, 1);
          append.clear_hard_state();
          if (!stream->Send(std::move(append)).ok()) break;
        }
        stream->Cancel();
        (void)stream->Finish();
        appends_total += stream->sent();
        messages_total += stream->messages_sent();
      });
  if (::testing::Test::HasFailure()) return;
  // The appends really went coalesced: far fewer messages than appends
  // (appends still queued at a kill were never written, a few per round).
  EXPECT_LT(messages_total * 2, appends_total);
  std::printf("kills: %d, appends sent: %lu in %lu messages, log length at the end: %lu\n", kills,
              static_cast<unsigned long>(appends_total), static_cast<unsigned long>(messages_total),
              static_cast<unsigned long>(acked));
}

// The same through the local append socket (walrusd --local-socket):
// pipelined frames, one entry each, acknowledged by the log's last index.
// Each restart also finds the killed daemon's socket file still there and
// must take it over.
TEST(KillLoop, Kill9WhileAppendingOnTheLocalSocket_EveryAcknowledgedAppendSurvives) {
  TempDir tmp;
  const std::string socket = tmp.Sub("append.sock");
  Daemon daemon(tmp.Sub("data"), {"--segment-size-bytes", "262144", "--local-socket", socket});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "kill-loop").ok());
  std::mt19937_64 rng(11);
  uint64_t appends_total = 0;
  const int kills = std::max(1, Kills() / 5);
  const uint64_t acked = KillRounds(
      daemon, rng, kills,
      [&](uint64_t first, std::atomic<uint64_t>* acked_now, const std::atomic<bool>* stop) {
        LocalAppenderOptions options;
        options.window = 128;
        options.on_ack = [&](const AppendAck& ack) { *acked_now = ack.last_index; };
        absl::StatusOr<std::unique_ptr<LocalAppender>> appender =
            LocalAppender::Connect(socket, options);
        EXPECT_TRUE(appender.ok()) << appender.status();
        if (!appender.ok()) return;
        for (uint64_t next = first; !*stop; ++next) {
          if (!(*appender)->Send(AppendOf(next, 1)).ok()) break;
        }
        appends_total += (*appender)->sent();
      });
  if (::testing::Test::HasFailure()) return;
  std::printf("kills: %d, appends sent on the local socket: %lu, log length at the end: %lu\n",
              kills, static_cast<unsigned long>(appends_total), static_cast<unsigned long>(acked));
}

}  // namespace
}  // namespace walrus::testing
