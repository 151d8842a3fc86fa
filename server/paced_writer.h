// PacedWriter: the write side of a server-streaming RPC whose messages are
// produced on a read worker (ReadAll, Backup). One message is in flight at a
// time: Send() starts its write and waits until gRPC has taken it, so memory
// stays at one message and a slow client slows its own worker, not the
// daemon. A write not taken within the stall timeout cancels the call: a
// client that stopped reading must not hold a worker (and whatever the call
// pins) forever.
//
// Thread-safety: Send() on the worker; OnWriteDone() from the reactor's
// OnWriteDone, on any thread.
#ifndef WALRUS_SERVER_PACED_WRITER_H_
#define WALRUS_SERVER_PACED_WRITER_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>

#include "server/wire_messages.h"

namespace walrus {

class PacedWriter {
 public:
  enum class Outcome { kTaken, kStalled, kGone, kUnencodable };

  PacedWriter(grpc::CallbackServerContext* context, std::chrono::milliseconds stall_timeout)
      : context_(context), stall_timeout_(stall_timeout) {}

  // Encodes `message`, hands it to `start_write` (the reactor's StartWrite)
  // and waits for the write: kTaken; kGone if the client went away; kStalled
  // if it took nothing for the stall timeout (the call is then cancelled);
  // kUnencodable if protobuf cannot encode it.
  template <typename Message>
  Outcome Send(const Message& message, const std::function<void(grpc::ByteBuffer*)>& start_write) {
    if (!SerializeWireMessage(message, &encoded_).ok()) return Outcome::kUnencodable;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = true;
    }
    start_write(&encoded_);  // outside mu_: OnWriteDone may run on any thread
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, stall_timeout_, [this] { return !writing_; })) {
      // Cancelling fails the pending write, so OnWriteDone comes promptly;
      // encoded_ must live until it does.
      context_->TryCancel();
      cv_.wait(lock, [this] { return !writing_; });
      return Outcome::kStalled;
    }
    return write_ok_ ? Outcome::kTaken : Outcome::kGone;
  }

  void OnWriteDone(bool ok) {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    write_ok_ = ok;
    cv_.notify_one();
  }

  double stall_seconds() const { return std::chrono::duration<double>(stall_timeout_).count(); }

 private:
  grpc::CallbackServerContext* const context_;
  const std::chrono::milliseconds stall_timeout_;
  grpc::ByteBuffer encoded_;  // the message being written
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false;  // guarded by mu_
  bool write_ok_ = true;  // guarded by mu_
};

}  // namespace walrus

#endif  // WALRUS_SERVER_PACED_WRITER_H_
