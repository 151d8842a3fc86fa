// MemFileSystem: POSIX-like semantics, what each crash mode leaves on "disk",
// injected faults, capacity, locks and the sync observer. The WAL's durability
// tests are only as good as this model, so each edge case is pinned here.
#include "tests/support/mem_fs.h"

#include <cerrno>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "gtest/gtest.h"

namespace walrus {
namespace {

int Errno(const absl::Status& status) { return ErrnoOf(status).value_or(0); }

std::unique_ptr<WritableFile> Create(MemFileSystem& fs, const std::string& path) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs.NewWritableFile(path);
  EXPECT_TRUE(file.ok()) << file.status();
  return file.ok() ? *std::move(file) : nullptr;
}

// Creates `path` holding `data`, fdatasync'ed if `sync`.
void Write(MemFileSystem& fs, const std::string& path, const std::string& data, bool sync) {
  std::unique_ptr<WritableFile> file = Create(fs, path);
  ASSERT_NE(file, nullptr);
  ASSERT_TRUE(file->Append(data).ok());
  if (sync) {
    ASSERT_TRUE(file->Sync().ok());
  }
  ASSERT_TRUE(file->Close().ok());
}

// The current content, or "<missing>".
std::string Read(const MemFileSystem& fs, const std::string& path) {
  absl::StatusOr<std::string> data = fs.Contents(path);
  return data.ok() ? *data : "<missing>";
}

CrashOptions Mode(CrashMode mode) {
  CrashOptions options;
  options.mode = mode;
  return options;
}

std::unique_ptr<MemFileSystem> PowerFail(const MemFileSystem& fs) {
  return fs.CrashClone(Mode(CrashMode::kDropUnsynced));
}

// A file system with a durable "/d" directory.
class MemFsTest : public ::testing::Test {
 protected:
  MemFsTest() {
    EXPECT_TRUE(fs_.CreateDir("/d").ok());
    EXPECT_TRUE(fs_.SyncDir("/").ok());
  }
  MemFileSystem fs_;
};

// --- Paths and POSIX semantics ---------------------------------------------

TEST_F(MemFsTest, Paths_DuplicateTrailingSlashesAndRelative_NameTheSameFile) {
  Write(fs_, "d//f", "x", false);
  EXPECT_EQ(Read(fs_, "/d/f"), "x");
  EXPECT_TRUE(fs_.Exists("/d/f/"));
  EXPECT_TRUE(fs_.Exists("./d/./f"));
  EXPECT_EQ(fs_.AllFiles(), std::vector<std::string>{"/d/f"});
}

TEST_F(MemFsTest, Root_SlashEmptyAndDot_AlwaysExistAsDirectory) {
  for (const char* root : {"/", "", ".", "//"}) {
    EXPECT_TRUE(fs_.IsDirectory(root)) << root;
    EXPECT_EQ(fs_.CreateDir(root).code(), absl::StatusCode::kAlreadyExists) << root;
  }
}

TEST_F(MemFsTest, MissingParent_CreateAndMkdirFailWithEnoent) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.NewWritableFile("/nope/f");
  EXPECT_EQ(file.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(Errno(file.status()), ENOENT);
  EXPECT_EQ(Errno(fs_.CreateDir("/nope/sub")), ENOENT);
  EXPECT_EQ(fs_.CreateDir("/d").code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(MemFsTest, FileAsDirectoryComponent_FailsWithEnotdir) {
  Write(fs_, "/d/f", "x", false);
  EXPECT_EQ(Errno(fs_.NewWritableFile("/d/f/g").status()), ENOTDIR);
  EXPECT_EQ(Errno(fs_.ListDir("/d/f").status()), ENOTDIR);
  EXPECT_EQ(Errno(fs_.NewReadableFile("/d").status()), EISDIR);
  EXPECT_EQ(Errno(fs_.RemoveFile("/d")), EISDIR);
}

TEST_F(MemFsTest, Append_AtOffsetPastEnd_FillsGapWithZeros) {
  Write(fs_, "/d/f", "ab", false);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_.OpenWritableFile("/d/f", 5);
  ASSERT_TRUE(file.ok());
  ASSERT_TRUE((*file)->Append("cd").ok());
  EXPECT_EQ((*file)->Offset(), 7u);
  EXPECT_EQ(Read(fs_, "/d/f"), std::string("ab\0\0\0cd", 7));
}

TEST_F(MemFsTest, Truncate_SetsSizeAndOffset_PreallocateOnlyGrowsAndKeepsOffset) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(file->Append("abcdef").ok());
  ASSERT_TRUE(file->Truncate(2).ok());
  EXPECT_EQ(file->Offset(), 2u);
  ASSERT_TRUE(file->Preallocate(8).ok());
  EXPECT_EQ(file->Offset(), 2u);
  ASSERT_TRUE(file->Preallocate(4).ok());  // never shrinks
  EXPECT_EQ(Read(fs_, "/d/f"), std::string("ab\0\0\0\0\0\0", 8));
  ASSERT_TRUE(file->Append("X").ok());
  EXPECT_EQ(*fs_.FileSize("/d/f"), 8u);
}

TEST_F(MemFsTest, NewWritableFile_OnExistingFile_TruncatesIt) {
  Write(fs_, "/d/f", "old", true);
  Create(fs_, "/d/f").reset();
  EXPECT_EQ(Read(fs_, "/d/f"), "");
}

TEST_F(MemFsTest, ClosedHandle_EveryCallFails) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(file->Close().ok());
  EXPECT_FALSE(file->Append("x").ok());
  EXPECT_FALSE(file->Sync().ok());
  EXPECT_FALSE(file->Truncate(0).ok());
  EXPECT_FALSE(file->Close().ok());
  EXPECT_EQ(fs_.SyncCount("/d/f"), 0);  // never reached the "disk"
}

TEST_F(MemFsTest, ReadableFile_SeesUnsyncedBytes_AndShortReadAtEnd) {
  Write(fs_, "/d/f", "hello", false);
  absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs_.NewReadableFile("/d/f");
  ASSERT_TRUE(file.ok());
  char buf[8];
  absl::StatusOr<size_t> n = (*file)->Read(3, sizeof(buf), buf);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "lo");
  EXPECT_EQ(*(*file)->Read(9, 1, buf), 0u);
}

TEST_F(MemFsTest, Rename_ReplacesTarget_AndHandleFollowsTheInode) {
  Write(fs_, "/d/b", "B", false);
  std::unique_ptr<WritableFile> a = Create(fs_, "/d/a");
  ASSERT_TRUE(fs_.Rename("/d/a", "/d/b").ok());
  ASSERT_TRUE(a->Append("A").ok());
  EXPECT_EQ(Read(fs_, "/d/b"), "A");
  EXPECT_FALSE(fs_.Exists("/d/a"));
  EXPECT_EQ(*fs_.ListDir("/d"), std::vector<std::string>{"b"});
}

TEST_F(MemFsTest, Rename_DirectoryEdgeCases_FollowRename2) {
  ASSERT_TRUE(fs_.CreateDir("/d/sub").ok());
  Write(fs_, "/d/sub/f", "x", false);
  EXPECT_EQ(Errno(fs_.Rename("/d", "/d/sub/d")), EINVAL);  // into itself
  ASSERT_TRUE(fs_.CreateDir("/e").ok());
  EXPECT_EQ(Errno(fs_.Rename("/d/sub/f", "/e")), EISDIR);
  EXPECT_EQ(Errno(fs_.Rename("/e", "/d")), ENOTEMPTY);
  EXPECT_EQ(Errno(fs_.Rename("/e", "/d/sub/f")), ENOTDIR);
  EXPECT_EQ(Errno(fs_.Rename("/missing", "/x")), ENOENT);
  ASSERT_TRUE(fs_.Rename("/d", "/e").ok());  // over an empty directory
  EXPECT_EQ(Read(fs_, "/e/sub/f"), "x");
}

TEST_F(MemFsTest, RemoveAll_AbsentIsOk_RemovesWholeTree) {
  EXPECT_TRUE(fs_.RemoveAll("/nothing/here").ok());
  ASSERT_TRUE(fs_.CreateDir("/d/sub").ok());
  Write(fs_, "/d/sub/f", "x", false);
  ASSERT_TRUE(fs_.RemoveAll("/d").ok());
  EXPECT_FALSE(fs_.Exists("/d"));
  EXPECT_TRUE(fs_.AllFiles().empty());
  EXPECT_EQ(Errno(fs_.RemoveFile("/d/sub/f")), ENOENT);
}

// --- Crash modes -------------------------------------------------------------

TEST_F(MemFsTest, Crash_DropUnsynced_RevertsToLastSyncedContent) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("synced").ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append("-lost").ok());
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), "synced");
}

TEST_F(MemFsTest, Crash_DropUnsynced_UnsyncedCreateVanishes_SyncDirKeepsIt) {
  Write(fs_, "/d/f", "data", /*sync=*/true);  // data synced, entry not
  EXPECT_FALSE(PowerFail(fs_)->Exists("/d/f"));
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), "data");
}

TEST_F(MemFsTest, Crash_DropUnsynced_RenameWithoutSyncDirVanishes) {
  Write(fs_, "/d/f.tmp", "new", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.Rename("/d/f.tmp", "/d/f").ok());
  std::unique_ptr<MemFileSystem> image = PowerFail(fs_);
  EXPECT_FALSE(image->Exists("/d/f"));
  EXPECT_EQ(Read(*image, "/d/f.tmp"), "new");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  image = PowerFail(fs_);
  EXPECT_EQ(image->AllFiles(), std::vector<std::string>{"/d/f"});
}

TEST_F(MemFsTest, Crash_DropUnsynced_CrossDirRenameNeedsBothDirsSynced) {
  ASSERT_TRUE(fs_.CreateDir("/e").ok());
  ASSERT_TRUE(fs_.SyncDir("/").ok());
  Write(fs_, "/d/f", "x", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.Rename("/d/f", "/e/f").ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());  // the removal only
  EXPECT_TRUE(PowerFail(fs_)->AllFiles().empty());
  ASSERT_TRUE(fs_.SyncDir("/e").ok());
  EXPECT_EQ(PowerFail(fs_)->AllFiles(), std::vector<std::string>{"/e/f"});
}

TEST_F(MemFsTest, Crash_DropUnsynced_UnsyncedRemoveAndTruncateComeBack) {
  Write(fs_, "/d/a", "aaa", true);
  Write(fs_, "/d/b", "bbb", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(fs_.RemoveFile("/d/a").ok());
  Create(fs_, "/d/b").reset();  // O_TRUNC, not synced
  std::unique_ptr<MemFileSystem> image = PowerFail(fs_);
  EXPECT_EQ(Read(*image, "/d/a"), "aaa");
  EXPECT_EQ(Read(*image, "/d/b"), "bbb");
}

TEST_F(MemFsTest, Crash_DropUnsynced_NewDirectoryNeedsSyncOfItsParent) {
  ASSERT_TRUE(fs_.CreateDir("/d/sub").ok());
  Write(fs_, "/d/sub/f", "x", true);
  ASSERT_TRUE(fs_.SyncDir("/d/sub").ok());
  EXPECT_FALSE(PowerFail(fs_)->Exists("/d/sub"));
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/sub/f"), "x");
}

TEST_F(MemFsTest, Crash_KeepDirOps_RenameSurvivesButUnsyncedDataDoesNot) {
  Write(fs_, "/d/f.tmp", "synced", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE((*fs_.OpenWritableFile("/d/f.tmp", 6))->Append("+lost").ok());
  ASSERT_TRUE(fs_.Rename("/d/f.tmp", "/d/f").ok());
  CrashOptions options = Mode(CrashMode::kDropUnsynced);
  options.drop_unsynced_dir_ops = false;
  std::unique_ptr<MemFileSystem> image = fs_.CrashClone(options);
  EXPECT_EQ(image->AllFiles(), std::vector<std::string>{"/d/f"});
  EXPECT_EQ(Read(*image, "/d/f"), "synced");
}

TEST_F(MemFsTest, Crash_KeepAll_KeepsEverything_ButItStaysUnsynced) {
  Write(fs_, "/d/f", "abc", false);
  fs_.Crash(Mode(CrashMode::kKeepAll));
  EXPECT_EQ(Read(fs_, "/d/f"), "abc");
  // The page cache outlived the process, not a later power failure.
  EXPECT_FALSE(PowerFail(fs_)->Exists("/d/f"));
}

TEST_F(MemFsTest, Crash_Tear_KeepsExactlyTheSectorsBeforeTheCut) {
  std::string synced(100, 's'), appended(2000, 'a');
  Write(fs_, "/d/f", synced, true);
  std::unique_ptr<WritableFile> file = *fs_.OpenWritableFile("/d/f", 100);
  ASSERT_TRUE(file->Append(appended).ok());
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  CrashOptions options = Mode(CrashMode::kTearUnsynced);
  options.tear_at["d/f"] = 1024;
  std::string got = Read(*fs_.CrashClone(options), "/d/f");
  EXPECT_EQ(got, synced + std::string(924, 'a'));  // the size is cut at 1024 too
}

TEST_F(MemFsTest, Crash_Tear_PreallocatedFileKeepsItsSize) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Preallocate(4096).ok());
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(file->Append(std::string(1500, 'w')).ok());
  CrashOptions options = Mode(CrashMode::kTearUnsynced);
  options.tear_at["/d/f"] = 512;
  std::string got = Read(*fs_.CrashClone(options), "/d/f");
  EXPECT_EQ(got, std::string(512, 'w') + std::string(4096 - 512, '\0'));
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), std::string(4096, '\0'));
}

TEST_F(MemFsTest, Crash_Tear_OverwriteRevertsBytesFromTheCutOn) {
  Write(fs_, "/d/f", std::string(2048, 'a'), true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE((*fs_.OpenWritableFile("/d/f", 0))->Append(std::string(2048, 'b')).ok());
  CrashOptions options = Mode(CrashMode::kTearUnsynced);
  options.tear_at["/d/f"] = 1024;
  EXPECT_EQ(Read(*fs_.CrashClone(options), "/d/f"),
            std::string(1024, 'b') + std::string(1024, 'a'));
}

TEST_F(MemFsTest, Crash_Tear_UnsyncedShrinkSurvivesOnlyWithEverything) {
  Write(fs_, "/d/f", std::string(1000, 'a'), true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE((*fs_.OpenWritableFile("/d/f", 0))->Truncate(10).ok());
  CrashOptions options = Mode(CrashMode::kTearUnsynced);
  options.tear_at["/d/f"] = 512;
  EXPECT_EQ(fs_.CrashClone(options)->FileSize("/d/f").value_or(0), 1000u);
  options.tear_at["/d/f"] = 1024;
  EXPECT_EQ(fs_.CrashClone(options)->FileSize("/d/f").value_or(0), 10u);
}

TEST_F(MemFsTest, Crash_Tear_SeededCutsAreSectorAlignedDeterministicAndCoverNoneToAll) {
  Write(fs_, "/d/f", std::string(300, 's'), true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE((*fs_.OpenWritableFile("/d/f", 300))->Append(std::string(3000, 'x')).ok());
  std::set<uint64_t> sizes;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    CrashOptions options = Mode(CrashMode::kTearUnsynced);
    options.seed = seed;
    std::string got = Read(*fs_.CrashClone(options), "/d/f");
    EXPECT_EQ(got, Read(*fs_.CrashClone(options), "/d/f")) << "seed " << seed;
    EXPECT_EQ(got.substr(0, 300), std::string(300, 's'));
    EXPECT_EQ(got.substr(300), std::string(got.size() - 300, 'x'));
    EXPECT_TRUE(got.size() == 300 || got.size() == 3300 || got.size() % 512 == 0) << got.size();
    sizes.insert(got.size());
  }
  EXPECT_TRUE(sizes.count(300) && sizes.count(3300)) << "neither none nor all ever survived";
  EXPECT_GT(sizes.size(), 4u);
}

TEST_F(MemFsTest, Crash_InPlace_InvalidatesHandlesAndReleasesLocks) {
  Write(fs_, "/d/f", "x", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  std::unique_ptr<WritableFile> writer = *fs_.OpenWritableFile("/d/f", 1);
  std::unique_ptr<ReadableFile> reader = *fs_.NewReadableFile("/d/f");
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs_.TryLockFile("/d/f");
  ASSERT_TRUE(lock.ok());
  fs_.Crash(Mode(CrashMode::kDropUnsynced));
  absl::Status append = writer->Append("y");
  EXPECT_EQ(append.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Errno(append), EIO);
  EXPECT_FALSE(writer->Sync().ok());
  char c;
  EXPECT_FALSE(reader->Read(0, 1, &c).ok());
  absl::StatusOr<std::unique_ptr<FileLock>> relock = fs_.TryLockFile("/d/f");
  ASSERT_TRUE(relock.ok()) << relock.status();
  lock->reset();  // the stale lock going away must not drop the new one
  EXPECT_EQ(fs_.TryLockFile("/d/f").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Read(fs_, "/d/f"), "x");
}

TEST_F(MemFsTest, CrashClone_IsIndependentOfTheOriginal) {
  Write(fs_, "/d/f", "one", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  std::unique_ptr<WritableFile> original = *fs_.OpenWritableFile("/d/f", 3);
  std::unique_ptr<MemFileSystem> clone = fs_.CrashClone(Mode(CrashMode::kKeepAll));
  ASSERT_TRUE(original->Append("-two").ok());  // old handles still work here
  Write(*clone, "/d/f", "clone", true);
  ASSERT_TRUE(clone->RemoveAll("/d").ok());
  EXPECT_EQ(Read(fs_, "/d/f"), "one-two");
  EXPECT_FALSE(clone->Exists("/d"));
}

// --- Injected faults ---------------------------------------------------------

TEST_F(MemFsTest, FailNext_SyncEio_IsCountedAndMakesNothingDurable) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("data").ok());
  fs_.FailNext(FsOp::kSync, EIO);
  absl::Status sync = file->Sync();
  EXPECT_EQ(sync.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Errno(sync), EIO);
  EXPECT_EQ(fs_.SyncCount("/d/f"), 1);
  EXPECT_EQ(fs_.TotalSyncCount(), 3u);  // two SyncDir and the failed fdatasync
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), "");
  EXPECT_EQ(Read(fs_, "/d/f"), "data");  // still readable from the page cache
}

TEST_F(MemFsTest, FailNext_AppendEnospc_WritesNothingAndKeepsOffset) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(file->Append("ab").ok());
  fs_.FailNext(FsOp::kAppend, ENOSPC);
  absl::Status append = file->Append("cd");
  EXPECT_EQ(append.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(file->Offset(), 2u);
  EXPECT_EQ(Read(fs_, "/d/f"), "ab");
  ASSERT_TRUE(file->Append("cd").ok());  // one failure only
  EXPECT_EQ(Read(fs_, "/d/f"), "abcd");
}

TEST_F(MemFsTest, FailNextAppendAfter_WritesPrefixThenFails_PrefixIsUnsynced) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  fs_.FailNextAppendAfter(3, EIO);
  EXPECT_EQ(Errno(file->Append("abcdef")), EIO);
  EXPECT_EQ(file->Offset(), 0u);
  EXPECT_EQ(Read(fs_, "/d/f"), "abc");
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), "");
}

TEST_F(MemFsTest, FailNext_PathSubstringCountAndForever_SelectWhichCallsFail) {
  Write(fs_, "/d/a.wal", "", false);
  Write(fs_, "/d/b.snap", "", false);
  fs_.FailNext(FsOp::kOpen, EACCES, 2, ".wal");
  EXPECT_TRUE(fs_.NewReadableFile("/d/b.snap").ok());
  EXPECT_EQ(fs_.NewReadableFile("/d/a.wal").status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(fs_.OpenWritableFile("/d/a.wal", 0).ok());
  EXPECT_TRUE(fs_.NewReadableFile("/d/a.wal").ok());
  fs_.FailNext(FsOp::kRead, EIO, Fault::kForever);
  std::unique_ptr<ReadableFile> reader = *fs_.NewReadableFile("/d/a.wal");
  char c;
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(reader->Read(0, 1, &c).ok());
  fs_.ClearFaults();
  EXPECT_TRUE(reader->Read(0, 1, &c).ok());
}

TEST_F(MemFsTest, FailNext_DirectoryOps_ChangeNothing) {
  Write(fs_, "/d/f", "x", false);
  fs_.FailNext(FsOp::kRename, EIO, 1, "/d/g");  // matches the target path
  EXPECT_FALSE(fs_.Rename("/d/f", "/d/g").ok());
  fs_.FailNext(FsOp::kRemove, EIO);
  EXPECT_FALSE(fs_.RemoveFile("/d/f").ok());
  fs_.FailNext(FsOp::kCreate, EIO);
  EXPECT_FALSE(fs_.NewWritableFile("/d/new").ok());
  fs_.FailNext(FsOp::kCreateDir, EIO);
  EXPECT_FALSE(fs_.CreateDir("/d/sub").ok());
  EXPECT_EQ(*fs_.ListDir("/d"), std::vector<std::string>{"f"});
  fs_.FailNext(FsOp::kSyncDir, EIO);
  EXPECT_FALSE(fs_.SyncDir("/d").ok());
  EXPECT_EQ(fs_.SyncCount("/d/"), 1);
  EXPECT_FALSE(PowerFail(fs_)->Exists("/d/f"));
}

// --- Capacity ----------------------------------------------------------------

TEST_F(MemFsTest, Capacity_GrowthBeyondFailsWithEnospcAndWritesNothing) {
  fs_.SetCapacity(10);
  Write(fs_, "/d/a", "123456", false);
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/b");
  ASSERT_TRUE(file->Append("1234").ok());  // exactly full
  absl::Status append = file->Append("5");
  EXPECT_EQ(Errno(append), ENOSPC);
  EXPECT_EQ(append.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(Read(fs_, "/d/b"), "1234");
  EXPECT_EQ(Errno(file->Preallocate(11)), ENOSPC);
  ASSERT_TRUE(file->Truncate(0).ok());
  ASSERT_TRUE(file->Append("abcd").ok());  // the truncation gave the space back
  ASSERT_TRUE(fs_.RemoveFile("/d/a").ok());
  EXPECT_TRUE(file->Append("56").ok());
  EXPECT_EQ(fs_.UsedBytes(), 6u);
}

TEST_F(MemFsTest, Capacity_PartialAppendIsClampedToTheSpaceLeft) {
  fs_.SetCapacity(4);
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  fs_.FailNextAppendAfter(100, ENOSPC);
  EXPECT_EQ(Errno(file->Append("abcdefgh")), ENOSPC);
  EXPECT_EQ(Read(fs_, "/d/f"), "abcd");
}

// --- Locks -------------------------------------------------------------------

TEST_F(MemFsTest, TryLock_SecondHolderFails_ReleasedOnDestroy_FollowsRename) {
  EXPECT_EQ(Errno(fs_.TryLockFile("/d/missing").status()), ENOENT);
  Write(fs_, "/d/f", "", false);
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs_.TryLockFile("/d/f");
  ASSERT_TRUE(lock.ok());
  EXPECT_EQ((*lock)->path(), "/d/f");
  ASSERT_TRUE(fs_.Rename("/d/f", "/d/g").ok());
  absl::StatusOr<std::unique_ptr<FileLock>> second = fs_.TryLockFile("/d/g");
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status().message().find("/d/g"), absl::string_view::npos);
  lock->reset();
  EXPECT_TRUE(fs_.TryLockFile("/d/g").ok());
}

// --- Sync observer -----------------------------------------------------------

TEST_F(MemFsTest, SyncObserver_NumbersEverySyncPointInOrder_IncludingFailedOnes) {
  std::vector<std::string> seen;
  fs_.SetSyncObserver([&](const SyncPoint& point) {
    seen.push_back(absl::StrCat(point.number, point.is_dir ? " dir " : " file ", point.path));
  });
  std::unique_ptr<WritableFile> file = Create(fs_, "d//f");
  ASSERT_TRUE(file->Sync().ok());
  ASSERT_TRUE(fs_.SyncDir("d/").ok());
  fs_.FailNext(FsOp::kSync, EIO);
  EXPECT_FALSE(file->Sync().ok());
  fs_.SetSyncObserver(nullptr);
  ASSERT_TRUE(file->Sync().ok());
  // The fixture's SyncDir("/") was number 1.
  EXPECT_EQ(seen, (std::vector<std::string>{"2 file /d/f", "3 dir /d", "4 file /d/f"}));
  EXPECT_EQ(fs_.SyncCount("/d/f"), 3);
}

TEST_F(MemFsTest, SyncObserver_CrashCloneSeesTheStateBeforeTheSync) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE(file->Append("payload").ok());
  std::vector<std::string> images;
  fs_.SetSyncObserver([&](const SyncPoint&) { images.push_back(Read(*PowerFail(fs_), "/d/f")); });
  ASSERT_TRUE(file->Sync().ok());
  fs_.SetSyncObserver(nullptr);
  EXPECT_EQ(images, std::vector<std::string>{""});
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), "payload");
}

TEST_F(MemFsTest, SyncObserver_CrashingInPlace_FailsTheSyncInProgress) {
  std::unique_ptr<WritableFile> file = Create(fs_, "/d/f");
  fs_.SetSyncObserver([&](const SyncPoint&) { fs_.Crash(Mode(CrashMode::kKeepAll)); });
  EXPECT_EQ(Errno(file->Sync()), EIO);
}

// --- Media corruption helpers and threads -------------------------------------

TEST_F(MemFsTest, Corruption_HitsSyncedBytesToo_AndMustBeInsideTheFile) {
  Write(fs_, "/d/f", "abcd", true);
  ASSERT_TRUE(fs_.SyncDir("/d").ok());
  ASSERT_TRUE((*fs_.OpenWritableFile("/d/f", 4))->Append("ef").ok());  // unsynced tail
  ASSERT_TRUE(fs_.FlipBit("/d/f", 0, 1).ok());                         // 'a' ^ 2 = 'c'
  ASSERT_TRUE(fs_.Corrupt("/d/f", 1, "XY").ok());
  ASSERT_TRUE(fs_.ZeroRange("/d/f", 3, 2).ok());
  EXPECT_EQ(Read(fs_, "/d/f"), std::string("cXY\0\0f", 6));
  EXPECT_EQ(Read(*PowerFail(fs_), "/d/f"), std::string("cXY\0", 4));
  EXPECT_EQ(fs_.Corrupt("/d/f", 5, "zz").code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(fs_.FlipBit("/d/missing", 0, 0).code(), absl::StatusCode::kNotFound);
}

TEST_F(MemFsTest, Threads_WritersAndCrashClonesConcurrently_KeepEachFileConsistent) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this, t] {
      std::unique_ptr<WritableFile> file = Create(fs_, absl::StrCat("/d/", t));
      for (int i = 0; i < 200; ++i) {
        EXPECT_TRUE(file->Append("0123456789").ok());
        if (i % 10 == 0) {
          EXPECT_TRUE(file->Sync().ok());
        }
      }
    });
  }
  for (int i = 0; i < 50; ++i) {
    for (const std::string& path : fs_.CrashClone(Mode(CrashMode::kKeepAll))->AllFiles()) {
      EXPECT_TRUE(path.rfind("/d/", 0) == 0) << path;
    }
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(fs_.FileSize(absl::StrCat("/d/", t)).value_or(0), 2000u);
}

}  // namespace
}  // namespace walrus
