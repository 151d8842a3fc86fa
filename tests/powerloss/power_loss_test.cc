// Power loss of the real walrusd (see power_loss_loop.h), and the negative
// controls that prove the loop can fail: the same loop with walrusd skipping
// one kind of sync (skip_sync.c) must lose something acknowledged and say so.
//
// WALRUS_POWERLOSS_CUTS (default 30) sets the number of cuts of the main loop;
// WALRUS_POWERLOSS_TEAR (default "0,512,4096") the sector sizes a cut tears
// the last unsynced write at, one chosen per cut (0: no tear).
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/powerloss/lossy_mount.h"
#include "tests/powerloss/power_loss_loop.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

PowerLossOptions OptionsIn(const TempDir& tmp, int cuts) {
  PowerLossOptions options;
  options.work_dir = tmp.Sub("work");
  std::filesystem::create_directories(options.work_dir);
  options.cuts = cuts;
  if (const char* tear = std::getenv("WALRUS_POWERLOSS_TEAR"); tear != nullptr) {
    options.tear_sectors.clear();
    for (absl::string_view s : absl::StrSplit(tear, ',', absl::SkipEmpty())) {
      uint64_t sector = 0;
      if (absl::SimpleAtoi(s, &sector)) options.tear_sectors.push_back(sector);
    }
  }
  return options;
}

void Print(const char* name, const PowerLossReport& r) {
  std::printf(
      "%s: cuts %d, recoveries %d, entries acknowledged %lu (fewest in a round %lu), "
      "acknowledged entries checked %lu, snapshots %d, fences %d, segments released and purged "
      "%lu, "
      "torn writes kept %d, files that lost unsynced data %lu, direct I/O %s, %.1f s\n",
      name, r.cuts, r.recoveries, static_cast<unsigned long>(r.entries_acknowledged),
      static_cast<unsigned long>(r.fewest_acked_in_a_round),
      static_cast<unsigned long>(r.acked_checked), r.snapshots, r.fences,
      static_cast<unsigned long>(r.released), r.torn_writes,
      static_cast<unsigned long>(r.files_reverted), r.direct_io ? "on" : "off", r.seconds);
}

TEST(PowerLoss, CutsAtRandomMoments_EveryAcknowledgementSurvives) {
  TempDir tmp;
  const int cuts = EnvCount("WALRUS_POWERLOSS_CUTS", 30);
  PowerLossReport r = RunPowerLossLoop(OptionsIn(tmp, cuts));
  Print("power loss", r);
  ASSERT_EQ(r.error, "");
  ASSERT_EQ(r.violation, "");
  EXPECT_EQ(r.cuts, cuts);
  EXPECT_EQ(r.recoveries, cuts);
  EXPECT_GT(r.fewest_acked_in_a_round, 0u);
  EXPECT_GT(r.snapshots, 0);
  EXPECT_GT(r.fences, cuts) << "no Fence during a round: the epoch file was never cut mid-write";
  EXPECT_GT(r.released, 0u) << "no segment was released: the purge path went untested";
  EXPECT_GT(r.files_reverted, 0u) << "no cut dropped unsynced data: the cuts test nothing";
  EXPECT_TRUE(r.direct_io) << "walrusd's appends were buffered on the lossy file system: "
                              "the cuts did not test direct writes";
}

// Runs the loop with walrusd skipping `mode` syncs; passes only if the loop
// reports a lost acknowledgement or a failed recovery (whose message has
// `expect` in it).
void ExpectCaught(const std::string& mode, const std::string& expect = "") {
  if (kSanitizerBuild) {
    GTEST_SKIP() << "LD_PRELOAD conflicts with the sanitizer runtime; run this in a plain build";
  }
  TempDir tmp;
  PowerLossOptions options = OptionsIn(tmp, 30);
  options.daemon_prefix = {"/usr/bin/env", std::string("LD_PRELOAD=") + WALRUS_SKIP_SYNC_SHIM,
                           "WALRUS_SKIP_SYNC=" + mode};
  options.keep_failed_image = false;
  options.tear_sectors = {0};  // what is caught is the skipped sync, not a torn write
  PowerLossReport r = RunPowerLossLoop(options);
  Print(("negative control, skipped " + mode).c_str(), r);
  ASSERT_EQ(r.error, "");
  ASSERT_NE(r.violation, "") << "walrusd skipped every " << mode << " and " << r.cuts
                             << " power cuts lost nothing acknowledged: the loop cannot "
                                "catch a missing sync";
  const std::string& v = r.violation;
  EXPECT_NE(v.find(expect), std::string::npos) << v;
  std::printf("caught after %d cuts: %s\n...\n%s\n", r.cuts, v.substr(0, v.find('\n')).c_str(),
              v.substr(v.size() > 800 ? v.size() - 800 : 0).c_str());
}

TEST(PowerLoss, NegativeControl_SkippedSegmentFdatasync_IsCaught) { ExpectCaught("fdatasync"); }

TEST(PowerLoss, NegativeControl_SkippedWalDirectoryFsync_IsCaught) { ExpectCaught("dirsync"); }

TEST(PowerLoss, NegativeControl_SkippedEpochDirectoryFsync_IsCaught) {
  ExpectCaught("epochsync", "writer epoch");
}

// walrusd creates a missing data directory (and its missing parents) at its
// first start. The WAL inside it is durable only if the new directories'
// names are: a power loss after the first acknowledged append must not take
// the directory, and the log with it, away.
TEST(PowerLoss, FirstStart_DataDirectoryWalrusdCreated_SurvivesPowerLoss) {
  TempDir tmp;
  const std::string backing = tmp.Sub("image");
  const std::string mnt = tmp.Sub("mnt");
  std::filesystem::create_directories(backing);
  std::filesystem::create_directories(mnt);
  LossyMount mount(backing, mnt, tmp.Sub("lossy-fs.log"));
  std::string error;
  ASSERT_TRUE(mount.Mount(&error)) << error;
  const std::string data = mnt + "/node-1/data";  // neither exists yet
  {
    Daemon daemon(data);
    daemon.set_log_path(tmp.Sub("walrusd.log"));
    ASSERT_TRUE(daemon.Start()) << daemon.log();
    ASSERT_TRUE(CreateWal(daemon.stub(), "meta").ok());
    ASSERT_TRUE(Append(daemon.stub(), MakeAppend(1, 5, 1, 5)).ok());
    daemon.Kill9();
  }
  std::string cut = mount.Cut(0, 1);
  ASSERT_EQ(cut.rfind("error", 0), std::string::npos) << cut;
  ASSERT_TRUE(mount.Unmount()) << mount.error();
  ASSERT_TRUE(mount.Mount(&error)) << error;
  ASSERT_TRUE(std::filesystem::is_directory(data + "/wal"))
      << "the power loss took the data directory walrusd created";
  Daemon daemon(data);
  daemon.set_log_path(tmp.Sub("walrusd-2.log"));
  ASSERT_TRUE(daemon.Start()) << daemon.log();
  ReadBack back = ReadAll(daemon.stub());
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(back.entries.size(), 5u);
  daemon.Kill9();
  EXPECT_TRUE(mount.Unmount()) << mount.error();
}

}  // namespace
}  // namespace walrus::testing
