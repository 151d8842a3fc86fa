// The data directory lock (server/data_dir.h): the directory it creates must
// survive a power failure, or so would not the WAL created inside it.
#include "server/data_dir.h"

#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"

namespace walrus {
namespace {

CrashOptions PowerFailure() {
  CrashOptions options;
  options.mode = CrashMode::kDropUnsynced;
  return options;
}

TEST(DataDirLockTest, Acquire_CreatedDirectoriesSurvivePowerFailure) {
  MemFileSystem fs;
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock =
      DataDirLock::Acquire(&fs, "/srv/walrus/data", "/srv/walrus/data/walrusd.lock", "test");
  ASSERT_TRUE(lock.ok()) << lock.status();
  std::unique_ptr<MemFileSystem> after = fs.CrashClone(PowerFailure());
  EXPECT_TRUE(after->IsDirectory("/srv/walrus/data"));
}

TEST(DataDirLockTest, Acquire_ExistingDirectoryWithUnsyncedEntryIsMadeDurable) {
  // A start that crashed between mkdir and the parent's fsync left this.
  MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/srv").ok());
  ASSERT_TRUE(fs.SyncDir("/").ok());
  ASSERT_TRUE(fs.CreateDir("/srv/data").ok());
  absl::StatusOr<std::unique_ptr<DataDirLock>> lock =
      DataDirLock::Acquire(&fs, "/srv/data", "/srv/data/walrusd.lock", "test");
  ASSERT_TRUE(lock.ok()) << lock.status();
  std::unique_ptr<MemFileSystem> after = fs.CrashClone(PowerFailure());
  EXPECT_TRUE(after->IsDirectory("/srv/data"));
}

TEST(DataDirLockTest, Acquire_SecondHolderIsRefusedNamingTheFirst) {
  MemFileSystem fs;
  absl::StatusOr<std::unique_ptr<DataDirLock>> first =
      DataDirLock::Acquire(&fs, "/data", "/data/walrusd.lock", "unix:/run/a.sock");
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<DataDirLock>> second =
      DataDirLock::Acquire(&fs, "/data", "/data/walrusd.lock", "unix:/run/b.sock");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("unix:/run/a.sock"), std::string::npos)
      << second.status();
}

}  // namespace
}  // namespace walrus
