// The segment preparer: written-blocks files are zero-filled, full-size and
// synced; Take() never waits for the background zero-fill; errors are
// reported and retried; a crash while a segment is being prepared leaves at
// most a stray .tmp file that the writer removes. On the real file system,
// segments have no unwritten extents left.
#include "core/segment_preparer.h"

#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeState;

constexpr char kDir[] = "/wal";
// Not a multiple of either chunk size, so the last chunk is a short one.
constexpr uint64_t kSegmentSize = 3 * SegmentPreparer::kInlineChunk + 4096 + 8;

std::vector<std::string> TmpFiles(FileSystem* fs, const std::string& dir) {
  std::vector<std::string> tmp;
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
  EXPECT_TRUE(names.ok()) << names.status();
  if (!names.ok()) return tmp;
  for (const std::string& name : *names) {
    if (absl::EndsWith(name, ".tmp")) tmp.push_back(name);
  }
  return tmp;
}

// The offset of the first byte that is not zero, or -1.
int64_t FirstNonZero(absl::string_view bytes) {
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] != '\0') return static_cast<int64_t>(i);
  }
  return -1;
}

// `path` as a power failure now would leave it (file data not synced is
// dropped; the directory entry is kept, so the file can be looked at).
void ExpectDurableZeros(const MemFileSystem& fs, const std::string& path, uint64_t size) {
  CrashOptions crash;
  crash.mode = CrashMode::kDropUnsynced;
  crash.drop_unsynced_dir_ops = false;
  std::unique_ptr<MemFileSystem> image = fs.CrashClone(crash);
  absl::StatusOr<std::string> durable = image->Contents(path);
  ASSERT_TRUE(durable.ok()) << durable.status();
  EXPECT_EQ(durable->size(), size) << path << ": the size was not synced";
  EXPECT_EQ(FirstNonZero(*durable), -1) << path;
}

// Polls (no deadline: ctest's timeout ends a hang) until the background
// thread has a file or an error ready.
void WaitUntilReady(SegmentPreparer& preparer) {
  while (!preparer.HasReady()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

class SegmentPreparerTest : public ::testing::Test {
 protected:
  SegmentPreparerTest() { EXPECT_TRUE(fs_.CreateDir(kDir).ok()); }
  MemFileSystem fs_;
};

TEST_F(SegmentPreparerTest, Inline_WrittenBlocks_FileIsAllZerosOfSegmentSizeAndSynced) {
  SegmentPreparer preparer(&fs_, kDir, kSegmentSize, SegmentBlocks::kWritten, false);
  absl::StatusOr<PreparedSegment> taken = preparer.Take();
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->blocks, SegmentBlocks::kWritten);
  EXPECT_EQ(taken->file->Offset(), 0u);
  absl::StatusOr<std::string> contents = fs_.Contents(taken->path);
  ASSERT_TRUE(contents.ok()) << contents.status();
  EXPECT_EQ(contents->size(), kSegmentSize);
  ExpectDurableZeros(fs_, taken->path, kSegmentSize);
}

TEST_F(SegmentPreparerTest, Inline_Fallocated_FileHasSegmentSizeAndIsSynced) {
  SegmentPreparer preparer(&fs_, kDir, kSegmentSize, SegmentBlocks::kFallocated, false);
  absl::StatusOr<PreparedSegment> taken = preparer.Take();
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->blocks, SegmentBlocks::kFallocated);
  ExpectDurableZeros(fs_, taken->path, kSegmentSize);
}

TEST_F(SegmentPreparerTest, Background_WriterPastHalf_FileGetsWrittenBlocks) {
  SegmentPreparer preparer(&fs_, kDir, kSegmentSize, SegmentBlocks::kWritten, true);
  preparer.SetTailWritten(kSegmentSize / 2 + 1);
  WaitUntilReady(preparer);
  absl::StatusOr<PreparedSegment> taken = preparer.Take();
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->blocks, SegmentBlocks::kWritten);
  EXPECT_EQ(taken->file->Offset(), 0u);
  ExpectDurableZeros(fs_, taken->path, kSegmentSize);
}

TEST_F(SegmentPreparerTest, Background_TakeBeforeZeroingIsDone_FallsBackToAFullSizeSyncedFile) {
  // The writer has written nothing: the thread zeroes a head start and then
  // waits, so the file can never be complete when Take() comes.
  SegmentPreparer preparer(&fs_, kDir, 8 * kSegmentSize, SegmentBlocks::kWritten, true);
  absl::StatusOr<PreparedSegment> taken = preparer.Take();
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->blocks, SegmentBlocks::kFallocated);
  EXPECT_EQ(taken->file->Offset(), 0u);
  ExpectDurableZeros(fs_, taken->path, 8 * kSegmentSize);
  // Taken files never share a name with the one prepared next.
  absl::StatusOr<PreparedSegment> next = preparer.Take();
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_NE(next->path, taken->path);
}

// A writer that outran the zero-fill gets its next files fallocated only
// (1, then 2, 4 ... after fallbacks in a row); once a zeroed file is taken
// again, one fallback skips one file again.
TEST_F(SegmentPreparerTest, Background_AfterAFallback_NextFilesSkipTheZeroFillThenResume) {
  SegmentPreparer preparer(&fs_, kDir, 8 * kSegmentSize, SegmentBlocks::kWritten, true);
  auto take = [&](SegmentBlocks expected) {
    absl::StatusOr<PreparedSegment> taken = preparer.Take();
    ASSERT_TRUE(taken.ok()) << taken.status();
    EXPECT_EQ(taken->blocks, expected);
    ExpectDurableZeros(fs_, taken->path, 8 * kSegmentSize);
  };
  // Nothing written yet: the first file cannot be complete. Fallback.
  take(SegmentBlocks::kFallocated);
  // The next one skips zeroing, so it becomes ready without the writer.
  WaitUntilReady(preparer);
  take(SegmentBlocks::kFallocated);
  // Zeroing resumes (and waits for the writer again): a second fallback in a
  // row, after which two files skip it.
  take(SegmentBlocks::kFallocated);
  WaitUntilReady(preparer);
  take(SegmentBlocks::kFallocated);
  WaitUntilReady(preparer);
  take(SegmentBlocks::kFallocated);
  // Now zeroing, with the writer far enough along: a written file. (The
  // writer starts over before the take, so the file after it waits again.)
  preparer.SetTailWritten(8 * kSegmentSize);
  WaitUntilReady(preparer);
  preparer.SetTailWritten(0);
  take(SegmentBlocks::kWritten);
  // The count started over: one fallback skips one file.
  take(SegmentBlocks::kFallocated);
  WaitUntilReady(preparer);
  take(SegmentBlocks::kFallocated);
}

TEST_F(SegmentPreparerTest, Destructor_RemovesUntakenFiles) {
  {
    // A file half zero-filled.
    SegmentPreparer preparer(&fs_, kDir, 8 * kSegmentSize, SegmentBlocks::kWritten, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(TmpFiles(&fs_, kDir).empty());
  {
    // A complete file.
    SegmentPreparer preparer(&fs_, kDir, kSegmentSize, SegmentBlocks::kWritten, true);
    preparer.SetTailWritten(kSegmentSize);
    WaitUntilReady(preparer);
    EXPECT_EQ(TmpFiles(&fs_, kDir).size(), 1u);
  }
  EXPECT_TRUE(TmpFiles(&fs_, kDir).empty());
}

TEST_F(SegmentPreparerTest, Inline_ZeroWriteError_IsReportedAndNextTakeRetries) {
  SegmentPreparer preparer(&fs_, kDir, kSegmentSize, SegmentBlocks::kWritten, false);
  fs_.FailNext(FsOp::kWriteZeros, EIO);
  absl::StatusOr<PreparedSegment> failed = preparer.Take();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable) << failed.status();
  EXPECT_EQ(ErrnoOf(failed.status()), EIO);
  EXPECT_TRUE(TmpFiles(&fs_, kDir).empty()) << "the failed file was left behind";
  absl::StatusOr<PreparedSegment> retried = preparer.Take();
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->blocks, SegmentBlocks::kWritten);
  ExpectDurableZeros(fs_, retried->path, kSegmentSize);
}

TEST_F(SegmentPreparerTest, Background_ZeroWriteError_IsReportedAndNextTakeRetries) {
  fs_.FailNext(FsOp::kWriteZeros, EIO);
  SegmentPreparer preparer(&fs_, kDir, kSegmentSize, SegmentBlocks::kWritten, true);
  preparer.SetTailWritten(kSegmentSize);
  WaitUntilReady(preparer);
  absl::StatusOr<PreparedSegment> failed = preparer.Take();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(ErrnoOf(failed.status()), EIO) << failed.status();
  WaitUntilReady(preparer);
  absl::StatusOr<PreparedSegment> retried = preparer.Take();
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->blocks, SegmentBlocks::kWritten);
  ExpectDurableZeros(fs_, retried->path, kSegmentSize);
}

// Counts what the Wal reports about prepared segments.
struct PreparedCounter : WalMetrics {
  void SegmentPrepared(SegmentBlocks blocks) override {
    ++(blocks == SegmentBlocks::kWritten ? written : fallocated);
  }
  int written = 0;
  int fallocated = 0;
};

WalOptions SmallSegments(MemFileSystem* fs, SegmentBlocks blocks, WalMetrics* metrics) {
  WalOptions options;
  options.fs = fs;
  options.segment_size = 16 * 1024;
  options.segment_blocks = blocks;
  options.prepare_in_background = false;
  options.metrics = metrics;
  return options;
}

TEST(SegmentBlocksTest, Create_WrittenBlocks_SegmentZeroIsFullSizeAndSynced) {
  MemFileSystem fs;
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::Create(kDir, "meta", SmallSegments(&fs, SegmentBlocks::kWritten, nullptr));
  ASSERT_TRUE(wal.ok()) << wal.status();
  CrashOptions crash;
  crash.mode = CrashMode::kDropUnsynced;
  std::unique_ptr<MemFileSystem> image = fs.CrashClone(crash);
  absl::StatusOr<std::string> segment = image->Contents(JoinPath(kDir, SegmentName({0, 0})));
  ASSERT_TRUE(segment.ok()) << segment.status();
  EXPECT_EQ(segment->size(), 16u * 1024);
  const uint64_t end = (*wal)->durable_position().offset;
  EXPECT_EQ(FirstNonZero(absl::string_view(*segment).substr(end)), -1);
}

TEST(SegmentBlocksTest, Cut_ReportsTheBlocksOfEachPreparedSegment) {
  for (SegmentBlocks blocks : {SegmentBlocks::kWritten, SegmentBlocks::kFallocated}) {
    MemFileSystem fs;
    PreparedCounter counter;
    absl::StatusOr<std::unique_ptr<Wal>> wal =
        Wal::Create(kDir, "meta", SmallSegments(&fs, blocks, &counter));
    ASSERT_TRUE(wal.ok()) << wal.status();
    for (uint64_t i = 1; i <= 400; i += 20) {
      ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 0), MakeEntries(i, i + 19, 1, 200)).ok());
    }
    const int cuts = static_cast<int>(ListSegments(&fs, kDir)->size()) - 1;
    ASSERT_GT(cuts, 1);
    EXPECT_EQ(blocks == SegmentBlocks::kWritten ? counter.written : counter.fallocated, cuts);
    EXPECT_EQ(counter.written + counter.fallocated, cuts);
    (*wal).reset();
  }
}

// A power failure or a process crash at every sync while a segment is being
// prepared or cut (the .tmp file's syncs, the one before its rename
// included): the log reopens with everything acknowledged, the stray .tmp
// file is gone, and appends go on.
TEST(SegmentBlocksTest, CrashWhilePreparingASegment_ReopensWithNothingLostAndNoTmpLeft) {
  constexpr uint64_t kBatch = 20;
  MemFileSystem fs;
  uint64_t acked = 0;
  int states = 0;
  int with_tmp = 0;
  fs.SetSyncObserver([&](const SyncPoint& point) {
    if (point.is_dir || !absl::EndsWith(point.path, ".tmp")) return;
    for (int variant = 0; variant < 3; ++variant) {
      CrashOptions crash;
      crash.mode = variant == 2 ? CrashMode::kKeepAll : CrashMode::kDropUnsynced;
      crash.drop_unsynced_dir_ops = variant == 0;
      std::unique_ptr<MemFileSystem> image = fs.CrashClone(crash);
      const std::string where = absl::StrCat("sync ", point.number, " of ", point.path, " variant ",
                                             variant, " after ", acked, " entries");
      ++states;
      if (!TmpFiles(image.get(), kDir).empty()) ++with_tmp;
      WalOptions options = SmallSegments(image.get(), SegmentBlocks::kWritten, nullptr);
      absl::StatusOr<std::unique_ptr<Wal>> reopened = Wal::Open(kDir, walpb::Snapshot(), options);
      ASSERT_TRUE(reopened.ok()) << where << ": " << reopened.status();
      absl::StatusOr<ReadAllResult> read = (*reopened)->ReadAll();
      ASSERT_TRUE(read.ok()) << where << ": " << read.status();
      // The batch whose sync led to the cut is durable before the cut
      // starts, but not yet acknowledged.
      const uint64_t got = read->entries.size();
      EXPECT_TRUE(got == acked || got == acked + kBatch) << where << ": " << got << " entries";
      EXPECT_TRUE(TmpFiles(image.get(), kDir).empty()) << where << ": a stray .tmp file was kept";
      ASSERT_TRUE((*reopened)->Save(MakeState(2, 1, 0), MakeEntries(got + 1, got + 1, 2)).ok())
          << where;
    }
  });
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::Create(kDir, "meta", SmallSegments(&fs, SegmentBlocks::kWritten, nullptr));
  ASSERT_TRUE(wal.ok()) << wal.status();
  for (uint64_t i = 1; i <= 300 && !::testing::Test::HasFailure(); i += kBatch) {
    ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 0), MakeEntries(i, i + kBatch - 1, 1, 200)).ok());
    acked = i + kBatch - 1;
  }
  EXPECT_GT(states, 0);
  EXPECT_GT(with_tmp, 0) << "no crash image held a .tmp file";
}

// FIEMAP: whether any extent of `path` is still unwritten (fallocated, never
// written). NOT_FOUND-style skip if the file system cannot tell.
absl::StatusOr<bool> HasUnwrittenExtents(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", path));
  constexpr int kExtents = 256;
  std::vector<char> buffer(sizeof(struct fiemap) + kExtents * sizeof(struct fiemap_extent));
  bool unwritten = false;
  uint64_t start = 0;
  for (bool last = false; !last;) {
    std::fill(buffer.begin(), buffer.end(), 0);
    auto* map = reinterpret_cast<struct fiemap*>(buffer.data());
    map->fm_start = start;
    map->fm_length = FIEMAP_MAX_OFFSET - start;
    map->fm_flags = FIEMAP_FLAG_SYNC;
    map->fm_extent_count = kExtents;
    if (::ioctl(fd, FS_IOC_FIEMAP, map) != 0) {
      absl::Status s = ErrnoToStatus(errno, absl::StrCat("FIEMAP ", path));
      ::close(fd);
      return s;
    }
    if (map->fm_mapped_extents == 0) break;
    for (uint32_t i = 0; i < map->fm_mapped_extents; ++i) {
      const struct fiemap_extent& e = map->fm_extents[i];
      if (e.fe_flags & FIEMAP_EXTENT_UNWRITTEN) unwritten = true;
      if (e.fe_flags & FIEMAP_EXTENT_LAST) last = true;
      start = e.fe_logical + e.fe_length;
    }
  }
  ::close(fd);
  return unwritten;
}

TEST(SegmentBlocksOnDiskTest, CreateAndCut_WrittenBlocks_LeaveNoUnwrittenExtents) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  WalOptions options;
  options.segment_size = 4 * SegmentPreparer::kInlineChunk;
  options.prepare_in_background = false;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir, "meta", options);
  ASSERT_TRUE(wal.ok()) << wal.status();
  absl::StatusOr<bool> unwritten = HasUnwrittenExtents(JoinPath(dir, SegmentName({0, 0})));
  if (!unwritten.ok()) GTEST_SKIP() << "no FIEMAP here: " << unwritten.status();
  EXPECT_FALSE(*unwritten) << "segment 0 still has fallocated, unwritten extents";

  SegmentPreparer preparer(PosixFs(), dir, options.segment_size, SegmentBlocks::kWritten, false);
  absl::StatusOr<PreparedSegment> taken = preparer.Take();
  ASSERT_TRUE(taken.ok()) << taken.status();
  unwritten = HasUnwrittenExtents(taken->path);
  ASSERT_TRUE(unwritten.ok()) << unwritten.status();
  EXPECT_FALSE(*unwritten) << "a prepared segment still has unwritten extents";
  (void)taken->file->Close();
  ASSERT_TRUE(PosixFs()->RemoveFile(taken->path).ok());

  // The check itself: fallocate alone leaves unwritten extents (where the
  // file system has them; ext4 and xfs do).
  SegmentPreparer fallocating(PosixFs(), dir, options.segment_size, SegmentBlocks::kFallocated,
                              false);
  absl::StatusOr<PreparedSegment> fallocated = fallocating.Take();
  ASSERT_TRUE(fallocated.ok()) << fallocated.status();
  unwritten = HasUnwrittenExtents(fallocated->path);
  ASSERT_TRUE(unwritten.ok()) << unwritten.status();
  if (!*unwritten) GTEST_LOG_(INFO) << "this file system has no unwritten extents";
  (void)fallocated->file->Close();
  ASSERT_TRUE(PosixFs()->RemoveFile(fallocated->path).ok());
}

}  // namespace
}  // namespace walrus
