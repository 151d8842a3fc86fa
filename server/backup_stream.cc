#include "server/backup_stream.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "server/paced_writer.h"
#include "server/status_codes.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

// Backup: a read worker pins and plans the backup, then reads each file
// chunk by chunk and hands one chunk at a time to gRPC, waiting for its write
// to finish before reading the next (bounded memory, and a slow client slows
// the reads, not the daemon). A write that does not finish within the stall
// timeout cancels the call: a reader that stopped must not hold a worker and
// the pin (and so the purge) forever. Everything it owns (the pin) is
// released before Finish, after which it touches nothing of the reactor.
class BackupReactor : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  BackupReactor(WalService* service, WalStore* store, ServerMetrics* metrics,
                const v1::BackupRequest& request, grpc::CallbackServerContext* context)
      : service_(service),
        store_(store),
        metrics_(metrics),
        writer_(context, service->options().backup_stall_timeout) {
    service_->Started();
    chunk_bytes_ = request.max_chunk_bytes() == 0
                       ? kDefaultChunkBytes
                       : std::min(request.max_chunk_bytes(), kMaxChunkBytes);
    service_->read_pool().Submit(
        "Backup", [this, peer = context->peer()] { Run(peer); },
        [this](absl::Status refused) {
          final_status_ = ToGrpcStatus(refused);
          Finish(final_status_);
        });
  }

  void OnWriteDone(bool ok) override { writer_.OnWriteDone(ok); }

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
    if (grpc::Status s = Send(chunk); !s.ok()) return s;
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
        if (grpc::Status s = Send(chunk); !s.ok()) return s;
        if (metrics_ != nullptr) metrics_->AddBackupBytes(*n);
        offset += *n;
      }
    }
    return grpc::Status::OK;
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

  WalService* service_;
  WalStore* store_;
  ServerMetrics* metrics_;
  PacedWriter writer_;
  const Clock::time_point started_ = Clock::now();
  uint32_t chunk_bytes_;
  grpc::Status final_status_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* NewBackupStream(WalService* service, WalStore* store,
                                                            ServerMetrics* metrics,
                                                            const v1::BackupRequest& request,
                                                            grpc::CallbackServerContext* context) {
  return new BackupReactor(service, store, metrics, request, context);
}

}  // namespace walrus
