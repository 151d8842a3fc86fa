#include "server/local_socket.h"

#include <errno.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "proto/local_frames.h"
#include "server/listeners.h"
#include "server/status_codes.h"
#include "server/wire_convert.h"
#include "walrus.pb.h"

namespace walrus {

using Clock = std::chrono::steady_clock;

namespace {

// A hello is a version and a token: anything larger is not one.
constexpr size_t kMaxHelloBytes = 64 << 10;
// What an acknowledgement waiting to be written costs, charged from the read
// so a client that never reads its acknowledgements is bounded too.
constexpr uint64_t kAckBytes = 64;

void Wake(int fd) {
  const uint64_t one = 1;
  // Fails only if the counter would overflow, when a wake is pending anyway.
  (void)!::write(fd, &one, sizeof one);
}

void ClearWake(int fd) {
  uint64_t value;
  (void)!::read(fd, &value, sizeof value);
}

int MillisUntil(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left.count(), 1 << 30));
}

std::string ErrorFrame(const absl::Status& status) {
  v1::LocalError error;
  error.set_code(static_cast<int>(status.code()));
  error.set_message(std::string(status.message()));
  std::string frame;
  local::AppendFrame(local::kError, error, &frame);
  return frame;
}

// Best effort, never blocking: the connection is being closed anyway.
void SendAndForget(int fd, const std::string& bytes) {
  (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

// One client connection, served by its own thread (Serve). The store's
// completions (on the committer, or inline on this thread) add
// acknowledgements to out_ and wake the thread through wake_fd_; the thread
// alone reads the socket and writes to it. Shared with every completion in
// flight, so it outlives the last one.
class LocalConnection final : public ByteBudget::Waiter,
                              public std::enable_shared_from_this<LocalConnection> {
 public:
  LocalConnection(int fd, WalStore* store, ByteBudget* budget, ServerMetrics* metrics,
                  const LocalSocketOptions& options)
      : fd_(fd),
        wake_fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)),
        store_(store),
        budget_(budget),
        metrics_(metrics),
        options_(options) {}

  ~LocalConnection() override {
    ::close(fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  void Serve();

  void Drain() {
    Signal([this] { draining_ = true; });
  }
  void Stop() {
    Signal([this] { stop_ = true; });
  }

  bool idle() const {
    std::lock_guard<std::mutex> lock(mu_);
    return outstanding_ == 0;
  }
  bool ended() const { return ended_.load(); }

  void BudgetAvailable() override {
    Signal([this] { waiting_global_ = false; });
  }

 private:
  struct Taken {
    v1::AppendRequest request;
    uint64_t bytes;
  };

  template <typename Change>
  void Signal(Change change) {
    bool wake = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      change();
      wake = !wake_pending_;
      wake_pending_ = true;
    }
    if (wake) Wake(wake_fd_);
  }

  // Reads the hello and queues the welcome. False (with the refusal sent)
  // if the client does not say a valid hello in time.
  bool Hello();
  // Takes the whole frames at the front of in_ (at most as many appends as
  // the in-flight bound allows) and hands their appends to the store.
  void Ingest();
  void OnAppended(uint64_t sequence, uint64_t bytes, absl::StatusOr<uint64_t> result);

  // Whether to read more from the socket now. Requires mu_.
  bool MayReadLocked();
  // Whether nothing more is taken from the client, not even frames already
  // read. Requires mu_.
  bool TakesNoMoreLocked() const {
    return stop_ || client_gone_ || draining_ || !failure_.ok() || !read_error_.ok();
  }
  // Whether the socket is read no more (the client may also have closed its
  // side; frames it sent before are still taken). Requires mu_.
  bool StoppedReadingLocked() const { return reads_done_ || TakesNoMoreLocked(); }
  // The status the connection ends with (OK: the client closed it cleanly).
  absl::Status FinalStatusLocked() const {
    if (!failure_.ok()) return failure_;
    if (!read_error_.ok()) return read_error_;
    if (draining_ && !reads_done_) {
      return absl::UnavailableError(
          "walrusd is shutting down; every acknowledged append is durable, resend the rest");
    }
    return absl::OkStatus();
  }
  void Refuse(const absl::Status& status) {
    SendAndForget(fd_, ErrorFrame(status));
    std::lock_guard<std::mutex> lock(mu_);
    failure_ = status;
  }
  // Reads what the socket has into in_. False if the client is gone.
  bool ReadSome();
  // Drops the frames not yet written (the client is gone, or the connection
  // closed); returns the bytes their acknowledgements held, to release.
  [[nodiscard]] uint64_t DropUnsentLocked() {
    const uint64_t bytes = (out_acks_ + sending_acks_) * kAckBytes;
    out_.clear();
    sending_.clear();
    sending_off_ = 0;
    out_acks_ = sending_acks_ = 0;
    held_ -= bytes;
    return bytes;
  }

  const int fd_;
  const int wake_fd_;
  WalStore* const store_;
  ByteBudget* const budget_;
  ServerMetrics* const metrics_;
  const LocalSocketOptions options_;
  std::thread::id thread_;
  std::atomic<bool> ended_{false};
  // Shared with the committer: set once an append of this connection failed.
  std::shared_ptr<std::atomic<bool>> chain_ = std::make_shared<std::atomic<bool>>(false);

  // The connection thread's own.
  std::string in_;       // bytes read, not yet taken as frames
  std::string sending_;  // being written to the socket
  size_t sending_off_ = 0;
  uint64_t sending_acks_ = 0;  // acknowledgements in sending_

  mutable std::mutex mu_;
  std::string out_;          // frames to write after sending_; guarded by mu_
  uint64_t out_acks_ = 0;    // acknowledgements in out_; guarded by mu_
  size_t outstanding_ = 0;   // appends handed to the store, not completed
  uint64_t held_ = 0;        // bytes charged to the budgets, not released
  absl::Status failure_;     // the first failed append (or a refusal)
  absl::Status read_error_;  // a frame that ended the reading
  bool reads_done_ = false;  // the client closed its side
  bool client_gone_ = false;
  bool draining_ = false;
  bool stop_ = false;
  bool wake_pending_ = false;
  bool waiting_global_ = false;
  bool final_queued_ = false;
  bool closed_ = false;  // Serve has returned: nothing more is sent
};

bool LocalConnection::ReadSome() {
  const ssize_t n = local::ReceiveOnto(fd_, &in_);
  if (n > 0) return true;
  std::lock_guard<std::mutex> lock(mu_);
  if (n == 0) {
    reads_done_ = true;
    return true;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return true;
  client_gone_ = true;
  return false;
}

bool LocalConnection::Hello() {
  const Clock::time_point deadline = Clock::now() + options_.hello_timeout;
  local::FramePeek peek;
  for (;;) {
    peek = local::PeekFrame(in_, kMaxHelloBytes);
    if (peek.kind != local::FramePeek::kNeedMore) break;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_ || draining_) {
        failure_ = absl::UnavailableError("walrusd is shutting down");
        break;
      }
      if (reads_done_ || client_gone_) return false;
    }
    const int wait_ms = MillisUntil(deadline);
    if (wait_ms == 0) {
      Refuse(absl::DeadlineExceededError(
          absl::StrCat("no hello within ", options_.hello_timeout.count(), " ms of connecting")));
      return false;
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, wait_ms) < 0 && errno != EINTR) return false;
    if (fds[1].revents & POLLIN) {
      ClearWake(wake_fd_);
      std::lock_guard<std::mutex> lock(mu_);
      wake_pending_ = false;
    }
    if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) && !ReadSome()) return false;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!failure_.ok()) {
      SendAndForget(fd_, ErrorFrame(failure_));
      return false;
    }
  }
  if (peek.kind != local::FramePeek::kFrame || peek.type != local::kHello) {
    Refuse(absl::InvalidArgumentError(
        "the first frame must be a hello (type 1, a LocalHello of at most 64 KiB); nothing "
        "was read after it"));
    return false;
  }
  v1::LocalHello hello;
  if (!hello.ParseFromArray(peek.body.data(), static_cast<int>(peek.body.size()))) {
    Refuse(absl::InvalidArgumentError("the hello is not a valid walrus.v1.LocalHello"));
    return false;
  }
  if (hello.version() != local::kProtocolVersion) {
    Refuse(absl::FailedPreconditionError(absl::StrCat(
        "local socket protocol version ", hello.version(),
        " is not spoken here; this walrusd speaks version ", local::kProtocolVersion)));
    return false;
  }
  if (options_.authenticator != nullptr &&
      !options_.authenticator->Accepts(absl::StrCat("Bearer ", hello.token()))) {
    Refuse(absl::UnauthenticatedError("bearer token not accepted"));
    return false;
  }
  in_.erase(0, peek.size);
  v1::LocalWelcome welcome;
  welcome.set_version(local::kProtocolVersion);
  welcome.set_max_frame_bytes(options_.max_frame_bytes);
  welcome.set_server_version(WALRUS_VERSION);
  std::lock_guard<std::mutex> lock(mu_);
  local::AppendFrame(local::kWelcome, welcome, &out_);
  return true;
}

bool LocalConnection::MayReadLocked() {
  if (StoppedReadingLocked() || outstanding_ >= options_.max_inflight) return false;
  if (held_ > 0 && held_ >= options_.connection_budget_bytes) return false;
  if (waiting_global_) return false;
  if (!budget_->WaitOrAdmit(this)) {
    waiting_global_ = true;
    return false;
  }
  return true;
}

void LocalConnection::Ingest() {
  std::vector<Taken> taken;
  size_t at = 0;
  absl::Status bad;
  size_t room;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Re-checked here: the decision to read was taken before the last poll,
    // and a drain (or a failure) since then means nothing more is taken.
    if (TakesNoMoreLocked()) return;
    room = options_.max_inflight - std::min(outstanding_, options_.max_inflight);
  }
  while (taken.size() < room) {
    const local::FramePeek peek =
        local::PeekFrame(absl::string_view(in_).substr(at), options_.max_frame_bytes);
    if (peek.kind == local::FramePeek::kNeedMore) break;
    if (peek.kind == local::FramePeek::kEmptyFrame) {
      bad = absl::InvalidArgumentError(
          "a frame of length 0 (no type byte); nothing after it was read");
      break;
    }
    if (peek.kind == local::FramePeek::kTooLarge) {
      bad = absl::ResourceExhaustedError(absl::StrCat(
          "a frame of ", peek.length, " bytes; the most this walrusd reads is ",
          options_.max_frame_bytes, " (--max-message-bytes); nothing after it was read"));
      break;
    }
    if (peek.type != local::kAppend) {
      bad = absl::InvalidArgumentError(absl::StrCat("frame type ", peek.type,
                                                    " where an append (type 2) was expected; "
                                                    "nothing after it was read"));
      break;
    }
    Taken& t = taken.emplace_back();
    if (!t.request.ParseFromArray(peek.body.data(), static_cast<int>(peek.body.size()))) {
      taken.pop_back();
      bad = absl::InvalidArgumentError(absl::StrCat(
          "append frame of ", peek.length,
          " bytes is not a valid walrus.v1.AppendRequest (truncated, or a field of the wrong "
          "wire type); nothing after it was read"));
      break;
    }
    t.bytes = peek.size;
    at += peek.size;
  }
  in_.erase(0, at);
  uint64_t charged = 0;
  bool nothing_in_flight;
  {
    std::lock_guard<std::mutex> lock(mu_);
    nothing_in_flight = outstanding_ == 0;
    if (!bad.ok()) read_error_ = bad;
    for (const Taken& t : taken) charged += t.bytes + kAckBytes;
    outstanding_ += taken.size();
    held_ += charged;
  }
  if (charged > 0) budget_->Charge(charged);
  // One append alone, nothing behind it and none before it still to be
  // answered: commit it on this thread if the committer is idle. (An earlier
  // one may be durable but not yet answered by the committer; committing
  // this one here would answer it first.) Several: the committer takes them
  // as one batch.
  const WalStore::Commit commit = taken.size() == 1 && in_.empty() && nothing_in_flight
                                      ? WalStore::Commit::kInlineIfIdle
                                      : WalStore::Commit::kQueued;
  for (Taken& t : taken) {
    const uint64_t sequence = t.request.sequence();
    store_->Append(
        TakeAppend(&t.request),
        [self = shared_from_this(), sequence, bytes = t.bytes](absl::StatusOr<uint64_t> result) {
          self->OnAppended(sequence, bytes, std::move(result));
        },
        chain_, commit);
  }
}

void LocalConnection::OnAppended(uint64_t sequence, uint64_t bytes,
                                 absl::StatusOr<uint64_t> result) {
  uint64_t released = bytes;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    --outstanding_;
    if (!failure_.ok() || client_gone_ || closed_) {
      released += kAckBytes;  // nothing more is acknowledged
    } else if (!result.ok()) {
      released += kAckBytes;
      failure_ = result.status();
      chain_->store(true);
    } else {
      v1::AppendResponse response;
      response.set_last_index(*result);
      response.set_sequence(sequence);
      local::AppendFrame(local::kAppended, response, &out_);
      ++out_acks_;
    }
    held_ -= released;
    if (std::this_thread::get_id() != thread_ && !wake_pending_) {
      wake_pending_ = true;
      wake = true;
    }
  }
  budget_->Release(released);
  if (wake) Wake(wake_fd_);
}

void LocalConnection::Serve() {
  thread_ = std::this_thread::get_id();
  const Clock::time_point started = Clock::now();
  absl::Status final_status;
  if (Hello()) {
    for (;;) {
      bool may_read = false, done = false, gone = false;
      uint64_t dropped = 0;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (stop_) break;
        wake_pending_ = false;  // everything signalled so far is seen below
        gone = client_gone_;
        if (gone) dropped = DropUnsentLocked();
        if (StoppedReadingLocked() && outstanding_ == 0 && !final_queued_) {
          // Every append read is acknowledged (or failed) in out_: the end
          // goes after them.
          final_queued_ = true;
          final_status = FinalStatusLocked();
          if (!final_status.ok() && !client_gone_) out_ += ErrorFrame(final_status);
        }
        if (sending_.empty() && !out_.empty()) {
          sending_.swap(out_);
          sending_acks_ = out_acks_;
          out_acks_ = 0;
        }
        done = final_queued_ && sending_.empty() && outstanding_ == 0;
        may_read = !done && MayReadLocked();
      }
      if (dropped > 0) budget_->Release(dropped);
      if (done) break;
      if (!sending_.empty()) {
        const ssize_t n = ::send(fd_, sending_.data() + sending_off_,
                                 sending_.size() - sending_off_, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) sending_off_ += static_cast<size_t>(n);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
          std::lock_guard<std::mutex> lock(mu_);
          client_gone_ = true;
          continue;
        }
        if (sending_off_ == sending_.size()) {
          const uint64_t released = sending_acks_ * kAckBytes;
          sending_.clear();
          sending_off_ = 0;
          sending_acks_ = 0;
          {
            std::lock_guard<std::mutex> lock(mu_);
            held_ -= released;
          }
          budget_->Release(released);
          continue;  // there may be more, and room to read again
        }
      }
      if (may_read &&
          local::PeekFrame(in_, options_.max_frame_bytes).kind != local::FramePeek::kNeedMore) {
        Ingest();  // frames read earlier, held back by the in-flight bound
        continue;
      }
      // Once the client is gone only the completions matter (a closed socket
      // would report POLLHUP on every poll).
      pollfd fds[2] = {{gone ? -1 : fd_, 0, 0}, {wake_fd_, POLLIN, 0}};
      if (may_read) fds[0].events |= POLLIN;
      if (!sending_.empty()) fds[0].events |= POLLOUT;
      if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
        std::lock_guard<std::mutex> lock(mu_);
        client_gone_ = true;
        continue;
      }
      if (fds[1].revents & POLLIN) ClearWake(wake_fd_);
      if (may_read && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (ReadSome()) Ingest();
      } else if (fds[0].revents & (POLLHUP | POLLERR)) {
        // Closed both ways while nothing was to be read: nobody will read
        // the acknowledgements.
        std::lock_guard<std::mutex> lock(mu_);
        client_gone_ = true;
      }
    }
  } else {
    std::lock_guard<std::mutex> lock(mu_);
    final_status = failure_;
  }
  ::shutdown(fd_, SHUT_RDWR);
  uint64_t dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Appends still in flight (stopped) release their bytes when they
    // complete; acknowledgements never written are released here.
    closed_ = true;
    dropped = DropUnsentLocked();
    if (outstanding_ > 0 && final_status.ok()) {
      final_status = absl::UnavailableError("walrusd stopped with appends in flight");
    }
  }
  budget_->Release(dropped);
  budget_->Forget(this);
  if (metrics_ != nullptr) {
    metrics_->ObserveRpc("LocalAppend", StatusCodeName(ToGrpcStatus(final_status).error_code()),
                         std::chrono::duration<double>(Clock::now() - started).count());
  }
  ended_.store(true);
}

absl::StatusOr<std::unique_ptr<LocalSocketServer>> LocalSocketServer::Start(
    WalStore* store, ByteBudget* budget, ServerMetrics* metrics, LocalSocketOptions options) {
  const std::string& path = options.path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] == '@') {
    return absl::InvalidArgumentError(
        "--local-socket needs a file path (abstract sockets have no permissions)");
  }
  if (path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("--local-socket ", path, " is ", path.size(),
                                                   " bytes long; a socket path has at most ",
                                                   sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          absl::StrCat("--local-socket ", path, " exists and is not a socket; not replacing it"));
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live =
        probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    const int probe_errno = errno;
    if (probe >= 0) ::close(probe);
    if (live) {
      return absl::FailedPreconditionError(
          absl::StrCat("--local-socket ", path, ": another process is listening on it"));
    }
    if (probe_errno != ECONNREFUSED) {
      return ErrnoToStatus(probe_errno, absl::StrCat("probing --local-socket ", path));
    }
    // A socket file nobody listens on: left by a process that died.
    if (::unlink(path.c_str()) != 0) {
      return ErrnoToStatus(errno, absl::StrCat("removing the stale socket ", path));
    }
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoToStatus(errno, "socket(AF_UNIX)");
  int bound;
  {
    // Comes into existence with the mode: no window in which it is more open.
    ScopedSocketUmask umask(options.mode);
    bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  if (bound != 0) {
    const int e = errno;
    ::close(fd);
    return ErrnoToStatus(e, absl::StrCat("bind --local-socket ", path));
  }
  absl::Status problem = FinishUnixSocket(path, options.mode);
  if (problem.ok() && ::listen(fd, 64) != 0) {
    problem = ErrnoToStatus(errno, absl::StrCat("listen on --local-socket ", path));
  }
  const int wake_fd = problem.ok() ? ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : -1;
  if (problem.ok() && wake_fd < 0) problem = ErrnoToStatus(errno, "eventfd");
  if (!problem.ok()) {
    ::close(fd);
    ::unlink(path.c_str());
    return problem;
  }
  std::unique_ptr<LocalSocketServer> server(
      new LocalSocketServer(store, budget, metrics, std::move(options), fd, wake_fd));
  server->acceptor_ = std::thread(&LocalSocketServer::AcceptLoop, server.get());
  return server;
}

LocalSocketServer::LocalSocketServer(WalStore* store, ByteBudget* budget, ServerMetrics* metrics,
                                     LocalSocketOptions options, int listen_fd, int wake_fd)
    : store_(store),
      budget_(budget),
      metrics_(metrics),
      options_(std::move(options)),
      listen_fd_(listen_fd),
      wake_fd_(wake_fd) {}

LocalSocketServer::~LocalSocketServer() {
  Stop();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  ::close(wake_fd_);
  ::unlink(options_.path.c_str());
}

void LocalSocketServer::AcceptLoop() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR) {
      spdlog::error("local socket: poll: {}", std::strerror(errno));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (shutting_down_) {
        // New connections are refused from here on (the file stays until
        // the server goes, so nothing else takes the path meanwhile).
        ::close(listen_fd_);
        listen_fd_ = -1;
        return;
      }
      ReapLocked();
    }
    if (!(fds[0].revents & POLLIN)) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        spdlog::warn("local socket: accept: {}; retrying in 100 ms", std::strerror(errno));
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
      continue;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ReapLocked();
    if (served_.size() >= options_.max_connections) {
      SendAndForget(fd, ErrorFrame(absl::ResourceExhaustedError(absl::StrCat(
                            "the local socket serves ", options_.max_connections,
                            " connections at once (--local-max-connections); try again later"))));
      ::close(fd);
      if (metrics_ != nullptr) metrics_->ObserveRpc("LocalAppend", "RESOURCE_EXHAUSTED", 0);
      continue;
    }
    auto connection = std::make_shared<LocalConnection>(fd, store_, budget_, metrics_, options_);
    served_.push_back(Served{connection, std::thread([connection] { connection->Serve(); })});
  }
}

void LocalSocketServer::ReapLocked() {
  for (auto it = served_.begin(); it != served_.end();) {
    if (!it->connection->ended()) {
      ++it;
      continue;
    }
    it->thread.join();
    it = served_.erase(it);
  }
}

void LocalSocketServer::BeginShutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
    for (Served& s : served_) s.connection->Drain();
  }
  Wake(wake_fd_);
}

bool LocalSocketServer::WaitIdle(Clock::time_point deadline) {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool idle = true;
      for (const Served& s : served_) idle = idle && s.connection->idle();
      if (idle) return true;
    }
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

void LocalSocketServer::Stop() {
  std::list<Served> served;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    shutting_down_ = true;
    for (Served& s : served_) s.connection->Stop();
  }
  Wake(wake_fd_);
  if (acceptor_.joinable()) acceptor_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    served.swap(served_);
  }
  for (Served& s : served) s.thread.join();
}

size_t LocalSocketServer::connections() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t open = 0;
  for (const Served& s : served_) open += s.connection->ended() ? 0 : 1;
  return open;
}

}  // namespace walrus
