#include "client/backup_receiver.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"

namespace walrus {

absl::StatusOr<std::unique_ptr<BackupReceiver>> BackupReceiver::Begin(FileSystem* fs,
                                                                      const std::string& dest,
                                                                      BackupProgressFn progress) {
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(fs, dest);
  if (!writer.ok()) return writer.status();
  return std::unique_ptr<BackupReceiver>(
      new BackupReceiver(std::move(*writer), std::move(progress)));
}

BackupReceiver::BackupReceiver(std::unique_ptr<BackupWriter> writer, BackupProgressFn progress)
    : writer_(std::move(writer)), progress_(std::move(progress)) {}

absl::Status BackupReceiver::Take(const v1::BackupChunk& message) {
  if (!have_header_) {
    if (!message.has_header()) return absl::InternalError("Backup's first message has no header");
    have_header_ = true;
    header_ = message;
    Report(0);
    return absl::OkStatus();
  }
  if (message.has_header()) return absl::InternalError("Backup sent a second header");
  if (crc32c::Value(message.data()) != message.crc32c()) {
    return absl::DataLossError(absl::StrCat("chunk of ", message.file_name(), " at offset ",
                                            message.offset(),
                                            " failed its CRC-32C check (damaged in transit)"));
  }
  if (absl::Status s = AdvanceTo(message.file_name()); !s.ok()) return s;
  if (absl::Status s = writer_->Write(message.offset(), message.data()); !s.ok()) {
    // Offsets out of order are the daemon's fault; anything else is ours.
    if (s.code() != absl::StatusCode::kInvalidArgument) failed_side_ = BackupSide::kLocal;
    return s;
  }
  bytes_ += message.data().size();
  Report(next_ > 0 ? next_ - 1 : 0);
  return absl::OkStatus();
}

absl::StatusOr<BackupReply> BackupReceiver::Finish() {
  if (!have_header_) return absl::InternalError("Backup ended without its header");
  if (absl::Status s = AdvanceTo(""); !s.ok()) return s;
  Report(header_.files_size());
  const uint64_t must_hold = header_.last_entry_index();
  absl::StatusOr<VerifyReport> verified =
      writer_->Commit(must_hold > 0 ? std::optional<uint64_t>(must_hold) : std::nullopt);
  if (!verified.ok()) {
    failed_side_ = BackupSide::kLocal;
    return verified.status();
  }
  BackupReply reply;
  reply.files = header_.files_size();
  reply.bytes = bytes_;
  reply.last_entry_index = must_hold;
  reply.verified = *verified;
  return reply;
}

absl::Status BackupReceiver::AdvanceTo(const std::string& name) {
  while (open_name_ != name) {
    if (!open_name_.empty()) {
      if (absl::Status s = writer_->CloseFile(header_.files(next_ - 1).size_bytes()); !s.ok()) {
        return s;
      }
      open_name_.clear();
    }
    if (next_ >= static_cast<size_t>(header_.files_size())) {
      if (name.empty()) return absl::OkStatus();
      return absl::InternalError(
          absl::StrCat("Backup sent a chunk of ", name, ", which its header does not list"));
    }
    const v1::BackupFile& file = header_.files(static_cast<int>(next_++));
    if (file.name() != name && file.size_bytes() > 0 && !name.empty()) {
      return absl::InternalError(
          absl::StrCat("Backup sent a chunk of ", name, " before ", file.name(), " was complete"));
    }
    if (absl::Status s = writer_->OpenFile(file.name()); !s.ok()) return s;
    open_name_ = file.name();
  }
  return absl::OkStatus();
}

void BackupReceiver::Report(uint64_t files_done) {
  if (!progress_) return;
  BackupProgress progress;
  progress.bytes_done = bytes_;
  progress.bytes_total = header_.total_bytes();
  progress.files_done = files_done;
  progress.files_total = header_.files_size();
  progress_(progress);
}

}  // namespace walrus
