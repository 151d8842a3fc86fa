#include "server/recovery.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/segment.h"
#include "core/verify.h"

namespace walrus {

absl::StatusOr<std::unique_ptr<Wal>> RecoverWal(const std::string& dir,
                                                const WalOptions& wal_options, bool read_only,
                                                RecoverySummary* summary) {
  const auto started = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  FileSystem* fs = wal_options.fs;
  *summary = RecoverySummary();
  // A listing that fails (a segment name on something other than a file,
  // an I/O error) must stop the start, not pass for "no WAL yet".
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok() && segments.status().code() != absl::StatusCode::kNotFound) {
    return segments.status();
  }
  if (!segments.ok() || segments->empty()) return std::unique_ptr<Wal>();  // waits for Create
  summary->existed = true;
  // Read what the device holds, not what the page cache kept from a failed
  // fdatasync (core/segment.h). On every start: the process before may have
  // died without a chance to record that it failed, and dropping clean pages
  // costs one read of the log, which recovery does anyway.
  if (absl::Status s = DropCachedSegments(fs, dir); !s.ok()) return s;

  if (read_only) {
    // No writer: only say what state the log is in.
    absl::StatusOr<VerifyReport> report = Verify(fs, dir);
    if (!report.ok()) return report.status();
    summary->segments = report->segments;
    if (report->outcome != VerifyReport::kClean) summary->repair_detail = report->Describe();
    summary->seconds = seconds();
    return std::unique_ptr<Wal>();
  }

  std::unique_ptr<Wal> wal;
  absl::StatusOr<ReadAllResult> read;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::unique_ptr<Wal>> opened = Wal::OpenForRecovery(dir, wal_options);
    if (!opened.ok()) return opened.status();
    wal = std::move(*opened);
    read = wal->ReadAll();
    if (read.ok() || attempt > 0 || !IsTornTail(read.status())) break;
    wal.reset();  // Repair takes the segment locks itself
    absl::StatusOr<RepairReport> repaired = Repair(fs, dir);
    if (!repaired.ok()) return repaired.status();
    summary->repaired = true;
    summary->repair_detail =
        absl::StrCat(repaired->file, " cut at offset ", repaired->truncated_at, " (",
                     repaired->before.reason, "), original kept as ", repaired->broken_copy);
  }
  if (!read.ok()) {
    if (read.status().code() != absl::StatusCode::kDataLoss) return read.status();
    return absl::DataLossError(absl::StrCat(
        "refusing to start: ", read.status().message(),
        ". Inspect with `walrusctl verify`, restore from a backup, or start with --read-only "
        "to serve what can be read"));
  }
  const LogState& log = wal->model().synced();
  summary->segments = wal->locked_segments().size();
  summary->first_index =
      log.terms.empty() ? log.newest_marker().index + 1 : log.terms.first_index();
  summary->last_index = log.last_index();
  summary->state = log.hard_state;
  summary->seconds = seconds();
  return wal;
}

}  // namespace walrus
