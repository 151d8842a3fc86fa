// The real walrusd and walrusctl driven the way a Raft node and its storage
// drive them: a purge under a lagging snapshot followed by kill -9 and a
// restart, a follower installing the leader's snapshot over its divergent
// tail, hard states in the orders etcd's raft produces, storage damage that
// could pass for a shorter log, and the limits of the wire types. Each test
// is a request sequence a user can send with any client; WALRUS_DAEMON and
// WALRUS_CTL choose the binaries, so the same tests run against any build.
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr int kExitCorrupt = 3;  // client/cli/cli.h

std::string CtlBinary() {
  const char* path = getenv("WALRUS_CTL");
  return path != nullptr ? path : WALRUS_CTL_PATH;
}

// Runs walrusctl with `args`; its stdout and stderr, and the exit code.
std::string Walrusctl(const std::string& args, int* code) {
  std::string out;
  FILE* pipe = popen(absl::StrCat("timeout 120 ", CtlBinary(), " ", args, " 2>&1").c_str(), "r");
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
  int status = pclose(pipe);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

v1::AppendRequest StateOnly(const raftpb::HardState& state) {
  v1::AppendRequest request;
  *request.mutable_hard_state() = state;
  return request;
}

// The segment files of `wal_dir`, oldest first (names sort by sequence).
std::vector<std::string> Segments(const std::string& wal_dir) {
  std::vector<std::string> segments;
  for (const auto& entry : std::filesystem::directory_iterator(wal_dir)) {
    const std::string path = entry.path().string();
    if (path.size() > 4 && path.substr(path.size() - 4) == ".wal") segments.push_back(path);
  }
  std::sort(segments.begin(), segments.end());
  return segments;
}

class RaftUseTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> flags = {"--segment-size-bytes", "65536"}) {
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"), std::move(flags));
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  void Kill9AndRestart() {
    daemon_->Kill9();
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  v1::WAL::Stub* stub() { return daemon_->stub(); }

  grpc::Status Release(uint64_t index, v1::ReleaseToResponse* response) {
    grpc::ClientContext context;
    v1::ReleaseToRequest request;
    request.set_index(index);
    return stub()->ReleaseTo(&context, request, response);
  }

  // A log of entries 1..10 in one segment, the daemon stopped; its path.
  void StopWithOneSegment(std::string* segment) {
    Start();
    ASSERT_TRUE(CreateWal(stub(), "meta").ok());
    ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 0)).ok());
    ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
    std::vector<std::string> segments = Segments(daemon_->wal_dir());
    ASSERT_EQ(segments.size(), 1u);
    *segment = segments[0];
  }

  // After damage to a stopped daemon's files: verify says corruption, and
  // walrusd refuses to start with a message naming corruption.
  void ExpectVerifyCorruptAndStartRefused() {
    int code = 0;
    std::string out = Walrusctl(absl::StrCat("verify ", daemon_->wal_dir()), &code);
    EXPECT_EQ(code, kExitCorrupt) << out;
    EXPECT_NE(daemon_->RunToExit(), 0) << "walrusd started on a damaged log:\n" << daemon_->log();
    EXPECT_NE(daemon_->log().find("corrupt"), std::string::npos) << daemon_->log();
  }

  TempDir tmp_;
  std::unique_ptr<Daemon> daemon_;
};

// Raft snapshots at its applied index, which trails the last index. Here
// each snapshot marker lands right after a segment cut, so after the release
// and the purge the oldest segment begins with a marker (60) for entries the
// purge deleted. That is a healthy log: walrusd must restart on it.
TEST_F(RaftUseTest, Restart_AfterPurge_OldestSegmentStartsWithALaggingMarker) {
  Start({"--segment-size-bytes", "65536", "--retain-released-segments", "0"});
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 70, 1, 70, 1024)).ok());
  ASSERT_EQ(GetStatus(stub()).segments_size(), 2) << "70 KiB must cut a segment";
  ASSERT_TRUE(SaveSnapshot(stub(), 60, 1).ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(71, 140, 1, 140, 1024)).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 130, 1).ok());
  v1::ReleaseToResponse released;
  ASSERT_TRUE(Release(130, &released).ok());
  // The purge runs after the release answers; wait for the oldest segment to go.
  for (int i = 0; i < 500 && GetStatus(stub()).segments(0).first_index() <= 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(GetStatus(stub()).segments(0).first_index(), 1u) << "the release purged nothing";

  int code = 0;
  std::string out = Walrusctl(absl::StrCat("verify ", daemon_->wal_dir()), &code);
  EXPECT_EQ(code, 0) << out;
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Start()) << "walrusd refused to restart on a healthy log:\n"
                                << daemon_->log();
  ReadBack back = ReadAll(stub(), 130, 1);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  ASSERT_EQ(back.entries.size(), 10u);
  EXPECT_EQ(back.entries.front().index(), 131u);
  EXPECT_EQ(back.state.commit(), 140u);
  EXPECT_TRUE(Append(stub(), MakeAppend(141, 150, 1, 150, 1024)).ok());
}

// An old leader's follower holds uncommitted entries 6..10 of term 2; the new
// leader (term 3) sends a snapshot at 7. Raft discards the conflicting log
// and must persist the marker; the leader's entries then replace the stale tail.
TEST_F(RaftUseTest, SaveSnapshot_OverFollowersDivergentTail_AcceptedThenLeaderEntriesReplaceIt) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 5, 1, 5)).ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(6, 10, 2, 5)).ok());
  grpc::Status snap = SaveSnapshot(stub(), 7, 3);
  ASSERT_TRUE(snap.ok()) << snap.error_message();
  grpc::Status leader = Append(stub(), MakeAppend(8, 9, 3, 7));
  ASSERT_TRUE(leader.ok()) << leader.error_message();
  for (int round = 0; round < 2; ++round) {
    ReadBack back = ReadAll(stub(), 7, 3);
    ASSERT_TRUE(back.status.ok()) << back.status.error_message();
    EXPECT_EQ(Describe(back.entries), "8/3 9/3") << "round " << round;
    EXPECT_EQ(back.state.commit(), 7u);
    Kill9AndRestart();
  }
}

// Raft never lowers a node's commit. A hard state that would (even with a
// higher term) is refused and changes nothing, and the committed entries
// stay out of reach of a later overwrite.
TEST_F(RaftUseTest, HardState_LowerCommitWithHigherTerm_RefusedCommittedEntriesKept) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 10)).ok());
  grpc::Status lower = Append(stub(), StateOnly(MakeState(2, 1, 5)));
  EXPECT_EQ(lower.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << lower.error_message();
  grpc::Status overwrite = Append(stub(), MakeAppend(2, 2, 2, 10));
  EXPECT_FALSE(overwrite.ok()) << "entry 2 is committed";
  Kill9AndRestart();
  ReadBack back = ReadAll(stub());
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(back.entries.size(), 10u);
  EXPECT_EQ(back.state.commit(), 10u);
  EXPECT_EQ(back.state.term(), 1u);
}

// raftexample saves rd.HardState and rd.Entries, then rd.Snapshot: for a
// follower catching up by snapshot the hard state's commit is ahead of its
// log until the marker lands.
TEST_F(RaftUseTest, HardState_CommitAheadOfTheLog_ThenItsSnapshot_RaftexampleOrderAccepted) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 3, 1, 3)).ok());
  grpc::Status state = Append(stub(), StateOnly(MakeState(2, 0, 20)));
  ASSERT_TRUE(state.ok()) << state.error_message();
  grpc::Status snap = SaveSnapshot(stub(), 20, 2);
  ASSERT_TRUE(snap.ok()) << snap.error_message();
  ASSERT_TRUE(Append(stub(), MakeAppend(21, 25, 2, 20)).ok());
  Kill9AndRestart();
  ReadBack back = ReadAll(stub(), 20, 2);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(Describe(back.entries), "21/2 22/2 23/2 24/2 25/2");
  EXPECT_EQ(back.state.commit(), 20u);
}

// Every named segment has a synced header, so a segment that reads as zeros
// or as nothing is storage damage, not a shorter log: a walrusd that started
// on it would forget the vote (and could vote twice in a term).
TEST_F(RaftUseTest, LastSegmentZeroFilled_HoldingTheOnlyVote_IsCorruption) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 70, 1, 0, 1024)).ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(71, 75, 2, 0)).ok());  // vote 1 in term 2
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  std::vector<std::string> segments = Segments(daemon_->wal_dir());
  ASSERT_EQ(segments.size(), 2u);
  WriteFile(segments.back(), std::string(ReadFile(segments.back()).size(), '\0'));
  ExpectVerifyCorruptAndStartRefused();
}

TEST_F(RaftUseTest, OnlySegmentZeroFilled_IsCorruption) {
  std::string segment;
  ASSERT_NO_FATAL_FAILURE(StopWithOneSegment(&segment));
  WriteFile(segment, std::string(ReadFile(segment).size(), '\0'));
  ExpectVerifyCorruptAndStartRefused();
}

TEST_F(RaftUseTest, OnlySegmentEmptied_IsCorruptionNotAFreshLog) {
  std::string segment;
  ASSERT_NO_FATAL_FAILURE(StopWithOneSegment(&segment));
  std::filesystem::resize_file(segment, 0);
  ExpectVerifyCorruptAndStartRefused();
}

// A segment cut writes and syncs its header (metadata, hard state) before
// the rename names it; damage there is corruption, never a torn tail to
// repair away with the only copy of the vote.
TEST_F(RaftUseTest, HeaderOnlyTailSegment_DamagedHardState_IsCorruptionNotATornTail) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 70, 2, 0, 1024)).ok());
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  std::vector<std::string> segments = Segments(daemon_->wal_dir());
  ASSERT_EQ(segments.size(), 2u) << "70 KiB must cut a segment";
  std::string header = ReadFile(segments.back());
  // The records are the CRC (8 + 8 bytes), the metadata and the hard state:
  // the last nonzero byte is in the hard state.
  size_t last = header.find_last_not_of('\0');
  ASSERT_NE(last, std::string::npos);
  ASSERT_LT(last, 128u) << "the new tail must hold its header only";
  header[last] ^= 0x01;
  WriteFile(segments.back(), header);
  ExpectVerifyCorruptAndStartRefused();
  EXPECT_TRUE(ReadFile(segments.back()) == header) << "the damaged header was repaired away";
}

// The limits of the wire types: an epoch cannot wrap, a marker at the largest
// index would leave no index for the next entry, and only the three entry
// types Raft writes are accepted.
TEST_F(RaftUseTest, Fence_AtLargestEpoch_RefusedWithoutWrapping) {
  std::filesystem::create_directories(tmp_.Sub("data"));
  WriteFile(tmp_.Sub("data") + "/writer-epoch", absl::StrCat("walrus-writer-epoch ", kMax, "\n"));
  Start();
  grpc::ClientContext context;
  v1::FenceRequest request;
  v1::FenceResponse response;
  grpc::Status fence = stub()->Fence(&context, request, &response);
  EXPECT_FALSE(fence.ok()) << "the epoch became " << response.epoch();
  EXPECT_EQ(GetStatus(stub()).writer_epoch(), kMax);
}

TEST_F(RaftUseTest, SaveSnapshot_AtLargestIndex_RefusedAndAppendsGoOn) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  grpc::Status snap = SaveSnapshot(stub(), kMax, 1);
  EXPECT_EQ(snap.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << snap.error_message();
  EXPECT_TRUE(Append(stub(), MakeAppend(1, 3, 1, 0)).ok());
  Kill9AndRestart();
  EXPECT_TRUE(Append(stub(), MakeAppend(4, 6, 1, 0)).ok());
}

TEST_F(RaftUseTest, Append_UnknownEntryType_RefusedInvalidArgument) {
  Start();
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  v1::AppendRequest request = MakeAppend(1, 2, 1, 0);
  request.mutable_entries(1)->set_type(static_cast<raftpb::EntryType>(7));
  grpc::Status status = Append(stub(), request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(GetStatus(stub()).last_index(), 0u);
}

// Releasing past the newest durable marker would let the purge delete
// entries no snapshot covers: the release stops at the marker and says so.
TEST_F(RaftUseTest, ReleaseTo_BeyondNewestMarker_ClampedToItAndSaysSo) {
  Start({"--segment-size-bytes", "65536", "--retain-released-segments", "0"});
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 300; i += 30) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 29, 1, i + 29, 1024)).ok());
  }
  ASSERT_TRUE(SaveSnapshot(stub(), 60, 1).ok());
  v1::ReleaseToResponse released;
  ASSERT_TRUE(Release(250, &released).ok());
  EXPECT_EQ(released.released_to(), 60u);
  EXPECT_TRUE(released.clamped());
  Kill9AndRestart();
  ReadBack back = ReadAll(stub(), 60, 1);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  ASSERT_EQ(back.entries.size(), 240u);
  EXPECT_EQ(back.entries.front().index(), 61u);
}

}  // namespace
}  // namespace walrus::testing
