// walrusd's start (WalStore::Open) and `walrusctl verify` (Verify) read a
// directory with the same reader: a log verify calls clean starts and serves
// what verify counted; damage verify reports stops the start, in verify's
// words.
#include <sys/stat.h>

#include "absl/strings/match.h"
#include "core/segment.h"
#include "core/verify.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeSnapshot;
using testing::MakeState;

constexpr char kDir[] = "/data/wal";

class RecoveryStartTest : public ::testing::Test {
 protected:
  RecoveryStartTest() {
    EXPECT_TRUE(fs_.CreateDir("/data").ok());
    wal_options_.fs = &fs_;
    wal_options_.segment_size = 64 * 1024;
    wal_options_.prepare_in_background = false;
    store_options_.wal_dir = kDir;
    store_options_.fs = &fs_;
    store_options_.segment_size = 64 * 1024;
  }

  std::string LastSegment() {
    absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(&fs_, kDir);
    EXPECT_TRUE(segments.ok() && !segments->empty());
    return JoinPath(kDir, segments->back().name);
  }

  // Starts a store on the directory as walrusd does; the verdict must be
  // verify's.
  void ExpectStartRefusedInVerifysWords(const std::string& what) {
    absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
    ASSERT_TRUE(report.ok()) << what << ": " << report.status();
    ASSERT_EQ(report->outcome, VerifyReport::kCorrupt) << what << ": " << report->Describe();
    RecoverySummary summary;
    absl::StatusOr<std::unique_ptr<WalStore>> store =
        WalStore::Open(store_options_, nullptr, &summary);
    ASSERT_FALSE(store.ok()) << what << ": walrusd started on a log verify calls "
                             << report->Describe();
    EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss) << store.status();
    EXPECT_TRUE(absl::StrContains(store.status().message(), report->Describe()))
        << what << ": " << store.status() << " vs " << report->Describe();
  }

  MemFileSystem fs_;
  WalOptions wal_options_;
  StoreOptions store_options_;
};

TEST_F(RecoveryStartTest, EmptyOnlySegment_StartIsRefusedNotACreatedEmptyLog) {
  ASSERT_TRUE(fs_.CreateDir(kDir).ok());
  ASSERT_TRUE(fs_.NewWritableFile(JoinPath(kDir, SegmentName(0, 0))).ok());
  ExpectStartRefusedInVerifysWords("empty only segment");
}

TEST_F(RecoveryStartTest, ZeroFilledLastSegmentHoldingTheOnlyVote_StartIsRefused) {
  {
    auto wal = Wal::Create(kDir, "meta", wal_options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 40), MakeEntries(1, 40, 1, 2048)).ok());
    ASSERT_TRUE((*wal)->Save(MakeState(7, 3, 45), MakeEntries(41, 45, 7)).ok());
    ASSERT_TRUE((*wal)->Close().ok());
  }
  const std::string last = LastSegment();
  ASSERT_TRUE(fs_.ZeroRange(last, 0, *fs_.FileSize(last)).ok());
  ExpectStartRefusedInVerifysWords("zero-filled last segment");
}

TEST_F(RecoveryStartTest, MarkerBelowOldestSegmentAfterPurge_StartsAndServesWhatVerifyCounted) {
  {
    auto wal = Wal::Create(kDir, "meta", wal_options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 70), MakeEntries(1, 70, 1, 1024)).ok());
    ASSERT_TRUE((*wal)->SaveSnapshot(MakeSnapshot(60, 1)).ok());
    ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 140), MakeEntries(71, 140, 1, 1024)).ok());
    ASSERT_TRUE((*wal)->SaveSnapshot(MakeSnapshot(130, 1)).ok());
    ASSERT_TRUE((*wal)->Close().ok());
  }
  ASSERT_TRUE(fs_.RemoveFile(JoinPath(kDir, SegmentName(0, 0))).ok());  // purged
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
  RecoverySummary summary;
  absl::StatusOr<std::unique_ptr<WalStore>> store =
      WalStore::Open(store_options_, nullptr, &summary);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ(summary.first_index, report->first_index);
  EXPECT_EQ(summary.last_index, report->last_index);
  absl::StatusOr<ReadAllResult> read = (*store)->ReadAll(MakeSnapshot(130, 1));
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->entries.size(), 10u);
  EXPECT_EQ(read->entries.back().index(), 140u);
}

TEST(RecoveryStartPosixTest, FifoUnderASegmentName_StartIsRefusedNotTakenForNoWal) {
  testing::TempDir tmp;
  StoreOptions options;
  options.wal_dir = tmp.Sub("wal");
  {
    WalOptions wal_options;
    wal_options.segment_size = 64 * 1024;
    auto wal = Wal::Create(options.wal_dir, "meta", wal_options);
    ASSERT_TRUE(wal.ok()) << wal.status();
  }
  ASSERT_EQ(::unlink(JoinPath(options.wal_dir, SegmentName(0, 0)).c_str()), 0);
  ASSERT_EQ(::mkfifo(JoinPath(options.wal_dir, SegmentName(0, 0)).c_str(), 0600), 0);
  RecoverySummary summary;
  absl::StatusOr<std::unique_ptr<WalStore>> store = WalStore::Open(options, nullptr, &summary);
  ASSERT_FALSE(store.ok()) << "started on a directory whose only segment is a FIFO";
  EXPECT_TRUE(absl::StrContains(store.status().message(), "not a regular file")) << store.status();
}

}  // namespace
}  // namespace walrus
