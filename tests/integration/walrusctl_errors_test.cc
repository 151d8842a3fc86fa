// What walrusctl says and which exit code it gives when an operation fails
// part way or for a reason the operator must act on: an `append --jsonl` that
// stops after some batches are durable, an entry larger than walrusd accepts,
// a `repair` over a segment name that is not a file, and offline commands
// over a FIFO named like a segment. Real walrusctl and
// walrusd processes; the daemon on a Unix socket.
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

constexpr int kExitTooLarge = 9;  // client/cli/cli.h
constexpr int kExitInUse = 4;

constexpr int kExitTimedOut = 124;  // timeout(1)

// Runs walrusctl with `args` (killed after `timeout_seconds`); its stdout and
// stderr, and the exit code.
std::string Walrusctl(const std::string& args, int* code, int timeout_seconds = 120) {
  std::string out;
  FILE* pipe = popen(
      absl::StrCat("timeout ", timeout_seconds, " ", WALRUS_CTL_PATH, " ", args, " 2>&1").c_str(),
      "r");
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// One jsonl line of `walrusctl dump --format=jsonl`; data "aaa..." (a
// multiple of 3 bytes, so its base64 is "YWFh" repeated).
std::string EntryLine(uint64_t index, size_t data_triples = 1) {
  std::string data;
  for (size_t i = 0; i < data_triples; ++i) data += "YWFh";
  return absl::StrCat(R"({"kind":"entry","index":)", index, R"(,"term":1,"type":0,"data":")", data,
                      "\"}\n");
}
const char kMetadataLine[] = R"({"kind":"metadata","data":"bWV0YQ=="})"
                             "\n";

class WalrusctlErrorsTest : public ::testing::Test {
 protected:
  std::string Append(const std::string& jsonl, int* code, const std::string& flags = "") {
    WriteFile(tmp_.Sub("in.jsonl"), jsonl);
    return Walrusctl(absl::StrCat("--server ", daemon_->target(), " append --jsonl ",
                                  tmp_.Sub("in.jsonl"), " --batch-entries 2 ", flags),
                     code);
  }
  void StartDaemon(std::vector<std::string> flags = {}) {
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"), flags);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  TempDir tmp_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(WalrusctlErrorsTest, AppendJsonl_MalformedLineAfterDurableBatches_SaysWhichIndexIsDurable) {
  StartDaemon();
  std::string jsonl = kMetadataLine;
  for (uint64_t i = 1; i <= 5; ++i) jsonl += EntryLine(i);
  jsonl += "{not json\n";  // line 7
  int code = 0;
  std::string out = Append(jsonl, &code);
  EXPECT_EQ(code, 1) << out;
  const uint64_t durable = GetStatus(daemon_->stub()).last_index();
  ASSERT_GT(durable, 0u) << "some batches went out before the bad line";
  EXPECT_NE(out.find("line 7"), std::string::npos) << out;
  EXPECT_NE(out.find(absl::StrCat("entries up to index ", durable, " are durable")),
            std::string::npos)
      << out;
}

TEST_F(WalrusctlErrorsTest, AppendJsonl_RefusedBatchAfterDurableOnes_SaysWhichIndexIsDurable) {
  StartDaemon();
  std::string jsonl = kMetadataLine;
  for (uint64_t i : {1, 2, 3, 4, 9, 10, 11}) jsonl += EntryLine(i);  // a gap after 4
  int code = 0;
  std::string out = Append(jsonl, &code);
  EXPECT_EQ(code, 6) << out;
  EXPECT_EQ(GetStatus(daemon_->stub()).last_index(), 4u);
  EXPECT_NE(out.find("entries up to index 4 are durable"), std::string::npos) << out;
}

TEST_F(WalrusctlErrorsTest, AppendJsonl_EntryOverTheMessageLimit_ExitsTooLargeNamingTheLimit) {
  StartDaemon({"--max-message-bytes", "65536"});
  int code = 0;
  std::string out = Append(std::string(kMetadataLine) + EntryLine(1, 40000), &code);
  EXPECT_EQ(code, kExitTooLarge) << out;
  EXPECT_NE(out.find("--max-message-bytes"), std::string::npos) << out;
  EXPECT_EQ(out.find("RESOURCE_EXHAUSTED"), std::string::npos) << "not a full disk: " << out;
  EXPECT_EQ(GetStatus(daemon_->stub()).last_index(), 0u);
}

TEST_F(WalrusctlErrorsTest, Repair_SegmentNameThatIsADirectory_SaysSoAndNotInUse) {
  std::string wal = tmp_.Sub("wal");
  ASSERT_TRUE(std::filesystem::create_directories(wal + "/0000000000000000-0000000000000000.wal"));
  int code = 0;
  std::string out = Walrusctl("repair " + wal, &code);
  EXPECT_NE(code, 0) << out;
  EXPECT_NE(code, kExitInUse) << out;
  EXPECT_EQ(out.find("in use"), std::string::npos) << out;
  EXPECT_TRUE(out.find("Is a directory") != std::string::npos ||
              out.find("not a regular file") != std::string::npos)
      << out;
}

// A FIFO under a segment's name used to make dump, verify and status wait
// forever for a writer; each must refuse it at once. `timeout` bounds the
// wait so the old behaviour fails here instead of hanging the suite.
TEST_F(WalrusctlErrorsTest, OfflineCommands_SegmentNameThatIsAFifo_RefusedNotWaitedOn) {
  std::string wal = tmp_.Sub("wal");
  ASSERT_TRUE(std::filesystem::create_directories(wal));
  ASSERT_EQ(::mkfifo((wal + "/0000000000000000-0000000000000000.wal").c_str(), 0600), 0);
  for (const char* command : {"dump", "verify", "status"}) {
    int code = 0;
    std::string out = Walrusctl(absl::StrCat(command, " ", wal), &code, /*timeout_seconds=*/20);
    EXPECT_NE(code, kExitTimedOut) << command << " waited on the FIFO";
    EXPECT_NE(code, 0) << command << ": " << out;
    EXPECT_NE(out.find("not a regular file"), std::string::npos) << command << ": " << out;
  }
}

// Ranged reads from the command line: entries prints a range as dump prints
// entries; a compacted start is exit 7; follow prints what becomes durable
// (here until timeout(1) stops it) and says when a new leader replaced what
// it printed.
TEST_F(WalrusctlErrorsTest, EntriesAndFollow_PrintTheDurableLog_CompactedIsNotFound) {
  StartDaemon();
  ASSERT_TRUE(CreateWal(daemon_->stub(), "meta").ok());
  ASSERT_TRUE(testing::Append(daemon_->stub(), MakeAppend(1, 10, 1, 5)).ok());
  int code = 0;
  std::string out = Walrusctl(
      absl::StrCat("--server ", daemon_->target(), " entries --from 4 --to 6 --format=jsonl"),
      &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find(R"("index":4,"term":1)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("index":6,"term":1)"), std::string::npos) << out;
  EXPECT_EQ(out.find(R"("index":7,)"), std::string::npos) << out;
  out = Walrusctl(absl::StrCat("--server ", daemon_->target(), " entries --from 8"), &code);
  EXPECT_EQ(code, 0) << out;
  EXPECT_NE(out.find("10"), std::string::npos) << out;

  ASSERT_TRUE(SaveSnapshot(daemon_->stub(), 12, 2).ok());  // replaces the log
  out = Walrusctl(absl::StrCat("--server ", daemon_->target(), " entries --from 4"), &code);
  EXPECT_EQ(code, 7) << out;

  ASSERT_TRUE(testing::Append(daemon_->stub(), MakeAppend(13, 15, 2, 12)).ok());
  out = Walrusctl(absl::StrCat("--server ", daemon_->target(), " follow --from 13 --format=jsonl"),
                  &code,
                  /*timeout_seconds=*/3);
  EXPECT_EQ(code, kExitTimedOut) << "follow runs until stopped:\n" << out;
  EXPECT_NE(out.find(R"("index":13,"term":2)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("index":15,"term":2)"), std::string::npos) << out;
}

}  // namespace
}  // namespace walrus::testing
