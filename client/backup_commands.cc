#include "client/backup_commands.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/progress.h"
#include "core/backup.h"
#include "core/crc32c.h"
#include "core/segment.h"

namespace walrus {
namespace {

using cli::Args;
using cli::Fail;
using cli::kExitError;
using cli::kExitOk;

// `remote`: the status came from the daemon (stream errors); else it is
// local (the destination, the copy's check): usage/I-O 1, corruption 3.
int FailBackup(const absl::Status& status, bool remote) {
  int code = status.code() == absl::StatusCode::kAlreadyExists ? kExitError
             : remote                                          ? cli::RemoteExitCode(status)
             : status.code() == absl::StatusCode::kDataLoss    ? cli::kExitCorrupt
                                                               : kExitError;
  return Fail(
      code, absl::StrCat("backup failed (nothing written at the destination): ", status.message()));
}

// The summary printed at the end: one line, or one JSON object with --json.
int PrintSummary(const Args& args, const std::string& source, const std::string& dest,
                 uint64_t files, uint64_t bytes, const VerifyReport& verified, double seconds) {
  const double rate = seconds > 0 ? bytes / seconds : 0;
  if (args.Has("json")) {
    std::printf(
        "{\"source\":%s,\"dest\":%s,\"files\":%lu,\"bytes\":%lu,\"first_index\":%lu,"
        "\"last_index\":%lu,\"entries\":%lu,\"verified\":\"clean\",\"seconds\":%.3f,"
        "\"bytes_per_second\":%.0f}\n",
        cli::JsonQuote(source).c_str(), cli::JsonQuote(dest).c_str(),
        static_cast<unsigned long>(files), static_cast<unsigned long>(bytes),
        static_cast<unsigned long>(verified.first_index.value_or(0)),
        static_cast<unsigned long>(verified.last_index.value_or(0)),
        static_cast<unsigned long>(verified.entries), seconds, rate);
  } else {
    std::printf(
        "backup of %s written to %s: %lu segments, %s, %s; verified %s in %.2f s (%s/s)\n",
        source.c_str(), dest.c_str(), static_cast<unsigned long>(files), HumanBytes(bytes).c_str(),
        verified.first_index.has_value()
            ? absl::StrCat("entries ", *verified.first_index, " to ", *verified.last_index).c_str()
            : "no entries",
        "clean", seconds, HumanBytes(static_cast<uint64_t>(rate)).c_str());
  }
  if (std::fflush(stdout) != 0) return Fail(kExitError, "writing to stdout failed");
  return kExitOk;
}

// Feeds the chunks of the Backup RPC into a BackupWriter, checking that they
// match the header: every file in order, offsets contiguous, CRCs right.
class ChunkSink {
 public:
  ChunkSink(BackupWriter* writer, ProgressMeter* meter) : writer_(writer), meter_(meter) {}

  absl::Status Take(const v1::BackupChunk& chunk) {
    if (!have_header_) {
      if (!chunk.has_header()) return absl::InternalError("Backup's first message has no header");
      have_header_ = true;
      header_ = chunk;
      meter_->Update(0, header_.total_bytes(), 0, header_.files_size());
      return absl::OkStatus();
    }
    if (chunk.has_header()) return absl::InternalError("Backup sent a second header");
    if (crc32c::Value(chunk.data()) != chunk.crc32c()) {
      return absl::DataLossError(absl::StrCat("chunk of ", chunk.file_name(), " at offset ",
                                              chunk.offset(),
                                              " failed its CRC-32C check (damaged in transit)"));
    }
    if (absl::Status s = AdvanceTo(chunk.file_name()); !s.ok()) return s;
    if (absl::Status s = writer_->Write(chunk.offset(), chunk.data()); !s.ok()) {
      // Offsets out of order are the daemon's fault; anything else is ours.
      local_failure_ = s.code() != absl::StatusCode::kInvalidArgument;
      return s;
    }
    bytes_ += chunk.data().size();
    meter_->Update(bytes_, header_.total_bytes(), next_ > 0 ? next_ - 1 : 0, header_.files_size());
    return absl::OkStatus();
  }

  // After the stream ended OK: every file must be complete.
  absl::Status Finish() {
    if (!have_header_) return absl::InternalError("Backup ended without its header");
    if (absl::Status s = AdvanceTo(""); !s.ok()) return s;
    meter_->Update(bytes_, header_.total_bytes(), header_.files_size(), header_.files_size());
    return absl::OkStatus();
  }

  const v1::BackupChunk& header() const { return header_; }
  uint64_t bytes() const { return bytes_; }
  // The stream failed writing the local copy (disk full, I/O error).
  bool local_failure() const { return local_failure_; }

 private:
  // Closes the open file (checking its size) and opens the following ones up
  // to `name` ("" closes everything; files of 0 bytes get no chunks).
  absl::Status AdvanceTo(const std::string& name) {
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
        return absl::InternalError(absl::StrCat("Backup sent a chunk of ", name, " before ",
                                                file.name(), " was complete"));
      }
      if (absl::Status s = writer_->OpenFile(file.name()); !s.ok()) return s;
      open_name_ = file.name();
    }
    return absl::OkStatus();
  }

  BackupWriter* writer_;
  ProgressMeter* meter_;
  bool have_header_ = false;
  v1::BackupChunk header_;
  size_t next_ = 0;  // files opened so far
  std::string open_name_;
  uint64_t bytes_ = 0;
  bool local_failure_ = false;
};

}  // namespace

std::string ResolveWalDir(const std::string& dir) {
  if (WalExists(PosixFs(), dir)) return dir;
  std::string nested = JoinPath(dir, "wal");
  if (WalExists(PosixFs(), nested)) return nested;
  return dir;
}

int RemoteBackup(WalClient* client, const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "usage: --server ADDR backup DEST");
  uint64_t chunk_bytes = 0;
  std::string error;
  if (!cli::GetUint(args, "chunk-bytes", &chunk_bytes, &error)) return Fail(kExitError, error);
  const std::string& dest = args.positional[0];
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(PosixFs(), dest);
  if (!writer.ok()) return FailBackup(writer.status(), /*remote=*/false);
  ProgressMeter meter("backup");
  ChunkSink sink(writer->get(), &meter);
  absl::Status streamed =
      client->Backup(static_cast<uint32_t>(std::min<uint64_t>(chunk_bytes, UINT32_MAX)),
                     [&](const v1::BackupChunk& chunk) { return sink.Take(chunk); });
  if (streamed.ok()) streamed = sink.Finish();
  meter.Finish();
  if (!streamed.ok()) return FailBackup(streamed, /*remote=*/!sink.local_failure());
  const uint64_t must_hold = sink.header().last_entry_index();
  absl::StatusOr<VerifyReport> verified =
      (*writer)->Commit(must_hold > 0 ? std::optional<uint64_t>(must_hold) : std::nullopt);
  if (!verified.ok()) return FailBackup(verified.status(), /*remote=*/false);
  return PrintSummary(args, client->target(), dest, sink.header().files_size(), sink.bytes(),
                      *verified, meter.elapsed_seconds());
}

int OfflineBackupCommand(const Args& args) {
  if (args.positional.size() != 2) return Fail(kExitError, "usage: backup DIR DEST");
  const std::string dir = ResolveWalDir(args.positional[0]);
  const std::string& dest = args.positional[1];
  ProgressMeter meter("backup");
  absl::StatusOr<BackupSummary> summary =
      OfflineBackup(PosixFs(), dir, dest, [&](const BackupProgress& p) {
        meter.Update(p.bytes_done, p.bytes_total, p.files_done, p.files_total);
      });
  meter.Finish();
  if (!summary.ok()) return FailBackup(summary.status(), /*remote=*/false);
  return PrintSummary(args, dir, dest, summary->files, summary->bytes, summary->verified,
                      meter.elapsed_seconds());
}

}  // namespace walrus
