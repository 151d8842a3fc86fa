#include "server/wal_service.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "server/status_codes.h"

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

constexpr uint32_t kDefaultChunkBytes = 1 << 20;
constexpr uint32_t kMaxChunkBytes = 4 << 20;

// AppendStream: reads appends as they come and hands each to the store at
// once (so they can share an fsync); acknowledges them in order. The store
// completes one stream's appends in submission order, so acknowledgements are
// in order by construction. The first failure stops reading, fails whatever
// the stream still has queued (they are not written: `failed` is checked by
// the committer before encoding), sends the acknowledgements of the appends
// before it that are already durable (so the client resends only what was
// not written), and ends the stream with that status.
class AppendStreamReactor : public grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>,
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
    auto request = std::make_shared<v1::AppendRequest>(std::move(incoming_));
    incoming_.Clear();
    ++outstanding_;
    bool read_more = outstanding_ < max_inflight_;
    reading_ = read_more;
    lock.unlock();
    store_->Append(
        request.get(),
        [this, request](absl::StatusOr<uint64_t> result) {
          OnAppended(request->sequence(), std::move(result));
        },
        chain_);
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
        responses_.push_back(std::move(response));
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
    final_status_ = status_;
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
  v1::AppendRequest incoming_;
  std::deque<v1::AppendResponse> responses_;
  size_t outstanding_ = 0;
  bool reading_ = true;
  bool reads_done_ = false;
  bool draining_ = false;
  bool writing_ = false;
  bool finished_ = false;
  bool client_gone_ = false;  // cancelled, or a write failed: nothing more is sent
  grpc::Status status_;
  grpc::Status final_status_;
};

// ReadAll: decodes the durable log on a worker thread (never a gRPC thread),
// then streams it in chunks of at most max_chunk_bytes, one write at a time.
class ReadAllReactor : public grpc::ServerWriteReactor<v1::ReadAllResponse> {
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
    StartWrite(&response_);
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
  grpc::Status final_status_;
};

// Backup: a worker thread pins and plans the backup, then reads each file
// chunk by chunk and hands one chunk at a time to gRPC, waiting for its write
// to finish before reading the next (bounded memory, and a slow client slows
// the reads, not the daemon). Everything it owns (the pin) is released before
// Finish, after which it touches nothing of the reactor.
class BackupReactor : public grpc::ServerWriteReactor<v1::BackupChunk> {
 public:
  BackupReactor(const WalService* service, WalStore* store, ServerMetrics* metrics,
                const v1::BackupRequest& request, std::string peer)
      : service_(service), store_(store), metrics_(metrics) {
    service_->Started();
    chunk_bytes_ = request.max_chunk_bytes() == 0
                       ? kDefaultChunkBytes
                       : std::min(request.max_chunk_bytes(), kMaxChunkBytes);
    std::thread([this, peer = std::move(peer)] { Run(peer); }).detach();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    write_ok_ = ok;
    cv_.notify_one();
  }

  void OnDone() override {
    service_->Observe("Backup", final_status_, started_);
    delete this;
  }

 private:
  void Run(const std::string& peer) {
    grpc::Status status = Stream(peer);
    final_status_ = status;
    Finish(status);  // the last use of `this`: OnDone may delete it now
  }

  grpc::Status Stream(const std::string& peer) {
    static std::atomic<uint64_t> next_id{1};
    const std::string holder = absl::StrCat("backup #", next_id.fetch_add(1), " for ", peer);
    absl::StatusOr<BackupPlan> plan = store_->BeginBackup(holder);
    if (!plan.ok()) return ToGrpcStatus(plan.status());
    if (metrics_ != nullptr) metrics_->BackupStarted(plan->total_bytes);
    spdlog::info("{} started: {} segments, {} bytes, up to segment {} offset {} (entry {})", holder,
                 plan->files.size(), plan->total_bytes, plan->durable.seq, plan->durable.offset,
                 plan->last_entry_index);
    const Clock::time_point started = Clock::now();
    grpc::Status status = StreamPlan(*plan);
    plan->pin.reset();  // purge may go on at once
    if (metrics_ != nullptr) metrics_->BackupFinished(status.ok());
    const double seconds = std::chrono::duration<double>(Clock::now() - started).count();
    if (status.ok()) {
      spdlog::info("{} done: {} bytes streamed in {:.3f} s", holder, plan->total_bytes, seconds);
    } else {
      spdlog::warn("{} failed after {:.3f} s: {}", holder, seconds, status.error_message());
    }
    return status;
  }

  grpc::Status StreamPlan(const BackupPlan& plan) {
    v1::BackupChunk chunk;
    chunk.set_has_header(true);
    for (const v1::BackupFile& file : plan.files) *chunk.add_files() = file;
    chunk.set_total_bytes(plan.total_bytes);
    chunk.set_durable_segment(plan.durable.seq);
    chunk.set_durable_offset(plan.durable.offset);
    chunk.set_last_entry_index(plan.last_entry_index);
    if (!Send(chunk)) return ClientGone();
    FileSystem* fs = store_->options().fs;
    std::string buffer(chunk_bytes_, '\0');
    for (const v1::BackupFile& file : plan.files) {
      const std::string path = JoinPath(store_->options().wal_dir, file.name());
      absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs->NewReadableFile(path);
      if (!in.ok()) return ToGrpcStatus(in.status());
      for (uint64_t offset = 0; offset < file.size_bytes();) {
        size_t want =
            static_cast<size_t>(std::min<uint64_t>(chunk_bytes_, file.size_bytes() - offset));
        absl::StatusOr<size_t> n = (*in)->Read(offset, want, buffer.data());
        if (!n.ok()) return ToGrpcStatus(n.status());
        if (*n != want) {
          return grpc::Status(grpc::StatusCode::INTERNAL,
                              absl::StrCat("backup: ", path, " ended at ", offset + *n,
                                           " bytes, before the durable end ", file.size_bytes()));
        }
        chunk.Clear();
        chunk.set_file_name(file.name());
        chunk.set_offset(offset);
        chunk.set_data(buffer.data(), *n);
        chunk.set_crc32c(crc32c::Value(chunk.data()));
        if (!Send(chunk)) return ClientGone();
        if (metrics_ != nullptr) metrics_->AddBackupBytes(*n);
        offset += *n;
      }
    }
    return grpc::Status::OK;
  }

  static grpc::Status ClientGone() {
    return grpc::Status(grpc::StatusCode::CANCELLED, "client went away during the backup");
  }

  // Writes one chunk and waits for gRPC to take it. False if the client is gone.
  bool Send(const v1::BackupChunk& chunk) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = true;
    }
    StartWrite(&chunk);  // outside mu_: OnWriteDone may run on any thread
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !writing_; });
    return write_ok_;
  }

  const WalService* service_;
  WalStore* store_;
  ServerMetrics* metrics_;
  const Clock::time_point started_ = Clock::now();
  uint32_t chunk_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool writing_ = false;  // guarded by mu_
  bool write_ok_ = true;  // guarded by mu_
  grpc::Status final_status_;
};

}  // namespace

grpc::ServerWriteReactor<v1::BackupChunk>* WalService::Backup(grpc::CallbackServerContext* context,
                                                              const v1::BackupRequest* request) {
  return new BackupReactor(this, store_, metrics_, *request, context->peer());
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
                                             const v1::CreateRequest* request,
                                             v1::CreateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Clock::time_point started = Clock::now();
  Started();
  if (request->metadata().size() > options_.max_metadata_bytes) {
    grpc::Status status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("metadata is ", request->metadata().size(), " bytes; at most ",
                                     options_.max_metadata_bytes));
    Observe("Create", status, started);
    reactor->Finish(status);
    return reactor;
  }
  store_->Create(request->metadata(), request->epoch(),
                 [this, reactor, response, started](absl::StatusOr<bool> r) {
                   if (r.ok()) response->set_created(*r);
                   grpc::Status status = ToGrpcStatus(r.status());
                   Observe("Create", status, started);
                   reactor->Finish(status);
                 });
  return reactor;
}

grpc::ServerUnaryReactor* WalService::Append(grpc::CallbackServerContext* context,
                                             const v1::AppendRequest* request,
                                             v1::AppendResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Clock::time_point started = Clock::now();
  Started();
  store_->Append(request, [this, reactor, request, response, started](absl::StatusOr<uint64_t> r) {
    if (r.ok()) {
      response->set_last_index(*r);
      response->set_sequence(request->sequence());
    }
    grpc::Status status = ToGrpcStatus(r.status());
    Observe("Append", status, started);
    reactor->Finish(status);
  });
  return reactor;
}

grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* WalService::AppendStream(
    grpc::CallbackServerContext*) {
  return new AppendStreamReactor(this, store_, options_.max_stream_inflight);
}

grpc::ServerWriteReactor<v1::ReadAllResponse>* WalService::ReadAll(
    grpc::CallbackServerContext*, const v1::ReadAllRequest* request) {
  return new ReadAllReactor(this, store_, *request);
}

grpc::ServerUnaryReactor* WalService::SaveSnapshot(grpc::CallbackServerContext* context,
                                                   const v1::SaveSnapshotRequest* request,
                                                   v1::SaveSnapshotResponse*) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Clock::time_point started = Clock::now();
  Started();
  store_->SaveSnapshot(request->index(), request->term(), request->epoch(),
                       [this, reactor, started](absl::Status s) {
                         grpc::Status status = ToGrpcStatus(s);
                         Observe("SaveSnapshot", status, started);
                         reactor->Finish(status);
                       });
  return reactor;
}

grpc::ServerUnaryReactor* WalService::ReleaseTo(grpc::CallbackServerContext* context,
                                                const v1::ReleaseToRequest* request,
                                                v1::ReleaseToResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Clock::time_point started = Clock::now();
  Started();
  store_->ReleaseTo(request->index(), request->epoch(),
                    [this, reactor, response, started](absl::StatusOr<ReleaseResult> r) {
                      if (r.ok()) {
                        response->set_released_segments(r->released_segments);
                        response->set_released_to(r->released_to);
                        response->set_clamped(r->clamped);
                      }
                      grpc::Status status = ToGrpcStatus(r.status());
                      Observe("ReleaseTo", status, started);
                      reactor->Finish(status);
                    });
  return reactor;
}

grpc::ServerUnaryReactor* WalService::Status(grpc::CallbackServerContext* context,
                                             const v1::StatusRequest*,
                                             v1::StatusResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Clock::time_point started = Clock::now();
  Started();
  *response = store_->Status();
  Observe("Status", grpc::Status::OK, started);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* WalService::Fence(grpc::CallbackServerContext* context,
                                            const v1::FenceRequest*, v1::FenceResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  Clock::time_point started = Clock::now();
  Started();
  store_->Fence([this, reactor, response, started](absl::StatusOr<uint64_t> r) {
    if (r.ok()) response->set_epoch(*r);
    grpc::Status status = ToGrpcStatus(r.status());
    Observe("Fence", status, started);
    reactor->Finish(status);
  });
  return reactor;
}

}  // namespace walrus
