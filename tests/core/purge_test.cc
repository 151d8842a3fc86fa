// The purge policy, on the in-memory file system (faults, sync counts) and on
// POSIX (real OFD locks): never an unreleased or pinned segment, oldest first,
// no holes, and it resumes once the pin goes.
#include "core/purge.h"

#include <memory>
#include <string>

#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeState;

std::string Names(const std::vector<SegmentFile>& segments) {
  std::string out;
  for (const SegmentFile& s : segments) out += std::to_string(s.id.seq) + " ";
  return out;
}

// A writer with many small segments, half of them released.
class PurgeTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    fs_ = GetParam() ? static_cast<FileSystem*>(PosixFs()) : &mem_;
    dir_ = GetParam() ? tmp_.Sub("wal") : "/wal";
    options_.fs = fs_;
    options_.segment_size = 4096;
    options_.prepare_in_background = false;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir_, "meta", options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    wal_ = std::move(*wal);
    for (uint64_t i = 1; i <= 1000; i += 50) {
      ASSERT_TRUE(wal_->Save(MakeState(1, 1, i), MakeEntries(i, i + 49, 1, 100)).ok());
    }
    ASSERT_GE(Segments().size(), 10u);
  }

  std::vector<SegmentFile> Segments() {
    absl::StatusOr<std::vector<SegmentFile>> s = ListSegments(fs_, dir_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<SegmentFile>{};
  }
  // Releases all but the last `keep_locked` segments.
  void ReleaseAllBut(size_t keep_locked) {
    std::vector<SegmentId> held = wal_->locked_segments();
    ASSERT_GT(held.size(), keep_locked);
    // ReleaseTo keeps the segment before the one holding the index.
    ASSERT_TRUE(wal_->ReleaseTo(held[held.size() - keep_locked + 1].index).ok());
    ASSERT_EQ(wal_->locked_segments().size(), keep_locked);
  }
  PurgePolicy Policy(uint64_t retain) {
    return PurgePolicy{wal_->locked_segments().front().seq, retain};
  }
  std::string Path(const SegmentFile& s) { return dir_ + "/" + s.name; }

  testing::TempDir tmp_;
  MemFileSystem mem_;
  FileSystem* fs_ = nullptr;
  std::string dir_;
  WalOptions options_;
  std::unique_ptr<Wal> wal_;
  SegmentPins pins_;
};

TEST_P(PurgeTest, Purge_NothingReleased_DeletesNothing) {
  const size_t before = Segments().size();
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->purged.empty());
  EXPECT_FALSE(report->blocked.has_value());
  EXPECT_EQ(Segments().size(), before);
}

TEST_P(PurgeTest, Purge_RetainZero_DeletesEveryReleasedSegmentAndNoOther) {
  ReleaseAllBut(4);
  const std::vector<SegmentFile> before = Segments();
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged.size(), before.size() - 4) << report->Describe();
  EXPECT_GT(report->purged_bytes, 0u);
  std::vector<SegmentFile> after = Segments();
  ASSERT_EQ(after.size(), 4u) << Names(after);
  EXPECT_EQ(after.front().id.seq, wal_->locked_segments().front().seq);
}

TEST_P(PurgeTest, Purge_RetainN_KeepsTheNewestNReleased) {
  ReleaseAllBut(3);
  const std::vector<SegmentFile> before = Segments();
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, Policy(2), &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  std::vector<SegmentFile> after = Segments();
  ASSERT_EQ(after.size(), 5u) << Names(after);
  EXPECT_EQ(after.front().id.seq, before[before.size() - 5].id.seq);
  EXPECT_EQ(report->released, before.size() - 3);
}

TEST_P(PurgeTest, Purge_SegmentLockedByWriter_IsNeverDeletedEvenIfPolicySaysReleased) {
  ReleaseAllBut(4);
  const SegmentId first_held = wal_->locked_segments().front();
  // A policy that wrongly believes everything is released.
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, PurgePolicy{1'000'000, 0}, &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_TRUE(report->blocked.has_value());
  EXPECT_NE(report->blocked->file.find(SegmentName(first_held)), std::string::npos)
      << report->Describe();
  std::vector<SegmentFile> after = Segments();
  ASSERT_EQ(after.size(), 4u) << Names(after);
  EXPECT_EQ(after.front().id.seq, first_held.seq);
}

TEST_P(PurgeTest, Purge_PinnedSegment_IsNeverDeletedAndLaterOnesStay) {
  ReleaseAllBut(2);
  const std::vector<SegmentFile> before = Segments();
  const uint64_t pinned = before[3].id.seq;
  std::unique_ptr<SegmentPins::Pin> pin = pins_.PinRange(pinned, pinned, "backup #7");
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged.size(), 3u) << report->Describe();
  ASSERT_TRUE(report->blocked.has_value());
  EXPECT_NE(report->blocked->holder.find("backup #7"), std::string::npos);
  EXPECT_NE(report->blocked->file.find(before[3].name), std::string::npos);
  // No holes: everything from the pinned segment on is still there.
  std::vector<SegmentFile> after = Segments();
  ASSERT_EQ(after.size(), before.size() - 3) << Names(after);
  EXPECT_EQ(after.front().id.seq, pinned);
  EXPECT_TRUE(IsContiguous(after, 0));
}

TEST_P(PurgeTest, Purge_ResumesOncePinGoes) {
  ReleaseAllBut(2);
  std::unique_ptr<SegmentPins::Pin> pin = pins_.PinRange(0, 1'000'000, "backup #1");
  const size_t before = Segments().size();
  absl::StatusOr<PurgeReport> blocked = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(blocked.ok()) << blocked.status();
  EXPECT_TRUE(blocked->purged.empty());
  EXPECT_TRUE(blocked->blocked.has_value());
  EXPECT_EQ(Segments().size(), before);
  bool notified = false;
  pins_.set_on_unpin([&] { notified = true; });
  pin.reset();
  EXPECT_TRUE(notified);
  absl::StatusOr<PurgeReport> resumed = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(resumed.ok()) << resumed.status();
  EXPECT_FALSE(resumed->blocked.has_value()) << resumed->Describe();
  EXPECT_EQ(Segments().size(), 2u);
}

TEST_P(PurgeTest, Purge_FileLockedByAnotherHolder_StopsThereAndNamesIt) {
  ReleaseAllBut(2);
  const std::vector<SegmentFile> before = Segments();
  // What an offline backup does: hold the OFD lock of the files it reads.
  absl::StatusOr<std::unique_ptr<FileLock>> held = fs_->TryLockFile(Path(before[2]));
  ASSERT_TRUE(held.ok()) << held.status();
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->purged.size(), 2u);
  ASSERT_TRUE(report->blocked.has_value());
  EXPECT_NE(report->blocked->holder.find("locked by another process"), std::string::npos);
  EXPECT_EQ(Segments().front().id.seq, before[2].id.seq);
  held->reset();
  report = PurgeReleased(fs_, dir_, Policy(0), &pins_);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(Segments().size(), 2u);
}

TEST_P(PurgeTest, Purge_AfterPurge_LogStillRecoversFromOldestSegment) {
  ReleaseAllBut(3);
  ASSERT_TRUE(PurgeReleased(fs_, dir_, Policy(0), &pins_).ok());
  const uint64_t first_index = Segments().front().id.index;
  ASSERT_TRUE(wal_->Close().ok());
  wal_.reset();
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(dir_, options_);
  ASSERT_TRUE(wal.ok()) << wal.status();
  absl::StatusOr<ReadAllResult> read = (*wal)->ReadAll();
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_FALSE(read->entries.empty());
  EXPECT_LE(read->entries.front().index(), first_index);
  EXPECT_EQ(read->entries.back().index(), 1000u);
}

INSTANTIATE_TEST_SUITE_P(MemAndPosix, PurgeTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "Posix" : "Mem";
                         });

class PurgeMemTest : public PurgeTest {};

TEST_P(PurgeMemTest, Purge_SyncsTheDirectoryAfterDeleting) {
  ReleaseAllBut(2);
  const int before = mem_.SyncCount(dir_);
  ASSERT_TRUE(PurgeReleased(fs_, dir_, Policy(0), &pins_).ok());
  EXPECT_EQ(mem_.SyncCount(dir_), before + 1);
}

TEST_P(PurgeMemTest, Purge_UnlinkFails_ReturnsErrorAndKeepsLogContiguous) {
  ReleaseAllBut(2);
  const std::vector<SegmentFile> before = Segments();
  mem_.FailNext(FsOp::kRemove, EIO, 1, before[1].name);
  PurgeReport partial;
  absl::StatusOr<PurgeReport> report = PurgeReleased(fs_, dir_, Policy(0), &pins_, &partial);
  EXPECT_FALSE(report.ok());
  EXPECT_EQ(partial.purged.size(), 1u);
  std::vector<SegmentFile> after = Segments();
  EXPECT_EQ(after.front().id.seq, before[1].id.seq) << Names(after);
  EXPECT_TRUE(IsContiguous(after, 0));
}

INSTANTIATE_TEST_SUITE_P(Mem, PurgeMemTest, ::testing::Values(false));

}  // namespace
}  // namespace walrus
