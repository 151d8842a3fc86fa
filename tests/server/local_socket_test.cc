// The local append socket in-process: a LocalSocketServer over a WalStore on
// MemFileSystem, a real Unix socket in a temporary directory, and as clients
// both LocalAppender and raw bytes (for what a careless or hostile client
// sends). What is acknowledged is in the log, in order; what is refused says
// why and changes nothing; a client that never reads is held back; the
// budgets come back to zero.
#include "server/local_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/local_appender.h"
#include "gtest/gtest.h"
#include "proto/local_frames.h"
#include "server/wal_store.h"
#include "tests/server/mem_store.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;

v1::AppendRequest OneEntry(uint64_t index, uint64_t term = 1) {
  v1::AppendRequest request;
  *request.add_entries() = MakeEntries(index, index, term)[0];
  return request;
}

std::string Frame(local::FrameType type, const google::protobuf::MessageLite& message) {
  std::string out;
  local::AppendFrame(type, message, &out);
  return out;
}

std::string HelloFrame(uint32_t version = local::kProtocolVersion, const std::string& token = "") {
  v1::LocalHello hello;
  hello.set_version(version);
  hello.set_token(token);
  return Frame(local::kHello, hello);
}

// A client speaking raw bytes on the socket.
class RawClient {
 public:
  explicit RawClient(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  int fd() const { return fd_; }

  bool Write(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  void CloseWrites() { ::shutdown(fd_, SHUT_WR); }

  // The next frame, or false at the end of the connection (or after 10 s).
  bool ReadFrame(uint8_t* type, std::string* body) {
    for (;;) {
      const local::FramePeek peek = local::PeekFrame(in_, 1 << 20);
      if (peek.kind == local::FramePeek::kFrame) {
        *type = peek.type;
        *body = std::string(peek.body);
        in_.erase(0, peek.size);
        return true;
      }
      if (peek.kind != local::FramePeek::kNeedMore) return false;
      pollfd pfd = {fd_, POLLIN, 0};
      if (::poll(&pfd, 1, 10000) != 1) return false;
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      in_.append(buf, static_cast<size_t>(n));
    }
  }

  // Reads frames to the end: the acknowledged sequences, and the error (OK
  // if the connection ended without one).
  absl::Status ReadToEnd(std::vector<uint64_t>* acked, bool* welcomed = nullptr) {
    uint8_t type;
    std::string body;
    absl::Status error;
    while (ReadFrame(&type, &body)) {
      if (type == local::kWelcome && welcomed != nullptr) *welcomed = true;
      if (type == local::kAppended) {
        v1::AppendResponse response;
        EXPECT_TRUE(response.ParseFromString(body));
        acked->push_back(response.sequence());
      }
      if (type == local::kError) {
        v1::LocalError e;
        EXPECT_TRUE(e.ParseFromString(body));
        error = absl::Status(static_cast<absl::StatusCode>(e.code()), e.message());
      }
    }
    return error;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string in_;
};

class LocalSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<WalStore>> store = testing::OpenMemStore(&fs_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    std::promise<absl::StatusOr<bool>> created;
    store_->Create("meta", /*epoch=*/0, [&](absl::StatusOr<bool> r) { created.set_value(r); });
    ASSERT_TRUE(created.get_future().get().ok());
    path_ = dir_.Sub("local.sock");
    options_.path = path_;
  }

  void TearDown() override {
    server_.reset();
    if (store_ != nullptr) store_->Shutdown();
    EXPECT_EQ(budget_.held(), 0u) << "bytes still charged to the daemon's budget";
  }

  void Start() {
    absl::StatusOr<std::unique_ptr<LocalSocketServer>> server =
        LocalSocketServer::Start(store_.get(), &budget_, nullptr, options_);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }

  // A connection that ended frees its slot once its thread is done: retries
  // for up to 2 s.
  absl::StatusOr<std::unique_ptr<LocalAppender>> ConnectOnceThereIsRoom() {
    absl::StatusOr<std::unique_ptr<LocalAppender>> connected;
    for (int i = 0; i < 200; ++i) {
      connected = LocalAppender::Connect(path_);
      if (connected.ok()) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return connected;
  }

  std::string Log() {
    absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
    if (!read.ok()) return std::string(read.status().message());
    return testing::Describe(read->entries);
  }
  uint64_t LastIndex() {
    absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
    return read.ok() && !read->entries.empty() ? read->entries.back().index() : 0;
  }

  testing::TempDir dir_;
  std::string path_;
  MemFileSystem fs_;
  std::unique_ptr<WalStore> store_;
  ByteBudget budget_{512 << 20, nullptr};
  LocalSocketOptions options_;
  std::unique_ptr<LocalSocketServer> server_;
};

TEST_F(LocalSocketTest, PipelinedAppends_AreAcknowledgedInOrder_AndAllInTheLog) {
  Start();
  constexpr uint64_t kAppends = 20000;
  uint64_t acks = 0, last_index = 0;
  LocalAppenderOptions options;
  options.window = 64;
  options.on_ack = [&](const AppendAck& ack) {
    ++acks;
    EXPECT_EQ(ack.sequence, acks);
    EXPECT_EQ(ack.last_index, ack.sequence);
    last_index = ack.last_index;
  };
  absl::StatusOr<std::unique_ptr<LocalAppender>> appender = LocalAppender::Connect(path_, options);
  ASSERT_TRUE(appender.ok()) << appender.status();
  EXPECT_EQ((*appender)->welcome().max_frame_bytes(), options_.max_frame_bytes);
  for (uint64_t i = 1; i <= kAppends; ++i) {
    absl::StatusOr<uint64_t> sequence = (*appender)->Send(OneEntry(i));
    ASSERT_TRUE(sequence.ok()) << sequence.status();
    ASSERT_EQ(*sequence, i);
  }
  ASSERT_TRUE((*appender)->Finish().ok());
  EXPECT_EQ(acks, kAppends);
  EXPECT_EQ(last_index, kAppends);
  absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
  ASSERT_TRUE(read.ok()) << read.status();
  ASSERT_EQ(read->entries.size(), kAppends);
  for (uint64_t i = 0; i < kAppends; ++i) ASSERT_EQ(read->entries[i].index(), i + 1);
}

TEST_F(LocalSocketTest, Append_WaitsForItsOwn_AndReturnsTheLastIndex) {
  Start();
  absl::StatusOr<std::unique_ptr<LocalAppender>> appender = LocalAppender::Connect(path_);
  ASSERT_TRUE(appender.ok()) << appender.status();
  v1::AppendRequest first = OneEntry(1);
  *first.add_entries() = MakeEntries(2, 2, 1)[0];
  absl::StatusOr<uint64_t> last = (*appender)->Append(first);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 2u);
  // A hard state alone: durable too, and the index unchanged.
  v1::AppendRequest state;
  state.mutable_hard_state()->set_term(1);
  state.mutable_hard_state()->set_commit(2);
  last = (*appender)->Append(state);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_EQ(*last, 2u);
  EXPECT_EQ(store_->ReadAll(walpb::Snapshot())->state.commit(), 2u);
  EXPECT_EQ((*appender)->acknowledged(), 2u);
}

TEST_F(LocalSocketTest, SocketFile_HasTheConfiguredMode) {
  options_.mode = 0660;
  Start();
  struct stat st;
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0660u);
  server_.reset();
  EXPECT_NE(::stat(path_.c_str(), &st), 0) << "the socket file outlived the server";
}

TEST_F(LocalSocketTest, Start_ReplacesAStaleSocket_RefusesALiveOneOrAnotherFile) {
  {
    // A socket file nobody listens on, as a killed daemon leaves it.
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path_.data(), path_.size());
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ::close(fd);
  }
  Start();
  absl::StatusOr<std::unique_ptr<LocalSocketServer>> second =
      LocalSocketServer::Start(store_.get(), &budget_, nullptr, options_);
  ASSERT_FALSE(second.ok());
  EXPECT_NE(second.status().message().find("another process is listening"), std::string::npos)
      << second.status();
  EXPECT_TRUE(LocalAppender::Connect(path_).ok()) << "the refused start disturbed the live one";

  LocalSocketOptions file_options = options_;
  file_options.path = dir_.Sub("regular");
  std::ofstream(file_options.path) << "not a socket";
  absl::StatusOr<std::unique_ptr<LocalSocketServer>> on_file =
      LocalSocketServer::Start(store_.get(), &budget_, nullptr, file_options);
  ASSERT_FALSE(on_file.ok());
  EXPECT_NE(on_file.status().message().find("not a socket"), std::string::npos) << on_file.status();
  std::ifstream kept(file_options.path);
  std::string content;
  std::getline(kept, content);
  EXPECT_EQ(content, "not a socket");
}

TEST_F(LocalSocketTest, AppendBeforeHello_IsRefused_AndNothingWritten) {
  Start();
  RawClient raw(path_);
  ASSERT_TRUE(raw.connected());
  ASSERT_TRUE(raw.Write(Frame(local::kAppend, OneEntry(1))));
  std::vector<uint64_t> acked;
  absl::Status end = raw.ReadToEnd(&acked);
  EXPECT_EQ(end.code(), absl::StatusCode::kInvalidArgument) << end;
  EXPECT_NE(end.message().find("first frame must be a hello"), std::string::npos) << end;
  EXPECT_TRUE(acked.empty());
  EXPECT_EQ(Log(), "");
}

TEST_F(LocalSocketTest, UnknownProtocolVersion_IsRefused) {
  Start();
  RawClient raw(path_);
  ASSERT_TRUE(raw.Write(HelloFrame(7)));
  std::vector<uint64_t> acked;
  absl::Status end = raw.ReadToEnd(&acked);
  EXPECT_EQ(end.code(), absl::StatusCode::kFailedPrecondition) << end;
  EXPECT_NE(end.message().find("version 7"), std::string::npos) << end;
}

TEST_F(LocalSocketTest, WithATokenFile_OnlyAnAcceptedTokenGetsIn) {
  const std::string tokens = dir_.Sub("tokens");
  std::ofstream(tokens) << "right-token\n";
  absl::StatusOr<std::shared_ptr<TokenAuthenticator>> auth = TokenAuthenticator::Create(tokens);
  ASSERT_TRUE(auth.ok()) << auth.status();
  options_.authenticator = *auth;
  Start();
  for (const std::string& token : {std::string(""), std::string("wrong-token")}) {
    LocalAppenderOptions options;
    options.token = token;
    absl::StatusOr<std::unique_ptr<LocalAppender>> refused = LocalAppender::Connect(path_, options);
    ASSERT_FALSE(refused.ok()) << "token \"" << token << "\" was accepted";
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated) << refused.status();
  }
  // Appends pipelined behind a refused hello are never read.
  RawClient raw(path_);
  ASSERT_TRUE(raw.Write(HelloFrame(local::kProtocolVersion, "wrong-token") +
                        Frame(local::kAppend, OneEntry(1))));
  std::vector<uint64_t> acked;
  EXPECT_EQ(raw.ReadToEnd(&acked).code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(Log(), "");

  LocalAppenderOptions options;
  options.token = "right-token";
  absl::StatusOr<std::unique_ptr<LocalAppender>> admitted = LocalAppender::Connect(path_, options);
  ASSERT_TRUE(admitted.ok()) << admitted.status();
  EXPECT_TRUE((*admitted)->Append(OneEntry(1)).ok());
  EXPECT_EQ(Log(), "1/1");
}

TEST_F(LocalSocketTest, MalformedAppend_EndsTheReading_AfterAcknowledgingThoseBefore) {
  Start();
  RawClient raw(path_);
  v1::AppendRequest a = OneEntry(1), b = OneEntry(2), c = OneEntry(3);
  a.set_sequence(1);
  b.set_sequence(2);
  c.set_sequence(3);
  // Announces a 16-byte field 1 and ends after 13: no message parses from it.
  const std::string garbage("\x02\x0a\x10not-a-message", 16);
  std::string bad;
  bad.push_back(static_cast<char>(garbage.size()));
  bad.append(3, '\0');
  bad += garbage;
  ASSERT_TRUE(raw.Write(HelloFrame() + Frame(local::kAppend, a) + Frame(local::kAppend, b) + bad +
                        Frame(local::kAppend, c)));
  std::vector<uint64_t> acked;
  bool welcomed = false;
  absl::Status end = raw.ReadToEnd(&acked, &welcomed);
  EXPECT_TRUE(welcomed);
  EXPECT_EQ(end.code(), absl::StatusCode::kInvalidArgument) << end;
  EXPECT_NE(end.message().find("not a valid walrus.v1.AppendRequest"), std::string::npos) << end;
  EXPECT_EQ(acked, (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(Log(), "1/1 2/1");
}

TEST_F(LocalSocketTest, OversizedOrEmptyOrUnknownFrame_EndsTheConnection_WithoutReadingIt) {
  options_.max_frame_bytes = 4096;
  Start();
  struct Case {
    std::string bytes;
    absl::StatusCode code;
    std::string says;
  };
  const std::string huge_prefix("\xff\xff\xff\xff", 4);
  const std::string empty_frame("\0\0\0\0", 4);
  v1::LocalHello hello;
  const std::vector<Case> cases = {
      {huge_prefix + "whatever follows", absl::StatusCode::kResourceExhausted,
       "a frame of 4294967295 bytes; the most this walrusd reads is 4096"},
      {empty_frame, absl::StatusCode::kInvalidArgument, "length 0"},
      {Frame(local::kHello, hello), absl::StatusCode::kInvalidArgument,
       "frame type 1 where an append (type 2) was expected"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.says);
    RawClient raw(path_);
    ASSERT_TRUE(
        raw.Write(HelloFrame() + Frame(local::kAppend, OneEntry(LastIndex() + 1)) + c.bytes));
    std::vector<uint64_t> acked;
    absl::Status end = raw.ReadToEnd(&acked);
    EXPECT_EQ(end.code(), c.code) << end;
    EXPECT_NE(end.message().find(c.says), std::string::npos) << end;
    EXPECT_EQ(acked.size(), 1u) << "the append before it is acknowledged";
  }
  EXPECT_EQ(Log(), "1/1 2/1 3/1");
}

TEST_F(LocalSocketTest, FailedAppend_IsSentAfterTheAcksBefore_AndTheRestIsNotWritten) {
  Start();
  LocalAppenderOptions options;
  options.window = 8;
  absl::StatusOr<std::unique_ptr<LocalAppender>> appender = LocalAppender::Connect(path_, options);
  ASSERT_TRUE(appender.ok()) << appender.status();
  LocalAppender& a = **appender;
  ASSERT_TRUE(a.Send(OneEntry(1)).ok());
  ASSERT_TRUE(a.Send(OneEntry(2)).ok());
  ASSERT_TRUE(a.Send(OneEntry(5)).ok());  // a gap: refused
  // Sent behind the refused one; it would fit after 2, but is not written.
  (void)a.Send(OneEntry(3));
  absl::Status flushed = a.Flush();
  ASSERT_FALSE(flushed.ok());
  EXPECT_NE(flushed.message().find("local socket:"), std::string::npos) << flushed;
  EXPECT_EQ(a.acknowledged(), 2u);
  EXPECT_EQ(Log(), "1/1 2/1");
  EXPECT_FALSE(a.Send(OneEntry(3)).ok()) << "the connection went on after a failure";
  // A new connection carries on from the durable end.
  absl::StatusOr<std::unique_ptr<LocalAppender>> next = LocalAppender::Connect(path_);
  ASSERT_TRUE(next.ok());
  EXPECT_EQ((*next)->Append(OneEntry(3)).value_or(0), 3u);
}

TEST_F(LocalSocketTest, TooManyConnections_TheExtraOneIsRefused) {
  options_.max_connections = 2;
  Start();
  absl::StatusOr<std::unique_ptr<LocalAppender>> one = LocalAppender::Connect(path_);
  absl::StatusOr<std::unique_ptr<LocalAppender>> two = LocalAppender::Connect(path_);
  ASSERT_TRUE(one.ok() && two.ok());
  absl::StatusOr<std::unique_ptr<LocalAppender>> three = LocalAppender::Connect(path_);
  ASSERT_FALSE(three.ok());
  EXPECT_EQ(three.status().code(), absl::StatusCode::kResourceExhausted) << three.status();
  EXPECT_NE(three.status().message().find("--local-max-connections"), std::string::npos);
  // Once one goes, there is room again.
  ASSERT_TRUE((*one)->Finish().ok());
  one->reset();
  absl::StatusOr<std::unique_ptr<LocalAppender>> again = ConnectOnceThereIsRoom();
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST_F(LocalSocketTest, SilentClient_IsClosedAfterTheHelloTimeout) {
  options_.hello_timeout = std::chrono::milliseconds(100);
  options_.max_connections = 1;
  Start();
  RawClient silent(path_);
  std::vector<uint64_t> acked;
  absl::Status end = silent.ReadToEnd(&acked);
  EXPECT_EQ(end.code(), absl::StatusCode::kDeadlineExceeded) << end;
  // Its slot is free again.
  absl::StatusOr<std::unique_ptr<LocalAppender>> next = ConnectOnceThereIsRoom();
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST_F(LocalSocketTest, ClientThatNeverReads_IsHeldBackByItsBudget_ThenCompletes) {
  options_.connection_budget_bytes = 16 << 10;
  Start();
  RawClient raw(path_);
  ASSERT_TRUE(raw.Write(HelloFrame()));
  constexpr uint64_t kAppends = 20000;
  std::atomic<uint64_t> written{0};
  std::thread writer([&] {
    for (uint64_t i = 1; i <= kAppends; ++i) {
      v1::AppendRequest r = OneEntry(i);
      r.set_sequence(i);
      if (!raw.Write(Frame(local::kAppend, r))) return;
      written = i;
    }
    raw.CloseWrites();
  });
  // The daemon stops reading once the unread acknowledgements fill the
  // budget; the socket's buffers then stop the writer, well short of the end.
  uint64_t before = 0;
  for (int i = 0; i < 100; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const uint64_t now = LastIndex();
    if (i > 10 && now == before) break;
    before = now;
  }
  EXPECT_LT(LastIndex(), kAppends) << "the daemon read everything of a client that reads nothing";
  EXPECT_LT(written.load(), kAppends);
  // Reading the acknowledgements lets everything through, in order.
  std::vector<uint64_t> acked;
  absl::Status end = raw.ReadToEnd(&acked);
  writer.join();
  EXPECT_TRUE(end.ok()) << end;
  ASSERT_EQ(acked.size(), kAppends);
  for (uint64_t i = 0; i < kAppends; ++i) ASSERT_EQ(acked[i], i + 1);
  EXPECT_EQ(LastIndex(), kAppends);
}

TEST_F(LocalSocketTest, ClientGoneWithAppendsInFlight_ReleasesEverything) {
  Start();
  int written = 0;
  for (int round = 0; round < 20; ++round) {
    RawClient raw(path_);
    std::string bytes = HelloFrame();
    const uint64_t first = LastIndex() + 1;
    for (uint64_t i = first; i < first + 50; ++i) bytes += Frame(local::kAppend, OneEntry(i));
    // A connection over --local-max-connections (those just closed may not
    // have ended yet) is refused and closed: its write may fail.
    written += raw.Write(bytes) ? 1 : 0;
  }  // closed without reading a byte
  EXPECT_GT(written, 0);
  for (int i = 0; i < 500 && (server_->connections() > 0 || budget_.held() > 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(budget_.held(), 0u);
  // Whatever of it was read is a prefix of the log, without holes.
  absl::StatusOr<ReadAllResult> read = store_->ReadAll(walpb::Snapshot());
  ASSERT_TRUE(read.ok());
  for (size_t i = 0; i < read->entries.size(); ++i) ASSERT_EQ(read->entries[i].index(), i + 1);
}

TEST_F(LocalSocketTest, Shutdown_AcknowledgesWhatWasRead_ThenSaysUnavailable) {
  Start();
  absl::StatusOr<std::unique_ptr<LocalAppender>> appender = LocalAppender::Connect(path_);
  ASSERT_TRUE(appender.ok());
  ASSERT_TRUE((*appender)->Append(OneEntry(1)).ok());
  server_->BeginShutdown();
  EXPECT_TRUE(server_->WaitIdle(std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  absl::Status flushed = (*appender)->Flush();
  EXPECT_TRUE(flushed.ok()) << flushed;
  absl::StatusOr<uint64_t> after = (*appender)->Append(OneEntry(2));
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnavailable) << after.status();
  EXPECT_NE(after.status().message().find("shutting down"), std::string::npos) << after.status();
  EXPECT_EQ(Log(), "1/1");
  // New connections are not served.
  EXPECT_FALSE(LocalAppender::Connect(path_).ok());
}

}  // namespace
}  // namespace walrus
