// I/O errors on the fault-injecting file system: a failed fsync is sticky and
// never retried, a full disk is RESOURCE_EXHAUSTED and leaves the log usable,
// failures at a segment cut stop the WAL without damaging it.
#include <cerrno>

#include "absl/cleanup/cleanup.h"
#include "core/errors.h"
#include "core/segment.h"
#include "core/verify.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::Describe;
using testing::MakeEntries;
using testing::MakeState;

constexpr char kDir[] = "/wal";

class FaultTest : public ::testing::Test {
 protected:
  FaultTest() {
    options_.fs = &fs_;
    options_.segment_size = 16 * 1024;
    options_.prepare_in_background = false;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    EXPECT_TRUE(wal.ok()) << wal.status();
    wal_ = std::move(*wal);
  }

  // What a restart on the disk as it is now would read.
  absl::StatusOr<ReadAllResult> ReadBack() {
    absl::StatusOr<std::unique_ptr<Wal>> reader =
        Wal::OpenForRead(kDir, walpb::Snapshot(), options_);
    if (!reader.ok()) return reader.status();
    return (*reader)->ReadAll();
  }

  MemFileSystem fs_;
  WalOptions options_;
  std::unique_ptr<Wal> wal_;
};

TEST_F(FaultTest, FsyncEio_IsStickyAndNeverRetried) {
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  // Counted over the whole file system: the tail's handle was opened under
  // the directory's temporary name.
  const uint64_t syncs_before = fs_.TotalSyncCount();
  fs_.FailNext(FsOp::kSync, EIO);
  absl::Status failed = wal_->Save(MakeState(1, 1, 0), MakeEntries(6, 8, 1));
  EXPECT_EQ(failed.code(), absl::StatusCode::kUnavailable) << failed;
  EXPECT_EQ(ErrnoOf(failed), EIO);
  EXPECT_EQ(fs_.TotalSyncCount(), syncs_before + 1);
  // Every later write fails, naming the first error, and syncs nothing.
  absl::Status later = wal_->Save(MakeState(1, 1, 0), MakeEntries(6, 6, 1));
  EXPECT_EQ(later.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(later.message().find("fail-stop"), std::string::npos) << later;
  EXPECT_EQ(wal_->SaveSnapshot(testing::MakeSnapshot(3, 1)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(wal_->Close().code(), absl::StatusCode::kOk);
  EXPECT_EQ(fs_.TotalSyncCount(), syncs_before + 1) << "an fsync was retried after it failed";
  // What was acknowledged is still readable.
  absl::StatusOr<ReadAllResult> read = ReadBack();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_GE(read->entries.size(), 5u);
}

TEST_F(FaultTest, WriteEio_IsStickyFailStop) {
  fs_.FailNext(FsOp::kAppend, EIO);
  EXPECT_EQ(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 3, 1)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(wal_->failure().ok());
  EXPECT_EQ(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 3, 1)).code(),
            absl::StatusCode::kUnavailable);
}

TEST_F(FaultTest, WriteEnospc_IsResourceExhaustedAndAppendsResumeWhenSpaceReturns) {
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  // A short write, then ENOSPC: half the batch lands in the file.
  fs_.FailNextAppendAfter(40, ENOSPC);
  absl::Status full = wal_->Save(MakeState(1, 1, 2), MakeEntries(6, 10, 1));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted) << full;
  EXPECT_TRUE(wal_->failure().ok()) << "a full disk must not be fail-stop";
  EXPECT_EQ(wal_->last_index(), 5u) << "the failed batch is forgotten";
  // The log on disk is valid and holds exactly the acknowledged entries.
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
  // Space returns: the same append goes through and continues the chain.
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 2), MakeEntries(6, 10, 1)).ok());
  ASSERT_TRUE(wal_->Close().ok());
  absl::StatusOr<ReadAllResult> read = ReadBack();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Describe(read->entries), "1/1 2/1 3/1 4/1 5/1 6/1 7/1 8/1 9/1 10/1");
  EXPECT_EQ(read->state.commit(), 2u);
}

// Counts what the Wal reports about cuts.
class CutCounter : public WalMetrics {
 public:
  void SegmentCut(uint64_t) override { ++cuts; }
  void SegmentCutDeferred(const absl::Status& why, uint64_t tail_bytes) override {
    ++deferred;
    last_why = why;
    last_tail_bytes = tail_bytes;
  }
  int cuts = 0;
  int deferred = 0;
  absl::Status last_why;
  uint64_t last_tail_bytes = 0;
};

TEST_F(FaultTest, DiskFullAtPreallocation_KeepsWritingIntoCurrentSegment_AndSaysSo) {
  CutCounter counter;
  absl::Cleanup drop_wal = [&] { wal_.reset(); };  // before the counter goes
  ASSERT_TRUE(wal_->Close().ok());
  options_.metrics = &counter;
  absl::StatusOr<std::unique_ptr<Wal>> reopened = Wal::Open(kDir, walpb::Snapshot(), options_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  wal_ = std::move(*reopened);
  ASSERT_TRUE(wal_->ReadAll().ok());
  fs_.FailNext(FsOp::kPreallocate, ENOSPC, Fault::kForever);
  for (uint64_t i = 1; i <= 200; i += 20) {
    ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(i, i + 19, 1, 200)).ok());
  }
  EXPECT_EQ(ListSegments(&fs_, kDir)->size(), 1u) << "no segment could be prepared";
  EXPECT_GT(counter.deferred, 0) << "a cut put off for lack of space went unreported";
  EXPECT_EQ(counter.last_why.code(), absl::StatusCode::kResourceExhausted) << counter.last_why;
  EXPECT_GT(counter.last_tail_bytes, options_.segment_size);
  EXPECT_EQ(counter.cuts, 0);
  fs_.ClearFaults();
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(201, 210, 1, 200)).ok());
  EXPECT_EQ(ListSegments(&fs_, kDir)->size(), 2u) << "the cut happens once space returns";
  EXPECT_EQ(counter.cuts, 1);
  ASSERT_TRUE(wal_->Close().ok());
  absl::StatusOr<ReadAllResult> read = ReadBack();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->entries.size(), 210u);
}

TEST_F(FaultTest, RenameFailureAtCut_FailStopsWithoutDamagingTheLog) {
  fs_.FailNext(FsOp::kRename, EIO, 1, ".tmp");
  absl::Status status = absl::OkStatus();
  uint64_t acked = 0;
  for (uint64_t i = 1; i <= 400 && status.ok(); i += 20) {
    status = wal_->Save(MakeState(1, 1, 0), MakeEntries(i, i + 19, 1, 200));
    if (status.ok()) acked = i + 19;
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_FALSE(wal_->failure().ok());
  ASSERT_TRUE(wal_->Close().ok());
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
  absl::StatusOr<ReadAllResult> read = ReadBack();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_GE(read->entries.size(), acked);
}

// Failing to create the next segment for another reason than space is the
// directory's trouble: fail-stop at the cut, naming it, never a silent retry
// at every sync while the tail grows without bound.
TEST_F(FaultTest, CreateFailureOfNextSegment_FailStopsNamingIt_LogReadable) {
  fs_.FailNext(FsOp::kCreate, EACCES, Fault::kForever, ".tmp");
  absl::Status status = absl::OkStatus();
  uint64_t acked = 0;
  for (uint64_t i = 1; i <= 400 && status.ok(); i += 20) {
    status = wal_->Save(MakeState(1, 1, 0), MakeEntries(i, i + 19, 1, 200));
    if (status.ok()) acked = i + 19;
  }
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_NE(status.message().find("preparing the next segment"), std::string::npos) << status;
  EXPECT_FALSE(wal_->failure().ok());
  EXPECT_EQ(ListSegments(&fs_, kDir)->size(), 1u);
  ASSERT_TRUE(wal_->Close().ok());
  fs_.ClearFaults();
  absl::StatusOr<ReadAllResult> read = ReadBack();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_GE(read->entries.size(), acked);
}

TEST_F(FaultTest, CrashAfterFailedFsync_LosesOnlyUnacknowledgedData) {
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  fs_.FailNext(FsOp::kSync, EIO);
  EXPECT_FALSE(wal_->Save(MakeState(1, 1, 0), MakeEntries(6, 9, 1)).ok());
  std::unique_ptr<MemFileSystem> image = fs_.CrashClone(CrashOptions());
  WalOptions options = options_;
  options.fs = image.get();
  absl::StatusOr<std::unique_ptr<Wal>> reopened = Wal::Open(kDir, walpb::Snapshot(), options);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  absl::StatusOr<ReadAllResult> read = (*reopened)->ReadAll();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Describe(read->entries), "1/1 2/1 3/1 4/1 5/1");
}

TEST_F(FaultTest, TailSegmentUnlinked_NextSyncFailStopsAndAcknowledgesNothing) {
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  const std::string tail = JoinPath(kDir, SegmentName(wal_->locked_segments().back()));
  const LogPosition before = wal_->durable_position();
  ASSERT_TRUE(fs_.RemoveFile(tail).ok());
  absl::Status lost = wal_->Save(MakeState(1, 1, 0), MakeEntries(6, 8, 1));
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable) << lost;
  EXPECT_NE(lost.message().find(tail), std::string::npos) << lost;
  EXPECT_EQ(wal_->Save(MakeState(1, 1, 0), MakeEntries(6, 6, 1)).code(),
            absl::StatusCode::kUnavailable);
  // The durable end (what readers and backups trust) did not move.
  EXPECT_EQ(wal_->durable_position().offset, before.offset);
}

TEST_F(FaultTest, TailSegmentRenamedOver_NextSyncFailStops) {
  ASSERT_TRUE(wal_->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  const std::string tail = JoinPath(kDir, SegmentName(wal_->locked_segments().back()));
  {
    absl::StatusOr<std::unique_ptr<WritableFile>> other = fs_.NewWritableFile("/wal/other");
    ASSERT_TRUE(other.ok()) << other.status();
  }
  ASSERT_TRUE(fs_.Rename("/wal/other", tail).ok());
  EXPECT_EQ(wal_->Save(MakeState(1, 1, 0), MakeEntries(6, 8, 1)).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(wal_->failure().ok());
}

}  // namespace
}  // namespace walrus
