// Real walrusd processes: round trips, the pipelined stream, validation,
// crash and restart, exclusive ownership, graceful shutdown.
#include "tests/integration/daemon.h"

#include <signal.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

using HealthStatus = grpc::health::v1::HealthCheckResponse;

HealthStatus::ServingStatus Health(const std::string& target) {
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service("walrus.v1.WAL");
  HealthStatus response;
  grpc::Status status = stub->Check(&context, request, &response);
  return status.ok() ? response.status() : HealthStatus::UNKNOWN;
}

// The newest segment file of `wal_dir` (names sort by sequence).
std::string TailSegment(const std::string& wal_dir) {
  std::string tail;
  for (const auto& entry : std::filesystem::directory_iterator(wal_dir)) {
    const std::string path = entry.path().string();
    if (path.size() > 4 && path.substr(path.size() - 4) == ".wal" && path > tail) tail = path;
  }
  return tail;
}

class DaemonTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"), flags_);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  v1::WAL::Stub* stub() { return daemon_->stub(); }

  TempDir tmp_;
  std::vector<std::string> flags_ = {"--segment-size-bytes", "65536"};
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(DaemonTest, Append_BeforeCreate_IsFailedPrecondition) {
  grpc::Status status = Append(stub(), MakeAppend(1, 3, 1, 0));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("not created"), std::string::npos)
      << status.error_message();
}

TEST_F(DaemonTest, Create_SameMetadataAgainSucceeds_OtherMetadataIsRefused) {
  bool created = false;
  ASSERT_TRUE(CreateWal(stub(), "node-1", &created).ok());
  EXPECT_TRUE(created);
  ASSERT_TRUE(CreateWal(stub(), "node-1", &created).ok());
  EXPECT_FALSE(created);
  EXPECT_EQ(CreateWal(stub(), "node-2").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(DaemonTest, AppendThenReadAll_RoundTripsEntriesAndHardState) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  uint64_t last = 0;
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 50, 1, 0), &last).ok());
  EXPECT_EQ(last, 50u);
  ASSERT_TRUE(Append(stub(), MakeAppend(51, 60, 2, 40), &last).ok());
  EXPECT_EQ(last, 60u);
  ReadBack back = ReadAll(stub());
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(back.metadata, "meta");
  ASSERT_EQ(back.entries.size(), 60u);
  EXPECT_EQ(back.entries[59].term(), 2u);
  EXPECT_EQ(back.entries[10].data(), MakeEntries(11, 11, 1, 32)[0].data());
  EXPECT_EQ(back.state.commit(), 40u);
  EXPECT_EQ(back.state.term(), 2u);
}

TEST_F(DaemonTest, ReadAll_StreamsInBoundedChunks) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 200; i += 50) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 49, 1, 0, 1000)).ok());
  }
  ReadBack back = ReadAll(stub(), 0, 0, 16 * 1024);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(back.entries.size(), 200u);
  EXPECT_GE(back.messages, 12) << "200 KB in 16 KiB chunks";
}

TEST_F(DaemonTest, ReadAll_SnapshotErrorsFollowEtcd) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 8)).ok());
  grpc::ClientContext context;
  v1::SaveSnapshotRequest snap;
  snap.set_index(8);
  snap.set_term(1);
  v1::SaveSnapshotResponse snap_response;
  ASSERT_TRUE(stub()->SaveSnapshot(&context, snap, &snap_response).ok());
  ReadBack from_snapshot = ReadAll(stub(), 8, 1);
  ASSERT_TRUE(from_snapshot.status.ok()) << from_snapshot.status.error_message();
  EXPECT_EQ(Describe(from_snapshot.entries), "9/1 10/1");
  EXPECT_EQ(ReadAll(stub(), 8, 2).status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReadAll(stub(), 5, 1).status.error_code(), grpc::StatusCode::NOT_FOUND);
}

// Each validation rule: its code, and nothing written.
TEST_F(DaemonTest, Validation_EachRuleRejectedWithItsCodeAndNothingWritten) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 2, 5)).ok());
  const uint64_t offset_before = GetStatus(stub()).durable_offset();

  struct Case {
    const char* name;
    v1::AppendRequest request;
    grpc::StatusCode code;
  };
  std::vector<Case> cases;
  {
    v1::AppendRequest r = MakeAppend(11, 13, 2, 5, 32, false);
    r.mutable_entries(1)->set_index(20);
    cases.push_back({"non-contiguous indexes", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  cases.push_back(
      {"gap after the last index", MakeAppend(13, 14, 2, 5), grpc::StatusCode::INVALID_ARGUMENT});
  cases.push_back({"overwrite at the commit index", MakeAppend(5, 6, 3, 5),
                   grpc::StatusCode::FAILED_PRECONDITION});
  cases.push_back({"overwrite below the commit index", MakeAppend(2, 12, 3, 5),
                   grpc::StatusCode::FAILED_PRECONDITION});
  {
    v1::AppendRequest r = MakeAppend(11, 12, 2, 5);
    r.set_entry_crc32c(1, r.entry_crc32c(1) ^ 1);
    cases.push_back({"entry CRC mismatch", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    v1::AppendRequest r = MakeAppend(11, 12, 2, 5);
    r.add_entry_crc32c(7);
    cases.push_back({"CRC count mismatch", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  cases.push_back({"commit lowered", MakeAppend(11, 12, 3, 4), grpc::StatusCode::INVALID_ARGUMENT});
  {
    v1::AppendRequest r = MakeAppend(11, 12, 2, 5);
    r.mutable_entries(0)->set_type(static_cast<raftpb::EntryType>(7));
    cases.push_back({"unknown entry type", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  {
    v1::AppendRequest r = MakeAppend(11, 12, 2, 5);
    r.mutable_hard_state()->set_vote(9);
    cases.push_back({"second vote in a term", r, grpc::StatusCode::FAILED_PRECONDITION});
  }
  {
    v1::AppendRequest r = MakeAppend(11, 12, 2, 5);
    r.mutable_entries(0)->set_term(1);
    r.mutable_entries(1)->set_term(1);
    cases.push_back({"term below the previous entry's", r, grpc::StatusCode::INVALID_ARGUMENT});
  }
  cases.push_back({"entry over the format's record limit",
                   MakeAppend(11, 11, 2, 5, 11 * 1024 * 1024, false),
                   grpc::StatusCode::INVALID_ARGUMENT});
  cases.push_back({"message over --max-message-bytes",
                   MakeAppend(11, 12, 2, 5, 9 * 1024 * 1024, false),
                   grpc::StatusCode::RESOURCE_EXHAUSTED});
  for (const Case& c : cases) {
    grpc::Status status = Append(stub(), c.request);
    EXPECT_EQ(status.error_code(), c.code) << c.name << ": " << status.error_message();
  }
  ReadBack back = ReadAll(stub());
  ASSERT_TRUE(back.status.ok());
  EXPECT_EQ(back.entries.size(), 10u);
  EXPECT_EQ(back.state.commit(), 5u);
  EXPECT_EQ(GetStatus(stub()).durable_offset(), offset_before) << "a rejection wrote something";
}

TEST_F(DaemonTest, Append_RetryOfAcknowledgedAppendIsHarmless) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  v1::AppendRequest first = MakeAppend(1, 5, 1, 5);
  ASSERT_TRUE(Append(stub(), first).ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(6, 9, 1, 7)).ok());
  uint64_t last = 0;
  grpc::Status retry = Append(stub(), first);  // its answer was "lost"
  EXPECT_TRUE(retry.ok()) << retry.error_message();
  EXPECT_EQ(last = GetStatus(stub()).last_index(), 9u);
  ReadBack back = ReadAll(stub());
  EXPECT_EQ(back.entries.size(), 9u) << "a retry must not truncate later entries";
  EXPECT_EQ(back.state.commit(), 7u) << "a stale hard state must not be written";
}

TEST_F(DaemonTest, Append_NewLeaderOverwritesUncommittedSuffix) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 4)).ok());
  uint64_t last = 0;
  ASSERT_TRUE(Append(stub(), MakeAppend(6, 7, 2, 4), &last).ok());
  EXPECT_EQ(last, 7u);
  ReadBack back = ReadAll(stub());
  EXPECT_EQ(Describe(back.entries), "1/1 2/1 3/1 4/1 5/1 6/2 7/2");
}

TEST_F(DaemonTest, AppendStream_PipelinedAppendsAreAcknowledgedInOrder) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  grpc::ClientContext context;
  auto stream = stub()->AppendStream(&context);
  const uint64_t kAppends = 500;
  std::thread writer([&] {
    for (uint64_t i = 1; i <= kAppends; ++i) {
      v1::AppendRequest r = MakeAppend(i, i, 1, i - 1, 100);
      r.set_sequence(i);
      if (!stream->Write(r)) break;
    }
    stream->WritesDone();
  });
  v1::AppendResponse response;
  uint64_t expected = 1;
  while (stream->Read(&response)) {
    EXPECT_EQ(response.sequence(), expected);
    EXPECT_EQ(response.last_index(), expected);
    ++expected;
  }
  writer.join();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(expected, kAppends + 1);
  EXPECT_EQ(ReadAll(stub()).entries.size(), kAppends);
}

TEST_F(DaemonTest, AppendStream_FirstFailureEndsStreamAndLaterAppendsAreNotWritten) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  grpc::ClientContext context;
  auto stream = stub()->AppendStream(&context);
  ASSERT_TRUE(stream->Write(MakeAppend(1, 2, 1, 0)));
  ASSERT_TRUE(stream->Write(MakeAppend(9, 9, 1, 0)));  // gap
  stream->Write(MakeAppend(3, 4, 1, 0));               // valid, but after the failure
  stream->WritesDone();
  v1::AppendResponse response;
  int acks = 0;
  while (stream->Read(&response)) ++acks;
  grpc::Status status = stream->Finish();
  EXPECT_EQ(acks, 1);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(Describe(ReadAll(stub()).entries), "1/1 2/1");
}

TEST_F(DaemonTest, AppendStream_FailureAfterABurst_AcknowledgesEveryDurableAppendFirst) {
  // The appends before the failing one are written (most share its batch's
  // fsync); each must be acknowledged before the stream ends, so a client
  // resends only what was really not written.
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  grpc::ClientContext context;
  auto stream = stub()->AppendStream(&context);
  const uint64_t kValid = 300;
  for (uint64_t i = 1; i <= kValid; ++i) {
    v1::AppendRequest r = MakeAppend(i, i, 1, 0, 100);
    r.set_sequence(i);
    ASSERT_TRUE(stream->Write(r));
  }
  v1::AppendRequest gap = MakeAppend(kValid + 5, kValid + 5, 1, 0);
  gap.set_sequence(kValid + 1);
  stream->Write(gap);
  stream->WritesDone();
  v1::AppendResponse response;
  uint64_t acks = 0;
  while (stream->Read(&response)) EXPECT_EQ(response.sequence(), ++acks);
  grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_EQ(acks, kValid);
  EXPECT_EQ(ReadAll(stub()).entries.size(), kValid);
}

TEST_F(DaemonTest, Kill9DuringAppends_EveryAcknowledgedEntryReadsBack) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  std::atomic<uint64_t> acked{0};
  std::atomic<bool> stop{false};
  std::thread appender([&] {
    auto own = daemon_->NewStub();
    for (uint64_t i = 1; !stop; i += 4) {
      if (!Append(own.get(), MakeAppend(i, i + 3, 1, i - 1, 200)).ok()) break;
      acked = i + 3;
    }
  });
  // Kill once a few appends were acknowledged (not after a fixed sleep: on a
  // slow machine that could be before the first one).
  while (acked.load() < 40) std::this_thread::yield();
  daemon_->Kill9();
  stop = true;
  appender.join();
  ASSERT_GE(acked.load(), 40u);
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  ReadBack back = ReadAll(stub());
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  ASSERT_GE(back.entries.size(), acked.load());
  for (uint64_t i = 0; i < acked; ++i) {
    ASSERT_EQ(back.entries[i].index(), i + 1);
    ASSERT_EQ(back.entries[i].data(), MakeEntries(i + 1, i + 1, 1, 200)[0].data());
  }
  // And the log continues where it stopped.
  uint64_t next = back.entries.back().index() + 1;
  EXPECT_TRUE(Append(stub(), MakeAppend(next, next, 1, 0)).ok());
}

TEST_F(DaemonTest, SecondDaemonOnSameDirectory_ExitsAtOnceNamingHolder) {
  Daemon second(daemon_->data_dir());
  int code = second.RunToExit();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "it must exit at once, not hang";
  std::string log = second.log();
  EXPECT_NE(log.find(daemon_->data_dir()), std::string::npos) << log;
  EXPECT_NE(log.find("in use by walrusd pid"), std::string::npos) << log;
}

TEST_F(DaemonTest, Sigterm_DrainsInFlightAppendsAndExitsZero) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  std::atomic<uint64_t> acked{0};
  std::thread appender([&] {
    auto own = daemon_->NewStub();
    for (uint64_t i = 1;; i += 2) {
      if (!Append(own.get(), MakeAppend(i, i + 1, 1, 0, 100)).ok()) break;
      acked = i + 1;
    }
  });
  // SIGTERM once appends are flowing, so some are in flight when it lands.
  while (acked.load() < 20) std::this_thread::yield();
  int code = daemon_->Signal(SIGTERM, 10);
  appender.join();
  EXPECT_EQ(code, 0) << daemon_->log();
  EXPECT_GE(acked.load(), 20u);
  EXPECT_EQ(daemon_->log().find("calls still in flight"), std::string::npos)
      << "the drain hit its deadline and cancelled calls:\n"
      << daemon_->log();
  EXPECT_NE(daemon_->log().find("shutdown complete"), std::string::npos) << daemon_->log();
  // Every acknowledged entry is durable and the log is clean.
  WalOptions options;
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::Open(daemon_->wal_dir(), walpb::Snapshot(), options);
  ASSERT_TRUE(wal.ok()) << wal.status();
  absl::StatusOr<ReadAllResult> read = (*wal)->ReadAll();
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_GE(read->entries.size(), acked.load());
}

TEST_F(DaemonTest, Restart_RepairsTornTailAndKeepsBrokenCopy) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 20, 1, 0, 100)).ok());
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  // Append half a record at the durable end, as a crash mid-write leaves it.
  std::string segment;
  for (const auto& f : std::filesystem::directory_iterator(daemon_->wal_dir())) {
    if (f.path().extension() == ".wal") segment = std::max(segment, f.path().string());
  }
  v1::StatusResponse unused;
  std::string bytes = ReadFile(segment);
  size_t end = bytes.find_last_not_of('\0') + 1;
  end = (end + 7) / 8 * 8;
  std::string frame("\x40\x00\x00\x00\x00\x00\x00\x00\x08\x02\x10\x01", 12);
  bytes.replace(end, frame.size(), frame);
  WriteFile(segment, bytes);

  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  EXPECT_NE(daemon_->log().find("repaired a torn tail"), std::string::npos) << daemon_->log();
  EXPECT_TRUE(std::filesystem::exists(segment + ".broken"));
  EXPECT_EQ(ReadAll(stub()).entries.size(), 20u);
}

TEST_F(DaemonTest, Restart_RefusesCorruptionWithClearMessage) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 400; i += 40) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 39, 1, 0, 500)).ok());
  }
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  std::string first = daemon_->wal_dir() + "/0000000000000000-0000000000000000.wal";
  std::string bytes = ReadFile(first);
  bytes[bytes.size() / 2] ^= 0x01;
  WriteFile(first, bytes);
  EXPECT_NE(daemon_->RunToExit(), 0);
  EXPECT_NE(daemon_->log().find("corruption"), std::string::npos) << daemon_->log();
  // --read-only starts anyway and refuses writes.
  Daemon read_only(daemon_->data_dir(), {"--read-only"});
  ASSERT_TRUE(read_only.Start()) << read_only.log();
  EXPECT_EQ(Append(read_only.stub(), MakeAppend(401, 401, 1, 0)).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ReadAll(read_only.stub()).status.error_code(), grpc::StatusCode::DATA_LOSS);
}

// A follower installing a snapshot: the marker is past the log's end and the
// log continues after it. That is not a gap, and survives a restart.
TEST_F(DaemonTest, SnapshotPastTheEnd_ThenAppends_RestartsAndReadsFromIt) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 3, 1, 2)).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 10, 2).ok());
  grpc::Status appended = Append(stub(), MakeAppend(11, 12, 2, 10));
  ASSERT_TRUE(appended.ok()) << appended.error_message();
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  ReadBack back = ReadAll(stub(), 10, 2);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(Describe(back.entries), "11/2 12/2");
  ReadBack from_zero = ReadAll(stub());
  EXPECT_EQ(from_zero.status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << from_zero.status.error_message();
  EXPECT_EQ(GetStatus(stub()).last_index(), 12u);
  EXPECT_TRUE(Append(stub(), MakeAppend(13, 13, 2, 11)).ok());
}

TEST_F(DaemonTest, SaveSnapshot_ConflictingTermIsRefused_RetryIsHarmless) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 5, 3, 4)).ok());
  EXPECT_TRUE(SaveSnapshot(stub(), 4, 3).ok());
  EXPECT_TRUE(SaveSnapshot(stub(), 4, 3).ok()) << "a retry";
  EXPECT_EQ(SaveSnapshot(stub(), 4, 2).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(SaveSnapshot(stub(), 5, 1).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "entry 5 has term 3";
  EXPECT_TRUE(ReadAll(stub(), 4, 3).status.ok());
}

TEST_F(DaemonTest, Sigterm_EndsOpenStreamsPromptlyAfterAcknowledgingWhatTheyTook) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  grpc::ClientContext context;
  auto stream = stub()->AppendStream(&context);
  for (uint64_t i = 1; i <= 20; ++i) ASSERT_TRUE(stream->Write(MakeAppend(i, i, 1, 0)));
  v1::AppendResponse response;
  uint64_t acked = 0;
  while (acked < 20 && stream->Read(&response)) acked = response.last_index();
  ASSERT_EQ(acked, 20u);
  std::thread stop([&] { EXPECT_EQ(daemon_->Signal(SIGTERM), 0); });
  while (stream->Read(&response)) acked = response.last_index();
  grpc::Status status = stream->Finish();
  stop.join();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // The open stream was ended by the drain itself, not cancelled when the
  // drain deadline ran out.
  EXPECT_EQ(daemon_->log().find("calls still in flight"), std::string::npos)
      << "the stream held shutdown until the drain deadline:\n"
      << daemon_->log();
}

TEST_F(DaemonTest, Status_ReportsIndexesSegmentsAndDurableOffset) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 300; i += 30) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 29, 1, i, 500)).ok());
  }
  v1::StatusResponse status = GetStatus(stub());
  EXPECT_TRUE(status.created());
  EXPECT_EQ(status.first_index(), 1u);
  EXPECT_EQ(status.last_index(), 300u);
  EXPECT_EQ(status.hard_state().commit(), 271u);
  EXPECT_GE(status.segments_size(), 2);
  EXPECT_GT(status.durable_offset(), 0u);
  EXPECT_FALSE(status.fail_stop());
  EXPECT_GT(status.total_bytes(), 0u);
}

// "(index, term) ..." of a list of markers.
template <typename Markers>
std::string DescribeMarkers(const Markers& markers) {
  std::string out;
  for (const v1::SnapshotMarker& m : markers) {
    absl::StrAppend(&out, out.empty() ? "" : " ", "(", m.index(), ",", m.term(), ")");
  }
  return out;
}

TEST_F(DaemonTest, Snapshots_ListsEveryDurableMarker_InStatusToo_AndAfterKill9) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 30, 1, 25, 500)).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 10, 1).ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(31, 60, 1, 40, 500)).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 20, 1).ok());
  v1::SnapshotsResponse catalogue = GetSnapshots(stub());
  EXPECT_EQ(DescribeMarkers(catalogue.snapshots()), "(0,0) (10,1) (20,1)");
  EXPECT_EQ(catalogue.commit(), 40u);
  EXPECT_EQ(DescribeMarkers(GetStatus(stub()).snapshots()), "(0,0) (10,1) (20,1)");

  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  catalogue = GetSnapshots(stub());
  EXPECT_EQ(DescribeMarkers(catalogue.snapshots()), "(0,0) (10,1) (20,1)")
      << "a restart must find every marker the segments hold, not only the newest";
  EXPECT_EQ(catalogue.commit(), 40u);
}

TEST_F(DaemonTest, Snapshots_AfterReleaseTo_LeavesOutReleasedSegments_KeepsTheNewest) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  // 64 KiB segments, ~100 KiB per batch: markers several segments apart.
  for (uint64_t batch = 0; batch < 6; ++batch) {
    const uint64_t first = batch * 100 + 1;
    ASSERT_TRUE(Append(stub(), MakeAppend(first, first + 99, 1, first + 99, 1000)).ok());
    if (batch % 2 == 0) ASSERT_TRUE(SaveSnapshot(stub(), first + 49, 1).ok());
  }
  const std::string before = DescribeMarkers(GetSnapshots(stub()).snapshots());
  ASSERT_EQ(before, "(0,0) (50,1) (250,1) (450,1)");
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ReleaseToRequest release;
  release.set_index(450);
  v1::ReleaseToResponse released;
  ASSERT_TRUE(stub()->ReleaseTo(&context, release, &released).ok());
  ASSERT_GT(released.released_segments(), 0u);
  const std::string after = DescribeMarkers(GetSnapshots(stub()).snapshots());
  EXPECT_LT(after.size(), before.size()) << after;
  EXPECT_EQ(before.substr(before.size() - after.size()), after) << "a suffix of the list";
  EXPECT_EQ(after.find("(0,0)"), std::string::npos) << after;
  EXPECT_NE(after.find("(450,1)"), std::string::npos) << after;
}

TEST_F(DaemonTest, ReadAll_FromCommittedSnapshot_StartsAtTheNewestMarkerAtOrBelowTheCommit) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  v1::ReadAllRequest committed;
  committed.set_from_committed_snapshot(true);
  ReadBack back = ReadAll(stub(), committed);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(DescribeMarkers(std::vector<v1::SnapshotMarker>{back.snapshot}), "(0,0)");

  ASSERT_TRUE(Append(stub(), MakeAppend(1, 30, 1, 15)).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 10, 1).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 20, 1).ok());  // above the commit: not yet a restart point
  back = ReadAll(stub(), committed);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(DescribeMarkers(std::vector<v1::SnapshotMarker>{back.snapshot}), "(10,1)");
  ASSERT_FALSE(back.entries.empty());
  EXPECT_EQ(back.entries.front().index(), 11u);
  EXPECT_EQ(back.entries.back().index(), 30u);

  ASSERT_TRUE(Append(stub(), MakeAppend(31, 30, 1, 25)).ok());  // the commit passes 20
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  back = ReadAll(stub(), committed);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(DescribeMarkers(std::vector<v1::SnapshotMarker>{back.snapshot}), "(20,1)");
  ASSERT_FALSE(back.entries.empty());
  EXPECT_EQ(back.entries.front().index(), 21u);
  EXPECT_EQ(back.state.commit(), 25u);

  committed.set_snapshot_index(10);
  committed.set_snapshot_term(1);
  EXPECT_EQ(ReadAll(stub(), committed).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << "a marker and from_committed_snapshot together";
}

TEST_F(DaemonTest, TailSegmentDeletedUnderLiveDaemon_FailStopsAndHealthTurnsNotServing) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 0)).ok());
  ASSERT_EQ(Health(daemon_->target()), HealthStatus::SERVING);
  const std::string tail = TailSegment(daemon_->wal_dir());
  ASSERT_FALSE(tail.empty());
  ASSERT_TRUE(std::filesystem::remove(tail));
  // The daemon still holds the file open: without a check, this append
  // would be written, fdatasynced and acknowledged into a file no restart
  // reads.
  grpc::Status lost = Append(stub(), MakeAppend(11, 12, 1, 0));
  EXPECT_EQ(lost.error_code(), grpc::StatusCode::UNAVAILABLE) << lost.error_message();
  EXPECT_NE(lost.error_message().find("deleted while in use"), std::string::npos)
      << lost.error_message();
  EXPECT_TRUE(GetStatus(stub()).fail_stop());
  EXPECT_EQ(Health(daemon_->target()), HealthStatus::NOT_SERVING);
  EXPECT_EQ(Append(stub(), MakeAppend(11, 11, 1, 0)).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace walrus::testing
