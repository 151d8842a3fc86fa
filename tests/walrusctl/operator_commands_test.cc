// The operator commands' client pieces without a daemon: the progress line, the offline
// status of a directory and how status prints pins and purge blockers.
#include <cstdio>
#include <filesystem>

#include "client/walrusctl/progress.h"
#include "client/walrusctl/status_format.h"
#include "core/inspect.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

TEST(ProgressMeter, NotATerminal_DrawsNothing) {
  FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  ProgressMeter meter("backup", "bytes", "files", out);
  EXPECT_FALSE(meter.enabled());
  meter.Update(10, 100, 1, 4);
  meter.Finish();
  EXPECT_EQ(std::ftell(out), 0);
  std::fclose(out);
}

TEST(ProgressMeter, Line_ShowsBytesPercentFilesAndRate) {
  FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  ProgressMeter meter = ProgressMeter::ForceEnabled("backup", out);
  meter.Update(25'000'000, 100'000'000, 1, 4);
  std::string line = meter.Line();
  EXPECT_NE(line.find("backup: 25.0 MB of 100.0 MB (25%)"), std::string::npos) << line;
  EXPECT_NE(line.find("1 of 4 files"), std::string::npos) << line;
  meter.Finish();
  EXPECT_GT(std::ftell(out), 0);
  std::fclose(out);
}

TEST(ProgressMeter, UnknownTotal_ShowsOnlyWhatIsDone) {
  ProgressMeter meter("dump", "entries", "");
  meter.Update(42, 0);
  EXPECT_EQ(meter.Line().rfind("dump: 42 entries", 0), 0u) << meter.Line();
  EXPECT_EQ(meter.Line().find(" of "), std::string::npos) << meter.Line();
}

TEST(HumanBytes, UsesDecimalUnits) {
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(64'000'000), "64.0 MB");
}

TEST(DirStatusView, SegmentsWithEntryRangesHardStateAndMarkers) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  WalOptions options;
  options.segment_size = 4096;
  options.prepare_in_background = false;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir, "meta", options);
  ASSERT_TRUE(wal.ok()) << wal.status();
  for (uint64_t i = 1; i <= 200; i += 20) {
    ASSERT_TRUE(
        (*wal)->Save(testing::MakeState(2, 1, i), testing::MakeEntries(i, i + 19, 2, 100)).ok());
  }
  ASSERT_TRUE((*wal)->SaveSnapshot(testing::MakeSnapshot(150, 2)).ok());
  absl::StatusOr<DirInspection> inspection = InspectDir(PosixFs(), dir);
  ASSERT_TRUE(inspection.ok()) << inspection.status();
  StatusView status = DirStatusView(*inspection);
  EXPECT_TRUE(status.offline);
  EXPECT_TRUE(status.created);
  EXPECT_EQ(status.data_dir, dir);
  EXPECT_EQ(status.first_index, 1u);
  EXPECT_EQ(status.last_index, 200u);
  EXPECT_EQ(status.hard_state.commit(), 181u);
  EXPECT_EQ(status.snapshot_index, 150u);
  EXPECT_EQ(status.snapshot_term, 2u);
  ASSERT_GE(status.segments.size(), 3u);
  uint64_t entries = 0;
  for (const StatusView::Segment& s : status.segments) {
    entries += s.entries;
    EXPECT_TRUE(s.locked) << s.name << ": the writer holds every segment";
  }
  EXPECT_EQ(entries, 200u);
  ASSERT_EQ(status.snapshots.size(), 2u);  // the empty marker at 0, then 150
  EXPECT_EQ(status.snapshots[1].index, 150u);
  EXPECT_TRUE(status.damage.empty()) << status.damage;
  std::string text = StatusText(status);
  EXPECT_NE(text.find("directory:    " + dir + " (read offline by walrusctl)"), std::string::npos)
      << text;
  EXPECT_NE(text.find("markers:      0/0, 150/2"), std::string::npos) << text;
  EXPECT_NE(text.find("valid end:    segment"), std::string::npos) << text;
  EXPECT_NE(text.find("1-"), std::string::npos) << text;
  EXPECT_EQ(text.find("health:"), std::string::npos) << text;
}

TEST(DirStatusView, Damage_IsDescribedInTextAndJson) {
  DirInspection inspection;
  inspection.dir = "/d";
  inspection.damage.kind = LogDamage::kTornTail;
  inspection.damage.file = "/d/0000000000000000-0000000000000000.wal";
  inspection.damage.offset = 77;
  inspection.damage.reason = "short frame";
  StatusView status = DirStatusView(inspection);
  EXPECT_EQ(status.damage, inspection.damage.Describe());
  EXPECT_NE(StatusText(status).find("damage:       " + status.damage), std::string::npos)
      << StatusText(status);
  EXPECT_NE(StatusJson(status).find(",\"damage\":\"torn tail"), std::string::npos)
      << StatusJson(status);
}

// Offline, each segment also says which entries it holds; every other member
// is present too, the daemon-only ones empty.
TEST(StatusJson, Offline_SegmentsCarryTheirEntries) {
  StatusView s;
  s.offline = true;
  s.created = true;
  s.data_dir = "/d";
  s.first_index = 1;
  s.last_index = 20;
  s.hard_state.set_term(2);
  s.snapshots.push_back({.index = 0, .term = 0, .seq = 0});
  StatusView::Segment& seg = s.segments.emplace_back();
  seg.name = "0000000000000000-0000000000000000.wal";
  seg.size_bytes = 4096;
  seg.locked = true;
  seg.entries = 20;
  seg.first_entry = 1;
  seg.last_entry = 20;
  s.total_bytes = 4096;
  s.durable_offset = 900;
  EXPECT_EQ(StatusJson(s),
            "{\"created\":true,\"first_index\":1,\"last_index\":20,"
            "\"hard_state\":{\"term\":2,\"vote\":0,\"commit\":0},\"snapshot_index\":0,"
            "\"snapshot_term\":0,\"segments\":[{\"name\":\"0000000000000000-0000000000000000.wal\","
            "\"seq\":0,\"first_index\":0,\"size_bytes\":4096,\"locked\":true,\"pinned\":false,"
            "\"pinned_by\":\"\",\"entries\":20,\"first_entry\":1,\"last_entry\":20}],"
            "\"total_bytes\":4096,\"durable_segment\":0,\"durable_offset\":900,"
            "\"fail_stop\":false,\"fail_stop_reason\":\"\",\"read_only\":false,\"data_dir\":\"/d\","
            "\"version\":\"\",\"retain_released_segments\":0,\"purge_blocked_by\":\"\","
            "\"backups_in_progress\":0,\"snapshots\":[{\"index\":0,\"term\":0}],\"damage\":\"\","
            "\"offline\":true,\"writer_epoch\":0}\n");
  EXPECT_NE(StatusText(s).find("       1-20         4096  locked"), std::string::npos)
      << StatusText(s);
}

TEST(StatusText, PinnedSegmentAndBlockedPurge_AreNamed) {
  StatusView s;
  s.created = true;
  s.last_index = 10;
  s.first_index = 1;
  s.retain_released_segments = 5;
  s.purge_blocked_by = "/d/wal/0000000000000000-0000000000000000.wal: pinned by backup #2";
  StatusView::Segment& seg = s.segments.emplace_back();
  seg.name = "0000000000000000-0000000000000000.wal";
  seg.pinned = true;
  seg.pinned_by = "backup #2 for unix:x";
  std::string text = StatusText(s);
  EXPECT_NE(text.find("BLOCKED at /d/wal/0000000000000000-0000000000000000.wal: pinned by backup"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("released,pinned"), std::string::npos) << text;
  EXPECT_NE(text.find("(backup #2 for unix:x)"), std::string::npos) << text;
  EXPECT_NE(StatusJson(s).find("\"pinned\":true"), std::string::npos);
}

}  // namespace
}  // namespace walrus
