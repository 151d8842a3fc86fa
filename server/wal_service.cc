#include "server/wal_service.h"

#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "server/backup_stream.h"
#include "server/status_codes.h"
#include "server/wire_messages.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

const char* CodeName(grpc::StatusCode code) {
  static const char* const kNames[] = {"OK",
                                       "CANCELLED",
                                       "UNKNOWN",
                                       "INVALID_ARGUMENT",
                                       "DEADLINE_EXCEEDED",
                                       "NOT_FOUND",
                                       "ALREADY_EXISTS",
                                       "PERMISSION_DENIED",
                                       "RESOURCE_EXHAUSTED",
                                       "FAILED_PRECONDITION",
                                       "ABORTED",
                                       "OUT_OF_RANGE",
                                       "UNIMPLEMENTED",
                                       "INTERNAL",
                                       "UNAVAILABLE",
                                       "DATA_LOSS",
                                       "UNAUTHENTICATED"};
  int i = static_cast<int>(code);
  return i >= 0 && i <= 16 ? kNames[i] : "UNKNOWN";
}

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
class AppendStreamReactor : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>,
                            public WalService::Drainable {
 public:
  AppendStreamReactor(WalService* service, WalStore* store, size_t max_inflight)
      : service_(service), store_(store), max_inflight_(max_inflight) {
    service_->Started();
    StartRead(&incoming_);
    service_->Register(this);
  }

  void Drain() override {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    MaybeFinishLocked();
  }

  void OnReadDone(bool ok) override {
    // Parsed outside mu_ (a request can be megabytes): only this reaction
    // touches incoming_ until the next StartRead.
    auto request = std::make_shared<v1::AppendRequest>();
    grpc::Status parsed = ok ? ParseWireMessage(incoming_, request.get()) : grpc::Status::OK;
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
    // reading_ stays set until this append is queued: OnAppended restarts
    // reading only when it is clear, so the next message cannot be read (and
    // queued ahead of this one) before this one is in the store's queue. The
    // store is called without mu_: it may complete the append inline.
    lock.unlock();
    store_->Append(
        request.get(),
        [this, request](absl::StatusOr<uint64_t> result) {
          OnAppended(request->sequence(), std::move(result));
        },
        chain_);
    lock.lock();
    const bool read_more = status_.ok() && !draining_ && outstanding_ < max_inflight_;
    reading_ = read_more;
    if (!read_more) MaybeFinishLocked();
    lock.unlock();
    if (read_more) StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    responses_.pop_front();
    if (!ok) {
      FailLocked(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      client_gone_ = true;
    }
    WriteNextLocked();
    MaybeFinishLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    FailLocked(grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
    client_gone_ = true;
    MaybeFinishLocked();
  }

  void OnDone() override {
    service_->Unregister(this);
    service_->Observe("AppendStream", final_status_, started_);
    delete this;
  }

 private:
  void OnAppended(uint64_t sequence, absl::StatusOr<uint64_t> result) {
    bool resume_reading = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      --outstanding_;
      if (!status_.ok()) {
        // An earlier append failed: this one is not acknowledged.
      } else if (!result.ok()) {
        FailLocked(ToGrpcStatus(result.status()));
      } else {
        v1::AppendResponse response;
        response.set_last_index(*result);
        response.set_sequence(sequence);
        if (grpc::Status s = SerializeWireMessage(response, &responses_.emplace_back()); !s.ok()) {
          responses_.pop_back();
          FailLocked(s);
        }
        WriteNextLocked();
      }
      if (status_.ok() && !draining_ && !reading_ && !reads_done_ && outstanding_ < max_inflight_) {
        reading_ = resume_reading = true;
      }
      MaybeFinishLocked();
    }
    if (resume_reading) StartRead(&incoming_);
  }

  void FailLocked(const grpc::Status& status) {
    if (!status_.ok()) return;
    status_ = status;
    // Appends after a failed one must not be written: the client sees the
    // stream end at the failure and resends from there.
    chain_->store(true);
  }

  void WriteNextLocked() {
    if (client_gone_) responses_.clear();
    if (writing_ || responses_.empty()) return;
    writing_ = true;
    StartWrite(&responses_.front());
  }

  void MaybeFinishLocked() {
    if (finished_ || outstanding_ > 0 || writing_) return;
    // Acknowledgements of durable appends go out first, even after a failure.
    if (!responses_.empty() && !client_gone_) return;
    if (status_.ok() && !reads_done_ && !draining_) return;
    finished_ = true;
    final_status_ = status_.ok() ? read_error_ : status_;
    if (status_.ok() && draining_ && !reads_done_) {
      final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                   "walrusd is shutting down; every acknowledged append is "
                                   "durable, resend the rest");
    }
    Finish(final_status_);
  }

  WalService* service_;
  WalStore* store_;
  const size_t max_inflight_;
  const Clock::time_point started_ = Clock::now();
  // Shared with the committer: set once an append of this stream failed.
  std::shared_ptr<std::atomic<bool>> chain_ = std::make_shared<std::atomic<bool>>(false);

  std::mutex mu_;
  grpc::ByteBuffer incoming_;
  std::deque<grpc::ByteBuffer> responses_;  // encoded AppendResponses
  size_t outstanding_ = 0;
  bool reading_ = true;
  bool reads_done_ = false;
  bool draining_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool client_gone_ = false;  // cancelled, or a write failed: nothing more is sent
  grpc::Status status_;
  grpc::Status read_error_;  // a message that did not parse ended the reading
  grpc::Status final_status_;
};

// A server stream refused before it started: its request did not parse.
class RefusedStream : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  RefusedStream(const WalService* service, const char* method, grpc::Status status)
      : service_(service), method_(method), status_(std::move(status)) {
    service_->Started();
    Finish(status_);
  }
  void OnDone() override {
    service_->Observe(method_, status_, started_);
    delete this;
  }

 private:
  const WalService* service_;
  const char* method_;
  const grpc::Status status_;
  const Clock::time_point started_ = Clock::now();
};

// ReadAll: decodes the durable log on a worker thread (never a gRPC thread),
// then streams it in chunks of at most max_chunk_bytes, one write at a time.
class ReadAllReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  ReadAllReactor(const WalService* service, WalStore* store, const v1::ReadAllRequest& request)
      : service_(service) {
    service_->Started();
    chunk_bytes_ = request.max_chunk_bytes() == 0
                       ? kDefaultChunkBytes
                       : std::min(request.max_chunk_bytes(), kMaxChunkBytes);
    walpb::Snapshot snapshot;
    snapshot.set_index(request.snapshot_index());
    snapshot.set_term(request.snapshot_term());
    std::thread([this, store, snapshot] {
      absl::StatusOr<ReadAllResult> result = store->ReadAll(snapshot);
      if (!result.ok()) {
        FinishWith(ToGrpcStatus(result.status()));
        return;
      }
      result_ = std::move(*result);
      WriteNext();
    }).detach();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      FinishWith(grpc::Status(grpc::StatusCode::CANCELLED, "client went away"));
      return;
    }
    WriteNext();
  }

  void OnDone() override {
    service_->Observe("ReadAll", final_status_, started_);
    delete this;
  }

 private:
  void WriteNext() {
    if (header_sent_ && next_ >= result_.entries.size()) {
      FinishWith(grpc::Status::OK);
      return;
    }
    response_.Clear();
    size_t bytes = 0;
    if (!header_sent_) {
      response_.set_has_header(true);
      response_.set_metadata(result_.metadata);
      *response_.mutable_hard_state() = result_.state;
      bytes = result_.metadata.size();
      header_sent_ = true;
    }
    // At least one entry per message, so a huge entry still goes through.
    while (next_ < result_.entries.size()) {
      size_t size = result_.entries[next_].ByteSizeLong() + 8;
      if (response_.entries_size() > 0 && bytes + size > chunk_bytes_) break;
      *response_.add_entries() = std::move(result_.entries[next_++]);
      bytes += size;
    }
    if (grpc::Status s = SerializeWireMessage(response_, &encoded_); !s.ok()) {
      FinishWith(s);
      return;
    }
    StartWrite(&encoded_);
  }

  void FinishWith(const grpc::Status& status) {
    final_status_ = status;
    Finish(status);
  }

  const WalService* service_;
  const Clock::time_point started_ = Clock::now();
  uint32_t chunk_bytes_;
  ReadAllResult result_;
  size_t next_ = 0;
  bool header_sent_ = false;
  v1::ReadAllResponse response_;
  grpc::ByteBuffer encoded_;  // response_, as written
  grpc::Status final_status_;
};

// One unary call: its parsed request, the response to fill, and how it ends.
// Owned by itself from Unary() until Finish().
template <typename Request, typename Response>
class UnaryCall {
 public:
  UnaryCall(const WalService* service, const char* method, grpc::CallbackServerContext* context,
            grpc::ByteBuffer* raw_response)
      : service_(service),
        method_(method),
        reactor_(context->DefaultReactor()),
        raw_response_(raw_response) {
    service_->Started();
  }

  Request& request() { return request_; }
  Response& response() { return response_; }
  grpc::ServerUnaryReactor* reactor() const { return reactor_; }

  // Sends the response (if `status` is OK) or the error; deletes this.
  void Finish(grpc::Status status) {
    if (status.ok()) status = SerializeWireMessage(response_, raw_response_);
    service_->Observe(method_, status, started_);
    grpc::ServerUnaryReactor* reactor = reactor_;
    delete this;
    reactor->Finish(status);
  }

 private:
  const WalService* service_;
  const char* method_;
  grpc::ServerUnaryReactor* reactor_;
  grpc::ByteBuffer* raw_response_;
  const Clock::time_point started_ = Clock::now();
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
  return NewBackupStream(this, store_, metrics_, parsed, context->peer());
}

void WalService::BeginShutdown() {
  std::lock_guard<std::mutex> lock(streams_mu_);
  shutting_down_ = true;
  for (Drainable* stream : streams_) stream->Drain();
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

void WalService::Observe(const char* method, const grpc::Status& status,
                         Clock::time_point started) const {
  in_flight_.fetch_sub(1);
  if (metrics_ == nullptr) return;
  metrics_->ObserveRpc(method, CodeName(status.error_code()),
                       std::chrono::duration<double>(Clock::now() - started).count());
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
        // The call owns the request until Finish, after the store is done.
        store_->Append(&call->request(), [call](absl::StatusOr<uint64_t> last) {
          if (last.ok()) {
            call->response().set_last_index(*last);
            call->response().set_sequence(call->request().sequence());
          }
          call->Finish(ToGrpcStatus(last.status()));
        });
      });
}

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* WalService::AppendStream(
    grpc::CallbackServerContext*) {
  return new AppendStreamReactor(this, store_, options_.max_stream_inflight);
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* WalService::ReadAll(grpc::CallbackServerContext*,
                                                                const grpc::ByteBuffer* request) {
  v1::ReadAllRequest parsed;
  if (grpc::Status s = ParseWireMessage(*request, &parsed); !s.ok()) {
    return new RefusedStream(this, "ReadAll", s);
  }
  return new ReadAllReactor(this, store_, parsed);
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
  return Unary<v1::StatusRequest, v1::StatusResponse>("Status", context, request, response,
                                                      [this](Call* call) {
                                                        call->response() = store_->Status();
                                                        call->Finish(grpc::Status::OK);
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
