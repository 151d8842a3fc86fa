#include "client/append_stream.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "core/wal.h"

namespace walrus {

using Clock = std::chrono::steady_clock;

bool CanCoalesce(const v1::AppendRequest& message, const v1::AppendRequest& next) {
  if (!IsEmptyHardState(message.hard_state())) return false;
  if (message.entries_size() == 0 || next.entries_size() == 0) return false;
  const raftpb::Entry& last = *message.entries().rbegin();
  const raftpb::Entry& first = next.entries(0);
  return first.index() == last.index() + 1 && first.term() >= last.term() &&
         next.epoch() == message.epoch() &&
         (next.entry_crc32c_size() > 0) == (message.entry_crc32c_size() > 0);
}

void Coalesce(v1::AppendRequest* message, v1::AppendRequest* next) {
  // Ownership moves; no entry or payload is copied.
  auto* entries = message->mutable_entries();
  const int count = next->entries_size();
  std::vector<raftpb::Entry*> moved(static_cast<size_t>(count));
  next->mutable_entries()->ExtractSubrange(0, count, moved.data());
  entries->Reserve(entries->size() + count);
  for (raftpb::Entry* e : moved) entries->AddAllocated(e);
  message->mutable_entry_crc32c()->Add(next->entry_crc32c().begin(), next->entry_crc32c().end());
  if (next->has_hard_state()) message->mutable_hard_state()->Swap(next->mutable_hard_state());
}

AppendStream::AppendStream(v1::WAL::Stub* stub, const AppendStreamOptions& options)
    : options_(options) {
  if (options_.timeout.count() > 0) {
    context_.set_deadline(std::chrono::system_clock::now() + options_.timeout);
  }
  if (!options_.token.empty()) context_.AddMetadata("authorization", "Bearer " + options_.token);
  rpc_ = stub->AppendStream(&context_);
  reader_ = std::thread(&AppendStream::ReadLoop, this);
  writer_ = std::thread(&AppendStream::WriteLoop, this);
}

AppendStream::~AppendStream() {
  bool finished;
  {
    std::lock_guard<std::mutex> lock(finish_mu_);
    finished = finished_;
  }
  if (!finished) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    writer_cv_.notify_all();
    context_.TryCancel();
  }
  reader_.join();
  writer_.join();
  // gRPC wants Finish() on every stream it started, cancelled or not.
  if (!finished) (void)FinalStatus();
}

bool AppendStream::EndedLocked() const {
  return reads_done_ || write_failed_ || !client_failure_.ok();
}

void AppendStream::WriteLoop() {
  const bool coalesce = options_.coalesce_max_bytes > 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    writer_cv_.wait(lock,
                    [this] { return !queue_.empty() || closing_ || stopping_ || EndedLocked(); });
    if (stopping_ || EndedLocked()) break;
    if (queue_.empty()) {  // closing, everything written
      lock.unlock();
      rpc_->WritesDone();  // false only if the stream is broken: Finish tells why
      lock.lock();
      break;
    }
    Queued head = std::move(queue_.front());
    queue_.pop_front();
    v1::AppendRequest message = std::move(head.request);
    uint64_t count = 1;
    size_t bytes = head.bytes;
    while (coalesce && !queue_.empty() &&
           bytes + queue_.front().bytes <= options_.coalesce_max_bytes &&
           CanCoalesce(message, queue_.front().request)) {
      Coalesce(&message, &queue_.front().request);
      bytes += queue_.front().bytes;
      queue_.pop_front();
      ++count;
    }
    // Registered before the write: the acknowledgement may come before
    // Write() returns.
    in_flight_.push_back(InFlight{head.sequence, count});
    message.set_sequence(++messages_);
    lock.unlock();
    const bool written = rpc_->Write(message);
    lock.lock();
    if (!written) {
      write_failed_ = true;
      break;
    }
  }
  writer_done_ = true;
  lock.unlock();
  cv_.notify_all();
}

void AppendStream::ReadLoop() {
  v1::AppendResponse response;
  std::vector<AppendAck> acks;
  while (rpc_->Read(&response)) {
    acks.clear();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!client_failure_.ok()) continue;  // cancelled; drain to the end
      if (in_flight_.empty() || response.sequence() != messages_acked_ + 1) {
        FailLocked(absl::InternalError(
            absl::StrCat("AppendStream acknowledged message ", response.sequence(), " where ",
                         messages_acked_ + 1, " was due (", messages_, " sent)")));
        context_.TryCancel();
        continue;
      }
      const InFlight& message = in_flight_.front();
      const Clock::time_point now = Clock::now();
      for (uint64_t i = 0; i < message.count; ++i) {
        AppendAck& ack = acks.emplace_back();
        ack.sequence = message.first + i;
        ack.last_index = response.last_index();
        ack.latency = std::chrono::duration_cast<std::chrono::nanoseconds>(
            now - send_times_[static_cast<size_t>(i)]);
      }
    }
    // Before the appends count as acknowledged, so Flush()/Finish() return
    // only after the callbacks of what they waited for.
    if (options_.on_ack) {
      for (const AppendAck& ack : acks) options_.on_ack(ack);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      acked_ += acks.size();
      send_times_.erase(send_times_.begin(),
                        send_times_.begin() + static_cast<std::ptrdiff_t>(acks.size()));
      in_flight_.pop_front();
      ++messages_acked_;
    }
    cv_.notify_all();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    reads_done_ = true;
  }
  cv_.notify_all();
  writer_cv_.notify_all();
}

void AppendStream::FailLocked(absl::Status status) {
  if (client_failure_.ok()) client_failure_ = std::move(status);
}

absl::Status AppendStream::FinalStatus() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return reads_done_ && writer_done_; });
  }
  std::lock_guard<std::mutex> finish_lock(finish_mu_);
  if (finished_) return final_;
  grpc::Status rpc_status = rpc_->Finish();
  finished_ = true;
  std::lock_guard<std::mutex> lock(mu_);
  if (!client_failure_.ok()) {
    final_ = client_failure_;
  } else if (!rpc_status.ok()) {
    final_ = StatusFromGrpc(rpc_status);
    // The daemon failed the oldest unacknowledged message, whole.
    if (!in_flight_.empty() && in_flight_.front().count > 1) {
      const InFlight& failed = in_flight_.front();
      final_ =
          absl::Status(final_.code(),
                       absl::StrCat("appends ", failed.first, "..", failed.first + failed.count - 1,
                                    " (sent as one message): ", final_.message()));
    }
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
  if (request.epoch() == 0) request.set_epoch(options_.epoch);
  const size_t bytes = options_.coalesce_max_bytes > 0 ? request.ByteSizeLong() : 0;
  const uint64_t window = static_cast<uint64_t>(std::max(1, options_.window));
  uint64_t sequence;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (closing_) return absl::FailedPreconditionError("Send after Finish on an AppendStream");
    cv_.wait(lock, [&] { return EndedLocked() || sent_ - acked_ < window; });
    if (EndedLocked()) {
      lock.unlock();
      absl::Status status = FinalStatus();
      if (status.ok()) return absl::FailedPreconditionError("the AppendStream has ended");
      return status;
    }
    sequence = ++sent_;
    send_times_.push_back(Clock::now());
    queue_.push_back(Queued{std::move(request), sequence, bytes});
  }
  writer_cv_.notify_one();
  return sequence;
}

absl::Status AppendStream::Flush() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return EndedLocked() || acked_ == sent_; });
    if (!EndedLocked()) return absl::OkStatus();
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
  writer_cv_.notify_all();
  return FinalStatus();
}

void AppendStream::Cancel() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    FailLocked(absl::CancelledError("AppendStream cancelled by the client"));
  }
  context_.TryCancel();
  cv_.notify_all();
  writer_cv_.notify_all();
}

uint64_t AppendStream::sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sent_;
}

uint64_t AppendStream::acknowledged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return acked_;
}

uint64_t AppendStream::messages_sent() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

}  // namespace walrus
