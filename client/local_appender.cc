#include "client/local_appender.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "core/errors.h"
#include "proto/local_frames.h"

namespace walrus {

using Clock = std::chrono::steady_clock;

namespace {

// Acknowledgements and errors are small; a frame this large is not one.
constexpr size_t kMaxFrameFromDaemon = 1 << 20;

}  // namespace

absl::StatusOr<std::unique_ptr<LocalAppender>> LocalAppender::Connect(
    const std::string& path, const LocalAppenderOptions& options) {
  if (options.window < 1) return absl::InvalidArgumentError("LocalAppender window must be >= 1");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return absl::InvalidArgumentError(absl::StrCat("local socket path \"", path,
                                                   "\" is empty or longer than ",
                                                   sizeof addr.sun_path - 1, " bytes"));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  std::unique_ptr<LocalAppender> appender(new LocalAppender(fd, options));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 && errno != EINPROGRESS &&
      errno != EAGAIN) {
    return absl::UnavailableError(
        absl::StrCat("no walrusd on the local socket ", path, ": ", std::strerror(errno)));
  }
  v1::LocalHello hello;
  hello.set_version(local::kProtocolVersion);
  hello.set_token(options.token);
  std::string frame;
  local::AppendFrame(local::kHello, hello, &frame);
  if (absl::Status s = appender->WriteAll(frame); !s.ok()) return s;
  if (absl::Status s = appender->Pump([&] { return appender->welcome_.version() != 0; }, true);
      !s.ok()) {
    return s;
  }
  return appender;
}

LocalAppender::~LocalAppender() { ::close(fd_); }

int LocalAppender::PollTimeoutMs() const {
  if (options_.timeout.count() <= 0) return -1;
  return static_cast<int>(std::min<int64_t>(options_.timeout.count(), 1 << 30));
}

void LocalAppender::Fail(absl::Status status) {
  if (status_.ok()) status_ = std::move(status);
}

absl::Status LocalAppender::Broken() const {
  return absl::UnavailableError(
      absl::StrCat("walrusd closed the local socket with ", sent_.load() - acked_.load(),
                   " appends unacknowledged (appends 1..", acked_.load(), " are durable)"));
}

void LocalAppender::TakeFrames() {
  size_t at = 0;
  while (status_.ok() && !closed_) {
    const local::FramePeek peek =
        local::PeekFrame(absl::string_view(in_).substr(at), kMaxFrameFromDaemon);
    if (peek.kind == local::FramePeek::kNeedMore) break;
    if (peek.kind != local::FramePeek::kFrame) {
      Fail(absl::InternalError(absl::StrCat("walrusd sent a frame of ", peek.length,
                                            " bytes on the local socket; not a frame it sends")));
      break;
    }
    at += peek.size;
    const int body_size = static_cast<int>(peek.body.size());
    if (peek.type == local::kError) {
      v1::LocalError error;
      if (!error.ParseFromArray(peek.body.data(), body_size)) {
        Fail(absl::InternalError("walrusd sent an error frame that does not parse"));
        break;
      }
      const auto code = static_cast<absl::StatusCode>(error.code());
      Fail(absl::Status(code == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : code,
                        absl::StrCat("local socket: ", error.message())));
      closed_ = true;
      break;
    }
    if (welcome_.version() == 0) {
      if (peek.type != local::kWelcome || !welcome_.ParseFromArray(peek.body.data(), body_size) ||
          welcome_.version() == 0) {
        Fail(absl::InternalError("walrusd did not answer the hello with a welcome"));
      }
      continue;
    }
    v1::AppendResponse response;
    if (peek.type != local::kAppended || !response.ParseFromArray(peek.body.data(), body_size)) {
      Fail(absl::InternalError(absl::StrCat("walrusd sent frame type ", peek.type,
                                            " where an acknowledgement was due")));
      break;
    }
    const uint64_t due = acked_.load() + 1;
    if (response.sequence() != due || due > sent_.load()) {
      Fail(absl::InternalError(absl::StrCat("walrusd acknowledged append ", response.sequence(),
                                            " where ", due, " was due (", sent_.load(), " sent)")));
      break;
    }
    AppendAck ack;
    ack.sequence = due;
    ack.last_index = response.last_index();
    ack.latency =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - send_times_.front());
    send_times_.pop_front();
    if (due == waited_sequence_) waited_last_index_ = ack.last_index;
    if (options_.on_ack) options_.on_ack(ack);
    acked_.store(due);
  }
  in_.erase(0, at);
}

template <typename Until>
absl::Status LocalAppender::Pump(Until until, bool block) {
  const int timeout_ms = PollTimeoutMs();
  for (;;) {
    TakeFrames();
    if (until()) return absl::OkStatus();
    if (!status_.ok()) return status_;
    if (closed_) {
      Fail(Broken());
      return status_;
    }
    const ssize_t n = local::ReceiveOnto(fd_, &in_);
    if (n > 0) continue;
    if (n == 0) {
      closed_ = true;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      Fail(
          absl::UnavailableError(absl::StrCat("reading the local socket: ", std::strerror(errno))));
      return status_;
    }
    if (!block) return absl::OkStatus();
    pollfd pfd = {fd_, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready == 0) {
      Fail(absl::UnavailableError(absl::StrCat(
          "no answer from walrusd on the local socket within ", options_.timeout.count(), " ms (",
          sent_.load() - acked_.load(), " appends unacknowledged)")));
      return status_;
    }
  }
}

absl::Status LocalAppender::WriteAll(const std::string& bytes) {
  const int timeout_ms = PollTimeoutMs();
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n =
        ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      off += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      const int e = errno;
      // The daemon may have said why before it closed.
      (void)Pump([] { return false; }, false);
      if (!status_.ok()) return status_;
      Fail(absl::UnavailableError(absl::StrCat("writing to the local socket: ", std::strerror(e))));
      return status_;
    }
    // Full: the daemon holds back until its acknowledgements are read.
    pollfd pfd = {fd_, POLLOUT | POLLIN, 0};
    const int ready = ::poll(&pfd, 1, timeout_ms);
    if (ready == 0) {
      Fail(absl::UnavailableError(absl::StrCat("walrusd took nothing on the local socket for ",
                                               options_.timeout.count(), " ms")));
      return status_;
    }
    if (pfd.revents & POLLIN) {
      if (absl::Status s = Pump([] { return false; }, false); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> LocalAppender::Send(v1::AppendRequest request) {
  if (finished_) return absl::FailedPreconditionError("Send after Finish");
  if (!status_.ok()) return status_;
  if (options_.entry_crc32c && request.entry_crc32c_size() == 0 && request.entries_size() > 0) {
    FillEntryCrc32c(&request);
  }
  if (request.epoch() == 0) request.set_epoch(options_.epoch);
  const uint64_t window = static_cast<uint64_t>(options_.window);
  if (sent_.load() - acked_.load() >= window) {
    if (absl::Status s = Pump([&] { return sent_.load() - acked_.load() < window; }, true);
        !s.ok()) {
      return s;
    }
  }
  const uint64_t sequence = sent_.load() + 1;
  request.set_sequence(sequence);
  frame_.clear();
  if (!local::AppendFrame(local::kAppend, request, &frame_)) {
    return RequestTooLargeError("the append is over 2 GiB encoded");
  }
  if (welcome_.max_frame_bytes() > 0 &&
      frame_.size() - local::kLengthBytes > welcome_.max_frame_bytes()) {
    return RequestTooLargeError(absl::StrCat("the append is ", frame_.size() - local::kLengthBytes,
                                             " bytes encoded; walrusd reads frames of at most ",
                                             welcome_.max_frame_bytes(),
                                             " (its --max-message-bytes); nothing was sent"));
  }
  send_times_.push_back(Clock::now());
  sent_.store(sequence);
  if (absl::Status s = WriteAll(frame_); !s.ok()) return s;
  // Take what has arrived, so on_ack keeps up with a caller that sends
  // slowly.
  if (absl::Status s = Pump([] { return false; }, false); !s.ok()) return s;
  return sequence;
}

absl::StatusOr<uint64_t> LocalAppender::Append(v1::AppendRequest request) {
  waited_sequence_ = sent_.load() + 1;
  absl::StatusOr<uint64_t> sequence = Send(std::move(request));
  if (!sequence.ok()) return sequence.status();
  if (absl::Status s = Pump([&] { return acked_.load() >= *sequence; }, true); !s.ok()) return s;
  return waited_last_index_;
}

absl::Status LocalAppender::Flush() {
  if (!status_.ok()) return status_;
  return Pump([&] { return acked_.load() == sent_.load(); }, true);
}

absl::Status LocalAppender::Finish() {
  if (finished_) return status_;
  finished_ = true;
  absl::Status flushed = Flush();
  if (!flushed.ok()) return flushed;
  ::shutdown(fd_, SHUT_WR);
  // The daemon closes its side once it has read to the end.
  absl::Status ended = Pump([&] { return closed_; }, true);
  if (!ended.ok()) return ended;
  return status_;
}

}  // namespace walrus
