// Writer fencing against a real walrusd: Fence issues a durable epoch, every
// mutating RPC carrying an older one is refused FAILED_PRECONDITION with
// nothing written, across a restart too; clients that never fence keep
// working with epoch 0.
#include <signal.h>

#include <atomic>
#include <memory>
#include <thread>

#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

class FencingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"));
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }

  std::unique_ptr<WalClient> NewClient() {
    ClientOptions options;
    options.retry.max_attempts = 1;
    absl::StatusOr<std::unique_ptr<WalClient>> client =
        WalClient::Connect(daemon_->target(), options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  uint64_t LastIndex() { return GetStatus(daemon_->stub()).last_index(); }

  TempDir tmp_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(FencingTest, NeverFenced_EpochZeroWrites_AreAccepted) {
  ASSERT_TRUE(CreateWal(daemon_->stub(), "meta").ok());
  ASSERT_TRUE(Append(daemon_->stub(), MakeAppend(1, 5, 1, 0)).ok());
  EXPECT_EQ(GetStatus(daemon_->stub()).writer_epoch(), 0u);
}

TEST_F(FencingTest, Fence_StaleAppend_IsFailedPreconditionAndWritesNothing) {
  std::unique_ptr<WalClient> old_writer = NewClient();
  ASSERT_TRUE(old_writer->Create("meta").ok());
  ASSERT_TRUE(old_writer->Append(MakeState(1, 1, 0), MakeEntries(1, 5, 1, 16)).ok());

  std::unique_ptr<WalClient> new_writer = NewClient();
  absl::StatusOr<uint64_t> epoch = new_writer->Fence();
  ASSERT_TRUE(epoch.ok()) << epoch.status();
  EXPECT_EQ(*epoch, 1u);

  absl::StatusOr<uint64_t> stale =
      old_writer->Append(MakeState(1, 1, 0), MakeEntries(6, 10, 1, 16));
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kFailedPrecondition) << stale.status();
  EXPECT_NE(stale.status().message().find("stale writer epoch 0"), std::string::npos)
      << stale.status();
  EXPECT_EQ(LastIndex(), 5u) << "the stale append must not be written";

  absl::StatusOr<uint64_t> fresh = new_writer->Append(MakeState(2, 2, 0), MakeEntries(6, 8, 2, 16));
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ(*fresh, 8u);
}

TEST_F(FencingTest, Fence_EveryMutatingRpcWithStaleEpoch_IsRefused) {
  std::unique_ptr<WalClient> old_writer = NewClient();
  ASSERT_TRUE(old_writer->Create("meta").ok());
  ASSERT_TRUE(old_writer->Append(MakeState(1, 1, 3), MakeEntries(1, 5, 1, 16)).ok());
  std::unique_ptr<WalClient> new_writer = NewClient();
  ASSERT_TRUE(new_writer->Fence().ok());

  EXPECT_EQ(old_writer->Create("meta").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(old_writer->SaveSnapshot(3, 1).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(old_writer->ReleaseTo(3).status().code(), absl::StatusCode::kFailedPrecondition);
  std::unique_ptr<AppendStream> stream = old_writer->OpenAppendStream();
  v1::AppendRequest request = MakeAppend(6, 7, 1, 0);
  (void)stream->Send(request);
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stream->acknowledged(), 0u);

  v1::StatusResponse status = GetStatus(daemon_->stub());
  EXPECT_EQ(status.last_index(), 5u);
  EXPECT_EQ(status.snapshot_index(), 0u) << "the stale snapshot marker must not be saved";
  EXPECT_TRUE(new_writer->SaveSnapshot(3, 1).ok());
}

// A fence arriving while a pipelined stream has appends queued: those queued
// before it may be written, none queued after it is. So the log's end as the
// fence returns is final: the old writer adds nothing after it, and every
// append it had acknowledged is within it. (Appends durable but not yet
// acknowledged when the stream failed are allowed: the contract is that
// unacknowledged appends may or may not be written.)
TEST_F(FencingTest, FenceDuringPipelinedStream_NothingWrittenAfterTheFenceReturns) {
  std::unique_ptr<WalClient> old_writer = NewClient();
  ASSERT_TRUE(old_writer->Create("meta").ok());
  std::unique_ptr<WalClient> new_writer = NewClient();
  AppendStreamOptions options;
  options.window = 64;
  std::unique_ptr<AppendStream> stream = old_writer->OpenAppendStream(options);
  std::atomic<bool> fenced{false};
  std::atomic<uint64_t> end_at_fence{0};
  std::thread fencer;
  absl::Status sent;
  // The old writer keeps sending until the fence stops it: the loop's bound
  // is far beyond what it can send before the fence lands, so the fence
  // always lands mid-stream and every assertion below always runs.
  constexpr uint64_t kBound = 1'000'000;
  for (uint64_t i = 1; i <= kBound && sent.ok(); ++i) {
    v1::AppendRequest request = MakeAppend(i, i, 1, 0, 64);
    sent = stream->Send(request).status();
    if (i == 100) {
      fencer = std::thread([&] {
        fenced = new_writer->Fence().ok();
        absl::StatusOr<v1::StatusResponse> status = new_writer->Status();
        if (status.ok()) end_at_fence = status->last_index();
      });
    }
  }
  absl::Status finished = stream->Finish();
  fencer.join();
  ASSERT_TRUE(fenced.load());
  const uint64_t acknowledged = stream->acknowledged();
  EXPECT_EQ(LastIndex(), end_at_fence.load()) << "written after the fence; " << finished;
  EXPECT_LE(acknowledged, end_at_fence.load());
  ReadBack back = ReadAll(daemon_->stub());
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(back.entries.size(), end_at_fence.load());
  ASSERT_LT(end_at_fence.load(), kBound) << "the old writer was never fenced off";
  EXPECT_EQ(finished.code(), absl::StatusCode::kFailedPrecondition) << finished;
  // The new writer continues right after the old one's last durable entry.
  const uint64_t next = end_at_fence.load() + 1;
  EXPECT_TRUE(new_writer->Append(MakeState(2, 2, 0), MakeEntries(next, next, 2, 8)).ok());
}

TEST_F(FencingTest, EpochNeverIssued_IsRefused) {
  ASSERT_TRUE(CreateWal(daemon_->stub(), "meta").ok());
  v1::AppendRequest request = MakeAppend(1, 3, 1, 0);
  request.set_epoch(5);
  grpc::Status status = Append(daemon_->stub(), request);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(status.error_message().find("never issued"), std::string::npos)
      << status.error_message();
  EXPECT_EQ(LastIndex(), 0u);
}

TEST_F(FencingTest, Fence_SurvivesRestart_StaleEpochStillRefused) {
  std::unique_ptr<WalClient> writer = NewClient();
  ASSERT_TRUE(writer->Create("meta").ok());
  ASSERT_TRUE(writer->Fence().ok());
  ASSERT_EQ(*writer->Fence(), 2u);
  ASSERT_TRUE(writer->Append(MakeState(1, 1, 0), MakeEntries(1, 4, 1, 16)).ok());

  ASSERT_EQ(daemon_->Signal(SIGTERM), 0) << daemon_->log();
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();

  EXPECT_EQ(GetStatus(daemon_->stub()).writer_epoch(), 2u);
  for (uint64_t stale : {0u, 1u}) {
    v1::AppendRequest request = MakeAppend(5, 6, 1, 0);
    request.set_epoch(stale);
    EXPECT_EQ(Append(daemon_->stub(), request).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
        << "epoch " << stale;
  }
  EXPECT_EQ(LastIndex(), 4u);
  std::unique_ptr<WalClient> again = NewClient();
  again->set_epoch(2);
  EXPECT_TRUE(again->Append(MakeState(1, 1, 0), MakeEntries(5, 6, 1, 16)).ok());
  EXPECT_EQ(*again->Fence(), 3u);
}

TEST_F(FencingTest, Fence_AfterKill9_EpochIsStillInForce) {
  std::unique_ptr<WalClient> writer = NewClient();
  ASSERT_EQ(*writer->Fence(), 1u);
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  EXPECT_EQ(GetStatus(daemon_->stub()).writer_epoch(), 1u);
  EXPECT_EQ(CreateWal(daemon_->stub(), "meta").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(FencingTest, ReadOnly_Fence_IsRefused) {
  ASSERT_TRUE(CreateWal(daemon_->stub(), "meta").ok());
  ASSERT_EQ(daemon_->Signal(SIGTERM), 0);
  Daemon read_only(daemon_->data_dir(), {"--read-only"});
  ASSERT_TRUE(read_only.Start()) << read_only.log();
  grpc::ClientContext context;
  v1::FenceRequest request;
  v1::FenceResponse response;
  EXPECT_EQ(read_only.stub()->Fence(&context, request, &response).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace walrus::testing
