// AppendStream: pipelined appends on one AppendStream RPC.
//
// Send() writes an append and returns without waiting for the disk; up to
// `window` appends may be unacknowledged at once (Send blocks while the window
// is full), so the daemon can make many of them durable with one fsync. The
// daemon acknowledges appends in the order they were sent, each once it is
// durable; the stream numbers them 1, 2, 3... (AppendRequest.sequence) and
// checks every acknowledgement against that order.
//
// Acknowledgements (the API is callback-based): on_ack, if set, runs once per
// append, in sequence order, on the stream's reader thread, before the append
// counts as acknowledged; so when Flush() or Finish() returns, the callbacks
// of everything they waited for have run. on_ack must not block and must not
// call back into the stream. acknowledged() can be polled instead.
//
// Failure: the first failed append ends the RPC with its status; the appends
// sent after it were not written. Send/Flush/Finish then return that final
// status (the daemon's code, or INTERNAL if it broke the protocol or ended
// the stream with appends unacknowledged). Appends 1..acknowledged() are
// durable; resend the rest on a new stream (re-sending entries the log
// already holds is harmless, see client/client.h). The stream never retries
// on its own.
//
// Thread-safety: Send, Flush and Finish must be called from one thread at a
// time (the writer); acknowledged(), sent() and Cancel() from any thread.
// The WalClient that opened the stream must outlive it.
#ifndef WALRUS_CLIENT_APPEND_STREAM_H_
#define WALRUS_CLIENT_APPEND_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "walrus.grpc.pb.h"

namespace walrus {

struct AppendAck {
  uint64_t sequence = 0;                // 1 for the first append sent on the stream
  uint64_t last_index = 0;              // the log's last index after this append
  std::chrono::nanoseconds latency{0};  // from Send to this acknowledgement
};

struct AppendStreamOptions {
  // Appends in flight at most (>= 1).
  int window = 64;
  // Fill entry_crc32c when the caller left it empty (see ClientOptions).
  bool entry_crc32c = true;
  // 0: no deadline; otherwise the whole stream must end within it.
  std::chrono::milliseconds timeout{0};
  std::function<void(const AppendAck&)> on_ack;
  // Writer epoch set on every append whose own epoch is 0 (see Fence).
  uint64_t epoch = 0;
  // Bearer token sent with the RPC; empty sends none.
  std::string token;
};

class AppendStream {
 public:
  // Starts the RPC on `stub` (not owned; must outlive the stream).
  AppendStream(v1::WAL::Stub* stub, const AppendStreamOptions& options);
  // Cancels the RPC if Finish() was not called, and waits for the reader.
  ~AppendStream();
  AppendStream(const AppendStream&) = delete;
  AppendStream& operator=(const AppendStream&) = delete;

  // Sends `request` (its sequence is overwritten) and returns its sequence
  // number, blocking first while `window` appends are unacknowledged. Once
  // the stream has ended, returns its final status instead.
  // FAILED_PRECONDITION after Finish().
  [[nodiscard]] absl::StatusOr<uint64_t> Send(v1::AppendRequest request);

  // Waits until every append sent so far is acknowledged (OK) or the stream
  // ended (its final status).
  [[nodiscard]] absl::Status Flush();

  // Closes the sending side, waits for the remaining acknowledgements and
  // returns the stream's final status. Idempotent.
  [[nodiscard]] absl::Status Finish();

  // Cancels the RPC; pending and later calls end with CANCELLED.
  void Cancel();

  uint64_t sent() const;
  uint64_t acknowledged() const;

 private:
  void ReadLoop();
  // Waits for the reader to stop, then collects the RPC's status (once).
  absl::Status FinalStatus();
  void FailLocked(absl::Status status);

  const AppendStreamOptions options_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> rpc_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t sent_ = 0;                                             // guarded by mu_
  uint64_t acked_ = 0;                                            // guarded by mu_
  std::deque<std::chrono::steady_clock::time_point> send_times_;  // unacked, guarded by mu_
  bool reads_done_ = false;                                       // guarded by mu_
  bool closing_ = false;                                          // Finish() called; guarded by mu_
  absl::Status client_failure_;  // protocol error seen here; guarded by mu_

  // Serialises Write/WritesDone/Finish on the RPC; the reader only Reads.
  std::mutex write_mu_;
  bool writes_done_ = false;  // guarded by write_mu_
  bool finished_ = false;     // guarded by write_mu_
  absl::Status final_;        // guarded by write_mu_

  std::thread reader_;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_APPEND_STREAM_H_
