#include "server/backup_stream.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/backup_source.h"
#include "server/paced_writer.h"
#include "server/rpc_scope.h"
#include "server/status_codes.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

// Backup: a read worker pins and plans the backup, then takes the chunks of
// core's BackupChunkReader one at a time, turns each into a message and
// hands it to gRPC, waiting for its write to finish before reading the next
// (bounded memory, and a slow client slows the reads, not the daemon). A
// write that does not finish within the stall timeout cancels the call: a
// reader that stopped must not hold a worker and the pin (and so the purge)
// forever. Everything it owns (the pin) is released before Finish, after
// which it touches nothing of the reactor.
class BackupReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  BackupReactor(WalService* service, WalStore* store, ServerMetrics* metrics,
                const v1::BackupRequest& request, grpc::CallbackServerContext* context)
      : rpc_(service, "Backup"),
        store_(store),
        metrics_(metrics),
        writer_(context, service->options().backup_stall_timeout) {
    chunk_bytes_ = request.max_chunk_bytes() == 0
                       ? kDefaultChunkBytes
                       : std::min(request.max_chunk_bytes(), kMaxChunkBytes);
    service->read_pool().Submit(
        "Backup", [this, peer = context->peer()] { Run(peer); },
        [this](absl::Status refused) { FinishWith(ToGrpcStatus(refused)); });
  }

  void OnWriteDone(bool ok) override { writer_.OnWriteDone(ok); }

  void OnDone() override { delete this; }

 private:
  void Run(const std::string& peer) { FinishWith(Stream(peer)); }

  void FinishWith(const grpc::Status& status) {
    rpc_.set_status(status);
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
    v1::BackupChunk message;
    message.set_has_header(true);
    for (const BackupFile& file : plan.files) {
      v1::BackupFile* out = message.add_files();
      out->set_name(file.name);
      out->set_size_bytes(file.size_bytes);
    }
    message.set_total_bytes(plan.total_bytes);
    message.set_durable_segment(plan.durable.seq);
    message.set_durable_offset(plan.durable.offset);
    message.set_last_entry_index(plan.last_entry_index);
    if (grpc::Status s = Send(message); !s.ok()) return s;
    BackupChunkReader reader(store_->options().fs, store_->options().wal_dir, plan, chunk_bytes_);
    BackupChunk chunk;
    for (;;) {
      absl::StatusOr<bool> more = reader.Next(&chunk);
      if (!more.ok()) return ToGrpcStatus(more.status());
      if (!*more) return grpc::Status::OK;
      message.Clear();
      message.set_file_name(plan.files[chunk.file].name);
      message.set_offset(chunk.offset);
      message.set_data(chunk.data.data(), chunk.data.size());
      message.set_crc32c(chunk.crc32c);
      if (grpc::Status s = Send(message); !s.ok()) return s;
      if (metrics_ != nullptr) metrics_->AddBackupBytes(chunk.data.size());
    }
  }

  // Writes one chunk and waits for gRPC to take it (server/paced_writer.h).
  grpc::Status Send(const v1::BackupChunk& chunk) {
    switch (writer_.Send(chunk, [this](grpc::ByteBuffer* b) { StartWrite(b); })) {
      case PacedWriter::Outcome::kTaken:
        return grpc::Status::OK;
      case PacedWriter::Outcome::kStalled:
        if (metrics_ != nullptr) metrics_->BackupStalled();
        return grpc::Status(
            grpc::StatusCode::CANCELLED,
            absl::StrCat("backup cancelled: the client took no data for ", writer_.stall_seconds(),
                         " s (--backup-stall-timeout); its pin is released"));
      case PacedWriter::Outcome::kGone:
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away during the backup");
      case PacedWriter::Outcome::kUnencodable:
        break;
    }
    return grpc::Status(grpc::StatusCode::INTERNAL, "backup: a chunk could not be encoded");
  }

  RpcScope rpc_;  // first: the last to go
  WalStore* store_;
  ServerMetrics* metrics_;
  PacedWriter writer_;
  uint32_t chunk_bytes_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewBackupStream(WalService* service, WalStore* store,
                                                            ServerMetrics* metrics,
                                                            const v1::BackupRequest& request,
                                                            grpc::CallbackServerContext* context) {
  return new BackupReactor(service, store, metrics, request, context);
}

}  // namespace walrus
