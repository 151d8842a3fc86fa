#include "server/wal_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/backup_stream.h"
#include "server/follow_stream.h"
#include "server/paced_writer.h"
#include "server/rpc_scope.h"
#include "server/status_codes.h"
#include "server/wire_convert.h"
#include "server/wire_messages.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

// AppendStream: reads appends as they come and hands each to the store at
// once (so they can share an fsync); acknowledges them in order. The store
// completes one stream's appends in submission order, so acknowledgements are
// in order by construction. The first failure stops reading, fails whatever
// the stream still has queued (they are not written: `failed` is checked by
// the committer before encoding), sends the acknowledgements of the appends
// before it that are already durable (so the client resends only what was
// not written), and ends the stream with that status. A message that is not
// an AppendRequest ends the reading the same way, but the appends before it
// are committed and acknowledged as usual: they were valid.
//
// Memory: the stream holds each request from the read until it is durable,
// and its acknowledgement until gRPC has written it. Before each read it
// checks its own byte budget and the daemon's (ByteBudget); over either, it
// stops reading until bytes are released (an append becomes durable, an
// acknowledgement is written), so a client that sends faster than the disk
// or never reads its acknowledgements is held back by flow control instead
// of growing the daemon. A request read is always taken, so one larger than
// the budget still goes through.
class AppendStreamReactor : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                            public WalService::Drainable,
                            public ByteBudget::Waiter {
 public:
  // What an acknowledgement waiting to be written costs: the encoded message
  // (~20 bytes), its slice and its place in the queue. Charged from the read
  // so a stream of tiny appends whose client never reads is bounded too.
  static constexpr uint64_t kAckBytes = 256;

  AppendStreamReactor(WalService* service, WalStore* store, ByteBudget* budget,
                      ServerMetrics* metrics, const ServiceOptions& options)
      : rpc_(service, "AppendStream"),
        service_(service),
        store_(store),
        budget_(budget),
        metrics_(metrics),
        max_inflight_(options.max_stream_inflight),
        stream_budget_(options.stream_budget_bytes) {
    StartRead(&incoming_);
    service_->Register(this);
  }

  void Drain() override {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    MaybeFinishLocked();
  }

  void BudgetAvailable() override {
    std::unique_lock<std::mutex> lock(mu_);
    waiting_global_ = false;
    const bool read_more = ResumeLocked();
    lock.unlock();
    if (read_more) StartRead(&incoming_);
  }

  void OnReadDone(bool ok) override {
    const uint64_t raw_bytes = incoming_.Length();
    // Parsed outside mu_ (a request can be megabytes): only this reaction
    // touches incoming_ until the next StartRead.
    v1::AppendRequest request;
    grpc::Status parsed = ok ? ParseWireMessage(incoming_, &request) : grpc::Status::OK;
    incoming_.Clear();
    std::unique_lock<std::mutex> lock(mu_);
    if (!ok) {
      reads_done_ = true;
      MaybeFinishLocked();
      return;
    }
    // Failing or draining: take nothing more (what was read but not taken is
    // not acknowledged, so the client resends it).
    if (!status_.ok() || draining_) {
      reading_ = false;
      MaybeFinishLocked();
      return;
    }
    if (!parsed.ok()) {
      // Nothing after it is read: the client cannot know which of its later
      // messages the server would have taken for what.
      reads_done_ = true;
      reading_ = false;
      read_error_ = parsed;
      MaybeFinishLocked();
      return;
    }
    ++outstanding_;
    held_ += raw_bytes + kAckBytes;
    budget_->Charge(raw_bytes + kAckBytes);
    // reading_ stays set until this append is queued: ResumeLocked restarts
    // reading only when it is clear, so the next message cannot be read (and
    // queued ahead of this one) before this one is in the store's queue. The
    // store is called without mu_: it may complete the append inline.
    lock.unlock();
    store_->Append(
        TakeAppend(&request),
        [this, sequence = request.sequence(), raw_bytes](absl::StatusOr<uint64_t> result) {
          OnAppended(sequence, raw_bytes, std::move(result));
        },
        chain_);
    lock.lock();
    reading_ = false;
    const bool read_more = ResumeLocked();
    if (!read_more) MaybeFinishLocked();
    lock.unlock();
    if (read_more) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    uint64_t released = 0;
    bool read_more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      responses_.pop_front();
      released += kAckBytes;
      if (!ok) {
        FailLocked(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
        client_gone_ = true;
      }
      released += WriteNextLocked();
      held_ -= released;
      read_more = ResumeLocked();
      MaybeFinishLocked();
    }
    // Outside mu_: releasing may wake other streams, which take theirs.
    budget_->Release(released);
    if (read_more) StartRead(&incoming_);
  }

  void OnCancel() override {
    uint64_t released = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      FailLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
      client_gone_ = true;
      released = WriteNextLocked();
      held_ -= released;
      MaybeFinishLocked();
    }
    budget_->Release(released);
  }

  void OnDone() override {
    budget_->Forget(this);
    SetWaitingForBudget(false);
    budget_->Release(held_);  // nothing is left in flight; only unsent acks
    service_->Unregister(this);
    delete this;
  }

 private:
  void OnAppended(uint64_t sequence, uint64_t raw_bytes, absl::StatusOr<uint64_t> result) {
    ByteBudget* const budget = budget_;  // `this` may be gone once mu_ is released
    uint64_t released = raw_bytes;
    bool read_more = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --outstanding_;
      if (!status_.ok()) {
        // An earlier append failed: this one is not acknowledged.
        released += kAckBytes;
      } else if (!result.ok()) {
        released += kAckBytes;
        FailLocked(ToGrpcStatus(result.status()));
      } else {
        v1::AppendResponse response;
        response.set_last_index(*result);
        response.set_sequence(sequence);
        if (grpc::Status s = SerializeWireMessage(response, &responses_.emplace_back()); !s.ok()) {
          responses_.pop_back();
          released += kAckBytes;
          FailLocked(s);
        }
      }
      released += WriteNextLocked();
      held_ -= released;
      read_more = ResumeLocked();
      MaybeFinishLocked();
    }
    if (read_more) StartRead(&incoming_);
    // Last, through the copied pointer: the stream may be gone by now.
    budget->Release(released);
  }

  // Decides whether to read the next request now; if so marks reading_ and
  // the caller calls StartRead after releasing mu_. If only the budgets stand
  // in the way, the stream counts as waiting for them: the stream's own is
  // re-checked whenever it releases bytes, the daemon's calls BudgetAvailable.
  bool ResumeLocked() {
    if (reading_ || reads_done_ || finished_ || !status_.ok() || draining_ ||
        outstanding_ >= max_inflight_) {
      SetWaitingForBudget(false);
      return false;
    }
    if (held_ > 0 && held_ >= stream_budget_) {
      SetWaitingForBudget(true);
      return false;
    }
    if (!waiting_global_ && !budget_->WaitOrAdmit(this)) {
      waiting_global_ = true;
    }
    if (waiting_global_) {
      SetWaitingForBudget(true);
      return false;
    }
    SetWaitingForBudget(false);
    reading_ = true;
    return true;
  }

  void SetWaitingForBudget(bool waiting) {
    if (waiting == waiting_for_budget_) return;
    waiting_for_budget_ = waiting;
    if (metrics_ != nullptr) metrics_->AddStreamsWaitingForBudget(waiting ? 1 : -1);
  }

  void FailLocked(const grpc::Status& status) {
    if (!status_.ok()) return;
    status_ = status;
    // Appends after a failed one must not be written: the client sees the
    // stream end at the failure and resends from there.
    chain_->store(true);
  }

  // Starts writing the next acknowledgement. Returns the bytes of the ones
  // dropped because the client is gone.
  [[nodiscard]] uint64_t WriteNextLocked() {
    uint64_t dropped = 0;
    if (client_gone_) {
      // The one being written is released by its OnWriteDone.
      const size_t keep = writing_ ? 1 : 0;
      while (responses_.size() > keep) {
        responses_.pop_back();
        dropped += kAckBytes;
      }
    }
    if (writing_ || responses_.empty()) return dropped;
    writing_ = true;
    StartWrite(&responses_.front());
    return dropped;
  }

  void MaybeFinishLocked() {
    if (finished_ || outstanding_ > 0 || writing_) return;
    // Acknowledgements of durable appends go out first, even after a failure.
    if (!responses_.empty() && !client_gone_) return;
    if (status_.ok() && !reads_done_ && !draining_) return;
    finished_ = true;
    grpc::Status final_status = status_.ok() ? read_error_ : status_;
    if (status_.ok() && draining_ && !reads_done_) {
      final_status = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                  "walrusd is shutting down; every acknowledged append is "
                                  "durable, resend the rest");
    }
    rpc_.set_status(final_status);
    Finish(final_status);
  }

  RpcScope rpc_;  // first: the last to go
  WalService* service_;
  WalStore* store_;
  ByteBudget* const budget_;
  ServerMetrics* const metrics_;
  const size_t max_inflight_;
  const uint64_t stream_budget_;
  // Shared with the committer: set once an append of this stream failed.
  std::shared_ptr<std::atomic<bool>> chain_ = std::make_shared<std::atomic<bool>>(false);

  std::mutex mu_;
  grpc::ByteBuffer incoming_;
  std::deque<grpc::ByteBuffer> responses_;  // encoded AppendResponses
  size_t outstanding_ = 0;
  uint64_t held_ = 0;  // bytes charged to the budgets and not yet released
  bool reading_ = true;
  bool waiting_global_ = false;      // registered with the daemon's budget
  bool waiting_for_budget_ = false;  // counted in the metric
  bool reads_done_ = false;
  bool draining_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool client_gone_ = false;  // cancelled, or a write failed: nothing more is sent
  grpc::Status status_;
  grpc::Status read_error_;  // a message that did not parse ended the reading
};

// A server stream refused before it started: its request did not parse.
class RefusedStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  RefusedStream(const WalService* service, const char* method, const grpc::Status& status)
      : rpc_(service, method) {
    rpc_.set_status(status);
    Finish(status);
  }
  void OnDone() override { delete this; }

 private:
  RpcScope rpc_;
};

// ReadAll: a read worker streams the durable log (WalStore::StreamAll: the
// segments are read twice, window by window, never the whole log at once)
// and hands the client one message of at most max_chunk_bytes at a time
// (server/paced_writer.h): memory per call is one message and one read
// window, and a client that takes nothing for the stall timeout is cancelled
// so it does not hold the worker and the read's pin.
class ReadAllReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  ReadAllReactor(WalService* service, WalStore* store, const v1::ReadAllRequest& request,
                 grpc::CallbackServerContext* context)
      : rpc_(service, "ReadAll"),
        service_(service),
        writer_(context, service->options().backup_stall_timeout) {
    chunk_bytes_ = request.max_chunk_bytes() == 0
                       ? kDefaultChunkBytes
                       : std::min(request.max_chunk_bytes(), kMaxChunkBytes);
    const bool committed = request.from_committed_snapshot();
    walpb::Snapshot snapshot;
    snapshot.set_index(request.snapshot_index());
    snapshot.set_term(request.snapshot_term());
    service_->read_pool().Submit(
        "ReadAll",
        [this, store, snapshot, committed] {
          if (!committed) return Run(store, snapshot);
          absl::StatusOr<walpb::Snapshot> picked = store->CommittedSnapshot();
          if (!picked.ok()) return FinishWith(ToGrpcStatus(picked.status()));
          Run(store, *picked);
        },
        [this](absl::Status refused) { FinishWith(ToGrpcStatus(refused)); });
  }

  void OnWriteDone(bool ok) override { writer_.OnWriteDone(ok); }

  void OnDone() override { delete this; }

 private:
  void Run(WalStore* store, const walpb::Snapshot& snapshot) {
    // Why the stream stopped, when it was the client's doing.
    grpc::Status stopped;
    auto send = [&]() -> absl::Status {
      PacedWriter::Outcome outcome =
          writer_.Send(response_, [this](grpc::ByteBuffer* b) { StartWrite(b); });
      response_.Clear();
      bytes_ = 0;
      switch (outcome) {
        case PacedWriter::Outcome::kTaken:
          return absl::OkStatus();
        case PacedWriter::Outcome::kStalled:
          stopped =
              grpc::Status(grpc::StatusCode::CANCELLED,
                           absl::StrCat("ReadAll cancelled: the client took no data for ",
                                        writer_.stall_seconds(), " s (--backup-stall-timeout)"));
          break;
        case PacedWriter::Outcome::kGone:
          stopped = grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
          break;
        case PacedWriter::Outcome::kUnencodable:
          stopped = grpc::Status(grpc::StatusCode::INTERNAL,
                                 "ReadAll: a message could not be "
                                 "encoded");
          break;
      }
      return absl::CancelledError(stopped.error_message());
    };
    absl::Status status = store->StreamAll(
        snapshot,
        [&](ReadAllResult&& header) {
          response_.set_has_header(true);
          response_.set_metadata(header.metadata);
          *response_.mutable_hard_state() = header.state;
          response_.mutable_snapshot()->set_index(snapshot.index());
          response_.mutable_snapshot()->set_term(snapshot.term());
          bytes_ = header.metadata.size();
          return absl::OkStatus();
        },
        [&](raftpb::Entry&& entry) {
          // At least one entry per message, so a huge entry still goes through.
          const size_t size = entry.ByteSizeLong() + 8;
          if (response_.entries_size() > 0 && bytes_ + size > chunk_bytes_) {
            if (absl::Status s = send(); !s.ok()) return s;
          }
          *response_.add_entries() = std::move(entry);
          bytes_ += size;
          return absl::OkStatus();
        });
    // The last message (or the header alone, for an empty log).
    if (status.ok() && (response_.has_header() || response_.entries_size() > 0)) status = send();
    FinishWith(!stopped.ok() ? stopped : ToGrpcStatus(status));
  }

  void FinishWith(const grpc::Status& status) {
    rpc_.set_status(status);
    Finish(status);  // the last use of `this`: OnDone may delete it now
  }

  RpcScope rpc_;  // first: the last to go
  WalService* service_;
  PacedWriter writer_;
  uint32_t chunk_bytes_;
  v1::ReadAllResponse response_;  // the message being filled
  size_t bytes_ = 0;              // of response_, roughly
};

// One unary call: its parsed request, the response to fill, and how it ends.
// Owned by itself from Unary() until Finish().
template <typename Request, typename Response>
class UnaryCall {
 public:
  UnaryCall(const WalService* service, const char* method, grpc::CallbackServerContext* context,
            grpc::ByteBuffer* raw_response)
      : rpc_(service, method), reactor_(context->DefaultReactor()), raw_response_(raw_response) {}

  Request& request() { return request_; }
  Response& response() { return response_; }
  grpc::ServerUnaryReactor* reactor() const { return reactor_; }

  // Sends the response (if `status` is OK) or the error; deletes this.
  void Finish(grpc::Status status) {
    if (status.ok()) status = SerializeWireMessage(response_, raw_response_);
    rpc_.set_status(status);
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(status);
  }

 private:
  RpcScope rpc_;  // first: the last to go
  grpc::ServerUnaryReactor* reactor_;
  grpc::ByteBuffer* raw_response_;
  Request request_;
  Response response_;
};

}  // namespace

template <typename Request, typename Response, typename Handler>
grpc::ServerUnaryReactor* WalService::Unary(const char* method,
                                            grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response, Handler handle) {
  auto* call = new UnaryCall<Request, Response>(this, method, context, response);
  grpc::ServerUnaryReactor* reactor = call->reactor();
  if (grpc::Status parsed = ParseWireMessage(*request, &call->request()); !parsed.ok()) {
    call->Finish(parsed);
  } else {
    handle(call);
  }
  return reactor;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WalService::Backup(grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request) {
  v1::BackupRequest parsed;
  if (grpc::Status s = ParseWireMessage(*request, &parsed); !s.ok()) {
    return new RefusedStream(this, "Backup", s);
  }
  return NewBackupStream(this, store_, metrics_, parsed, context);
}

void WalService::BeginShutdown() {
  {
    std::lock_guard<std::mutex> lock(streams_mu_);
    shutting_down_ = true;
    for (Drainable* stream : streams_) stream->Drain();
  }
  read_pool_.BeginShutdown();
}

void WalService::Register(Drainable* stream) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  streams_.insert(stream);
  if (shutting_down_) stream->Drain();
}

void WalService::Unregister(Drainable* stream) {
  std::lock_guard<std::mutex> lock(streams_mu_);
  streams_.erase(stream);
}

bool WalService::WaitIdle(Clock::time_point deadline) const {
  while (in_flight_.load() > 0) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

grpc::ServerUnaryReactor* WalService::Create(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::CreateRequest, v1::CreateResponse>;
  return Unary<v1::CreateRequest, v1::CreateResponse>(
      "Create", context, request, response, [this](Call* call) {
        const v1::CreateRequest& r = call->request();
        if (r.metadata().size() > options_.max_metadata_bytes) {
          call->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                    absl::StrCat("metadata is ", r.metadata().size(),
                                                 " bytes; at most ", options_.max_metadata_bytes)));
          return;
        }
        store_->Create(r.metadata(), r.epoch(), [call](absl::StatusOr<bool> created) {
          if (created.ok()) call->response().set_created(*created);
          call->Finish(ToGrpcStatus(created.status()));
        });
      });
}

grpc::ServerUnaryReactor* WalService::Append(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::AppendRequest, v1::AppendResponse>;
  return Unary<v1::AppendRequest, v1::AppendResponse>(
      "Append", context, request, response, [this](Call* call) {
        // The store takes the entries; the sequence stays in the request.
        // A lone unary writer commits on this thread when the committer is
        // idle (WalStore::Commit): no hand-off to the committer and back.
        store_->Append(
            TakeAppend(&call->request()),
            [call](absl::StatusOr<uint64_t> last) {
              if (last.ok()) {
                call->response().set_last_index(*last);
                call->response().set_sequence(call->request().sequence());
              }
              call->Finish(ToGrpcStatus(last.status()));
            },
            nullptr, WalStore::Commit::kInlineIfIdle);
      });
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* WalService::AppendStream(
    grpc::CallbackServerContext*) {
  return new AppendStreamReactor(this, store_, &append_budget_, metrics_, options_);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WalService::ReadAll(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request) {
  v1::ReadAllRequest parsed;
  if (grpc::Status s = ParseWireMessage(*request, &parsed); !s.ok()) {
    return new RefusedStream(this, "ReadAll", s);
  }
  if (parsed.from_committed_snapshot() &&
      (parsed.snapshot_index() != 0 || parsed.snapshot_term() != 0)) {
    return new RefusedStream(this, "ReadAll",
                             grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "ReadAll: from_committed_snapshot picks the marker; "
                                          "snapshot_index and snapshot_term must be 0"));
  }
  return new ReadAllReactor(this, store_, parsed, context);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WalService::Follow(grpc::CallbackServerContext* context,
                                                               const grpc::ByteBuffer* request) {
  (void)context;
  v1::FollowRequest parsed;
  if (grpc::Status s = ParseWireMessage(*request, &parsed); !s.ok()) {
    return new RefusedStream(this, "Follow", s);
  }
  return NewFollowStream(this, store_, parsed);
}

grpc::ServerUnaryReactor* WalService::Snapshots(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::SnapshotsRequest, v1::SnapshotsResponse>;
  return Unary<v1::SnapshotsRequest, v1::SnapshotsResponse>(
      "Snapshots", context, request, response, [this](Call* call) {
        SnapshotsToWire(store_->Snapshots(), &call->response());
        call->Finish(grpc::Status::OK);
      });
}

grpc::ServerUnaryReactor* WalService::Entries(grpc::CallbackServerContext* context,
                                              const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::EntriesRequest, v1::EntriesResponse>;
  return Unary<v1::EntriesRequest, v1::EntriesResponse>(
      "Entries", context, request, response, [this](Call* call) {
        read_pool_.Submit(
            "Entries",
            [this, call] {
              const v1::EntriesRequest& r = call->request();
              absl::StatusOr<WalStore::Range> range =
                  store_->Entries(r.lo(), r.hi(), r.max_bytes());
              if (range.ok()) {
                v1::EntriesResponse& out = call->response();
                for (raftpb::Entry& e : range->entries) *out.add_entries() = std::move(e);
                out.set_first_index(range->first);
                out.set_last_index(range->last);
              }
              call->Finish(ToGrpcStatus(range.status()));
            },
            [call](absl::Status refused) { call->Finish(ToGrpcStatus(refused)); });
      });
}

grpc::ServerUnaryReactor* WalService::Term(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::TermRequest, v1::TermResponse>;
  return Unary<v1::TermRequest, v1::TermResponse>(
      "Term", context, request, response, [this](Call* call) {
        uint64_t term = 0;
        absl::StatusOr<WalStore::Range> range = store_->Term(call->request().index(), &term);
        if (range.ok()) {
          call->response().set_term(term);
          call->response().set_first_index(range->first);
          call->response().set_last_index(range->last);
        }
        call->Finish(ToGrpcStatus(range.status()));
      });
}

grpc::ServerUnaryReactor* WalService::SaveSnapshot(grpc::CallbackServerContext* context,
                                                   const grpc::ByteBuffer* request,
                                                   grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::SaveSnapshotRequest, v1::SaveSnapshotResponse>;
  return Unary<v1::SaveSnapshotRequest, v1::SaveSnapshotResponse>(
      "SaveSnapshot", context, request, response, [this](Call* call) {
        const v1::SaveSnapshotRequest& r = call->request();
        store_->SaveSnapshot(r.index(), r.term(), r.epoch(),
                             [call](absl::Status s) { call->Finish(ToGrpcStatus(s)); });
      });
}

grpc::ServerUnaryReactor* WalService::ReleaseTo(grpc::CallbackServerContext* context,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::ReleaseToRequest, v1::ReleaseToResponse>;
  return Unary<v1::ReleaseToRequest, v1::ReleaseToResponse>(
      "ReleaseTo", context, request, response, [this](Call* call) {
        const v1::ReleaseToRequest& r = call->request();
        store_->ReleaseTo(r.index(), r.epoch(), [call](absl::StatusOr<ReleaseResult> released) {
          if (released.ok()) {
            call->response().set_released_segments(released->released_segments);
            call->response().set_released_to(released->released_to);
            call->response().set_clamped(released->clamped);
          }
          call->Finish(ToGrpcStatus(released.status()));
        });
      });
}

grpc::ServerUnaryReactor* WalService::Status(grpc::CallbackServerContext* context,
                                             const grpc::ByteBuffer* request,
                                             grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::StatusRequest, v1::StatusResponse>;
  // On a read worker: Status lists and stats the segment files.
  return Unary<v1::StatusRequest, v1::StatusResponse>(
      "Status", context, request, response, [this](Call* call) {
        read_pool_.Submit(
            "Status",
            [this, call] {
              StatusToWire(store_->Status(), &call->response());
              call->Finish(grpc::Status::OK);
            },
            [call](absl::Status refused) { call->Finish(ToGrpcStatus(refused)); });
      });
}

grpc::ServerUnaryReactor* WalService::Fence(grpc::CallbackServerContext* context,
                                            const grpc::ByteBuffer* request,
                                            grpc::ByteBuffer* response) {
  using Call = UnaryCall<v1::FenceRequest, v1::FenceResponse>;
  return Unary<v1::FenceRequest, v1::FenceResponse>(
      "Fence", context, request, response, [this](Call* call) {
        store_->Fence([call](absl::StatusOr<uint64_t> epoch) {
          if (epoch.ok()) call->response().set_epoch(*epoch);
          call->Finish(ToGrpcStatus(epoch.status()));
        });
      });
}

}  // namespace walrus
