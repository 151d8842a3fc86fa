// InspectDir: what a WAL directory holds per segment, read beside (or
// without) its writer, on the in-memory file system.
#include "core/inspect.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeSnapshot;
using testing::MakeState;

constexpr char kDir[] = "/data/wal";

// "seq:first-last(n)" per segment, for readable failures.
std::string Describe(const DirInspection& d) {
  std::string out;
  for (const SegmentInspection& s : d.segments) {
    absl::StrAppend(&out, out.empty() ? "" : " ", s.seq, ":", s.first_entry, "-", s.last_entry, "(",
                    s.entries, ")");
  }
  return out;
}

class InspectTest : public ::testing::Test {
 protected:
  InspectTest() {
    EXPECT_TRUE(fs_.CreateDir("/data").ok());
    options_.fs = &fs_;
    options_.segment_size = 4096;
    options_.prepare_in_background = false;
  }

  std::unique_ptr<Wal> CreateWal() {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    EXPECT_TRUE(wal.ok()) << wal.status();
    return wal.ok() ? std::move(*wal) : nullptr;
  }

  DirInspection Inspect() {
    absl::StatusOr<DirInspection> inspection = InspectDir(&fs_, kDir);
    EXPECT_TRUE(inspection.ok()) << inspection.status();
    return inspection.ok() ? *inspection : DirInspection();
  }

  MemFileSystem fs_;
  WalOptions options_;
};

TEST_F(InspectTest, SegmentEntries_FollowOneAnother_AndAddUpToTheLog) {
  auto wal = CreateWal();
  for (uint64_t i = 1; i <= 200; i += 20) {
    ASSERT_TRUE(wal->Save(MakeState(2, 1, i), MakeEntries(i, i + 19, 2, 100)).ok());
  }
  ASSERT_TRUE(wal->Close().ok());
  DirInspection d = Inspect();
  ASSERT_GE(d.segments.size(), 3u) << Describe(d);
  EXPECT_EQ(d.first_index, 1u);
  EXPECT_EQ(d.last_index, 200u);
  EXPECT_EQ(d.hard_state.commit(), 181u);
  uint64_t entries = 0;
  uint64_t next = 1;
  uint64_t segment_bytes = 0;
  for (const SegmentInspection& s : d.segments) {
    EXPECT_EQ(s.name, SegmentName(s.seq, s.first_index));
    segment_bytes += s.size_bytes;
    entries += s.entries;
    if (s.entries == 0) continue;
    EXPECT_EQ(s.first_entry, next) << Describe(d);
    EXPECT_EQ(s.last_entry - s.first_entry + 1, s.entries) << Describe(d);
    next = s.last_entry + 1;
  }
  EXPECT_EQ(entries, 200u) << Describe(d);
  EXPECT_GE(d.total_bytes, segment_bytes);
  EXPECT_EQ(d.end.seq, d.segments.back().seq);
  EXPECT_GT(d.end.offset, 0u);
  EXPECT_EQ(d.damage.kind, LogDamage::kNone) << d.damage.Describe();
}

TEST_F(InspectTest, SnapshotMarkers_AllListed_WithTheSegmentEachIsIn) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(2, 1, 100), MakeEntries(1, 100, 2, 100)).ok());
  ASSERT_TRUE(wal->SaveSnapshot(MakeSnapshot(100, 2)).ok());
  ASSERT_TRUE(wal->Close().ok());
  DirInspection d = Inspect();
  ASSERT_EQ(d.snapshots.size(), 2u);  // the empty marker Create writes, then 100
  EXPECT_EQ(d.snapshots[0].index, 0u);
  EXPECT_EQ(d.snapshots[0].seq, d.segments.front().seq);
  EXPECT_EQ(d.snapshots[1].index, 100u);
  EXPECT_EQ(d.snapshots[1].term, 2u);
  EXPECT_GT(d.snapshots[1].seq, d.segments.front().seq) << Describe(d);
  EXPECT_EQ(d.last_snapshot().index, 100u);
}

TEST_F(InspectTest, OverwrittenEntries_CountAsRecordsOfTheirSegment) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 2), MakeEntries(1, 10, 1)).ok());
  ASSERT_TRUE(wal->Save(MakeState(2, 2, 2), MakeEntries(6, 8, 2)).ok());
  ASSERT_TRUE(wal->Close().ok());
  DirInspection d = Inspect();
  ASSERT_EQ(d.segments.size(), 1u) << Describe(d);
  EXPECT_EQ(d.segments[0].entries, 13u);
  EXPECT_EQ(d.segments[0].first_entry, 1u);
  EXPECT_EQ(d.segments[0].last_entry, 8u);
  EXPECT_EQ(d.last_index, 8u);  // the resolved log ends at the overwrite
}

TEST_F(InspectTest, OpenWriter_HoldsEverySegmentLocked_UntilItCloses) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 1), MakeEntries(1, 100, 1, 100)).ok());
  DirInspection open = Inspect();
  ASSERT_GE(open.segments.size(), 2u);
  for (const SegmentInspection& s : open.segments) EXPECT_TRUE(s.locked) << s.name;
  ASSERT_TRUE(wal->Close().ok());
  for (const SegmentInspection& s : Inspect().segments) EXPECT_FALSE(s.locked) << s.name;
}

TEST_F(InspectTest, TornTail_IsDamageNotAnError_TheLogBeforeItIsReported) {
  auto wal = CreateWal();
  ASSERT_TRUE(wal->Save(MakeState(1, 1, 10), MakeEntries(1, 10, 1)).ok());
  ASSERT_TRUE(wal->Save(raftpb::HardState(), MakeEntries(11, 11, 1, 600)).ok());
  ASSERT_TRUE(wal->Close().ok());
  const DirInspection clean = Inspect();
  ASSERT_EQ(clean.last_index, 11u);
  const std::string last = JoinPath(kDir, clean.segments.back().name);
  // The second half of entry 11, the last record, never reached the disk.
  ASSERT_TRUE(fs_.ZeroRange(last, clean.end.offset - 300, 300).ok());
  DirInspection torn = Inspect();
  EXPECT_EQ(torn.damage.kind, LogDamage::kTornTail) << torn.damage.Describe();
  EXPECT_EQ(torn.damage.file, last);
  EXPECT_EQ(torn.last_index, 10u);
  EXPECT_EQ(torn.segments.back().last_entry, 10u) << Describe(torn);
  EXPECT_LT(torn.end.offset, clean.end.offset);
}

TEST_F(InspectTest, NoSegments_IsNotFound) {
  ASSERT_TRUE(fs_.CreateDir(kDir).ok());
  EXPECT_EQ(InspectDir(&fs_, kDir).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace walrus
