// The committer's durability promise checked the way a power failure tests
// it: pipelined streams share group-commit batches while the in-memory file
// system takes a crash image (unsynced data dropped or torn) at a chosen sync;
// a fresh store recovered from that image must hold every append that had
// been acknowledged when the image was taken. Reopening the same file system
// would prove nothing: its page cache still holds what was never synced.
//
// Also: a failed fdatasync in a batch shared by several streams refuses every
// op of the batch and everything queued behind it, and reads while
// fail-stopped never serve the unsynced batch; a failed directory fsync at a
// segment cut fail-stops.
#include <algorithm>
#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;

constexpr char kWalDir[] = "/data/wal";
constexpr size_t kDataBytes = 100;

LogAppend MakeAppend(uint64_t first, uint64_t last) {
  LogAppend append;
  for (raftpb::Entry& e : MakeEntries(first, last, 1, kDataBytes)) {
    *append.entries.Add() = std::move(e);
  }
  append.hard_state.set_term(1);
  append.hard_state.set_vote(1);
  return append;
}

absl::StatusOr<std::unique_ptr<WalStore>> OpenStore(MemFileSystem* fs) {
  StoreOptions options;
  options.wal_dir = kWalDir;
  options.fs = fs;
  options.segment_size = 16 * 1024;  // cuts, and prepared segments, under load
  options.max_batch_delay = std::chrono::microseconds(200);
  RecoverySummary summary;
  return WalStore::Open(options, nullptr, &summary);
}

absl::Status CreateLog(WalStore* store) {
  std::promise<absl::StatusOr<bool>> created;
  store->Create("meta", /*epoch=*/0, [&](absl::StatusOr<bool> r) { created.set_value(r); });
  return created.get_future().get().status();
}

// Several pipelined streams over one log: each stream keeps up to `window`
// appends in flight and has its own chain (as an AppendStream does). Index
// ranges are handed out and submitted under one lock, so the queue order is
// the index order and the log stays contiguous while the streams'
// submissions interleave in the committer's batches.
class Streams {
 public:
  Streams(WalStore* store, int streams, int window) : store_(store), window_(window) {
    for (int i = 0; i < streams; ++i) chains_.push_back(std::make_shared<std::atomic<bool>>(false));
  }

  // Runs every stream until `entries` entries were submitted or the store
  // refuses; returns when every submission was answered.
  void Run(uint64_t entries) {
    std::vector<std::thread> threads;
    for (size_t s = 0; s < chains_.size(); ++s) {
      threads.emplace_back([this, s, entries] {
        std::atomic<int> in_flight{0};
        for (uint64_t i = 0;; ++i) {
          while (in_flight.load() >= window_) std::this_thread::yield();
          if (!SubmitOne(s, 1 + (i + s) % 3, entries, &in_flight)) break;
        }
        while (in_flight.load() > 0) std::this_thread::yield();
      });
    }
    for (std::thread& t : threads) t.join();
  }

  uint64_t acked() const { return acked_.load(); }
  int failed() const { return failed_.load(); }

 private:
  bool SubmitOne(size_t stream, uint64_t count, uint64_t limit, std::atomic<int>* in_flight) {
    std::lock_guard<std::mutex> lock(mu_);
    if (next_ > limit || chains_[stream]->load()) return false;
    const uint64_t first = next_;
    const uint64_t last = first + count - 1;
    next_ = last + 1;
    in_flight->fetch_add(1);
    store_->Append(
        MakeAppend(first, last),
        [this, last, in_flight](absl::StatusOr<uint64_t> r) {
          // Completions run on the committer thread, in queue order.
          if (r.ok()) {
            EXPECT_GT(last, acked_.load()) << "acknowledgements out of order";
            acked_ = last;
          } else {
            failed_.fetch_add(1);
          }
          in_flight->fetch_sub(1);
        },
        chains_[stream]);
    return true;
  }

  WalStore* store_;
  const int window_;
  std::vector<std::shared_ptr<std::atomic<bool>>> chains_;
  std::mutex mu_;
  uint64_t next_ = 1;  // guarded by mu_
  std::atomic<uint64_t> acked_{0};
  std::atomic<int> failed_{0};
};

// Every entry up to `acked` reads back, contiguous and intact, from a store
// recovered on `image`.
void ExpectRecoveredHoldsAcked(MemFileSystem* image, uint64_t acked, const std::string& what) {
  absl::StatusOr<std::unique_ptr<WalStore>> store = OpenStore(image);
  ASSERT_TRUE(store.ok()) << what << ": recovery failed: " << store.status();
  absl::StatusOr<ReadAllResult> read = (*store)->ReadAll(walpb::Snapshot());
  ASSERT_TRUE(read.ok()) << what << ": " << read.status();
  ASSERT_GE(read->entries.size(), acked) << what << ": acknowledged entries lost";
  for (uint64_t i = 0; i < read->entries.size(); ++i) {
    ASSERT_EQ(read->entries[i].index(), i + 1) << what;
    ASSERT_EQ(read->entries[i].data(), MakeEntries(i + 1, i + 1, 1, kDataBytes)[0].data())
        << what << ": entry " << i + 1 << " changed";
  }
}

TEST(StoreCrashTest, PipelinedStreamsSharingBatches_PowerLossAtAnySync_EveryAckSurvives) {
  std::mt19937_64 rng(20261203);
  int images = 0;
  uint64_t acked_checked = 0;
  for (int round = 0; round < 24; ++round) {
    MemFileSystem fs;
    ASSERT_TRUE(fs.CreateDir("/data").ok());
    ASSERT_TRUE(fs.SyncDir("/").ok());
    absl::StatusOr<std::unique_ptr<WalStore>> store = OpenStore(&fs);
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE(CreateLog(store->get()).ok());
    Streams streams(store->get(), /*streams=*/4, /*window=*/16);

    // The image is taken at the start of the crash_at-th sync, before that
    // sync takes effect. An acknowledgement read before the image was
    // answered after its own sync returned, so it must be in the image.
    const uint64_t crash_at = 3 + rng() % 40;
    CrashOptions crash;
    crash.mode = round % 2 == 0 ? CrashMode::kDropUnsynced : CrashMode::kTearUnsynced;
    crash.seed = rng();
    std::unique_ptr<MemFileSystem> image;
    uint64_t acked_at_crash = 0;
    std::atomic<uint64_t> syncs{0};
    fs.SetSyncObserver([&](const SyncPoint&) {
      if (syncs.fetch_add(1) + 1 != crash_at) return;
      acked_at_crash = streams.acked();
      image = fs.CrashClone(crash);
    });
    streams.Run(/*entries=*/2000);
    (*store)->Shutdown();
    fs.SetSyncObserver(nullptr);
    EXPECT_EQ(streams.failed(), 0);
    ASSERT_NE(image, nullptr) << "round " << round << ": only " << syncs.load() << " syncs";
    const std::string what = absl::StrCat("round ", round, " (crash at sync ", crash_at, ", ",
                                          acked_at_crash, " acknowledged)");
    ExpectRecoveredHoldsAcked(image.get(), acked_at_crash, what);
    if (HasFatalFailure()) return;
    ++images;
    acked_checked += acked_at_crash;
  }
  std::printf("crash images recovered: %d, acknowledged entries checked: %lu\n", images,
              static_cast<unsigned long>(acked_checked));
  EXPECT_GT(acked_checked, 0u) << "no image was taken after an acknowledgement";
}

TEST(StoreCrashTest, FdatasyncEioInSharedBatch_EveryOpOfItAndBehindItRefused_NeverRead) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/data").ok());
  ASSERT_TRUE(fs.SyncDir("/").ok());
  absl::StatusOr<std::unique_ptr<WalStore>> store = OpenStore(&fs);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(CreateLog(store->get()).ok());
  Streams before(store->get(), 2, 4);
  before.Run(/*entries=*/40);
  const uint64_t acked = before.acked();
  ASSERT_GE(acked, 40u);
  ASSERT_EQ(before.failed(), 0);

  // The next fdatasync of a segment fails; appends from four streams are
  // queued together, so the failing batch is shared.
  fs.FailNext(FsOp::kSync, EIO, 1, ".wal");
  std::mutex synced_mu;
  std::vector<std::string> synced;  // every sync from here on, in order
  fs.SetSyncObserver([&](const SyncPoint& point) {
    std::lock_guard<std::mutex> lock(synced_mu);
    synced.push_back(point.path);
  });
  std::vector<std::shared_ptr<std::atomic<bool>>> chains;
  std::vector<std::promise<absl::StatusOr<uint64_t>>> results(40);
  for (int s = 0; s < 4; ++s) chains.push_back(std::make_shared<std::atomic<bool>>(false));
  for (uint64_t i = 0; i < 40; ++i) {
    (*store)->Append(
        MakeAppend(acked + 1 + i, acked + 1 + i),
        [&results, i](absl::StatusOr<uint64_t> r) { results[i].set_value(r); }, chains[i % 4]);
  }
  int refused = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    absl::StatusOr<uint64_t> r = results[i].get_future().get();
    EXPECT_FALSE(r.ok()) << "append of entry " << acked + 1 + i << " acknowledged after the EIO";
    if (!r.ok()) ++refused;
  }
  EXPECT_EQ(refused, 40);
  EXPECT_TRUE((*store)->Status().fail_stop);
  // The failed batch's bytes reached the file (the page cache), never the
  // disk: a read while fail-stopped serves only the acknowledged log.
  absl::StatusOr<ReadAllResult> read = (*store)->ReadAll(walpb::Snapshot());
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->entries.size(), acked) << "a read served the batch whose fdatasync failed";
  // No retry of the failed fdatasync on that file: the first segment sync
  // after the injection is the one that failed, and nothing syncs that file
  // again.
  {
    std::lock_guard<std::mutex> lock(synced_mu);
    auto failed = std::find_if(synced.begin(), synced.end(), [](const std::string& path) {
      return path.find(".wal") != std::string::npos;
    });
    ASSERT_NE(failed, synced.end()) << "no segment sync after the injection";
    EXPECT_EQ(std::count(failed + 1, synced.end(), *failed), 0)
        << *failed << " was synced again after its fdatasync failed";
  }
  (*store)->Shutdown();

  CrashOptions power_loss;
  std::unique_ptr<MemFileSystem> image = fs.CrashClone(power_loss);
  ExpectRecoveredHoldsAcked(image.get(), acked, "after the EIO and a power loss");
}

TEST(StoreCrashTest, DirectoryFsyncEioAtSegmentCut_FailStops_AckedSurvivePowerLoss) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/data").ok());
  ASSERT_TRUE(fs.SyncDir("/").ok());
  absl::StatusOr<std::unique_ptr<WalStore>> store = OpenStore(&fs);
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE(CreateLog(store->get()).ok());
  // The WAL directory's next fsync is the one that makes a cut's rename
  // durable.
  fs.FailNext(FsOp::kSyncDir, EIO, 1, kWalDir);
  Streams streams(store->get(), 2, 8);
  streams.Run(/*entries=*/3000);  // far more than one 16 KiB segment holds
  EXPECT_GT(streams.failed(), 0) << "no append failed: the cut's directory fsync never failed";
  EXPECT_LT(streams.acked(), 3000u);
  EXPECT_GT(streams.acked(), 0u);
  EXPECT_TRUE((*store)->Status().fail_stop) << "a failed directory fsync at a cut must fail-stop";
  const uint64_t acked = streams.acked();
  (*store)->Shutdown();
  CrashOptions power_loss;
  std::unique_ptr<MemFileSystem> image = fs.CrashClone(power_loss);
  ExpectRecoveredHoldsAcked(image.get(), acked, "after the failed cut and a power loss");
}

}  // namespace
}  // namespace walrus
