// A read that fails (EIO) is an error of whoever reads: recovery, ReadAll in
// either mode, Verify and Repair all fail with the I/O error and change
// nothing. It is never mistaken for a torn tail, which a repair would cut off
// together with every acknowledged entry after the unreadable bytes.
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/segment.h"
#include "core/verify.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeState;

constexpr char kDir[] = "/wal";

class ReadErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.fs = &fs_;
    options_.segment_size = 8 * 1024;
    options_.prepare_in_background = false;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    for (uint64_t i = 1; i <= 200; i += 10) {
      ASSERT_TRUE((*wal)->Save(MakeState(1, 1, i), MakeEntries(i, i + 9, 1, 100)).ok());
    }
    ASSERT_TRUE((*wal)->Close().ok());
    absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(&fs_, kDir);
    ASSERT_TRUE(segments.ok());
    ASSERT_GE(segments->size(), 3u);
    for (const SegmentFile& s : *segments) paths_.push_back(JoinPath(kDir, s.name));
    for (const std::string& p : paths_) contents_.push_back(*fs_.Contents(p));
  }

  // Every segment is as it was before the failed read.
  void ExpectUnchanged(const std::string& what) {
    for (size_t i = 0; i < paths_.size(); ++i) {
      EXPECT_EQ(*fs_.Contents(paths_[i]), contents_[i]) << what << ": " << paths_[i] << " changed";
    }
  }

  // The fault is gone: the log reads back whole.
  void ExpectReadsWholeAfterwards(const std::string& what) {
    fs_.ClearFaults();
    absl::StatusOr<std::unique_ptr<Wal>> reader =
        Wal::OpenForRead(kDir, walpb::Snapshot(), options_);
    ASSERT_TRUE(reader.ok()) << what << ": " << reader.status();
    absl::StatusOr<ReadAllResult> read = (*reader)->ReadAll();
    ASSERT_TRUE(read.ok()) << what << ": " << read.status();
    EXPECT_EQ(read->entries.size(), 200u) << what;
  }

  MemFileSystem fs_;
  WalOptions options_;
  std::vector<std::string> paths_;
  std::vector<std::string> contents_;
};

TEST_F(ReadErrorTest, EioReadingAnySegment_EveryReaderFailsWithTheIoError_NothingChanged) {
  for (size_t target = 0; target < paths_.size(); ++target) {
    const std::string& path = paths_[target];
    const std::string which = absl::StrCat("segment ", target, " of ", paths_.size());

    fs_.FailNext(FsOp::kRead, EIO, Fault::kForever, path);
    absl::StatusOr<VerifyReport> verified = Verify(&fs_, kDir);
    EXPECT_FALSE(verified.ok()) << which << ": verify read through an I/O error: "
                                << (verified.ok() ? verified->Describe() : "");
    if (!verified.ok()) {
      EXPECT_EQ(ErrnoOf(verified.status()), EIO) << verified.status();
    }
    fs_.ClearFaults();

    fs_.FailNext(FsOp::kRead, EIO, Fault::kForever, path);
    absl::StatusOr<std::unique_ptr<Wal>> reader =
        Wal::OpenForRead(kDir, walpb::Snapshot(), options_);
    ASSERT_TRUE(reader.ok()) << reader.status();
    absl::StatusOr<ReadAllResult> read = (*reader)->ReadAll();
    EXPECT_FALSE(read.ok()) << which << ": ReadAll (read mode) served "
                            << (read.ok() ? read->entries.size() : 0) << " entries";
    EXPECT_FALSE(read.ok() && !read->torn_tail.empty()) << which;
    if (!read.ok()) {
      EXPECT_EQ(ErrnoOf(read.status()), EIO) << which << ": " << read.status();
    }
    reader->reset();
    fs_.ClearFaults();

    fs_.FailNext(FsOp::kRead, EIO, Fault::kForever, path);
    absl::StatusOr<std::unique_ptr<Wal>> recovering = Wal::OpenForRecovery(kDir, options_);
    ASSERT_TRUE(recovering.ok()) << recovering.status();
    absl::StatusOr<ReadAllResult> recovered = (*recovering)->ReadAll();
    EXPECT_FALSE(recovered.ok()) << which << ": recovery read through an I/O error";
    EXPECT_FALSE(IsTornTail(recovered.status())) << which << ": " << recovered.status();
    if (!recovered.ok()) {
      EXPECT_EQ(ErrnoOf(recovered.status()), EIO) << which << ": " << recovered.status();
    }
    recovering->reset();
    fs_.ClearFaults();

    fs_.FailNext(FsOp::kRead, EIO, Fault::kForever, path);
    absl::StatusOr<RepairReport> repaired = Repair(&fs_, kDir);
    EXPECT_FALSE(repaired.ok() && repaired->repaired)
        << which << ": repair cut the log at an unreadable segment";
    fs_.ClearFaults();

    ExpectUnchanged(which);
    ExpectReadsWholeAfterwards(which);
    if (HasFailure()) return;
  }
  std::printf("segments made unreadable, each through all four readers: %zu\n", paths_.size());
}

}  // namespace
}  // namespace walrus
