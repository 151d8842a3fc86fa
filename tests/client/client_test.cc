// WalClient and AppendStream against an in-process fake walrus.v1.WAL on a
// Unix socket: retries, deadlines, CRCs, ReadAll reassembly, the stream's
// ordering and failure reporting. No walrusd involved.
#include "client/client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include "core/crc32c.h"

namespace walrus {
namespace {

class FakeWal final : public v1::WAL::Service {
 public:
  // Knobs, set before the calls they affect.
  std::atomic<int> unavailable_appends{0};  // answer UNAVAILABLE this many times
  std::atomic<bool> refuse_appends{false};  // FAILED_PRECONDITION
  std::atomic<int> status_delay_ms{0};
  bool read_all_without_header = false;
  uint64_t stream_fail_at = 0;  // sequence the stream fails at (0: none)
  bool stream_wrong_sequence = false;
  size_t stream_ack_batch = 1;           // acknowledge only once this many arrived
  std::atomic<bool> stream_hold{false};  // the stream reads nothing while set

  std::atomic<int> append_calls{0};
  std::mutex mu;
  std::vector<v1::AppendRequest> appends;  // every Append and stream message

  grpc::Status Append(grpc::ServerContext*, const v1::AppendRequest* request,
                      v1::AppendResponse* response) override {
    ++append_calls;
    Record(*request);
    if (unavailable_appends.fetch_sub(1) > 0) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "not now");
    }
    if (refuse_appends) return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "refused");
    response->set_last_index(request->entries_size() ? request->entries().rbegin()->index() : 0);
    response->set_sequence(request->sequence());
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const v1::StatusRequest*,
                      v1::StatusResponse* response) override {
    std::this_thread::sleep_for(std::chrono::milliseconds(status_delay_ms.load()));
    response->set_last_index(42);
    return grpc::Status::OK;
  }

  grpc::Status ReadAll(grpc::ServerContext*, const v1::ReadAllRequest* request,
                       grpc::ServerWriter<v1::ReadAllResponse>* writer) override {
    v1::ReadAllResponse chunk;
    if (!read_all_without_header) {
      chunk.set_has_header(true);
      chunk.set_metadata("meta");
      chunk.mutable_hard_state()->set_term(3);
      chunk.mutable_hard_state()->set_commit(4);
    }
    // Entries after the snapshot, two per message, up to index 5.
    for (uint64_t i = request->snapshot_index() + 1; i <= 5; ++i) {
      raftpb::Entry* e = chunk.add_entries();
      e->set_index(i);
      e->set_term(3);
      if (chunk.entries_size() == 2) {
        writer->Write(chunk);
        chunk.Clear();
      }
    }
    if (chunk.entries_size() > 0 || chunk.has_header()) writer->Write(chunk);
    return grpc::Status::OK;
  }

  grpc::Status AppendStream(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::AppendResponse, v1::AppendRequest>* stream) override {
    v1::AppendRequest request;
    std::vector<v1::AppendResponse> held;
    while (stream_hold) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    while (stream->Read(&request)) {
      Record(request);
      if (request.sequence() == stream_fail_at) {
        return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "stream refused");
      }
      v1::AppendResponse response;
      response.set_sequence(stream_wrong_sequence ? request.sequence() + 1 : request.sequence());
      response.set_last_index(request.entries_size() ? request.entries().rbegin()->index() : 0);
      held.push_back(response);
      if (held.size() >= stream_ack_batch) {
        for (const v1::AppendResponse& r : held) stream->Write(r);
        held.clear();
      }
    }
    for (const v1::AppendResponse& r : held) stream->Write(r);
    return grpc::Status::OK;
  }

 private:
  void Record(const v1::AppendRequest& request) {
    std::lock_guard<std::mutex> lock(mu);
    appends.push_back(request);
  }
};

// When started with WALRUS_CLIENT_TEST_SERVE=TARGET, this binary is only a
// FakeWal server on TARGET (after WALRUS_CLIENT_TEST_DELAY_MS), until killed.
const bool kServeOnly = [] {
  const char* target = std::getenv("WALRUS_CLIENT_TEST_SERVE");
  if (target == nullptr) return false;
  const char* delay = std::getenv("WALRUS_CLIENT_TEST_DELAY_MS");
  std::this_thread::sleep_for(std::chrono::milliseconds(delay ? std::atoi(delay) : 0));
  static FakeWal fake;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(target, grpc::InsecureServerCredentials());
  builder.RegisterService(&fake);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr) std::_Exit(1);
  server->Wait();
  std::_Exit(0);
  return true;
}();

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/walrus-client-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    target_ = "unix:" + dir_ + "/sock";
    grpc::ServerBuilder builder;
    builder.AddListeningPort(target_, grpc::InsecureServerCredentials());
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    std::filesystem::remove_all(dir_);
  }

  std::unique_ptr<WalClient> Client(ClientOptions options = {}) {
    options.retry.initial_backoff = std::chrono::milliseconds(1);
    options.retry.max_backoff = std::chrono::milliseconds(5);
    absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target_, options);
    EXPECT_TRUE(client.ok()) << client.status();
    return std::move(*client);
  }

  static std::vector<raftpb::Entry> Entries(uint64_t first, uint64_t last) {
    std::vector<raftpb::Entry> out;
    for (uint64_t i = first; i <= last; ++i) {
      out.emplace_back();
      out.back().set_index(i);
      out.back().set_term(1);
      out.back().set_data("data-" + std::to_string(i));
    }
    return out;
  }

  static v1::AppendRequest Request(uint64_t first, uint64_t last) {
    v1::AppendRequest request;
    for (raftpb::Entry& e : Entries(first, last)) *request.add_entries() = e;
    return request;
  }

  std::string dir_;
  std::string target_;
  FakeWal fake_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(ClientTest, Connect_EmptyTarget_IsInvalidArgument) {
  EXPECT_EQ(WalClient::Connect("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ClientTest, Append_UnavailableTwice_IsRetriedAndSucceeds) {
  fake_.unavailable_appends = 2;
  absl::StatusOr<uint64_t> last = Client()->Append(raftpb::HardState(), Entries(1, 3));
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 3u);
  EXPECT_EQ(fake_.append_calls.load(), 3);
}

TEST_F(ClientTest, Append_UnavailableBeyondMaxAttempts_ReturnsUnavailableAfterThatMany) {
  fake_.unavailable_appends = 100;
  ClientOptions options;
  options.retry.max_attempts = 4;
  absl::StatusOr<uint64_t> last = Client(options)->Append(raftpb::HardState(), Entries(1, 1));
  EXPECT_EQ(last.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(last.status().message().find("gave up after 4 attempts"), std::string::npos)
      << last.status();
  EXPECT_EQ(fake_.append_calls.load(), 4);
}

TEST_F(ClientTest, Append_FailedPrecondition_IsNotRetried) {
  fake_.refuse_appends = true;
  absl::StatusOr<uint64_t> last = Client()->Append(raftpb::HardState(), Entries(1, 1));
  EXPECT_EQ(last.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(last.status().message(), "refused");
  EXPECT_EQ(fake_.append_calls.load(), 1);
}

TEST_F(ClientTest, Append_ByDefault_SendsOneCrc32cPerEntry) {
  ASSERT_TRUE(Client()->Append(raftpb::HardState(), Entries(1, 3)).ok());
  const v1::AppendRequest& sent = fake_.appends.at(0);
  ASSERT_EQ(sent.entry_crc32c_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(sent.entry_crc32c(i), crc32c::Value(sent.entries(i).data())) << i;
  }
}

TEST_F(ClientTest, Append_CrcDisabled_SendsNone) {
  ClientOptions options;
  options.entry_crc32c = false;
  ASSERT_TRUE(Client(options)->Append(raftpb::HardState(), Entries(1, 3)).ok());
  EXPECT_EQ(fake_.appends.at(0).entry_crc32c_size(), 0);
}

TEST_F(ClientTest, Call_SlowerThanItsTimeout_IsDeadlineExceeded) {
  fake_.status_delay_ms = 500;
  ClientOptions options;
  options.call_timeout = std::chrono::milliseconds(50);
  EXPECT_EQ(Client(options)->Status().status().code(), absl::StatusCode::kDeadlineExceeded);
}

// Retries give up as UNAVAILABLE (the daemon is not there), not by running
// into the call's deadline, which would be DEADLINE_EXCEEDED.
TEST_F(ClientTest, NobodyListening_IsUnavailableNotDeadlineExceeded) {
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  ClientOptions options;
  options.call_timeout = std::chrono::milliseconds(2000);
  absl::StatusOr<v1::StatusResponse> status = Client(options)->Status();
  EXPECT_EQ(status.status().code(), absl::StatusCode::kUnavailable) << status.status();
}

// The fake in another process, as walrusd is: in-process, the server's
// polling threads also read the client's sockets and hide a client that
// never reads its own while it waits between retries.
TEST_F(ClientTest, DaemonComingUpDuringTheRetries_IsFoundByALaterAttempt) {
  server_->Shutdown(std::chrono::system_clock::now());
  server_.reset();
  std::string socket_env = "WALRUS_CLIENT_TEST_SERVE=" + target_;
  char* child_argv[] = {const_cast<char*>("client_library_test"), nullptr};
  char* child_env[] = {socket_env.data(), const_cast<char*>("WALRUS_CLIENT_TEST_DELAY_MS=300"),
                       nullptr};
  pid_t child;
  ASSERT_EQ(posix_spawn(&child, "/proc/self/exe", nullptr, nullptr, child_argv, child_env), 0);
  ClientOptions options;
  options.call_timeout = std::chrono::milliseconds(8000);
  options.retry.max_attempts = 8;
  options.retry.initial_backoff = std::chrono::milliseconds(100);
  options.retry.max_backoff = std::chrono::milliseconds(1000);
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target_, options);
  ASSERT_TRUE(client.ok());
  absl::StatusOr<v1::StatusResponse> status = (*client)->Status();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->last_index(), 42u);
}

TEST_F(ClientTest, ReadAll_ReassemblesHeaderAndChunks) {
  absl::StatusOr<ReadAllReply> log = Client()->ReadAll(1, 3);
  ASSERT_TRUE(log.ok()) << log.status();
  EXPECT_EQ(log->metadata, "meta");
  EXPECT_EQ(log->state.term(), 3u);
  EXPECT_EQ(log->state.commit(), 4u);
  ASSERT_EQ(log->entries.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(log->entries[i].index(), i + 2);
}

TEST_F(ClientTest, ReadAll_FirstMessageWithoutHeader_IsInternal) {
  fake_.read_all_without_header = true;
  EXPECT_EQ(Client()->ReadAll().status().code(), absl::StatusCode::kInternal);
}

TEST_F(ClientTest, AppendStream_AcknowledgementsArriveInOrderThroughTheCallback) {
  std::unique_ptr<WalClient> client = Client();
  std::vector<AppendAck> acks;
  AppendStreamOptions options;
  options.window = 4;
  options.on_ack = [&](const AppendAck& ack) { acks.push_back(ack); };
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream(options);
  for (uint64_t i = 0; i < 20; ++i) {
    absl::StatusOr<uint64_t> seq = stream->Send(Request(i * 2 + 1, i * 2 + 2));
    ASSERT_TRUE(seq.ok()) << seq.status();
    EXPECT_EQ(*seq, i + 1);
  }
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(acks.size(), 20u);
  for (uint64_t i = 0; i < 20; ++i) {
    EXPECT_EQ(acks[i].sequence, i + 1);
    // The last index after the message that carried it: its own last entry
    // or a later one merged with it, never beyond what was sent before the ack.
    EXPECT_GE(acks[i].last_index, i * 2 + 2);
    EXPECT_LE(acks[i].last_index, 40u);
    if (i > 0) {
      EXPECT_GE(acks[i].last_index, acks[i - 1].last_index);
    }
  }
  EXPECT_EQ(stream->acknowledged(), 20u);
  EXPECT_EQ(fake_.appends.at(0).entry_crc32c_size(), fake_.appends.at(0).entries_size());
}

TEST_F(ClientTest, AppendStream_ManyAppends_ArriveOnceInOrderWithTheirCrcs) {
  std::unique_ptr<WalClient> client = Client();
  AppendStreamOptions options;
  options.window = 256;
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream(options);
  for (uint64_t i = 1; i <= 2000; ++i) ASSERT_TRUE(stream->Send(Request(i, i)).ok());
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(stream->acknowledged(), 2000u);
  EXPECT_LE(stream->messages_sent(), 2000u);
  ASSERT_EQ(fake_.appends.size(), stream->messages_sent());
  uint64_t next = 1;
  for (size_t m = 0; m < fake_.appends.size(); ++m) {
    const v1::AppendRequest& message = fake_.appends[m];
    EXPECT_EQ(message.sequence(), m + 1);
    ASSERT_EQ(message.entry_crc32c_size(), message.entries_size());
    for (int k = 0; k < message.entries_size(); ++k) {
      EXPECT_EQ(message.entries(k).index(), next++);
      EXPECT_EQ(message.entry_crc32c(k), crc32c::Value(message.entries(k).data()));
    }
  }
  EXPECT_EQ(next, 2001u);
}

// Appends 2..5 queue while the first, larger than the flow-control window,
// is held on the wire: they go as one message and are acknowledged each.
TEST_F(ClientTest, AppendStream_AppendsQueuedBehindAMessage_GoAsOneAndAreAcknowledgedEach) {
  fake_.stream_hold = true;
  std::unique_ptr<WalClient> client = Client();
  std::vector<AppendAck> acks;
  AppendStreamOptions options;
  options.on_ack = [&](const AppendAck& ack) { acks.push_back(ack); };
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream(options);
  v1::AppendRequest big = Request(1, 1);
  big.mutable_entries(0)->set_data(std::string(3 << 20, 'x'));  // over the 1 MiB cap
  ASSERT_TRUE(stream->Send(std::move(big)).ok());
  for (uint64_t i = 2; i <= 5; ++i) ASSERT_TRUE(stream->Send(Request(i, i)).ok());
  fake_.stream_hold = false;
  ASSERT_TRUE(stream->Finish().ok());
  ASSERT_EQ(fake_.appends.size(), 2u);
  EXPECT_EQ(fake_.appends[0].entries_size(), 1);
  EXPECT_EQ(fake_.appends[1].entries_size(), 4);
  EXPECT_EQ(fake_.appends[1].entries(0).index(), 2u);
  ASSERT_EQ(acks.size(), 5u);
  for (uint64_t i = 0; i < 5; ++i) EXPECT_EQ(acks[i].sequence, i + 1);
  EXPECT_EQ(acks[0].last_index, 1u);
  for (uint64_t i = 1; i < 5; ++i) EXPECT_EQ(acks[i].last_index, 5u);
  EXPECT_EQ(stream->messages_sent(), 2u);
}

TEST_F(ClientTest, AppendStream_MergedMessageRefused_FailsEachOfItsAppends) {
  fake_.stream_hold = true;
  fake_.stream_fail_at = 2;  // the second message
  std::unique_ptr<WalClient> client = Client();
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream({});
  v1::AppendRequest big = Request(1, 1);
  big.mutable_entries(0)->set_data(std::string(3 << 20, 'x'));
  ASSERT_TRUE(stream->Send(std::move(big)).ok());
  for (uint64_t i = 2; i <= 5; ++i) ASSERT_TRUE(stream->Send(Request(i, i)).ok());
  fake_.stream_hold = false;
  absl::Status status = stream->Flush();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_EQ(status.message(), "appends 2..5 (sent as one message): stream refused");
  EXPECT_EQ(stream->acknowledged(), 1u);
  EXPECT_EQ(stream->Send(Request(6, 6)).status(), status);
  EXPECT_EQ(stream->Finish(), status);
}

TEST_F(ClientTest, AppendStream_CoalescingOff_SendsEveryAppendAlone) {
  fake_.stream_hold = true;
  std::unique_ptr<WalClient> client = Client();
  AppendStreamOptions options;
  options.coalesce_max_bytes = 0;
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream(options);
  v1::AppendRequest big = Request(1, 1);
  big.mutable_entries(0)->set_data(std::string(3 << 20, 'x'));
  ASSERT_TRUE(stream->Send(std::move(big)).ok());
  for (uint64_t i = 2; i <= 5; ++i) ASSERT_TRUE(stream->Send(Request(i, i)).ok());
  fake_.stream_hold = false;
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(fake_.appends.size(), 5u);
  EXPECT_EQ(stream->messages_sent(), 5u);
  EXPECT_EQ(stream->acknowledged(), 5u);
}

TEST_F(ClientTest, AppendStream_WindowOfThree_KeepsThreeUnacknowledged) {
  // The fake acknowledges only once three messages arrived: a window smaller
  // than three would wait forever. One message per append, so three appends
  // are three messages.
  fake_.stream_ack_batch = 3;
  std::unique_ptr<WalClient> client = Client();
  AppendStreamOptions options;
  options.window = 3;
  options.coalesce_max_bytes = 0;
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream(options);
  for (uint64_t i = 1; i <= 9; ++i) ASSERT_TRUE(stream->Send(Request(i, i)).ok());
  ASSERT_TRUE(stream->Flush().ok());
  EXPECT_EQ(stream->acknowledged(), 9u);
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ClientTest, AppendStream_FailedAppend_EndsTheStreamWithItsStatus) {
  fake_.stream_fail_at = 3;
  std::unique_ptr<WalClient> client = Client();
  AppendStreamOptions options;
  options.coalesce_max_bytes = 0;  // message 3 is append 3
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream(options);
  absl::Status status;
  for (uint64_t i = 1; i <= 50 && status.ok(); ++i) status = stream->Send(Request(i, i)).status();
  absl::Status final_status = stream->Finish();
  EXPECT_EQ(final_status.code(), absl::StatusCode::kFailedPrecondition) << final_status;
  EXPECT_EQ(final_status.message(), "stream refused");
  EXPECT_EQ(stream->acknowledged(), 2u);
  EXPECT_TRUE(status.ok() || status == final_status) << status;
}

TEST_F(ClientTest, AppendStream_AcknowledgementOutOfOrder_IsInternal) {
  fake_.stream_wrong_sequence = true;
  std::unique_ptr<WalClient> client = Client();
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream({});
  (void)stream->Send(Request(1, 1));
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(stream->acknowledged(), 0u);
}

TEST_F(ClientTest, AppendStream_SendAfterFinish_IsFailedPreconditionAndNotCounted) {
  std::unique_ptr<WalClient> client = Client();
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream({});
  ASSERT_TRUE(stream->Send(Request(1, 1)).ok());
  ASSERT_TRUE(stream->Finish().ok());
  EXPECT_EQ(stream->Send(Request(2, 2)).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(stream->sent(), 1u);
  EXPECT_TRUE(stream->Finish().ok());  // idempotent
}

TEST_F(ClientTest, AppendStream_DestroyedWithoutFinish_DoesNotHang) {
  fake_.stream_ack_batch = 1000;  // never acknowledges
  std::unique_ptr<WalClient> client = Client();
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream({});
  ASSERT_TRUE(stream->Send(Request(1, 1)).ok());
  stream.reset();  // cancels
}

TEST_F(ClientTest, AppendStream_Cancel_EndsWithCancelled) {
  fake_.stream_ack_batch = 1000;
  std::unique_ptr<WalClient> client = Client();
  std::unique_ptr<AppendStream> stream = client->OpenAppendStream({});
  ASSERT_TRUE(stream->Send(Request(1, 1)).ok());
  stream->Cancel();
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kCancelled);
}

v1::AppendRequest Append(uint64_t first, uint64_t last, uint64_t term = 1) {
  v1::AppendRequest request;
  for (uint64_t i = first; i <= last; ++i) {
    raftpb::Entry* e = request.add_entries();
    e->set_index(i);
    e->set_term(term);
    e->set_data("d" + std::to_string(i));
  }
  return request;
}

TEST(CanCoalesceTest, ContiguousEntries_Merge) {
  EXPECT_TRUE(CanCoalesce(Append(1, 3), Append(4, 4)));
  EXPECT_TRUE(CanCoalesce(Append(1, 3, 2), Append(4, 5, 3)));  // a higher term follows
}

TEST(CanCoalesceTest, AGapAnOverlapOrALowerTerm_DoNotMerge) {
  EXPECT_FALSE(CanCoalesce(Append(1, 3), Append(5, 5)));
  EXPECT_FALSE(CanCoalesce(Append(1, 3), Append(3, 4)));
  EXPECT_FALSE(CanCoalesce(Append(1, 3, 2), Append(4, 4, 1)));
}

TEST(CanCoalesceTest, AHardState_OnlyEndsAMessage) {
  v1::AppendRequest with_state = Append(1, 3);
  with_state.mutable_hard_state()->set_term(1);
  with_state.mutable_hard_state()->set_commit(2);
  EXPECT_FALSE(CanCoalesce(with_state, Append(4, 4)));
  v1::AppendRequest next_with_state = Append(4, 4);
  next_with_state.mutable_hard_state()->set_vote(2);
  EXPECT_TRUE(CanCoalesce(Append(1, 3), next_with_state));
  v1::AppendRequest empty_state = Append(1, 3);
  empty_state.mutable_hard_state();  // present but empty: "unchanged"
  EXPECT_TRUE(CanCoalesce(empty_state, Append(4, 4)));
}

TEST(CanCoalesceTest, NoEntriesOtherEpochOrOtherCrcChoice_DoNotMerge) {
  v1::AppendRequest state_only;
  state_only.mutable_hard_state()->set_term(1);
  EXPECT_FALSE(CanCoalesce(Append(1, 3), state_only));
  EXPECT_FALSE(CanCoalesce(v1::AppendRequest(), Append(1, 1)));
  v1::AppendRequest other_epoch = Append(4, 4);
  other_epoch.set_epoch(7);
  EXPECT_FALSE(CanCoalesce(Append(1, 3), other_epoch));
  v1::AppendRequest with_crc = Append(4, 4);
  FillEntryCrc32c(&with_crc);
  EXPECT_FALSE(CanCoalesce(Append(1, 3), with_crc));
  v1::AppendRequest both = Append(1, 3);
  FillEntryCrc32c(&both);
  EXPECT_TRUE(CanCoalesce(both, with_crc));
}

TEST(CoalesceTest, MovesEntriesCrcsAndHardStateOntoTheMessage) {
  v1::AppendRequest message = Append(1, 2);
  FillEntryCrc32c(&message);
  v1::AppendRequest next = Append(3, 4, 2);
  FillEntryCrc32c(&next);
  next.mutable_hard_state()->set_term(2);
  next.mutable_hard_state()->set_commit(3);
  ASSERT_TRUE(CanCoalesce(message, next));
  Coalesce(&message, &next);
  ASSERT_EQ(message.entries_size(), 4);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(message.entries(i).index(), static_cast<uint64_t>(i + 1));
    EXPECT_EQ(message.entry_crc32c(i), crc32c::Value(message.entries(i).data()));
  }
  EXPECT_EQ(message.hard_state().term(), 2u);
  EXPECT_EQ(message.hard_state().commit(), 3u);
  EXPECT_FALSE(CanCoalesce(message, Append(5, 5, 2)));  // the hard state ended it
}

}  // namespace
}  // namespace walrus
