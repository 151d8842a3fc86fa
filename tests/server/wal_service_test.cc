// The gRPC service in-process, over a WalStore on MemFileSystem and a
// loopback port: what reaches the store, in which order, and what a client
// hears back, including for bytes that are not a walrus.v1 message (sent raw
// through grpc::GenericStub). Not labelled `concurrency`: under TSan,
// Debian's uninstrumented gRPC hides its happens-before edges and every
// reactor handed between gRPC threads is reported as a race.
#include "server/wal_service.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "tests/server/mem_store.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;

// Announces a 16-byte field 1 and ends after 13: no message parses from it.
const std::string kGarbage("\x0a\x10not-a-message", 15);

v1::AppendRequest OneEntry(uint64_t index) {
  v1::AppendRequest request;
  *request.add_entries() = MakeEntries(index, index, 1)[0];
  request.mutable_hard_state()->set_term(1);
  request.set_sequence(index);
  return request;
}

grpc::ByteBuffer ToBuffer(const std::string& bytes) {
  grpc::Slice slice(bytes.data(), bytes.size());
  return grpc::ByteBuffer(&slice, 1);
}

std::string FromBuffer(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (!buffer.Dump(&slices).ok()) return bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

// A bidirectional call of raw bytes, driven one operation at a time.
class RawStream {
 public:
  RawStream(const std::shared_ptr<grpc::Channel>& channel, const std::string& method)
      : stub_(channel) {
    call_ = stub_.PrepareCall(&context_, method, &cq_);
    call_->StartCall(this);
    started_ = Wait();
  }
  ~RawStream() {
    cq_.Shutdown();
    void* tag;
    bool ok;
    while (cq_.Next(&tag, &ok)) {
    }
  }

  bool started() const { return started_; }
  bool Write(const std::string& bytes) {
    grpc::ByteBuffer buffer = ToBuffer(bytes);
    call_->Write(buffer, this);
    return Wait();
  }
  void WritesDone() {
    call_->WritesDone(this);
    (void)Wait();
  }
  bool Read(std::string* bytes) {
    grpc::ByteBuffer buffer;
    call_->Read(&buffer, this);
    if (!Wait()) return false;
    *bytes = FromBuffer(buffer);
    return true;
  }
  grpc::Status Finish() {
    grpc::Status status;
    call_->Finish(&status, this);
    (void)Wait();
    return status;
  }

 private:
  bool Wait() {
    void* tag = nullptr;
    bool ok = false;
    return cq_.Next(&tag, &ok) && ok;
  }

  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
  bool started_ = false;
};

class WalServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<WalStore>> store = testing::OpenMemStore(&fs_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    ServiceOptions service_options;
    // Small, so a pipelining client keeps the stream at its limit.
    service_options.max_stream_inflight = 2;
    service_ = std::make_unique<WalService>(store_.get(), nullptr, service_options);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
    stub_ = v1::WAL::NewStub(channel_);
    grpc::ClientContext context;
    v1::CreateRequest create;
    create.set_metadata("meta");
    v1::CreateResponse created;
    grpc::Status status = stub_->Create(&context, create, &created);
    ASSERT_TRUE(status.ok()) << status.error_message();
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  grpc::Status RawUnary(const std::string& method, const std::string& bytes) {
    grpc::GenericStub generic(channel_);
    grpc::ClientContext context;
    grpc::ByteBuffer request = ToBuffer(bytes);
    grpc::ByteBuffer response;
    std::promise<grpc::Status> done;
    generic.UnaryCall(&context, method, grpc::StubOptions(), &request, &response,
                      [&](grpc::Status status) { done.set_value(std::move(status)); });
    return done.get_future().get();
  }

  // "index/term" of every entry the store holds.
  std::string Log() {
    absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
    if (!read.ok()) return std::string(read.status().message());
    return testing::Describe(read->entries);
  }

  MemFileSystem fs_;
  std::unique_ptr<WalStore> store_;
  std::unique_ptr<WalService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WAL::Stub> stub_;
};

TEST_F(WalServiceTest, AppendStream_PipelinedAtTheInflightLimit_QueuesAppendsInReadOrder) {
  // Each append holds the next index, so one taken out of order is a gap:
  // the stream would fail INVALID_ARGUMENT. The reordering window is between
  // reading a message and queueing it, while an earlier append completes and
  // restarts reading; thousands of appends at the limit cross it often.
  constexpr uint64_t kAppends = 50000;
  grpc::ClientContext context;
  auto stream = stub_->AppendStream(&context);
  std::thread writer([&] {
    for (uint64_t i = 1; i <= kAppends; ++i) {
      if (!stream->Write(OneEntry(i))) break;
    }
    stream->WritesDone();
  });
  v1::AppendResponse response;
  uint64_t acked = 0;
  while (stream->Read(&response)) {
    ++acked;
    ASSERT_EQ(response.sequence(), acked);
    ASSERT_EQ(response.last_index(), acked);
  }
  writer.join();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(acked, kAppends);
  absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->entries.size(), kAppends);
  for (uint64_t i = 0; i < kAppends; ++i) ASSERT_EQ(read->entries[i].index(), i + 1);
}

TEST_F(WalServiceTest, UnaryRequestThatDoesNotParse_IsInvalidArgumentSayingWhy) {
  const std::pair<const char*, const char*> kMethods[] = {
      {"Create", "CreateRequest"},
      {"Append", "AppendRequest"},
      {"SaveSnapshot", "SaveSnapshotRequest"},
      {"ReleaseTo", "ReleaseToRequest"},
      {"Status", "StatusRequest"},
      {"Snapshots", "SnapshotsRequest"},
      {"Entries", "EntriesRequest"},
      {"Term", "TermRequest"},
      {"Fence", "FenceRequest"},
  };
  for (const auto& [method, type] : kMethods) {
    grpc::Status status = RawUnary(absl::StrCat("/walrus.v1.WAL/", method), kGarbage);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << status.error_message();
    EXPECT_NE(
        status.error_message().find(absl::StrCat("request is not a valid walrus.v1.", type, ": ")),
        std::string::npos)
        << method << ": " << status.error_message();
  }
  EXPECT_EQ(store_->Status().last_index, 0u);
  // A valid request sent raw still works: the methods take bytes, not only
  // the generated stub's calls.
  EXPECT_TRUE(RawUnary("/walrus.v1.WAL/Append", OneEntry(1).SerializeAsString()).ok());
  EXPECT_EQ(Log(), "1/1");
}

TEST_F(WalServiceTest, ServerStreamRequestThatDoesNotParse_IsInvalidArgumentSayingWhy) {
  for (const char* method : {"ReadAll", "Backup", "Follow"}) {
    RawStream stream(channel_, absl::StrCat("/walrus.v1.WAL/", method));
    ASSERT_TRUE(stream.started()) << method;
    stream.Write(kGarbage);
    stream.WritesDone();
    std::string message;
    EXPECT_FALSE(stream.Read(&message)) << method;
    grpc::Status status = stream.Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << method << ": " << status.error_message();
    EXPECT_NE(status.error_message().find("request is not a valid walrus.v1."), std::string::npos)
        << method << ": " << status.error_message();
  }
}

TEST_F(WalServiceTest, AppendStream_GarbageBetweenValidAppends_AcksThoseBeforeAndEndsInvalid) {
  RawStream stream(channel_, "/walrus.v1.WAL/AppendStream");
  ASSERT_TRUE(stream.started());
  for (uint64_t i = 1; i <= 10; ++i) ASSERT_TRUE(stream.Write(OneEntry(i).SerializeAsString()));
  stream.Write(kGarbage);
  // Valid, and next in line, but after a message the server could not read.
  for (uint64_t i = 11; i <= 20; ++i) stream.Write(OneEntry(i).SerializeAsString());
  stream.WritesDone();
  uint64_t acked = 0;
  std::string bytes;
  while (stream.Read(&bytes)) {
    v1::AppendResponse response;
    ASSERT_TRUE(response.ParseFromString(bytes));
    EXPECT_EQ(response.sequence(), ++acked);
  }
  grpc::Status status = stream.Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  EXPECT_NE(status.error_message().find("request is not a valid walrus.v1.AppendRequest: "),
            std::string::npos)
      << status.error_message();
  EXPECT_EQ(acked, 10u);
  EXPECT_EQ(Log(), "1/1 2/1 3/1 4/1 5/1 6/1 7/1 8/1 9/1 10/1");
}

}  // namespace
}  // namespace walrus
