#include "core/inspect.h"

#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/payload.h"
#include "core/segment.h"

namespace walrus {
namespace {

// Probing takes the lock for an instant and drops it at once.
bool HeldByAnother(FileSystem* fs, const std::string& path) {
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(path);
  return !lock.ok() && lock.status().code() == absl::StatusCode::kFailedPrecondition;
}

uint64_t DirBytes(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
  if (!names.ok()) return 0;
  uint64_t total = 0;
  for (const std::string& name : *names) {
    if (absl::StatusOr<uint64_t> size = fs->FileSize(JoinPath(dir, name)); size.ok()) {
      total += *size;
    }
  }
  return total;
}

}  // namespace

absl::StatusOr<DirInspection> InspectDir(FileSystem* fs, const std::string& dir) {
  // One listing for the per-segment facts and the read, so they agree even
  // while a live writer cuts new segments.
  absl::StatusOr<LogSegments> segments = SelectSegments(fs, dir, std::nullopt);
  if (!segments.ok()) {
    if (segments.status().code() != absl::StatusCode::kNotFound) return segments.status();
    return absl::NotFoundError(absl::StrCat("no WAL segments in ", dir));
  }
  DirInspection inspection;
  inspection.dir = dir;
  for (const SegmentFile& file : segments->listed) {
    const std::string path = JoinPath(dir, file.name);
    SegmentInspection& segment = inspection.segments.emplace_back();
    segment.name = file.name;
    segment.seq = file.id.seq;
    segment.first_index = file.id.index;
    if (absl::StatusOr<uint64_t> size = fs->FileSize(path); size.ok()) segment.size_bytes = *size;
    segment.locked = HeldByAnother(fs, path);
  }
  inspection.total_bytes = DirBytes(fs, dir);

  LogReadOptions options;
  options.keep_entries = false;
  options.on_record = [&](const RecordPosition& pos, const Payload& payload) {
    if (payload.type != RecordType::kEntry) return;
    SegmentInspection& segment = inspection.segments[segments->first + pos.file_index];
    const uint64_t index = payload.entry.index();
    if (segment.entries == 0) segment.first_entry = index;
    ++segment.entries;
    segment.last_entry = index;
  };
  absl::StatusOr<ReplayedLog> log = Replay(fs, *segments, options);
  if (!log.ok()) return log.status();
  inspection.first_index = log->base_index + 1;
  inspection.last_index = log->last_index;
  inspection.hard_state = log->state;
  for (const ReplayedLog::MarkerRead& marker : log->markers) {
    inspection.snapshots.push_back(
        {marker.snapshot.index(), marker.snapshot.term(), segments->SeqOf(marker.at.file_index)});
  }
  inspection.end = {segments->listed.back().id.seq, log->end_offset};
  inspection.damage = log->damage;
  return inspection;
}

}  // namespace walrus
