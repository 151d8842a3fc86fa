// AppendStream: pipelined appends on one AppendStream RPC.
//
// Send() queues an append and returns without waiting for the disk; up to
// `window` appends may be unacknowledged at once (Send blocks while the window
// is full), so the daemon can make many of them durable with one fsync. The
// stream numbers appends 1, 2, 3... in the order sent; the daemon acknowledges
// them in that order, each once it is durable.
//
// Coalescing: a writer thread sends the queue. While one message is on the
// wire, appends queued behind it are sent as one AppendRequest when
// CanCoalesce() allows it (contiguous entries, no hard state before the last,
// one epoch, the same CRC choice, at most `coalesce_max_bytes`), so the daemon
// and the transport pay once for what a caller issued as many appends. The
// rules make a merged message acceptable to the daemon exactly when its appends
// sent one by one would be. Nothing changes for the caller: each append keeps
// its own sequence number and its own acknowledgement; the appends of one
// message are acknowledged together, in order. AppendAck.last_index is the
// log's last index after the message that carried the append.
//
// Acknowledgements (the API is callback-based): on_ack, if set, runs once per
// append, in sequence order, on the stream's reader thread, before the append
// counts as acknowledged; so when Flush() or Finish() returns, the callbacks
// of everything they waited for have run. on_ack must not block and must not
// call back into the stream. acknowledged() can be polled instead.
//
// Failure: the first failed message ends the RPC with its status. The daemon
// writes a message whole or not at all, so every append of a merged message
// shares its fate: none of them was written, and the status says which appends
// the message carried ("appends 5..9 (sent as one message): ..."). The appends
// sent after it were not written either. Send/Flush/Finish then return that
// final status (the daemon's code, or INTERNAL if it broke the protocol or
// ended the stream with appends unacknowledged). Appends 1..acknowledged() are
// durable; resend the rest on a new stream (re-sending entries the log already
// holds is harmless, see client/client.h). The stream never retries on its own.
//
// Thread-safety: Send, Flush and Finish must be called from one thread at a
// time (the caller); acknowledged(), sent(), messages_sent() and Cancel() from
// any thread. The WalClient that opened the stream must outlive it.
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
  // Largest merged message (protobuf bytes); 0 sends every append alone. An
  // append larger than this is sent alone. Keep it below the daemon's
  // --max-message-bytes.
  size_t coalesce_max_bytes = size_t{1} << 20;
};

// Whether `next` may be sent in the same message as `message` (the appends
// merged so far, oldest first): the message carries no hard state (a hard
// state may only come with its last append), both carry entries, `next`'s
// first entry directly follows the message's last with a term no lower, both
// have the same epoch, and both carry entry CRCs or neither does. The byte cap
// is the caller's to check.
bool CanCoalesce(const v1::AppendRequest& message, const v1::AppendRequest& next);

// Moves `next`'s entries, CRCs and hard state onto the end of `message`.
// Requires CanCoalesce(*message, *next).
void Coalesce(v1::AppendRequest* message, v1::AppendRequest* next);

class AppendStream {
 public:
  // Starts the RPC on `stub` (not owned; must outlive the stream).
  AppendStream(v1::WAL::Stub* stub, const AppendStreamOptions& options);
  // Cancels the RPC if Finish() was not called, and waits for the reader.
  ~AppendStream();
  AppendStream(const AppendStream&) = delete;
  AppendStream& operator=(const AppendStream&) = delete;

  // Queues `request` for sending and returns its sequence number, blocking
  // first while `window` appends are unacknowledged. Once the stream has
  // ended, returns its final status instead.
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
  // Messages written to the RPC so far (at most sent()).
  uint64_t messages_sent() const;

 private:
  struct Queued {
    v1::AppendRequest request;
    uint64_t sequence;
    size_t bytes;  // request.ByteSizeLong(), when coalescing
  };
  // A message written and not yet acknowledged: appends first..first+count-1.
  struct InFlight {
    uint64_t first;
    uint64_t count;
  };

  void ReadLoop();
  void WriteLoop();
  // True once the stream cannot send or acknowledge any more. Requires mu_.
  bool EndedLocked() const;
  // Waits for the reader and the writer to stop, then collects the RPC's
  // status (once).
  absl::Status FinalStatus();
  void FailLocked(absl::Status status);

  const AppendStreamOptions options_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<v1::AppendRequest, v1::AppendResponse>> rpc_;

  mutable std::mutex mu_;
  std::condition_variable cv_;         // acknowledgements, the end of the stream
  std::condition_variable writer_cv_;  // work for the writer
  uint64_t sent_ = 0;                  // guarded by mu_
  uint64_t acked_ = 0;                 // guarded by mu_
  std::deque<std::chrono::steady_clock::time_point> send_times_;  // unacked, guarded by mu_
  std::deque<Queued> queue_;                                      // not yet written; guarded by mu_
  std::deque<InFlight> in_flight_;  // written, unacknowledged; guarded by mu_
  uint64_t messages_ = 0;           // written; guarded by mu_
  uint64_t messages_acked_ = 0;     // guarded by mu_
  bool reads_done_ = false;         // guarded by mu_
  bool writer_done_ = false;        // the writer thread has stopped; guarded by mu_
  bool write_failed_ = false;       // the RPC refused a write; guarded by mu_
  bool closing_ = false;            // Finish() called; guarded by mu_
  bool stopping_ = false;           // destructor; guarded by mu_
  absl::Status client_failure_;     // protocol error seen here; guarded by mu_

  // Serialises the RPC's Finish.
  std::mutex finish_mu_;
  bool finished_ = false;  // guarded by finish_mu_
  absl::Status final_;     // guarded by finish_mu_

  std::thread reader_;
  std::thread writer_;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_APPEND_STREAM_H_
