// Point-in-time backups: the atomic BackupWriter and the offline method on a
// directory a writer holds (POSIX, real OFD locks).
#include "core/backup.h"

#include <filesystem>
#include <fstream>

#include "core/purge.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeState;

class BackupTest : public ::testing::Test {
 protected:
  BackupTest() {
    options_.segment_size = 8192;
    options_.prepare_in_background = false;
  }

  std::unique_ptr<Wal> WriteLog(uint64_t last) {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir_, "meta", options_);
    EXPECT_TRUE(wal.ok()) << wal.status();
    if (!wal.ok()) return nullptr;
    for (uint64_t i = 1; i <= last; i += 20) {
      EXPECT_TRUE((*wal)->Save(MakeState(1, 1, i), MakeEntries(i, i + 19, 1, 100)).ok());
    }
    return std::move(*wal);
  }

  // Everything a recovering writer reads from `dir`.
  absl::StatusOr<ReadAllResult> ReadEverything(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(dir, options_);
    if (!wal.ok()) return wal.status();
    return (*wal)->ReadAll();
  }

  testing::TempDir tmp_;
  std::string dir_ = tmp_.Sub("wal");
  std::string dest_ = tmp_.Sub("backup");
  WalOptions options_;
};

TEST_F(BackupTest, OfflineBackup_WhileWriterHoldsLog_VerifiesCleanWithEverySyncedEntry) {
  std::unique_ptr<Wal> wal = WriteLog(400);
  absl::StatusOr<BackupSummary> summary = OfflineBackup(PosixFs(), dir_, dest_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->verified.outcome, VerifyReport::kClean);
  EXPECT_EQ(summary->verified.last_index, 400u);
  EXPECT_FALSE(std::filesystem::exists(dest_ + ".tmp"));
  // The copy's tail ends at its last record: no preallocated zeros.
  absl::StatusOr<ReadAllResult> read = ReadEverything(dest_);
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->entries.size(), 400u);
  EXPECT_EQ(read->state.commit(), 381u);
  // The writer goes on undisturbed.
  EXPECT_TRUE(wal->Save(MakeState(1, 1, 401), MakeEntries(401, 401, 1)).ok());
}

TEST_F(BackupTest, OfflineBackup_UnsyncedTailAfterLastRecord_IsLeftOut) {
  std::unique_ptr<Wal> wal = WriteLog(100);
  LogPosition durable = wal->durable_position();
  ASSERT_TRUE(wal->Close().ok());
  // A write in progress: half a frame after the last synced record.
  std::string tail;
  for (const auto& e : std::filesystem::directory_iterator(dir_))
    tail = std::max(tail, e.path().string());
  {
    std::fstream f(tail, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(durable.offset));
    const char partial[] = {0x40, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x02, 0x10};
    f.write(partial, sizeof(partial));
  }
  absl::StatusOr<BackupSummary> summary = OfflineBackup(PosixFs(), dir_, dest_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->verified.outcome, VerifyReport::kClean);
  EXPECT_EQ(summary->verified.last_index, 100u);
  EXPECT_EQ(
      std::filesystem::file_size(dest_ + "/" + std::filesystem::path(tail).filename().string()),
      durable.offset);
}

TEST_F(BackupTest, OfflineBackup_HoldsReleasedFilesLocked_PurgeWaitsForIt) {
  std::unique_ptr<Wal> wal = WriteLog(600);
  std::vector<SegmentId> held = wal->locked_segments();
  ASSERT_GE(held.size(), 4u);
  ASSERT_TRUE(wal->ReleaseTo(held.back().index).ok());
  PurgePolicy policy{wal->locked_segments().front().seq, 0};
  std::optional<PurgeReport> during;
  absl::StatusOr<BackupSummary> summary =
      OfflineBackup(PosixFs(), dir_, dest_, [&](const BackupProgress& p) {
        if (during.has_value() || p.files_done == 0) return;
        absl::StatusOr<PurgeReport> r = PurgeReleased(PosixFs(), dir_, policy, nullptr);
        ASSERT_TRUE(r.ok()) << r.status();
        during = *r;
      });
  ASSERT_TRUE(summary.ok()) << summary.status();
  ASSERT_TRUE(during.has_value());
  EXPECT_TRUE(during->purged.empty()) << during->Describe();
  ASSERT_TRUE(during->blocked.has_value());
  EXPECT_GE(summary->locked_files, held.size() - 2);
  EXPECT_EQ(summary->verified.last_index, 600u);
  // Once the backup is done, purge proceeds.
  absl::StatusOr<PurgeReport> after = PurgeReleased(PosixFs(), dir_, policy, nullptr);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_FALSE(after->purged.empty());
  EXPECT_FALSE(after->blocked.has_value()) << after->Describe();
}

TEST_F(BackupTest, OfflineBackup_DestinationExists_IsRefusedAndLeftAlone) {
  std::unique_ptr<Wal> wal = WriteLog(20);
  std::filesystem::create_directories(dest_);
  testing::WriteFile(dest_ + "/keep", "mine");
  absl::StatusOr<BackupSummary> summary = OfflineBackup(PosixFs(), dir_, dest_);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kAlreadyExists) << summary.status();
  EXPECT_EQ(testing::ReadFile(dest_ + "/keep"), "mine");
}

TEST_F(BackupTest, OfflineBackup_DestinationInsideTheWalDirectory_IsRefused) {
  std::unique_ptr<Wal> wal = WriteLog(20);
  absl::StatusOr<BackupSummary> summary = OfflineBackup(PosixFs(), dir_, dir_ + "/copy");
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kInvalidArgument) << summary.status();
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/copy.tmp"));
}

TEST_F(BackupTest, OfflineBackup_CorruptSealedSegment_FailsAndLeavesNoDestination) {
  std::unique_ptr<Wal> wal = WriteLog(300);
  ASSERT_TRUE(wal->Close().ok());
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_GE(files.size(), 2u);
  std::string bytes = testing::ReadFile(files[0]);
  bytes[bytes.size() / 2] ^= 0x5a;
  testing::WriteFile(files[0], bytes);
  absl::StatusOr<BackupSummary> summary = OfflineBackup(PosixFs(), dir_, dest_);
  EXPECT_EQ(summary.status().code(), absl::StatusCode::kDataLoss) << summary.status();
  EXPECT_FALSE(std::filesystem::exists(dest_));
  EXPECT_FALSE(std::filesystem::exists(dest_ + ".tmp"));
}

TEST_F(BackupTest, BackupWriter_NameThatIsNotASegment_IsRefused) {
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(PosixFs(), dest_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  EXPECT_EQ((*writer)->OpenFile("../escape.wal").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*writer)->OpenFile("0000000000000000-0000000000000000.wal.tmp").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(BackupTest, BackupWriter_ChunkOutOfOrderOrSegmentGap_IsRefused) {
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(PosixFs(), dest_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->OpenFile(SegmentName(3, 10)).ok());
  ASSERT_TRUE((*writer)->Write(0, "abcd").ok());
  EXPECT_EQ((*writer)->Write(8, "efgh").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*writer)->CloseFile(5).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ((*writer)->OpenFile(SegmentName(5, 20)).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(BackupTest, BackupWriter_CopyMissingAcknowledgedEntries_IsNotPublished) {
  std::unique_ptr<Wal> wal = WriteLog(40);
  ASSERT_TRUE(wal->Close().ok());
  std::string name;
  for (const auto& e : std::filesystem::directory_iterator(dir_)) {
    name = e.path().filename();
  }
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(PosixFs(), dest_);
  ASSERT_TRUE(writer.ok()) << writer.status();
  ASSERT_TRUE((*writer)->OpenFile(name).ok());
  ASSERT_TRUE((*writer)->Write(0, testing::ReadFile(dir_ + "/" + name)).ok());
  ASSERT_TRUE((*writer)->CloseFile().ok());
  ASSERT_TRUE((*writer)->TrimLastFile().ok());
  absl::StatusOr<VerifyReport> report = (*writer)->Commit(41);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kDataLoss) << report.status();
  EXPECT_FALSE(std::filesystem::exists(dest_));
  writer->reset();
  EXPECT_FALSE(std::filesystem::exists(dest_ + ".tmp"));
}

TEST_F(BackupTest, BackupWriter_LeftoverTmpOfInterruptedBackup_IsReplaced) {
  std::unique_ptr<Wal> wal = WriteLog(40);
  std::filesystem::create_directories(dest_ + ".tmp");
  testing::WriteFile(dest_ + ".tmp/" + SegmentName(9, 9), "junk");
  absl::StatusOr<BackupSummary> summary = OfflineBackup(PosixFs(), dir_, dest_);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(std::filesystem::exists(dest_ + "/" + SegmentName(9, 9)));
}

}  // namespace
}  // namespace walrus
