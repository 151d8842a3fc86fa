// The operator commands' client pieces without a daemon: the progress line, the offline
// status of a directory and how status prints pins and purge blockers.
#include <cstdio>
#include <filesystem>

#include "client/dir_status.h"
#include "client/progress.h"
#include "client/status_format.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

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

TEST(DirStatus, SegmentsWithEntryRangesHardStateAndMarkers) {
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
  absl::StatusOr<v1::StatusResponse> status = ReadDirStatus(PosixFs(), dir);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->offline());
  EXPECT_EQ(status->first_index(), 1u);
  EXPECT_EQ(status->last_index(), 200u);
  EXPECT_EQ(status->hard_state().commit(), 181u);
  ASSERT_GE(status->segments_size(), 3);
  uint64_t entries = 0;
  for (const v1::SegmentStatus& s : status->segments()) {
    entries += s.entries();
    EXPECT_TRUE(s.locked()) << s.name() << ": the writer holds every segment";
  }
  EXPECT_EQ(entries, 200u);
  ASSERT_EQ(status->snapshots_size(), 2);  // the empty marker at 0, then 150
  EXPECT_EQ(status->snapshots(1).index(), 150u);
  EXPECT_TRUE(status->damage().empty()) << status->damage();
  std::string text = StatusText(*status);
  EXPECT_NE(text.find("markers:      0/0, 150/2"), std::string::npos) << text;
  EXPECT_NE(text.find("1-"), std::string::npos) << text;
}

TEST(DirStatus, NoSegments_IsNotFound) {
  testing::TempDir tmp;
  EXPECT_EQ(ReadDirStatus(PosixFs(), tmp.path()).status().code(), absl::StatusCode::kNotFound);
}

TEST(StatusText, PinnedSegmentAndBlockedPurge_AreNamed) {
  v1::StatusResponse s;
  s.set_created(true);
  s.set_last_index(10);
  s.set_first_index(1);
  s.set_retain_released_segments(5);
  s.set_purge_blocked_by("/d/wal/0000000000000000-0000000000000000.wal: pinned by backup #2");
  v1::SegmentStatus* seg = s.add_segments();
  seg->set_name("0000000000000000-0000000000000000.wal");
  seg->set_pinned(true);
  seg->set_pinned_by("backup #2 for unix:x");
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
