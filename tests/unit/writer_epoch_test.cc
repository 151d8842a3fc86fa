// The writer epoch file (server/writer_epoch.h): atomic, durable replacement,
// and a damaged file refused rather than guessed.
#include "server/writer_epoch.h"

#include "core/mem_fs.h"
#include "gtest/gtest.h"

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
