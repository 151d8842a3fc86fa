// The WAL on the real file system: etcd's semantics, segments, locks, repair.
#include "core/wal.h"

#include <filesystem>

#include "core/errors.h"
#include "core/segment.h"
#include "core/verify.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::Describe;
using testing::MakeEntries;
using testing::MakeSnapshot;
using testing::MakeState;

class WalTest : public ::testing::Test {
 protected:
  WalTest() { options_.segment_size = 64 * 1024; }

  std::unique_ptr<Wal> CreateWal(absl::string_view metadata = "meta") {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir_, metadata, options_);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(*wal) : nullptr;
  }

  absl::StatusOr<ReadAllResult> ReadBack(const walpb::Snapshot& snap = walpb::Snapshot(),
                                         bool write_mode = false) {
    absl::StatusOr<std::unique_ptr<Wal>> wal =
        write_mode ? Wal::Open(dir_, snap, options_) : Wal::OpenForRead(dir_, snap, options_);
    if (!wal.ok()) return wal.status();
    return (*wal)->ReadAll();
  }

  std::vector<SegmentFile> Segments() {
    absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(PosixFs(), dir_);
    EXPECT_TRUE(segments.ok()) << segments.status();
    return segments.ok() ? *segments : std::vector<SegmentFile>{};
  }

  std::string LastSegmentPath() { return dir_ + "/" + Segments().back().name; }

  testing::TempDir tmp_;
  std::string dir_ = tmp_.Sub("wal");
  WalOptions options_;
};

TEST_F(WalTest, Create_ThenReadAll_ReturnsMetadataAndNothingElse) {
  CreateWal("hello").reset();
  absl::StatusOr<ReadAllResult> result = ReadBack();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->metadata, "hello");
  EXPECT_TRUE(result->entries.empty());
  EXPECT_TRUE(IsEmptyHardState(result->state));
  EXPECT_FALSE(std::filesystem::exists(dir_ + ".tmp"));
}

TEST_F(WalTest, Create_RefusesExistingWal) {
  CreateWal().reset();
  absl::StatusOr<std::unique_ptr<Wal>> again = Wal::Create(dir_, "meta", options_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);
}

TEST_F(WalTest, Create_AcceptsEmptyExistingDirectory) {
  std::filesystem::create_directory(dir_);
  EXPECT_NE(CreateWal(), nullptr);
}

TEST_F(WalTest, Save_ThenReadAll_ReturnsEntriesAndLastHardState) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 3), MakeEntries(6, 8, 1)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> result = ReadBack();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Describe(result->entries), "1/1 2/1 3/1 4/1 5/1 6/1 7/1 8/1");
  EXPECT_EQ(result->state.commit(), 3u);
  EXPECT_EQ(result->entries[4].data(), MakeEntries(5, 5, 1)[0].data());
}

TEST_F(WalTest, ReadAll_LaterEntryTruncatesConflictingSuffix) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 2), MakeEntries(1, 6, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(2, 2, 2), MakeEntries(4, 5, 2)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> result = ReadBack();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Describe(result->entries), "1/1 2/1 3/1 4/2 5/2");
}

TEST_F(WalTest, ReadAll_FromSnapshot_ReturnsOnlyLaterEntries) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 4), MakeEntries(1, 6, 1)).ok());
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(4, 1)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> result = ReadBack(MakeSnapshot(4, 1));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Describe(result->entries), "5/1 6/1");
}

TEST_F(WalTest, ReadAll_SnapshotWithWrongTerm_IsMismatch) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 4), MakeEntries(1, 6, 1)).ok());
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(4, 1)).ok());
  ASSERT_TRUE(wal->Close().ok());
  EXPECT_EQ(ReadBack(MakeSnapshot(4, 2)).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(WalTest, ReadAll_SnapshotNeverSaved_IsNotFound) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 4), MakeEntries(1, 6, 1)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> result = ReadBack(MakeSnapshot(3, 1));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kNotFound) << result.status();
  EXPECT_NE(result.status().message().find("snapshot not found"), std::string::npos);
}

TEST_F(WalTest, Open_EmptyOrMissingDirectory_IsFileNotFound) {
  EXPECT_EQ(Wal::OpenForRead(dir_, walpb::Snapshot(), options_).status().code(),
            absl::StatusCode::kNotFound);
  std::filesystem::create_directory(dir_);
  EXPECT_EQ(Wal::Open(dir_, walpb::Snapshot(), options_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(WalTest, Save_CutsSegmentAtSizeLimit_AndChainsCrcAcrossSegments) {
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 400; i += 10) {
    ASSERT_TRUE(wal->Save(MakeState(1, 1, i), MakeEntries(i, i + 9, 1, 1000)).ok());
  }
  ASSERT_TRUE(wal->Close().ok());
  std::vector<SegmentFile> segments = Segments();
  ASSERT_GE(segments.size(), 4u);
  for (size_t i = 1; i < segments.size(); ++i) {
    EXPECT_EQ(segments[i].id.seq, i);
    EXPECT_GT(segments[i].id.index, segments[i - 1].id.index);
  }
  // Sealed segments are cut at their data (no preallocated tail left).
  EXPECT_LT(std::filesystem::file_size(dir_ + "/" + segments[0].name), 64 * 1024 + 12 * 1024);
  absl::StatusOr<ReadAllResult> result = ReadBack();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->entries.size(), 400u);
  EXPECT_EQ(result->state.commit(), 391u);
}

TEST_F(WalTest, SegmentNameIndex_IsFirstIndexTheSegmentMayHold) {
  options_.segment_size = 4096;
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 100, 1, 100)).ok());
  ASSERT_TRUE(wal->Close().ok());
  std::vector<SegmentFile> segments = Segments();
  ASSERT_EQ(segments.size(), 2u);
  EXPECT_EQ(segments[1].id.index, 101u);
}

TEST_F(WalTest, Open_AfterReadAll_AppendsContinueTheChain) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 3, 1)).ok());
  ASSERT_TRUE(wal->Close().ok());
  {
    absl::StatusOr<std::unique_ptr<Wal>> reopened = Wal::Open(dir_, walpb::Snapshot(), options_);
    ASSERT_TRUE(reopened.ok()) << reopened.status();
    EXPECT_EQ((*reopened)->Save(MakeState(1, 1, 0), MakeEntries(4, 4, 1)).code(),
              absl::StatusCode::kFailedPrecondition)
        << "appends before ReadAll must be refused";
    ASSERT_TRUE((*reopened)->ReadAll().ok());
    EXPECT_EQ((*reopened)->last_index(), 3u);
    ASSERT_TRUE((*reopened)->Save(MakeState(2, 1, 3), MakeEntries(4, 6, 2)).ok());
  }
  absl::StatusOr<ReadAllResult> result = ReadBack();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Describe(result->entries), "1/1 2/1 3/1 4/2 5/2 6/2");
  absl::StatusOr<VerifyReport> report = Verify(PosixFs(), dir_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
}

TEST_F(WalTest, Open_SecondWriter_IsRefusedWhileFirstHoldsLocks) {
  auto wal = CreateWal();
  absl::StatusOr<std::unique_ptr<Wal>> second = Wal::Open(dir_, walpb::Snapshot(), options_);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition) << second.status();
  // A reader is fine.
  EXPECT_TRUE(Wal::OpenForRead(dir_, walpb::Snapshot(), options_).ok());
  wal.reset();
  EXPECT_TRUE(Wal::Open(dir_, walpb::Snapshot(), options_).ok());
}

TEST_F(WalTest, ReleaseTo_KeepsSegmentBeforeTheOneHoldingIndex) {
  options_.segment_size = 4096;
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 600; i += 50) {
    ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(i, i + 49, 1, 100)).ok());
  }
  std::vector<SegmentId> held = wal->locked_segments();
  ASSERT_GE(held.size(), 5u);
  // Release up to the first index of the 4th segment: segments 0 and 1 go,
  // segment 2 (which may hold index-1) stays.
  ASSERT_TRUE(wal->ReleaseTo(held[3].index).ok());
  std::vector<SegmentId> now = wal->locked_segments();
  ASSERT_EQ(now.size(), held.size() - 2);
  EXPECT_EQ(now[0].seq, held[2].seq);
  // The released files can now be locked by another holder (purge).
  std::vector<SegmentFile> files = Segments();
  EXPECT_TRUE(PosixFs()->TryLockFile(dir_ + "/" + files[0].name).ok());
  EXPECT_FALSE(PosixFs()->TryLockFile(dir_ + "/" + files[2].name).ok());
  // Past the last segment: everything but the tail is released.
  ASSERT_TRUE(wal->ReleaseTo(1'000'000).ok());
  EXPECT_EQ(wal->locked_segments().size(), 1u);
}

TEST_F(WalTest, Save_OnlyCommitChanged_DoesNotSync) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 3, 1)).ok());
  LogPosition before = wal->durable_position();
  bool must_sync = true;
  ASSERT_TRUE(wal->Append(MakeState(1, 1, 2), {}, &must_sync).ok());
  EXPECT_FALSE(must_sync);
  ASSERT_TRUE(wal->Append(MakeState(2, 1, 2), {}, &must_sync).ok());
  EXPECT_TRUE(must_sync) << "a term change must be synced";
  EXPECT_EQ(wal->durable_position().offset, before.offset);
  ASSERT_TRUE(wal->Sync().ok());
  EXPECT_GT(wal->durable_position().offset, before.offset);
}

TEST_F(WalTest, ReadAll_MetadataConflict_IsDataLoss) {
  options_.segment_size = 4096;
  auto wal = CreateWal("aaaa");
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 100, 1, 100)).ok());
  ASSERT_TRUE(wal->Close().ok());
  std::vector<SegmentFile> segments = Segments();
  ASSERT_GE(segments.size(), 2u);
  // Rewrite the second segment's metadata record with different bytes of the
  // same length and a CRC chain that still verifies: build a fresh segment.
  std::string path = dir_ + "/" + segments[1].name;
  std::string bytes = testing::ReadFile(path);
  size_t at = bytes.find("aaaa");
  ASSERT_NE(at, std::string::npos);
  // Flipping the metadata breaks its CRC: that is corruption (DATA_LOSS) too.
  bytes[at] = 'b';
  testing::WriteFile(path, bytes);
  EXPECT_EQ(ReadBack().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WalTest, BitFlipInSealedSegment_IsCorruptionNeverTruncated) {
  options_.segment_size = 4096;
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 200; i += 20) {
    ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(i, i + 19, 1, 100)).ok());
  }
  ASSERT_TRUE(wal->Close().ok());
  std::vector<SegmentFile> segments = Segments();
  ASSERT_GE(segments.size(), 3u);
  std::string path = dir_ + "/" + segments[0].name;
  std::string bytes = testing::ReadFile(path);
  bytes[bytes.size() / 2] ^= 0x10;
  testing::WriteFile(path, bytes);

  absl::StatusOr<ReadAllResult> read = ReadBack();
  EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << read.status();
  EXPECT_FALSE(IsTornTail(read.status()));
  EXPECT_NE(read.status().message().find(segments[0].name), std::string::npos) << read.status();
  absl::StatusOr<VerifyReport> report = Verify(PosixFs(), dir_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->outcome, VerifyReport::kCorrupt) << report->Describe();
  ASSERT_TRUE(report->affected_to.has_value());
  EXPECT_EQ(*report->affected_to, segments[1].id.index - 1);
  EXPECT_EQ(Repair(PosixFs(), dir_).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(testing::ReadFile(path), bytes) << "repair must not touch a corrupt log";
}

TEST_F(WalTest, TornTail_ReadModeTolerates_WriteModeRefuses_RepairFixes) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 10, 1, 100)).ok());
  LogPosition durable = wal->durable_position();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(11, 11, 1, 1500)).ok());
  ASSERT_TRUE(wal->Close().ok());
  // Tear the last record: zero its second half, as a lost sector would.
  std::string path = LastSegmentPath();
  std::string bytes = testing::ReadFile(path);
  uint64_t end = wal->durable_position().offset;
  for (uint64_t i = durable.offset + (end - durable.offset) / 2; i < end; ++i) bytes[i] = 0;
  testing::WriteFile(path, bytes);

  absl::StatusOr<ReadAllResult> read = ReadBack();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->entries.size(), 10u);
  EXPECT_FALSE(read->torn_tail.empty());
  absl::StatusOr<ReadAllResult> write = ReadBack(walpb::Snapshot(), /*write_mode=*/true);
  EXPECT_TRUE(IsTornTail(write.status())) << write.status();

  absl::StatusOr<RepairReport> repaired = Repair(PosixFs(), dir_);
  ASSERT_TRUE(repaired.ok()) << repaired.status();
  EXPECT_TRUE(repaired->repaired);
  EXPECT_EQ(repaired->truncated_at, durable.offset);
  EXPECT_TRUE(std::filesystem::exists(path + ".broken"));
  absl::StatusOr<ReadAllResult> after = ReadBack(walpb::Snapshot(), /*write_mode=*/true);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->entries.size(), 10u);
}

TEST_F(WalTest, ZeroedSectorInNonFinalRecord_IsCorruption) {
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 40; ++i) {
    ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(i, i, 1, 100)).ok());
  }
  ASSERT_TRUE(wal->Close().ok());
  std::string path = LastSegmentPath();
  std::string bytes = testing::ReadFile(path);
  std::fill(bytes.begin() + 1024, bytes.begin() + 1536, '\0');
  testing::WriteFile(path, bytes);
  absl::StatusOr<VerifyReport> report = Verify(PosixFs(), dir_);
  ASSERT_TRUE(report.ok());
  EXPECT_EQ(report->outcome, VerifyReport::kCorrupt) << report->Describe();
  EXPECT_EQ(ReadBack().status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(WalTest, Repair_RefusesDirectoryHeldByLiveWriter) {
  auto wal = CreateWal();
  absl::StatusOr<RepairReport> repaired = Repair(PosixFs(), dir_);
  EXPECT_EQ(repaired.status().code(), absl::StatusCode::kFailedPrecondition) << repaired.status();
}

TEST_F(WalTest, Append_OversizedEntry_IsInvalidArgumentAndWritesNothing) {
  auto wal = CreateWal();
  std::vector<raftpb::Entry> huge = MakeEntries(1, 1, 1, 11 * 1024 * 1024);
  bool must_sync = false;
  EXPECT_EQ(wal->Append(MakeState(1, 1, 0), huge, &must_sync).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(wal->last_index(), 0u);
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 1, 1)).ok());
}

TEST_F(WalTest, Close_RemovesPreparedSegmentAndReleasesLocks) {
  options_.segment_size = 4096;
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 100, 1, 100)).ok());
  ASSERT_TRUE(wal->Close().ok());
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  }
  EXPECT_TRUE(Wal::Open(dir_, walpb::Snapshot(), options_).ok());
}

TEST_F(WalTest, OpenForRecovery_ReadsFromOldestSegmentAfterPurge) {
  options_.segment_size = 4096;
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 300; i += 30) {
    ASSERT_TRUE(wal->Save(MakeState(1, 1, i), MakeEntries(i, i + 29, 1, 100)).ok());
  }
  ASSERT_TRUE(wal->Close().ok());
  std::vector<SegmentFile> segments = Segments();
  ASSERT_GE(segments.size(), 3u);
  std::filesystem::remove(dir_ + "/" + segments[0].name);  // purged
  absl::StatusOr<std::unique_ptr<Wal>> recovered = Wal::OpenForRecovery(dir_, options_);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  absl::StatusOr<ReadAllResult> result = (*recovered)->ReadAll();
  ASSERT_TRUE(result.ok()) << result.status();
  ASSERT_FALSE(result->entries.empty());
  EXPECT_EQ(result->entries.front().index(), segments[1].id.index);
  EXPECT_EQ(result->entries.back().index(), 300u);
  EXPECT_EQ((*recovered)->last_index(), 300u);
  // Snapshot 0 is gone with the first segment.
  EXPECT_EQ(ReadBack().status().code(), absl::StatusCode::kNotFound);
}

TEST_F(WalTest, OpenForRead_Until_IgnoresBytesPastTheLimit) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 5, 1)).ok());
  LogPosition durable = wal->durable_position();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(6, 9, 1)).ok());
  absl::StatusOr<std::unique_ptr<Wal>> reader =
      Wal::OpenForRead(dir_, walpb::Snapshot(), options_, durable);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<ReadAllResult> result = (*reader)->ReadAll();
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(Describe(result->entries), "1/1 2/1 3/1 4/1 5/1");
}

TEST_F(WalTest, TailSegmentDeletedUnderTheWal_NextSyncFailStopsInsteadOfAcknowledging) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 0), MakeEntries(1, 3, 1)).ok());
  // An operator (or a stray cleanup job) unlinks the live tail: writes and
  // fdatasyncs into the open descriptor still succeed.
  ASSERT_TRUE(std::filesystem::remove(LastSegmentPath()));
  absl::Status lost = wal->Save(MakeState(1, 1, 0), MakeEntries(4, 5, 1));
  EXPECT_EQ(lost.code(), absl::StatusCode::kUnavailable) << lost;
  EXPECT_NE(lost.message().find("deleted while in use"), std::string::npos) << lost;
  EXPECT_FALSE(wal->failure().ok());
  absl::Status later = wal->Save(MakeState(1, 1, 0), MakeEntries(4, 4, 1));
  EXPECT_EQ(later.code(), absl::StatusCode::kUnavailable) << later;
  EXPECT_NE(later.message().find("fail-stop"), std::string::npos) << later;
}

}  // namespace
}  // namespace walrus
