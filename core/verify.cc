#include "core/verify.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/format.h"
#include "core/log_reader.h"
#include "core/segment.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus {

std::string VerifyReport::Describe() const {
  if (outcome == kClean) {
    std::string range = first_index.has_value()
                            ? absl::StrCat("entries ", *first_index, " to ", *last_index)
                            : "no entries";
    return absl::StrCat("clean: ", segments, " segments, ", records, " records, ", range);
  }
  LogDamage damage;
  damage.kind = outcome == kTornTail ? LogDamage::kTornTail : LogDamage::kCorrupt;
  damage.file = file;
  damage.offset = offset;
  damage.reason = reason;
  damage.affected_from = affected_from;
  damage.affected_to = affected_to;
  return damage.Describe();
}

absl::StatusOr<VerifyReport> Verify(FileSystem* fs, const std::string& dir,
                                    const VerifyProgressFn& progress) {
  // The segments recovery reads: all of them, from the oldest.
  absl::StatusOr<LogSegments> segments = SelectSegments(fs, dir, std::nullopt);
  if (!segments.ok()) {
    if (segments.status().code() == absl::StatusCode::kNotFound) {
      return absl::NotFoundError(absl::StrCat("no WAL segments in ", dir));
    }
    return segments.status();
  }
  const size_t files = segments->listed.size();
  // Bytes before each file, for progress.
  std::vector<uint64_t> before(files + 1, 0);
  LogReadOptions options;
  options.keep_entries = false;
  // Outside the block below: the callback uses them while Replay runs.
  size_t progress_file = 0;
  uint64_t records = 0;
  if (progress) {
    for (size_t i = 0; i < files; ++i) {
      absl::StatusOr<uint64_t> size = fs->FileSize(segments->PathOf(i));
      before[i + 1] = before[i] + (size.ok() ? *size : 0);
    }
    progress(0, before.back(), 0, files);
    options.on_record = [&](const RecordPosition& pos, const Payload&) {
      if (pos.file_index != progress_file || ++records % 4096 == 0) {
        progress_file = pos.file_index;
        progress(before[pos.file_index] + pos.end, before.back(), pos.file_index, files);
      }
    };
  }
  absl::StatusOr<ReplayedLog> log = Replay(fs, *segments, options);
  if (!log.ok()) return log.status();
  if (progress) progress(before.back(), before.back(), files, files);

  VerifyReport report;
  report.segments = files;
  report.records = log->records;
  report.entries = log->entry_count();
  if (log->entry_count() > 0) {
    report.first_index = log->base_index + 1;
    report.last_index = log->last_index;
  }
  const LogDamage& damage = log->damage;
  if (damage.kind != LogDamage::kNone) {
    report.outcome =
        damage.kind == LogDamage::kTornTail ? VerifyReport::kTornTail : VerifyReport::kCorrupt;
    report.file = damage.file;
    report.offset = damage.offset;
    report.reason = damage.reason;
    report.affected_from = damage.affected_from;
    report.affected_to = damage.affected_to;
  }
  return report;
}

namespace {

absl::StatusOr<std::string> KeepBrokenCopy(FileSystem* fs, const std::string& path) {
  std::string copy = path + ".broken";
  for (int n = 1; fs->Exists(copy); ++n) copy = absl::StrCat(path, ".broken.", n);
  absl::StatusOr<std::string> bytes = ReadFileToString(fs, path);
  if (!bytes.ok()) return bytes.status();
  absl::StatusOr<std::unique_ptr<WritableFile>> out = fs->NewWritableFile(copy);
  if (!out.ok()) return out.status();
  if (absl::Status s = (*out)->Append(*bytes); !s.ok()) return s;
  if (absl::Status s = (*out)->Sync(); !s.ok()) return s;
  if (absl::Status s = (*out)->Close(); !s.ok()) return s;
  return copy;
}

}  // namespace

absl::StatusOr<RepairReport> Repair(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok()) return segments.status();
  // Hold every segment's lock for the whole repair: a live writer has them,
  // and nobody may start writing while we cut the tail.
  std::vector<std::unique_ptr<FileLock>> locks;
  for (const SegmentFile& segment : *segments) {
    absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(JoinPath(dir, segment.name));
    if (!lock.ok() && lock.status().code() != absl::StatusCode::kFailedPrecondition) {
      // Not a lock held by someone else: the file itself is the problem.
      return absl::Status(lock.status().code(),
                          absl::StrCat("refusing to repair ", dir, ": ", lock.status().message()));
    }
    if (!lock.ok()) {
      return InUseError(absl::StrCat("refusing to repair ", dir,
                                     ": it is in use by a live process (", lock.status().message(),
                                     ")"));
    }
    locks.push_back(std::move(*lock));
  }
  absl::StatusOr<VerifyReport> verified = Verify(fs, dir);
  if (!verified.ok()) return verified.status();
  RepairReport report;
  report.before = *verified;
  if (verified->outcome == VerifyReport::kClean) return report;
  if (verified->outcome == VerifyReport::kCorrupt) {
    return absl::DataLossError(
        absl::StrCat("refusing to repair: ", verified->Describe(),
                     ". Corruption is not a torn write; truncating would drop synced entries"));
  }
  const std::string& path = verified->file;
  absl::StatusOr<uint64_t> size = fs->FileSize(path);
  if (!size.ok()) return size.status();
  absl::StatusOr<std::string> copy = KeepBrokenCopy(fs, path);
  if (!copy.ok()) return copy.status();
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs->OpenWritableFile(path, 0);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Truncate(verified->offset); !s.ok()) return s;
  // Zeros from the cut on, and the segment keeps its preallocated size.
  if (absl::Status s = (*file)->Preallocate(*size); !s.ok()) return s;
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  if (absl::Status s = (*file)->Close(); !s.ok()) return s;
  if (absl::Status s = fs->SyncDir(dir); !s.ok()) return s;
  report.repaired = true;
  report.file = path;
  report.truncated_at = verified->offset;
  report.bytes_dropped = *size - verified->offset;
  report.broken_copy = *copy;
  return report;
}

}  // namespace walrus
