// The soak: a real walrusd under everything a Raft node and its operators do
// at once, for WALRUS_SOAK_SECONDS (60 by default; hours for the long run),
// while its RSS, threads and open files are sampled from /proc every second.
//
// - one writer: an AppendStream at a steady rate (small entries every 10 ms,
//   a 1 MiB entry every 500 ms) whose acknowledgements it does not read for a
//   whole cycle, then reads them all; after each cycle a snapshot, ReleaseTo
//   and (--retain-released-segments 0, small segments) a purge;
// - two readers: ReadAll from the newest snapshot (a purge may take its
//   segment away between the two: that failure is counted, not fatal);
// - online backups with walrusctl, one after the other;
// - a client that sends appends and never reads their acknowledgements.
//
// Bounds (they do not depend on how many entries were appended): the largest
// figure of the last third of the run is within a margin of the largest of the
// first third, and under absolute caps.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <mutex>
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

using Clock = std::chrono::steady_clock;
constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kRssMargin = 64 * kMiB;
constexpr uint64_t kRssCap = 768 * kMiB;
constexpr int kThreadMargin = 4;
constexpr int kThreadCap = 64;
constexpr int kFdMargin = 16;
constexpr int kFdCap = 256;

int RunCtl(const std::string& args) {
  std::string command = absl::StrCat(WALRUS_CTL_PATH, " ", args, " >/dev/null 2>&1");
  int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

grpc::Status ReleaseTo(v1::WAL::Stub* stub, uint64_t index) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::ReleaseToRequest request;
  request.set_index(index);
  v1::ReleaseToResponse response;
  return stub->ReleaseTo(&context, request, &response);
}

// 1, 2, 5, 10, 20, 50, ... times a power of ten.
uint64_t NextMilestone(uint64_t m) {
  uint64_t decade = 1;
  while (m / decade >= 10) decade *= 10;
  const uint64_t lead = m / decade;
  return lead == 1 ? 2 * decade : lead == 2 ? 5 * decade : 10 * decade;
}

struct Figures {
  uint64_t rss = 0;
  int threads = 0;
  int fds = 0;
};

Figures MaxOf(const std::vector<ProcSample>& samples, size_t from, size_t to) {
  Figures f;
  for (size_t i = from; i < to; ++i) {
    f.rss = std::max(f.rss, samples[i].rss_bytes);
    f.threads = std::max(f.threads, samples[i].threads);
    f.fds = std::max(f.fds, samples[i].fds);
  }
  return f;
}

TEST(Soak, AppendsSnapshotsPurgesReadsBackups_ResourcesStayBounded) {
  const int seconds = EnvCount("WALRUS_SOAK_SECONDS", 60);
  const auto cycle = std::chrono::milliseconds(std::min(10'000, seconds * 1000 / 6));
  TempDir tmp;
  const int port = UnusedLoopbackPort();
  Daemon daemon(tmp.Sub("data"),
                {"--metrics-listen", absl::StrCat("127.0.0.1:", port), "--segment-size-bytes",
                 "4194304", "--retain-released-segments", "0"});
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ASSERT_TRUE(CreateWal(daemon.stub(), "soak").ok());

  const Clock::time_point end = Clock::now() + std::chrono::seconds(seconds);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> snapshot{0};  // newest snapshot saved (term 1)
  std::atomic<uint64_t> entries{0}, cycles{0}, reads_ok{0}, reads_failed{0}, backups_ok{0},
      backups_failed{0};
  std::string writer_error;

  std::thread writer([&] {
    uint64_t next = 1;
    while (Clock::now() < end) {
      grpc::ClientContext context;
      auto stream = daemon.stub()->AppendStream(&context);
      const Clock::time_point cycle_end = std::min(end, Clock::now() + cycle);
      uint64_t sent = 0;
      for (int tick = 0; Clock::now() < cycle_end; ++tick) {
        const bool large = tick % 50 == 0;
        v1::AppendRequest request = large ? MakeAppend(next, next, 1, next - 1, kMiB)
                                          : MakeAppend(next, next + 99, 1, next - 1, 64);
        next += large ? 1 : 100;
        request.set_sequence(++sent);
        if (!stream->Write(request)) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));  // the steady rate
      }
      stream->WritesDone();
      v1::AppendResponse ack;
      uint64_t acked = 0;
      while (stream->Read(&ack)) acked = ack.last_index();
      grpc::Status status = stream->Finish();
      if (!status.ok() || acked != next - 1) {
        writer_error = absl::StrCat("cycle ", cycles.load(), ": ", status.error_message(),
                                    "; acknowledged up to ", acked, " of ", next - 1);
        break;
      }
      entries = acked;
      if (!SaveSnapshot(daemon.stub(), acked, 1).ok() || !ReleaseTo(daemon.stub(), acked).ok()) {
        writer_error = absl::StrCat("snapshot or release at ", acked, " failed");
        break;
      }
      snapshot = acked;
      ++cycles;
    }
    stop = true;
  });
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&] {
      auto stub = daemon.NewStub();
      while (!stop) {
        const uint64_t from = snapshot;
        ReadBack read = ReadAll(stub.get(), from, from == 0 ? 0 : 1);
        ++(read.status.ok() ? reads_ok : reads_failed);
      }
    });
  }
  std::thread backups([&] {
    for (int i = 0; !stop; ++i) {
      const std::string dest = tmp.Sub(absl::StrCat("backup-", i));
      ++(RunCtl(absl::StrCat("--server ", daemon.target(), " backup ", dest)) == 0
             ? backups_ok
             : backups_failed);
      std::filesystem::remove_all(dest);
    }
  });

  // A client that never reads its acknowledgements: it sends hard states
  // already saved (acknowledged without a write) as fast as walrusd takes
  // them, until its stream budget holds it back for the rest of the run.
  std::atomic<uint64_t> unread_sent{0};
  grpc::ClientContext unread_context;
  std::thread unread([&] {
    auto stub = daemon.NewStub();
    auto stream = stub->AppendStream(&unread_context);
    v1::AppendRequest stale = MakeAppend(1, 0, 1, 0, 0);
    while (!stop) {
      stale.set_sequence(unread_sent + 1);
      if (!stream->Write(stale)) break;
      ++unread_sent;
    }
  });

  std::vector<ProcSample> samples;
  double held = 0;
  const Clock::time_point start = Clock::now();
  uint64_t milestone = 1'000'000;  // then 2 M, 5 M, 10 M, 20 M, ...
  while (!stop) {
    samples.push_back(SampleProcess(daemon.pid()));
    held = std::max(held, ScrapeMetric(port, "walrus_append_held_bytes"));
    if (entries >= milestone) {
      const ProcSample& now = samples.back();
      std::printf(
          "soak: %llu entries appended after %lld s: RSS %.1f MiB, %d threads, %d fds\n",
          static_cast<unsigned long long>(entries.load()),
          static_cast<long long>(
              std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - start).count()),
          double(now.rss_bytes) / kMiB, now.threads, now.fds);
      std::fflush(stdout);
      while (milestone <= entries) milestone = NextMilestone(milestone);
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));  // the sampling period
  }
  writer.join();
  unread_context.TryCancel();
  unread.join();
  for (std::thread& t : readers) t.join();
  backups.join();
  ASSERT_EQ(writer_error, "") << daemon.log();
  ASSERT_GE(samples.size(), 3u);

  const size_t third = samples.size() / 3;
  const Figures first = MaxOf(samples, 0, third);
  const Figures last = MaxOf(samples, samples.size() - third, samples.size());
  std::printf(
      "soak: %d s, %llu entries, %llu cycles, ReadAll %llu ok / %llu failed, backups %llu ok / "
      "%llu failed, most held by streams %.1f MiB, %llu appends sent and never read\n"
      "  first third: RSS %.1f MiB, %d threads, %d fds\n"
      "  last third:  RSS %.1f MiB, %d threads, %d fds\n",
      seconds, static_cast<unsigned long long>(entries.load()),
      static_cast<unsigned long long>(cycles.load()),
      static_cast<unsigned long long>(reads_ok.load()),
      static_cast<unsigned long long>(reads_failed.load()),
      static_cast<unsigned long long>(backups_ok.load()),
      static_cast<unsigned long long>(backups_failed.load()), held / kMiB,
      static_cast<unsigned long long>(unread_sent.load()), double(first.rss) / kMiB, first.threads,
      first.fds, double(last.rss) / kMiB, last.threads, last.fds);
  EXPECT_GE(cycles.load(), 2u);
  EXPECT_GT(reads_ok.load(), 0u);
  EXPECT_GT(backups_ok.load(), 0u);
  EXPECT_LE(last.rss, first.rss + kRssMargin) << "RSS grows with the entries appended";
  EXPECT_LE(last.threads, first.threads + kThreadMargin) << "threads grow";
  EXPECT_LE(last.fds, first.fds + kFdMargin) << "open files grow";
  EXPECT_LE(last.rss, kRssCap);
  EXPECT_LE(last.threads, kThreadCap);
  EXPECT_LE(last.fds, kFdCap);
  EXPECT_EQ(daemon.Signal(SIGTERM, 30), 0) << daemon.log();
}

}  // namespace
}  // namespace walrus::testing
