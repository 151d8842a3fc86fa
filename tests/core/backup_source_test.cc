// The sending side of an online backup, on the in-memory file system: what
// the plan pins and lists, and the chunks the reader makes of it (in order,
// contiguous, each with its CRC-32C, never past or short of the plan).
#include "core/backup_source.h"

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
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
constexpr char kHolder[] = "backup #1 for test";

// The chunks of one read, reassembled: the bytes of each file and any
// complaint about order, contiguity, size or CRC.
struct Received {
  std::vector<std::string> files;
  size_t chunks = 0;
  std::string problems;
};

class BackupSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    options_.fs = &fs_;
    options_.segment_size = 4096;
    options_.prepare_in_background = false;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    wal_ = std::move(*wal);
    Write(1, 200);
    ASSERT_GE(Segments().size(), 4u);
  }

  void Write(uint64_t first, uint64_t last) {
    for (uint64_t i = first; i <= last; i += 20) {
      ASSERT_TRUE(wal_->Save(MakeState(1, 1, i), MakeEntries(i, i + 19, 1, 100)).ok());
    }
  }
  std::vector<SegmentFile> Segments() {
    absl::StatusOr<std::vector<SegmentFile>> s = ListSegments(&fs_, kDir);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : std::vector<SegmentFile>{};
  }
  absl::StatusOr<BackupPlan> Plan() {
    return PlanBackup(&fs_, kDir, wal_->durable_position(), 200, &pins_, kHolder);
  }
  std::string Contents(const std::string& name) {
    absl::StatusOr<std::string> bytes = fs_.Contents(JoinPath(kDir, name));
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return bytes.ok() ? *bytes : "";
  }
  // Reads `plan` to its end (or first error, returned) in chunks of
  // `chunk_bytes`, checking each chunk as a receiver would.
  absl::Status ReadAll(const BackupPlan& plan, size_t chunk_bytes, Received* out) {
    BackupChunkReader reader(&fs_, kDir, plan, chunk_bytes);
    out->files.assign(plan.files.size(), "");
    size_t last_file = 0;
    BackupChunk chunk;
    for (;;) {
      absl::StatusOr<bool> more = reader.Next(&chunk);
      if (!more.ok()) return more.status();
      if (!*more) return absl::OkStatus();
      ++out->chunks;
      const std::string where = absl::StrCat("file ", chunk.file, " offset ", chunk.offset, ": ");
      if (chunk.file >= plan.files.size()) {
        absl::StrAppend(&out->problems, where, "not in the plan\n");
        continue;
      }
      if (chunk.file < last_file) absl::StrAppend(&out->problems, where, "out of order\n");
      last_file = chunk.file;
      std::string& bytes = out->files[chunk.file];
      if (chunk.offset != bytes.size()) {
        absl::StrAppend(&out->problems, where, "expected offset ", bytes.size(), "\n");
      }
      if (chunk.data.empty() || chunk.data.size() > chunk_bytes) {
        absl::StrAppend(&out->problems, where, chunk.data.size(), " bytes\n");
      }
      if (chunk.crc32c != crc32c::Value(chunk.data)) {
        absl::StrAppend(&out->problems, where, "CRC-32C does not match the data\n");
      }
      bytes.append(chunk.data.data(), chunk.data.size());
    }
  }

  MemFileSystem fs_;
  WalOptions options_;
  std::unique_ptr<Wal> wal_;
  SegmentPins pins_;
};

TEST_F(BackupSourceTest, PlanBackup_SealedSegmentsWhole_DurableOneUpToTheDurableOffset) {
  const LogPosition durable = wal_->durable_position();
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  const std::vector<SegmentFile> segments = Segments();
  ASSERT_EQ(plan->files.size(), segments.size());
  uint64_t total = 0;
  for (size_t i = 0; i < segments.size(); ++i) {
    const BackupFile& file = plan->files[i];
    EXPECT_EQ(file.name, segments[i].name);
    const uint64_t want = i + 1 == segments.size() ? durable.offset : Contents(file.name).size();
    EXPECT_EQ(file.size_bytes, want) << file.name;
    total += file.size_bytes;
  }
  EXPECT_EQ(plan->total_bytes, total);
  EXPECT_EQ(plan->durable.seq, durable.seq);
  EXPECT_EQ(plan->durable.offset, durable.offset);
  EXPECT_EQ(plan->last_entry_index, 200u);
}

TEST_F(BackupSourceTest, PlanBackup_PinsUpToTheDurableSegment_UntilThePlanGoes) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  std::vector<PinInfo> pinned = pins_.List();
  ASSERT_EQ(pinned.size(), 1u);
  EXPECT_EQ(pinned[0].first_seq, 0u);
  EXPECT_EQ(pinned[0].last_seq, wal_->durable_position().seq);
  EXPECT_EQ(pinned[0].holder, kHolder);
  plan->pin.reset();
  EXPECT_TRUE(pins_.List().empty());
}

TEST_F(BackupSourceTest, PlanBackup_SegmentsAfterTheDurableOne_AreLeftOut) {
  const LogPosition durable = wal_->durable_position();
  const size_t before = Segments().size();
  Write(201, 400);
  ASSERT_GT(Segments().size(), before);
  absl::StatusOr<BackupPlan> plan = PlanBackup(&fs_, kDir, durable, 200, &pins_, kHolder);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->files.size(), before);
  EXPECT_EQ(plan->files.back().size_bytes, durable.offset);
}

TEST_F(BackupSourceTest, PlanBackup_GapBeforeTheDurableSegment_IsInternalAndLeavesNoPin) {
  ASSERT_TRUE(fs_.RemoveFile(JoinPath(kDir, Segments()[1].name)).ok());
  absl::StatusOr<BackupPlan> plan = Plan();
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInternal) << plan.status();
  EXPECT_TRUE(pins_.List().empty());
}

TEST_F(BackupSourceTest, ChunkReader_ChunksCoverEveryFileToItsPlannedSize_InOrderWithTheirCrcs) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  // Chunks smaller than a segment, and not dividing it.
  Received got;
  ASSERT_TRUE(ReadAll(*plan, 1000, &got).ok());
  EXPECT_EQ(got.problems, "");
  EXPECT_GT(got.chunks, plan->files.size());
  for (size_t i = 0; i < plan->files.size(); ++i) {
    const BackupFile& file = plan->files[i];
    EXPECT_EQ(got.files[i], Contents(file.name).substr(0, file.size_bytes)) << file.name;
  }
}

TEST_F(BackupSourceTest, ChunkReader_ChunkLargerThanEveryFile_OneChunkPerFile) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  Received got;
  ASSERT_TRUE(ReadAll(*plan, 1 << 20, &got).ok());
  EXPECT_EQ(got.problems, "");
  EXPECT_EQ(got.chunks, plan->files.size());
}

TEST_F(BackupSourceTest, ChunkReader_EmptyFileInThePlan_HasNoChunkAndTheNextFollows) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  plan->total_bytes -= plan->files[0].size_bytes;
  plan->files[0].size_bytes = 0;
  Received got;
  ASSERT_TRUE(ReadAll(*plan, 1000, &got).ok());
  EXPECT_EQ(got.problems, "");
  EXPECT_EQ(got.files[0], "");
  EXPECT_EQ(got.files[1], Contents(plan->files[1].name).substr(0, plan->files[1].size_bytes));
}

TEST_F(BackupSourceTest, ChunkReader_FileShorterThanPlanned_IsInternalAndEndsTheRead) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  plan->files[1].size_bytes += 10;
  BackupChunkReader reader(&fs_, kDir, *plan, 1 << 20);
  BackupChunk chunk;
  absl::StatusOr<bool> more = reader.Next(&chunk);
  ASSERT_TRUE(more.ok() && *more) << more.status();
  EXPECT_EQ(chunk.file, 0u);
  more = reader.Next(&chunk);
  EXPECT_EQ(more.status().code(), absl::StatusCode::kInternal) << more.status();
  EXPECT_NE(more.status().message().find("before the durable end"), absl::string_view::npos)
      << more.status();
  more = reader.Next(&chunk);
  ASSERT_TRUE(more.ok()) << more.status();
  EXPECT_FALSE(*more);
}

TEST_F(BackupSourceTest, ChunkReader_PlannedFileGone_FailsNotFound) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(fs_.RemoveFile(JoinPath(kDir, plan->files[2].name)).ok());
  Received got;
  absl::Status read = ReadAll(*plan, 1 << 20, &got);
  EXPECT_EQ(read.code(), absl::StatusCode::kNotFound) << read;
  EXPECT_EQ(got.chunks, 2u);
}

TEST_F(BackupSourceTest, ChunkReader_ReadError_IsReturned) {
  absl::StatusOr<BackupPlan> plan = Plan();
  ASSERT_TRUE(plan.ok()) << plan.status();
  fs_.FailNext(FsOp::kRead, EIO, 1, plan->files[1].name);
  Received got;
  absl::Status read = ReadAll(*plan, 1 << 20, &got);
  EXPECT_FALSE(read.ok());
  EXPECT_EQ(got.chunks, 1u);
}

}  // namespace
}  // namespace walrus
