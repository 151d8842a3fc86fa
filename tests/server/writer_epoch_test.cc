// The writer epoch file (server/writer_epoch.h): atomic, durable replacement,
// and a damaged file refused rather than guessed; WalStore's Fence on top.
#include "server/writer_epoch.h"

#include <future>

#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "tests/server/mem_store.h"
#include "tests/support/mem_fs.h"

namespace walrus {
namespace {

constexpr char kPath[] = "/data/writer-epoch";

class WriterEpochTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.CreateDir("/data").ok());
    ASSERT_TRUE(fs_.SyncDir("/").ok());  // /data itself survives a crash
  }
  MemFileSystem fs_;
};

TEST_F(WriterEpochTest, Load_NoFile_IsZero) {
  absl::StatusOr<uint64_t> epoch = LoadWriterEpoch(&fs_, kPath);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(*epoch, 0u);
}

TEST_F(WriterEpochTest, StoreThenLoad_RoundTrips) {
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kPath, 7).ok());
  EXPECT_EQ(*LoadWriterEpoch(&fs_, kPath), 7u);
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kPath, 8).ok());
  EXPECT_EQ(*LoadWriterEpoch(&fs_, kPath), 8u);
  EXPECT_FALSE(fs_.Exists(std::string(kPath) + ".tmp"));
}

TEST_F(WriterEpochTest, Store_IsDurableAcrossACrashThatDropsUnsyncedData) {
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kPath, 3).ok());
  fs_.Crash(CrashOptions{});
  absl::StatusOr<uint64_t> epoch = LoadWriterEpoch(&fs_, kPath);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(*epoch, 3u);
}

TEST_F(WriterEpochTest, Store_FsyncFails_OldEpochStaysAndErrorIsReturned) {
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kPath, 3).ok());
  fs_.FailNext(FsOp::kSync, EIO);
  EXPECT_FALSE(StoreWriterEpoch(&fs_, kPath, 4).ok());
  EXPECT_EQ(*LoadWriterEpoch(&fs_, kPath), 3u);
  EXPECT_FALSE(fs_.Exists(std::string(kPath) + ".tmp"));
}

TEST_F(WriterEpochTest, Store_DirSyncFails_CrashLeavesOldOrNewNeverDamaged) {
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kPath, 3).ok());
  fs_.FailNext(FsOp::kSyncDir, EIO);
  EXPECT_FALSE(StoreWriterEpoch(&fs_, kPath, 4).ok());
  fs_.Crash(CrashOptions{});
  absl::StatusOr<uint64_t> epoch = LoadWriterEpoch(&fs_, kPath);
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_TRUE(*epoch == 3u || *epoch == 4u) << *epoch;
}

// A process killed between the rename and the directory fsync leaves the new
// epoch visible (the page cache) but not durable. The next walrusd loads it
// and fences with it, so loading must make it durable: a power loss after
// that must not bring back the older epoch.
TEST_F(WriterEpochTest, Load_OfAnEpochWhoseRenameWasNotDurable_MakesItDurable) {
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kPath, 3).ok());
  fs_.FailNext(FsOp::kSyncDir, EIO);
  EXPECT_FALSE(StoreWriterEpoch(&fs_, kPath, 4).ok());  // as if killed before the fsync
  absl::StatusOr<uint64_t> loaded = LoadWriterEpoch(&fs_, kPath);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ASSERT_EQ(*loaded, 4u);
  fs_.Crash(CrashOptions{});
  absl::StatusOr<uint64_t> after = LoadWriterEpoch(&fs_, kPath);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(*after, 4u) << "the epoch a walrusd loaded and used went back after a power loss";
}

TEST_F(WriterEpochTest, Load_DamagedFile_IsDataLossNotZero) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.NewWritableFile(kPath);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("walrus-writer-epoch 1x\n").ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(LoadWriterEpoch(&fs_, kPath).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WriterEpochTest, Load_EmptyFile_IsDataLoss) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.NewWritableFile(kPath);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Close().ok());
  EXPECT_EQ(LoadWriterEpoch(&fs_, kPath).status().code(), absl::StatusCode::kDataLoss);
}

}  // namespace
}  // namespace walrus

namespace walrus {
namespace {

// WalStore's fencing on the in-memory file system: the epoch is durable
// before Fence answers, and a failed store still fences the old writer.
class StoreFenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.CreateDir("/data").ok());
    ASSERT_TRUE(fs_.SyncDir("/").ok());
    Reopen();
  }
  void Reopen() {
    store_.reset();
    StoreOptions options;
    options.epoch_path = kPath;
    absl::StatusOr<std::unique_ptr<WalStore>> store = testing::OpenMemStore(&fs_, options);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  absl::StatusOr<uint64_t> Fence() {
    std::promise<absl::StatusOr<uint64_t>> done;
    store_->Fence([&](absl::StatusOr<uint64_t> r) { done.set_value(std::move(r)); });
    return done.get_future().get();
  }
  absl::Status Create(uint64_t epoch) {
    std::promise<absl::Status> done;
    store_->Create("meta", epoch, [&](absl::StatusOr<bool> r) { done.set_value(r.status()); });
    return done.get_future().get();
  }

  MemFileSystem fs_;
  std::unique_ptr<WalStore> store_;
};

TEST_F(StoreFenceTest, Fence_IsDurableBeforeItAnswers_AcrossACrash) {
  ASSERT_EQ(*Fence(), 1u);
  store_.reset();
  fs_.Crash(CrashOptions{});
  Reopen();
  EXPECT_EQ(Create(0).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Create(1).ok());
}

TEST_F(StoreFenceTest, Fence_StoreFails_ErrorReturned_OldWriterStillFencedOut) {
  fs_.FailNext(FsOp::kSync, EIO, 1, "writer-epoch");
  absl::StatusOr<uint64_t> failed = Fence();
  EXPECT_FALSE(failed.ok());
  EXPECT_EQ(Create(0).code(), absl::StatusCode::kFailedPrecondition)
      << "the failed fence may be on disk: the old writer stays out";
  EXPECT_EQ(*Fence(), 2u) << "the retry gets the next epoch";
  EXPECT_TRUE(Create(2).ok());
}

}  // namespace
}  // namespace walrus
