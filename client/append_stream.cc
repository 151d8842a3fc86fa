#include "client/append_stream.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/client.h"

namespace walrus {

using Clock = std::chrono::steady_clock;

AppendStream::AppendStream(v1::WAL::Stub* stub, const AppendStreamOptions& options)
    : options_(options) {
  if (options_.timeout.count() > 0) {
    context_.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  }
  if (!options_.token.empty()) context_.AddMetadata("authorization", "Bearer " + options_.token);
  rpc_ = stub->AppendStream(&context_);
  reader_ = std::thread(&AppendStream::ReadLoop, this);
}

AppendStream::~AppendStream() {
  bool finished;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    finished = finished_;
  }
  if (!finished) context_.TryCancel();
  reader_.join();
  // gRPC wants Finish() on every stream it started, cancelled or not.
  if (!finished) (void)FinalStatus();
}

void AppendStream::ReadLoop() {
  v1::AppendResponse response;
  while (rpc_->Read(&response)) {
    AppendAck ack;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!client_failure_.ok()) continue;  // cancelled; drain to the end
      if (acked_ >= sent_ || response.sequence() != acked_ + 1) {
        FailLocked(absl::InternalError(absl::StrCat("AppendStream acknowledged sequence ",
                                                    response.sequence(), " where ", acked_ + 1,
                                                    " was due (", sent_, " sent)")));
        context_.TryCancel();
        continue;
      }
      ack.sequence = acked_ + 1;
      ack.last_index = response.last_index();
      ack.latency =
          std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - send_times_.front());
    }
    // Before the append counts as acknowledged, so Flush()/Finish() return
    // only after the callbacks of what they waited for.
    if (options_.on_ack) options_.on_ack(ack);
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++acked_;
      send_times_.pop_front();
    }
    cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    reads_done_ = true;
  }
  cv_.notify_all();
}

void AppendStream::FailLocked(absl::Status status) {
  if (client_failure_.ok()) client_failure_ = std::move(status);
}

absl::Status AppendStream::FinalStatus() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return reads_done_; });
  }
  std::lock_guard<std::mutex> write_lock(write_mu_);
  if (finished_) return final_;
  grpc::Status rpc_status = rpc_->Finish();
  finished_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (!client_failure_.ok()) {
    final_ = client_failure_;
  } else if (!rpc_status.ok()) {
    final_ = StatusFromGrpc(rpc_status);
  } else if (acked_ < sent_) {
    final_ = absl::InternalError(absl::StrCat("AppendStream ended OK with ", sent_ - acked_, " of ",
                                              sent_, " appends unacknowledged"));
  } else {
    final_ = absl::OkStatus();
  }
  return final_;
}

absl::StatusOr<uint64_t> AppendStream::Send(v1::AppendRequest request) {
  // The CRC is the caller's cost, not the daemon's: computed before the
  // clock starts.
  if (options_.entry_crc32c && request.entry_crc32c_size() == 0 && request.entries_size() > 0) {
    FillEntryCrc32c(&request);
  }
  const uint64_t window = static_cast<uint64_t>(std::max(1, options_.window));
  uint64_t sequence;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closing_) return absl::FailedPreconditionError("Send after Finish on an AppendStream");
    cv_.wait(lock, [&] { return reads_done_ || !client_failure_.ok() || sent_ - acked_ < window; });
    if (reads_done_ || !client_failure_.ok()) {
      lock.unlock();
      absl::Status status = FinalStatus();
      if (status.ok()) return absl::FailedPreconditionError("the AppendStream has ended");
      return status;
    }
    sequence = ++sent_;
    send_times_.push_back(Clock::now());
  }
  request.set_sequence(sequence);
  if (request.epoch() == 0) request.set_epoch(options_.epoch);
  bool written;
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    written = rpc_->Write(request);
  }
  if (!written) {
    absl::Status status = FinalStatus();
    if (status.ok()) return absl::InternalError("AppendStream write failed but the RPC ended OK");
    return status;
  }
  return sequence;
}

absl::Status AppendStream::Flush() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return reads_done_ || !client_failure_.ok() || acked_ == sent_; });
    if (!reads_done_ && client_failure_.ok()) return absl::OkStatus();
  }
  absl::Status status = FinalStatus();
  if (status.ok()) return absl::FailedPreconditionError("the AppendStream has ended");
  return status;
}

absl::Status AppendStream::Finish() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (finished_) return final_;
    if (!writes_done_) {
      writes_done_ = true;
      rpc_->WritesDone();  // false only if the stream is broken: Finish tells why
    }
  }
  return FinalStatus();
}

void AppendStream::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    FailLocked(absl::CancelledError("AppendStream cancelled by the client"));
  }
  context_.TryCancel();
  cv_.notify_all();
}

uint64_t AppendStream::sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

uint64_t AppendStream::acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

}  // namespace walrus
