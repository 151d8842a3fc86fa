#include "core/verify.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/decoder.h"
#include "core/format.h"
#include "core/payload.h"
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
  std::string affected =
      affected_to.has_value()
          ? absl::StrCat("entries ", affected_from, " to ", *affected_to, " affected")
          : absl::StrCat("entries from index ", affected_from, " on affected");
  return absl::StrCat(outcome == kTornTail ? "torn tail (repairable)" : "corruption", ": ", file,
                      " at offset ", offset, ": ", reason, "; ", affected);
}

absl::StatusOr<VerifyReport> Verify(FileSystem* fs, const std::string& dir,
                                    const VerifyProgressFn& progress) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok()) return segments.status();
  if (segments->empty()) return absl::NotFoundError(absl::StrCat("no WAL segments in ", dir));
  VerifyReport report;
  report.segments = segments->size();
  if (!IsContiguous(*segments, 0)) {
    for (size_t i = 1; i < segments->size(); ++i) {
      if ((*segments)[i].id.seq != (*segments)[i - 1].id.seq + 1) {
        report.outcome = VerifyReport::kCorrupt;
        report.file = JoinPath(dir, (*segments)[i].name);
        report.reason = absl::StrCat("segment sequence gap before ", (*segments)[i].name);
        report.affected_from = (*segments)[i - 1].id.index;
        report.affected_to = (*segments)[i].id.index - 1;
        return report;
      }
    }
  }
  std::vector<std::string> paths;
  for (const SegmentFile& segment : *segments) paths.push_back(JoinPath(dir, segment.name));
  // Bytes before each file, for progress.
  std::vector<uint64_t> before(paths.size() + 1, 0);
  if (progress) {
    for (size_t i = 0; i < paths.size(); ++i) {
      absl::StatusOr<uint64_t> size = fs->FileSize(paths[i]);
      before[i + 1] = before[i] + (size.ok() ? *size : 0);
    }
    progress(0, before.back(), 0, paths.size());
  }
  size_t progress_file = 0;

  Decoder decoder(fs, paths);
  std::optional<std::string> metadata;
  std::string record_error;
  RecordPosition bad_position;
  Payload payload;
  uint64_t last_snapshot = 0;
  absl::Status status =
      decoder.Decode([&](const RecordView& record, const RecordPosition& pos) -> absl::Status {
        ++report.records;
        if (progress && (pos.file_index != progress_file || report.records % 4096 == 0)) {
          progress_file = pos.file_index;
          progress(before[pos.file_index] + pos.end, before.back(), pos.file_index, paths.size());
        }
        record_error = ParsePayload(record, &payload);
        if (record_error.empty() && payload.type == RecordType::kSnapshot) {
          last_snapshot = std::max(last_snapshot, payload.snapshot.index());
        }
        if (record_error.empty() && payload.type == RecordType::kEntry &&
            report.last_index.has_value() &&
            payload.entry.index() > std::max(*report.last_index, last_snapshot) + 1) {
          // An entry may replace earlier ones (truncation), never skip ahead.
          record_error =
              absl::StrCat("entry index ", payload.entry.index(), " leaves a gap after index ",
                           std::max(*report.last_index, last_snapshot));
        }
        if (record_error.empty() && payload.type == RecordType::kEntry) {
          ++report.entries;
          if (!report.first_index.has_value()) report.first_index = payload.entry.index();
          report.last_index = payload.entry.index();
        }
        if (record_error.empty() && payload.type == RecordType::kMetadata) {
          if (metadata.has_value() && *metadata != payload.metadata) {
            record_error = "conflicting metadata";
          }
          metadata = std::string(payload.metadata);
        }
        if (!record_error.empty()) {
          bad_position = pos;
          return absl::DataLossError(record_error);
        }
        return absl::OkStatus();
      });

  auto set_damage = [&](VerifyReport::Outcome outcome, size_t file_index, uint64_t offset,
                        std::string reason) {
    report.outcome = outcome;
    report.file = paths[file_index];
    report.offset = offset;
    report.reason = std::move(reason);
    report.affected_from = report.last_index.value_or(0) + 1;
    if (file_index + 1 < segments->size()) {
      report.affected_to = (*segments)[file_index + 1].id.index - 1;
    }
  };
  if (!record_error.empty()) {
    set_damage(VerifyReport::kCorrupt, bad_position.file_index, bad_position.offset, record_error);
    return report;
  }
  if (!status.ok()) return status;
  if (progress) progress(before.back(), before.back(), paths.size(), paths.size());
  const LogEnd& end = decoder.end();
  if (end.kind != LogEnd::kClean) {
    set_damage(end.kind == LogEnd::kTornTail ? VerifyReport::kTornTail : VerifyReport::kCorrupt,
               end.file_index, end.offset, end.reason);
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
      return absl::FailedPreconditionError(absl::StrCat("refusing to repair ", dir,
                                                        ": it is in use by a live process (",
                                                        lock.status().message(), ")"));
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
