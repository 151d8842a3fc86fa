#include "client/walrusctl/backup_commands.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/walrusctl/progress.h"
#include "core/backup.h"
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
    std::printf("%s\n", cli::JsonObject()
                            .String("source", source)
                            .String("dest", dest)
                            .Number("files", files)
                            .Number("bytes", bytes)
                            .Number("first_index", verified.first_index.value_or(0))
                            .Number("last_index", verified.last_index.value_or(0))
                            .Number("entries", verified.entries)
                            .String("verified", "clean")
                            .Double("seconds", seconds, 3)
                            .Double("bytes_per_second", rate, 0)
                            .Build()
                            .c_str());
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
  ProgressMeter meter("backup");
  BackupOptions options;
  options.max_chunk_bytes = static_cast<uint32_t>(std::min<uint64_t>(chunk_bytes, UINT32_MAX));
  options.progress = [&](const BackupProgress& p) {
    meter.Update(p.bytes_done, p.bytes_total, p.files_done, p.files_total);
  };
  BackupSide failed_side = BackupSide::kLocal;
  absl::StatusOr<BackupReply> reply = client->Backup(dest, options, &failed_side);
  meter.Finish();
  if (!reply.ok()) return FailBackup(reply.status(), failed_side == BackupSide::kRemote);
  return PrintSummary(args, client->target(), dest, reply->files, reply->bytes, reply->verified,
                      meter.elapsed_seconds());
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
