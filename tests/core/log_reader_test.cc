// The log reader's rules as every caller sees them: recovery (OpenForRecovery),
// ReadAll, Verify and Repair must agree on what a directory holds and on what
// counts as damage. Each test builds a log through the Wal API on the
// in-memory file system, damages it the way storage does, and checks all of
// them.
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/decoder.h"
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
using testing::MakeSnapshot;
using testing::MakeState;

constexpr char kDir[] = "/data/wal";

class LogReaderTest : public ::testing::Test {
 protected:
  LogReaderTest() {
    EXPECT_TRUE(fs_.CreateDir("/data").ok());
    options_.fs = &fs_;
    options_.segment_size = 64 * 1024;
    options_.prepare_in_background = false;
  }

  std::unique_ptr<Wal> CreateWal() {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(*wal) : nullptr;
  }

  std::vector<std::string> SegmentPaths(MemFileSystem* fs = nullptr) {
    absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs ? fs : &fs_, kDir);
    EXPECT_TRUE(segments.ok()) << segments.status();
    std::vector<std::string> paths;
    if (segments.ok()) {
      for (const SegmentFile& s : *segments) paths.push_back(JoinPath(kDir, s.name));
    }
    return paths;
  }

  // Frames of one segment: [offset, end) of each verified record.
  std::vector<std::pair<uint64_t, uint64_t>> Frames(const std::string& path) {
    std::vector<std::pair<uint64_t, uint64_t>> frames;
    Decoder decoder(&fs_, {path});
    EXPECT_TRUE(decoder
                    .Decode([&](const RecordView&, const RecordPosition& pos) {
                      frames.push_back({pos.offset, pos.end});
                      return absl::OkStatus();
                    })
                    .ok());
    return frames;
  }

  // What walrusd does at start: read from the oldest segment for writing.
  absl::StatusOr<ReadAllResult> Recover(MemFileSystem* fs, uint64_t* last_index = nullptr) {
    WalOptions options = options_;
    options.fs = fs;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(kDir, options);
    if (!wal.ok()) return wal.status();
    absl::StatusOr<ReadAllResult> read = (*wal)->ReadAll();
    if (last_index != nullptr) *last_index = (*wal)->last_index();
    return read;
  }

  std::unique_ptr<MemFileSystem> Image() {
    CrashOptions keep;
    keep.mode = CrashMode::kKeepAll;
    return fs_.CrashClone(keep);
  }

  // Storage damage: Verify says corruption, recovery and ReadAll refuse with
  // DATA_LOSS (never a repairable torn tail), Repair changes nothing.
  void ExpectCorruption(MemFileSystem* fs, const std::string& what) {
    absl::StatusOr<VerifyReport> report = Verify(fs, kDir);
    ASSERT_TRUE(report.ok()) << what << ": " << report.status();
    EXPECT_EQ(report->outcome, VerifyReport::kCorrupt) << what << ": " << report->Describe();
    absl::StatusOr<ReadAllResult> recovered = Recover(fs);
    EXPECT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss)
        << what << ": recovery gave " << recovered.status() << " "
        << (recovered.ok() ? Describe(recovered->entries) : "");
    EXPECT_FALSE(IsTornTail(recovered.status())) << what << ": " << recovered.status();
    std::vector<std::string> before;
    for (const std::string& path : fs->AllFiles()) before.push_back(*fs->Contents(path));
    EXPECT_FALSE(Repair(fs, kDir).ok()) << what;
    std::vector<std::string> after;
    for (const std::string& path : fs->AllFiles()) after.push_back(*fs->Contents(path));
    EXPECT_EQ(before, after) << what << ": repair changed a corrupt log";
  }

  // Three segments: entries 1..40 and 41..80 sealed (2 KiB each), then a
  // tail segment named 81 that holds only its header (crc, metadata and the
  // hard state term 3 vote 2, whose only other copy is in the segment before).
  void BuildHeaderOnlyTail() {
    auto wal = CreateWal();
    ASSERT_TRUE(wal->Save(MakeState(1, 1, 40), MakeEntries(1, 40, 1, 2048)).ok());
    ASSERT_TRUE(wal->Save(MakeState(3, 2, 80), MakeEntries(41, 80, 3, 2048)).ok());
    ASSERT_TRUE(wal->Close().ok());
    std::vector<std::string> paths = SegmentPaths();
    ASSERT_EQ(paths.size(), 3u);
    ASSERT_TRUE(absl::EndsWith(paths.back(), SegmentName(2, 81))) << paths.back();
    ASSERT_EQ(Frames(paths.back()).size(), 3u);
  }

  MemFileSystem fs_;
  WalOptions options_;
};

// Raft snapshots at its applied index, which trails its last index: right
// after a cut the marker is the new segment's first record, below the index
// in its name. Once the segments before it are purged, recovery must read
// the log from that segment's name, not from the marker.
TEST_F(LogReaderTest, Recovery_MarkerBelowOldestSegmentsName_AfterPurge_Restarts) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 70), MakeEntries(1, 70, 1, 1024)).ok());
  ASSERT_EQ(wal->locked_segments().back().index, 71u);
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(60, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 140), MakeEntries(71, 140, 1, 1024)).ok());
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(130, 1)).ok());
  ASSERT_TRUE(wal->ReleaseTo(130).ok());
  std::unique_ptr<MemFileSystem> image = Image();  // kill -9
  wal.reset();
  std::vector<std::string> paths = SegmentPaths(image.get());
  ASSERT_EQ(paths.size(), 3u);
  ASSERT_TRUE(image->RemoveFile(paths[0]).ok());  // purged

  absl::StatusOr<VerifyReport> report = Verify(image.get(), kDir);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
  EXPECT_EQ(report->first_index, 71u) << report->Describe();
  EXPECT_EQ(report->last_index, 140u) << report->Describe();
  uint64_t last_index = 0;
  absl::StatusOr<ReadAllResult> recovered = Recover(image.get(), &last_index);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  ASSERT_EQ(recovered->entries.size(), 70u);
  EXPECT_EQ(recovered->entries.front().index(), 71u);
  EXPECT_EQ(recovered->entries.back().index(), 140u);
  EXPECT_EQ(recovered->base_index, 70u);
  EXPECT_EQ(recovered->last_snapshot.index(), 130u);
  EXPECT_EQ(last_index, 140u);
  EXPECT_EQ(recovered->state.commit(), 140u);
}

// A leader's snapshot over a follower's divergent tail replaces the log: the
// entries at and below it that disagree with it are not served.
TEST_F(LogReaderTest, Recovery_MarkerOverDivergentTail_ReplacesTheLog) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 5), MakeEntries(1, 5, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(2, 1, 5), MakeEntries(6, 10, 2)).ok());
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(7, 3)).ok());
  ASSERT_TRUE(wal->Save(MakeState(3, 2, 7), MakeEntries(8, 9, 3)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> recovered = Recover(&fs_);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(Describe(recovered->entries), "8/3 9/3");
  EXPECT_EQ(recovered->base_index, 7u);
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->entries, 2u) << report->Describe();
}

// A follower's Ready can carry a leader's snapshot and the entries after it;
// etcd's raftexample saves the entries and the hard state first, then the
// marker. The marker bridges the gap the entries leave; without it the gap
// is corruption.
TEST_F(LogReaderTest, Recovery_EntriesSavedBeforeTheirSnapshotMarker_ReadFromTheMarker) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 5), MakeEntries(1, 5, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(2, 1, 103), MakeEntries(101, 103, 2)).ok());
  std::unique_ptr<MemFileSystem> before_marker = Image();
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(100, 2)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> recovered = Recover(&fs_);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(Describe(recovered->entries), "101/2 102/2 103/2");
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->outcome, VerifyReport::kClean) << report->Describe();
  EXPECT_EQ(report->first_index, 101u) << report->Describe();
  absl::StatusOr<std::unique_ptr<Wal>> from_marker =
      Wal::OpenForRead(kDir, MakeSnapshot(100, 2), options_);
  ASSERT_TRUE(from_marker.ok()) << from_marker.status();
  absl::StatusOr<ReadAllResult> read = (*from_marker)->ReadAll();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(Describe(read->entries), "101/2 102/2 103/2");
  absl::StatusOr<std::unique_ptr<Wal>> from_zero =
      Wal::OpenForRead(kDir, walpb::Snapshot(), options_);
  ASSERT_TRUE(from_zero.ok()) << from_zero.status();
  EXPECT_EQ((*from_zero)->ReadAll().status().code(), absl::StatusCode::kFailedPrecondition);
  ExpectCorruption(before_marker.get(), "entries after a gap, no marker");
}

// A marker at the index of an entry of the same term (compaction) keeps it.
TEST_F(LogReaderTest, Recovery_MarkerMatchingAnEntry_KeepsTheLog) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 5), MakeEntries(1, 5, 1)).ok());
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(4, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 6), MakeEntries(6, 6, 1)).ok());
  ASSERT_TRUE(wal->Close().ok());
  absl::StatusOr<ReadAllResult> recovered = Recover(&fs_);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(Describe(recovered->entries), "1/1 2/1 3/1 4/1 5/1 6/1");
}

// The last segment held synced entries and the only copy of the newest hard
// state: zeroed or emptied, it must not read as a clean, shorter log.
TEST_F(LogReaderTest, LastSegmentZeroFilledOrEmptied_IsCorruption) {
  BuildHeaderOnlyTail();
  {
    auto wal = Wal::Open(kDir, walpb::Snapshot(), options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->ReadAll().ok());
    ASSERT_TRUE((*wal)->Save(MakeState(5, 5, 85), MakeEntries(81, 85, 5)).ok());
    ASSERT_TRUE((*wal)->Close().ok());
  }
  const std::string last = SegmentPaths().back();
  {
    std::unique_ptr<MemFileSystem> image = Image();
    ASSERT_TRUE(image->ZeroRange(last, 0, *image->FileSize(last)).ok());
    ExpectCorruption(image.get(), "last segment zero-filled");
  }
  {
    std::unique_ptr<MemFileSystem> image = Image();
    std::unique_ptr<WritableFile> file = *image->OpenWritableFile(last, 0);
    ASSERT_TRUE(file->Truncate(0).ok());
    file.reset();
    ExpectCorruption(image.get(), "last segment truncated to 0 bytes");
  }
}

TEST_F(LogReaderTest, FirstSegmentZeroFilled_IsCorruption) {
  BuildHeaderOnlyTail();
  const std::string first = SegmentPaths().front();
  std::unique_ptr<MemFileSystem> image = Image();
  ASSERT_TRUE(image->ZeroRange(first, 0, *image->FileSize(first)).ok());
  ExpectCorruption(image.get(), "first segment zero-filled");
}

TEST_F(LogReaderTest, EmptyOnlySegment_IsCorruptionNotAFreshLog) {
  ASSERT_TRUE(fs_.CreateDir(kDir).ok());
  std::unique_ptr<WritableFile> file = *fs_.NewWritableFile(JoinPath(kDir, SegmentName(0, 0)));
  ASSERT_TRUE(file->Sync().ok());
  file.reset();
  ExpectCorruption(&fs_, "empty only segment");
}

// The header of a segment was synced before the rename gave it its name:
// damage there is corruption even in a header-only tail segment, where it
// is the final record and looks like a tear.
TEST_F(LogReaderTest, HeaderOnlyTailSegment_DamagedHardState_IsCorruptionNotTornTail) {
  BuildHeaderOnlyTail();
  const std::string last = SegmentPaths().back();
  auto [start, end] = Frames(last).back();  // the header's hard state
  {
    std::unique_ptr<MemFileSystem> image = Image();
    ASSERT_TRUE(image->FlipBit(last, end - 4 - (end - start) / 2, 3).ok());
    ExpectCorruption(image.get(), "bit flip in the header's hard state");
  }
  {
    std::unique_ptr<MemFileSystem> image = Image();
    ASSERT_TRUE(image->ZeroRange(last, start, end - start).ok());
    ExpectCorruption(image.get(), "header's hard state zeroed");
  }
  {
    std::unique_ptr<MemFileSystem> image = Image();
    ASSERT_TRUE(image->ZeroRange(last, start + 8 + 2, end - start - 10).ok());
    ExpectCorruption(image.get(), "header's hard state cut short");
  }
  {
    std::unique_ptr<MemFileSystem> image = Image();
    auto [meta_start, meta_end] = Frames(last)[1];
    ASSERT_TRUE(image->FlipBit(last, meta_end - 9, 1).ok());
    ExpectCorruption(image.get(), "bit flip in the header's metadata");
  }
}

// After the header, a tear is still a tear: the first entry written after a
// cut, cut short by a crash, is repaired away and the header stays.
TEST_F(LogReaderTest, TornFirstEntryAfterTheHeader_IsTornTail_RepairKeepsTheHeader) {
  BuildHeaderOnlyTail();
  {
    auto wal = Wal::Open(kDir, walpb::Snapshot(), options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->ReadAll().ok());
    ASSERT_TRUE((*wal)->Save(raftpb::HardState(), MakeEntries(81, 81, 3, 600)).ok());
    ASSERT_TRUE((*wal)->Close().ok());
  }
  const std::string last = SegmentPaths().back();
  auto [start, end] = Frames(last).back();
  ASSERT_TRUE(fs_.ZeroRange(last, start + 300, end - start - 300).ok());
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->outcome, VerifyReport::kTornTail) << report->Describe();
  EXPECT_TRUE(IsTornTail(Recover(&fs_).status()));
  ASSERT_TRUE(Repair(&fs_, kDir).ok());
  absl::StatusOr<ReadAllResult> recovered = Recover(&fs_);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->entries.back().index(), 80u);
  EXPECT_EQ(recovered->state.vote(), 2u);
}

// An I/O error is not a statement about the bytes: never a torn tail, never
// repaired, never a clean shorter log.
TEST_F(LogReaderTest, ReadEio_IsAnErrorEverywhere_NeverTornTailOrRepair) {
  BuildHeaderOnlyTail();
  const std::string last = SegmentPaths().back();
  std::string before = *fs_.Contents(last);
  fs_.FailNext(FsOp::kRead, EIO, Fault::kForever, last);
  absl::StatusOr<VerifyReport> report = Verify(&fs_, kDir);
  EXPECT_EQ(report.status().code(), absl::StatusCode::kUnavailable)
      << (report.ok() ? report->Describe() : report.status().ToString());
  absl::StatusOr<ReadAllResult> recovered = Recover(&fs_);
  EXPECT_EQ(recovered.status().code(), absl::StatusCode::kUnavailable) << recovered.status();
  EXPECT_EQ(Repair(&fs_, kDir).status().code(), absl::StatusCode::kUnavailable);
  auto reader = Wal::OpenForRead(kDir, walpb::Snapshot(), options_);
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ((*reader)->ReadAll().status().code(), absl::StatusCode::kUnavailable);
  fs_.ClearFaults();
  EXPECT_EQ(*fs_.Contents(last), before);
}

// Messages name the first segment by the path it has, not by the path of
// the directory Create built it in.
TEST_F(LogReaderTest, Create_ErrorsNameTheSegmentsRealPath) {
  // While Create builds the WAL beside its place.
  fs_.FailNext(FsOp::kSync, EIO);
  absl::StatusOr<std::unique_ptr<Wal>> failed = Wal::Create(kDir, "meta", options_);
  ASSERT_FALSE(failed.ok());
  EXPECT_TRUE(absl::StrContains(failed.status().message(), JoinPath(kDir, SegmentName(0, 0))))
      << failed.status();
  EXPECT_FALSE(absl::StrContains(failed.status().message(), ".tmp")) << failed.status();
  EXPECT_FALSE(fs_.Exists(kDir)) << "a failed Create publishes nothing";
  // After the rename, through the handle Create opened.
  auto wal = CreateWal();
  fs_.FailNext(FsOp::kSync, EIO);
  absl::Status saved = wal->Save(MakeState(1, 1, 0), MakeEntries(1, 1, 1));
  ASSERT_FALSE(saved.ok());
  EXPECT_TRUE(absl::StrContains(saved.message(), JoinPath(kDir, SegmentName(0, 0)))) << saved;
  EXPECT_FALSE(absl::StrContains(saved.message(), ".tmp")) << saved;
}

// verify's verdict is recovery's: clean means recovery serves exactly the
// entries verify counted; damage means recovery refuses in verify's words.
TEST_F(LogReaderTest, OneRuleSet_VerifyVerdictEqualsRecoveryVerdict_OverDamagedImages) {
  BuildHeaderOnlyTail();
  {
    auto wal = Wal::Open(kDir, walpb::Snapshot(), options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->ReadAll().ok());
    ASSERT_TRUE((*wal)->Save(MakeState(4, 1, 82), MakeEntries(81, 83, 4, 100)).ok());
    ASSERT_TRUE((*wal)->Close().ok());
  }
  std::vector<std::string> paths = SegmentPaths();
  int images = 0;
  auto check = [&](MemFileSystem* image, const std::string& what) {
    ++images;
    absl::StatusOr<VerifyReport> report = Verify(image, kDir);
    absl::StatusOr<ReadAllResult> recovered = Recover(image);
    if (!report.ok()) {
      EXPECT_FALSE(recovered.ok())
          << what << ": verify failed (" << report.status() << ") but recovery did not";
      return;
    }
    switch (report->outcome) {
      case VerifyReport::kClean:
        ASSERT_TRUE(recovered.ok())
            << what << ": " << report->Describe() << " but " << recovered.status();
        EXPECT_EQ(recovered->entries.size(), report->entries) << what;
        if (!recovered->entries.empty()) {
          EXPECT_EQ(recovered->entries.front().index(), report->first_index) << what;
          EXPECT_EQ(recovered->entries.back().index(), report->last_index) << what;
        }
        break;
      case VerifyReport::kTornTail:
        EXPECT_TRUE(IsTornTail(recovered.status())) << what << ": " << recovered.status();
        EXPECT_TRUE(absl::StrContains(recovered.status().message(), report->Describe()))
            << what << ": " << recovered.status() << " vs " << report->Describe();
        break;
      case VerifyReport::kCorrupt:
        EXPECT_EQ(recovered.status().code(), absl::StatusCode::kDataLoss) << what;
        EXPECT_FALSE(IsTornTail(recovered.status())) << what;
        EXPECT_TRUE(absl::StrContains(recovered.status().message(), report->Describe()))
            << what << ": " << recovered.status() << " vs " << report->Describe();
        break;
    }
  };
  for (size_t s = 0; s < paths.size(); ++s) {
    const uint64_t size = *fs_.FileSize(paths[s]);
    uint64_t data_end = Frames(paths[s]).back().second;
    for (uint64_t offset = 0; offset < data_end; offset += 97) {
      std::unique_ptr<MemFileSystem> image = Image();
      ASSERT_TRUE(image->FlipBit(paths[s], offset, offset % 8).ok());
      check(image.get(), absl::StrCat(paths[s], " bit flip at ", offset));
      image = Image();
      ASSERT_TRUE(image->ZeroRange(paths[s], offset, std::min<uint64_t>(64, size - offset)).ok());
      check(image.get(), absl::StrCat(paths[s], " 64 zeros at ", offset));
      image = Image();
      std::unique_ptr<WritableFile> file = *image->OpenWritableFile(paths[s], 0);
      ASSERT_TRUE(file->Truncate(offset).ok());
      file.reset();
      check(image.get(), absl::StrCat(paths[s], " truncated at ", offset));
    }
    std::unique_ptr<MemFileSystem> image = Image();
    ASSERT_TRUE(image->RemoveFile(paths[s]).ok());
    check(image.get(), absl::StrCat(paths[s], " deleted"));
  }
  std::printf("damaged images, verify and recovery agreed on all: %d\n", images);
}

// A FIFO or a directory under a segment's name is refused with a clear error
// instead of blocking the reader forever or failing with an obscure one.
TEST(LogReaderPosixTest, NonRegularFileNamedLikeASegment_IsRefusedNotRead) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  WalOptions options;
  options.segment_size = 64 * 1024;
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir, "meta", options);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 1), MakeEntries(1, 1, 1)).ok());
  }
  const std::string fifo = JoinPath(dir, SegmentName(1, 2));
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (bool as_directory : {false, true}) {
    if (as_directory) {
      std::filesystem::remove(fifo);
      std::filesystem::create_directory(fifo);
    }
    absl::StatusOr<VerifyReport> report = Verify(PosixFs(), dir);
    ASSERT_FALSE(report.ok()) << report->Describe();
    EXPECT_TRUE(absl::StrContains(report.status().message(), "not a regular file"))
        << report.status();
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(dir, options);
    absl::Status status = wal.ok() ? (*wal)->ReadAll().status() : wal.status();
    EXPECT_TRUE(absl::StrContains(status.message(), "not a regular file")) << status;
  }
}

}  // namespace
}  // namespace walrus
