#include "server/follow_stream.h"

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "core/term_runs.h"
#include "server/rpc_scope.h"
#include "server/status_codes.h"
#include "server/wire_messages.h"

namespace walrus {
namespace {

class FollowStream : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                     public WalService::Drainable {
 public:
  FollowStream(WalService* service, WalStore* store, const v1::FollowRequest& request)
      : rpc_(service, "Follow"),
        service_(service),
        store_(store),
        from_(request.from_index()),
        next_(request.from_index()),
        sent_(request.from_index()),
        chunk_bytes_(request.max_chunk_bytes() == 0
                         ? kDefaultChunkBytes
                         : std::min(request.max_chunk_bytes(), kMaxChunkBytes)) {
    service_->Register(this);
    if (from_ == 0)
      StopWith(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "Follow: from_index must be at least 1"));
    Schedule();
  }

  void OnWriteDone(bool ok) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!ok && stop_.ok()) stop_ = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
    }
    Schedule();
  }

  void OnCancel() override {
    StopWith(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }

  // Shutdown: end the stream; the follower resumes from its next index on
  // the next walrusd.
  void Drain() override {
    StopWith(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "walrusd is shutting down: follow again from the next index"));
  }

  void OnDone() override { delete this; }

 private:
  // Records why the stream ends (the first reason wins) and moves on.
  void StopWith(const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_.ok()) stop_ = status;
    }
    Schedule();
  }

  // Starts whatever comes next, unless a read, a write or a wait is under
  // way (it calls Schedule when it ends): the next read, or the end.
  void Schedule() {
    std::unique_lock<std::mutex> lock(mu_);
    if (finished_ || reading_ || writing_) return;
    if (waiting_) {
      if (stop_.ok() || wait_token_ == 0) return;  // woken later, or Wait() calls again
      const uint64_t token = wait_token_;
      lock.unlock();
      // False: the wake ran (CancelCall waits for a running one) and it
      // called Schedule itself.
      if (!store_->CancelCall(token)) return;
      lock.lock();
      if (!waiting_ || wait_token_ != token) return;
      waiting_ = false;
      wait_token_ = 0;
    }
    if (!stop_.ok()) {
      finished_ = true;
      const grpc::Status final_status = stop_;
      rpc_.set_status(final_status);
      lock.unlock();
      service_->Unregister(this);
      Finish(final_status);  // the last use of `this`: OnDone may delete it now
      return;
    }
    reading_ = true;
    lock.unlock();
    service_->read_pool().Submit(
        "Follow", [this] { Step(); },
        [this](absl::Status refused) {
          {
            std::lock_guard<std::mutex> lock(mu_);
            reading_ = false;
          }
          StopWith(ToGrpcStatus(refused));
        });
  }

  // On a read worker: one message, a wait, or the end.
  void Step() {
    bool stopped;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped = !stop_.ok();
    }
    if (stopped) return EndRead();
    const uint64_t generation = store_->publish_generation();
    absl::StatusOr<std::pair<uint64_t, uint64_t>> range = store_->ServedRange();
    if (!range.ok()) return EndRead(ToGrpcStatus(range.status()));
    const auto [first, last] = *range;
    response_.Clear();
    response_.set_first_index(first);
    response_.set_last_index(last);
    if (next_ > from_) {
      // Is the last entry sent still the log's?
      uint64_t term = 0;
      absl::StatusOr<WalStore::Range> t = store_->Term(next_ - 1, &term);
      if (!t.ok() || term != sent_.TermAt(next_ - 1)) {
        if (!t.ok() && t.status().code() != absl::StatusCode::kOutOfRange) {
          return EndRead(Replaced(next_ - 1, t.status()));
        }
        return Truncate(last);
      }
    } else if (next_ > last + 1) {
      return EndRead(grpc::Status(
          grpc::StatusCode::OUT_OF_RANGE,
          absl::StrCat("Follow: from_index ", from_, " is past the last index ", last, " + 1")));
    }
    if (next_ < first) {
      return EndRead(grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("entry ", next_, " is no longer held (the first index is ", first,
                       "): the follower fell behind a release; catch up from a snapshot")));
    }
    if (next_ > last) return Wait(generation);
    absl::StatusOr<WalStore::Range> got = store_->Entries(next_, last + 1, chunk_bytes_);
    if (!got.ok()) return EndRead(ToGrpcStatus(got.status()));
    for (raftpb::Entry& e : got->entries) {
      sent_.Put(e.index(), e.term());
      *response_.add_entries() = std::move(e);
    }
    next_ += static_cast<uint64_t>(response_.entries_size());
    Write();
  }

  // The entries sent from some index on were replaced: find where the log
  // and what was sent agree last (Raft's Log Matching: below that they
  // agree too), and tell the client to drop the rest.
  void Truncate(uint64_t last) {
    uint64_t i = std::min(next_ - 1, last);
    for (; i >= from_; --i) {
      uint64_t term = 0;
      absl::StatusOr<WalStore::Range> t = store_->Term(i, &term);
      if (t.ok() && term == sent_.TermAt(i)) break;
      if (!t.ok() && t.status().code() != absl::StatusCode::kOutOfRange) {
        return EndRead(Replaced(i, t.status()));
      }
      if (i == from_) {
        i = from_ - 1;
        break;
      }
    }
    const uint64_t k = i + 1;
    sent_.TruncateAfter(k - 1);
    next_ = k;
    response_.set_truncated_from(k);
    Write();
  }

  static grpc::Status Replaced(uint64_t index, const absl::Status& why) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("entry ", index, " that was sent is no longer in the log (", why.message(),
                     "): a snapshot marker replaced it; follow again from after the newest "
                     "marker, with its snapshot"));
  }

  void Write() {
    grpc::Status encoded = SerializeWireMessage(response_, &encoded_);
    if (!encoded.ok()) return EndRead(encoded);
    {
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = false;
      writing_ = true;
    }
    StartWrite(&encoded_);
  }

  // Caught up: sleep until the store publishes a batch after `generation`.
  void Wait(uint64_t generation) {
    uint64_t seq;
    {
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = false;
      waiting_ = true;
      wait_token_ = 0;
      seq = ++wait_seq_;
    }
    const uint64_t token = store_->CallAfter(generation, [this, seq] { Woken(seq); });
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (waiting_ && wait_seq_ == seq) wait_token_ = token;
    }
    Schedule();  // a stop that came meanwhile can take the wait back now
  }

  // From the store (its waiter lock held: never CancelCall from here).
  void Woken(uint64_t seq) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!waiting_ || wait_seq_ != seq) return;
      waiting_ = false;
      wait_token_ = 0;
    }
    Schedule();
  }

  void EndRead(const grpc::Status& status = grpc::Status::OK) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      reading_ = false;
      if (!status.ok() && stop_.ok()) stop_ = status;
    }
    Schedule();
  }

  RpcScope rpc_;  // first: the last to go
  WalService* const service_;
  WalStore* const store_;
  const uint64_t from_;
  // Read-worker state: one Step at a time (reading_).
  uint64_t next_;  // the next index to send
  TermRuns sent_;  // the terms of what was sent
  const uint32_t chunk_bytes_;
  v1::FollowResponse response_;
  grpc::ByteBuffer encoded_;  // the message gRPC is writing

  std::mutex mu_;
  bool reading_ = false;  // a Step is queued or running
  bool writing_ = false;  // gRPC has a message
  bool waiting_ = false;  // registered with the store
  uint64_t wait_seq_ = 0;
  uint64_t wait_token_ = 0;  // 0 until known (or when it ran at once)
  bool finished_ = false;
  grpc::Status stop_;  // why the stream ends; OK while it goes on
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewFollowStream(WalService* service, WalStore* store,
                                                            const v1::FollowRequest& request) {
  return new FollowStream(service, store, request);
}

}  // namespace walrus
