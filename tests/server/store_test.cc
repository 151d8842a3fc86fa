// WalStore's committer under concurrency, in-process (so ThreadSanitizer sees
// every thread): appenders on many threads, readers and status pollers while
// the committer group-commits, segments cut in the background, and a
// shutdown racing the appenders. Label `concurrency`: .ci/run runs these under
// TSan.
#include <atomic>
#include <cerrno>
#include <future>
#include <mutex>
#include <thread>

#include "core/verify.h"
#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;

constexpr char kWalDir[] = "/data/wal";
constexpr size_t kDataBytes = 120;

// Entries [first, last] as an append with their CRCs.
LogAppend MakeAppend(uint64_t first, uint64_t last) {
  LogAppend append;
  for (raftpb::Entry& e : MakeEntries(first, last, 1, kDataBytes)) {
    *append.entries.Add() = std::move(e);
  }
  append.hard_state.set_term(1);
  append.hard_state.set_vote(1);
  return append;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.CreateDir("/data").ok());
    options_.wal_dir = kWalDir;
    options_.fs = &fs_;
    options_.segment_size = 32 * 1024;  // cuts (and background preparation) under load
    Open();
    std::promise<absl::StatusOr<bool>> created;
    store_->Create("meta", /*epoch=*/0, [&](absl::StatusOr<bool> r) { created.set_value(r); });
    absl::StatusOr<bool> result = created.get_future().get();
    ASSERT_TRUE(result.ok()) << result.status();
  }

  void Open() {
    RecoverySummary summary;
    absl::StatusOr<std::unique_ptr<WalStore>> store = WalStore::Open(options_, nullptr, &summary);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  // Every entry up to `acked` reads back intact from a freshly opened store.
  void ExpectDurableAfterReopen(uint64_t acked) {
    store_.reset();
    Open();
    absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
    ASSERT_TRUE(read.ok()) << read.status();
    ASSERT_GE(read->entries.size(), acked) << "acknowledged entries lost";
    for (uint64_t i = 0; i < read->entries.size(); ++i) {
      ASSERT_EQ(read->entries[i].index(), i + 1);
      ASSERT_EQ(read->entries[i].data(), MakeEntries(i + 1, i + 1, 1, kDataBytes)[0].data());
    }
    absl::StatusOr<VerifyReport> report = Verify(&fs_, kWalDir);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
  }

  MemFileSystem fs_;
  StoreOptions options_;
  std::unique_ptr<WalStore> store_;
};

// Appenders take the next index range under a lock and submit under it, so
// the log stays contiguous while the submissions themselves interleave with
// the committer, readers and pollers.
class Appenders {
 public:
  explicit Appenders(WalStore* store) : store_(store) {}

  // Submits one append of 1..4 entries; false once the store refuses.
  bool SubmitOne(uint64_t seed) {
    std::lock_guard<std::mutex> lock(mu_);
    if (refused_) return false;
    uint64_t first = next_;
    uint64_t last = first + seed % 4;
    next_ = last + 1;
    // Every other append may be committed on this thread when the committer
    // is idle (a unary Append's way), so inline and queued commits interleave.
    const WalStore::Commit commit =
        seed % 2 == 0 ? WalStore::Commit::kInlineIfIdle : WalStore::Commit::kQueued;
    store_->Append(
        MakeAppend(first, last),
        [this, last](absl::StatusOr<uint64_t> r) {
          // Completions run on the committing thread, in submission order.
          if (r.ok()) {
            EXPECT_EQ(*r, last);
            EXPECT_GT(last, acked_.load()) << "acknowledgements out of order";
            acked_ = last;
          } else {
            EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable) << r.status();
            failed_.fetch_add(1);
          }
          answers_.fetch_add(1);
        },
        nullptr, commit);
    ++submissions_;
    return true;
  }

  void Refuse() {
    std::lock_guard<std::mutex> lock(mu_);
    refused_ = true;
  }
  uint64_t acked() const { return acked_.load(); }
  int failed() const { return failed_.load(); }
  uint64_t submitted() {
    std::lock_guard<std::mutex> lock(mu_);
    return next_ - 1;
  }
  // Appends answered (acknowledged or refused) / submitted.
  int answers() const { return answers_.load(); }
  int submissions() {
    std::lock_guard<std::mutex> lock(mu_);
    return submissions_;
  }

 private:
  WalStore* store_;
  std::mutex mu_;
  uint64_t next_ = 1;
  bool refused_ = false;
  std::atomic<uint64_t> acked_{0};
  std::atomic<int> failed_{0};
  std::atomic<int> answers_{0};
  int submissions_ = 0;  // guarded by mu_
};

// Appends `request` and waits for its answer.
absl::StatusOr<uint64_t> AppendAndWait(WalStore* store, LogAppend append) {
  std::promise<absl::StatusOr<uint64_t>> done;
  store->Append(std::move(append),
                [&](absl::StatusOr<uint64_t> r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

// A real fdatasync EIO cannot be produced without a faulty device (and this
// kernel has no device-mapper for dm-error/dm-flakey), so this runs on
// MemFileSystem's model of Linux's page cache after a failed fdatasync: the
// unwritten pages stay readable until the cache is dropped. A restart (no
// power failure: the cache survives the process) must rebuild the log from
// what the disk has, or it acknowledges new appends on top of bytes that are
// not there.
TEST_F(StoreTest, RestartAfterFailedFsync_RecoversWhatTheDiskHoldsNotThePageCache) {
  ASSERT_TRUE(AppendAndWait(store_.get(), MakeAppend(1, 5)).ok());
  // The tail segment's sync, not the background preparer's (a .tmp file).
  fs_.FailNext(FsOp::kSync, EIO, 1, ".wal");
  absl::StatusOr<uint64_t> failed = AppendAndWait(store_.get(), MakeAppend(6, 9));
  ASSERT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  ASSERT_TRUE(store_->Status().fail_stop);

  store_.reset();  // the operator restarts walrusd
  Open();
  EXPECT_EQ(store_->Status().last_index, 5u) << "recovered entries the disk never got";
  absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(testing::Describe(read->entries), "1/1 2/1 3/1 4/1 5/1");
  // The client resends; everything acknowledged survives a power failure.
  ASSERT_TRUE(AppendAndWait(store_.get(), MakeAppend(6, 9)).ok());
  store_.reset();
  ASSERT_TRUE(fs_.SyncDir("/").ok());  // the fixture's mkdir of /data
  fs_.Crash(CrashOptions());
  ExpectDurableAfterReopen(9);
}

TEST_F(StoreTest, ConcurrentAppendersReadersAndPollers_EveryAckDurableAndReadsSeeTheAckedPrefix) {
  Appenders appenders(store_.get());
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 150; ++i) ASSERT_TRUE(appenders.SubmitOne(i * 7 + t));
    });
  }
  std::atomic<int> reads{0};
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&] {
      while (!stop) {
        uint64_t acked_before = appenders.acked();
        absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
        ASSERT_TRUE(read.ok()) << read.status();
        ASSERT_GE(read->entries.size(), acked_before) << "a read missed acknowledged entries";
        for (uint64_t i = 0; i < read->entries.size(); ++i) {
          ASSERT_EQ(read->entries[i].index(), i + 1) << "a read saw a non-contiguous log";
        }
        reads.fetch_add(1);
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop) {
      StoreStatus status = store_->Status();
      EXPECT_FALSE(status.fail_stop);
      EXPECT_LE(status.last_index, appenders.submitted());
    }
  });
  for (int t = 0; t < 4; ++t) threads[t].join();
  // Wait for the committer to acknowledge everything submitted.
  std::promise<void> flushed;  // queued behind every append
  store_->ReleaseTo(1, /*epoch=*/0, [&](absl::StatusOr<ReleaseResult>) { flushed.set_value(); });
  flushed.get_future().get();
  stop = true;
  for (size_t t = 4; t < threads.size(); ++t) threads[t].join();
  EXPECT_EQ(appenders.failed(), 0);
  EXPECT_EQ(appenders.acked(), appenders.submitted());
  EXPECT_GT(reads.load(), 0);
  EXPECT_GE(store_->Status().segments.size(), 2u) << "no segment cut under load";
  ExpectDurableAfterReopen(appenders.acked());
}

// A lone writer with an idle committer commits on its own thread: the answer
// is there when Append returns. The Wal is free again before any answer goes
// out, so the writer's next append always finds the committer idle: only the
// first may go through the queue (if the committer was busy then).
TEST_F(StoreTest, InlineIfIdle_LoneWriter_CommitsOnItsOwnThreadAndIsDurable) {
  int inline_answers = 0;
  for (uint64_t i = 1; i <= 100; ++i) {
    std::promise<absl::StatusOr<uint64_t>> done;
    std::thread::id answered_on;
    store_->Append(
        MakeAppend(i, i),
        [&](absl::StatusOr<uint64_t> r) {
          answered_on = std::this_thread::get_id();
          done.set_value(std::move(r));
        },
        nullptr, WalStore::Commit::kInlineIfIdle);
    absl::StatusOr<uint64_t> result = done.get_future().get();
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ(*result, i);
    if (answered_on == std::this_thread::get_id()) ++inline_answers;
  }
  EXPECT_GE(inline_answers, 99);
  ExpectDurableAfterReopen(100);
}

TEST_F(StoreTest, ShutdownRacingAppenders_AcknowledgedAreDurable_RestFailUnavailable) {
  Appenders appenders(store_.get());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = 0; i < 400; ++i) {
        if (!appenders.SubmitOne(i * 5 + t)) return;
      }
    });
  }
  // Shut down once some appends are through, while the others keep coming.
  while (appenders.acked() < 100) std::this_thread::yield();
  store_->Shutdown();
  appenders.Refuse();
  for (std::thread& t : threads) t.join();
  EXPECT_GE(appenders.acked(), 100u);
  // Every submitted append was answered, acknowledged or refused, by the time
  // Shutdown returned (later ones at once).
  EXPECT_EQ(appenders.answers(), appenders.submissions());
  ExpectDurableAfterReopen(appenders.acked());
}

}  // namespace
}  // namespace walrus
