// LocalAppender: appends through walrusd's local socket (--local-socket PATH),
// for a Raft node on the same host as its walrusd. The same appends as
// WalClient::Append and AppendStream, with the same meaning of an
// acknowledgement (durable), in length-prefixed frames on a Unix socket
// instead of gRPC: a shorter path per append (see server/local_socket.h).
// Everything else (Create, ReadAll, Fence, ...) is WalClient's.
//
// One connection carries appends in order, each numbered (its sequence: 1,
// 2, 3 ...) and acknowledged in that order once durable. Append() sends one
// and waits for it; Send() pipelines up to `window` unacknowledged ones, so
// the daemon makes many durable with one fsync. Acknowledgements are read by
// the calling thread, inside Send (when the window is full, and without
// waiting otherwise), Flush, Finish and Append; on_ack runs there, once per
// append, in order, before it counts as acknowledged.
//
// Failure: the daemon sends the first failure after the acknowledgements of
// the appends before it and closes the connection; the appends after it were
// not written. Every call then returns that status (prefixed "local socket:"),
// or UNAVAILABLE if the connection broke. Appends 1..acknowledged() are
// durable; resend the rest on a new connection (re-sending entries the log
// already holds is harmless, see client/client.h). Nothing is retried here.
//
// Thread-safety: one thread at a time calls Append/Send/Flush/Finish;
// sent() and acknowledged() may be read from any thread.
#ifndef WALRUS_CLIENT_LOCAL_APPENDER_H_
#define WALRUS_CLIENT_LOCAL_APPENDER_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "client/append_stream.h"
#include "walrus.pb.h"

namespace walrus {

struct LocalAppenderOptions {
  // Unacknowledged appends at most (>= 1); Send blocks (reading
  // acknowledgements) while this many are in flight.
  int window = 64;
  // Fill entry_crc32c when the caller left it empty (see ClientOptions).
  bool entry_crc32c = true;
  // Writer epoch set on every append whose own epoch is 0 (see Fence).
  uint64_t epoch = 0;
  // The daemon's --auth-token-file token; empty sends none.
  std::string token;
  // Connecting and the hello, and then each wait for the daemon (an
  // acknowledgement, room to send): longer is UNAVAILABLE and the connection
  // is closed. 0: wait as long as it takes.
  std::chrono::milliseconds timeout{10'000};
  std::function<void(const AppendAck&)> on_ack;
};

class LocalAppender {
 public:
  // Connects to the socket at `path` and says hello. UNAVAILABLE if nobody
  // listens there; the daemon's refusal (UNAUTHENTICATED, RESOURCE_EXHAUSTED
  // for too many connections, ...) as it said it.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LocalAppender>> Connect(
      const std::string& path, const LocalAppenderOptions& options = {});
  ~LocalAppender();
  LocalAppender(const LocalAppender&) = delete;
  LocalAppender& operator=(const LocalAppender&) = delete;

  // Sends one append and waits until it is durable: the log's last index
  // after it. Appends sent before it are acknowledged first.
  [[nodiscard]] absl::StatusOr<uint64_t> Append(v1::AppendRequest request);
  // Sends one append without waiting for the disk: its sequence number.
  [[nodiscard]] absl::StatusOr<uint64_t> Send(v1::AppendRequest request);
  // Waits until every append sent is acknowledged.
  [[nodiscard]] absl::Status Flush();
  // Flush, then closes the connection. Idempotent: the connection's status.
  [[nodiscard]] absl::Status Finish();

  uint64_t sent() const { return sent_.load(); }
  uint64_t acknowledged() const { return acked_.load(); }
  // What the daemon said in its welcome: its version and largest frame.
  const v1::LocalWelcome& welcome() const { return welcome_; }

 private:
  LocalAppender(int fd, const LocalAppenderOptions& options) : fd_(fd), options_(options) {}

  // Reads and handles acknowledgements until `until` holds, the connection
  // ends, or the timeout; with `block` false only what has arrived.
  template <typename Until>
  absl::Status Pump(Until until, bool block);
  // Takes the whole frames at the front of in_.
  void TakeFrames();
  // Writes `bytes`, reading acknowledgements meanwhile if the daemon pushes
  // back (it stops reading until its acknowledgements are read).
  absl::Status WriteAll(const std::string& bytes);
  // poll(2)'s timeout for options_.timeout: -1 waits as long as it takes.
  int PollTimeoutMs() const;
  void Fail(absl::Status status);
  absl::Status Broken() const;

  int fd_;
  const LocalAppenderOptions options_;
  v1::LocalWelcome welcome_;
  std::string in_;
  std::string frame_;                                             // reused for each append's frame
  std::deque<std::chrono::steady_clock::time_point> send_times_;  // unacknowledged
  std::atomic<uint64_t> sent_{0};
  std::atomic<uint64_t> acked_{0};
  uint64_t waited_sequence_ = 0;  // Append's: the one whose last index it wants
  uint64_t waited_last_index_ = 0;
  absl::Status status_;  // the connection's end: not OK once it failed
  bool closed_ = false;  // the daemon ended the connection (EOF or LocalError)
  bool finished_ = false;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_LOCAL_APPENDER_H_
