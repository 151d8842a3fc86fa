#include "client/dir_status.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/log_reader.h"
#include "core/segment.h"

namespace walrus {

absl::StatusOr<v1::StatusResponse> ReadDirStatus(FileSystem* fs, const std::string& dir) {
  // One listing for the per-segment lines and the read, so they agree even
  // while a live writer cuts new segments.
  absl::StatusOr<LogSegments> segments = SelectSegments(fs, dir, std::nullopt);
  if (!segments.ok()) {
    if (segments.status().code() != absl::StatusCode::kNotFound) return segments.status();
    return absl::NotFoundError(absl::StrCat("no WAL segments in ", dir));
  }
  v1::StatusResponse status;
  status.set_offline(true);
  status.set_created(true);
  status.set_data_dir(dir);
  for (const SegmentFile& file : segments->listed) {
    const std::string path = JoinPath(dir, file.name);
    v1::SegmentStatus* segment = status.add_segments();
    segment->set_name(file.name);
    segment->set_seq(file.id.seq);
    segment->set_first_index(file.id.index);
    if (absl::StatusOr<uint64_t> size = fs->FileSize(path); size.ok()) {
      segment->set_size_bytes(*size);
    }
    // Probing takes the lock for an instant and drops it at once.
    absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(path);
    segment->set_locked(!lock.ok() &&
                        lock.status().code() == absl::StatusCode::kFailedPrecondition);
  }
  if (absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir); names.ok()) {
    uint64_t total = 0;
    for (const std::string& name : *names) {
      if (absl::StatusOr<uint64_t> size = fs->FileSize(JoinPath(dir, name)); size.ok()) {
        total += *size;
      }
    }
    status.set_total_bytes(total);
  }

  // The log as recovery resolves it: what walrusd would serve.
  LogReadOptions options;
  options.keep_entries = false;
  options.on_record = [&](const RecordPosition& pos, const Payload& payload) {
    v1::SegmentStatus* segment = status.mutable_segments(static_cast<int>(pos.file_index));
    switch (payload.type) {
      case RecordType::kEntry: {
        const uint64_t index = payload.entry.index();
        if (segment->entries() == 0) segment->set_first_entry(index);
        segment->set_entries(segment->entries() + 1);
        segment->set_last_entry(index);
        break;
      }
      case RecordType::kSnapshot: {
        v1::SnapshotMarker* marker = status.add_snapshots();
        marker->set_index(payload.snapshot.index());
        marker->set_term(payload.snapshot.term());
        break;
      }
      default:
        break;
    }
  };
  absl::StatusOr<ReplayedLog> log = Replay(fs, *segments, options);
  if (!log.ok()) return log.status();
  if (log->damage.kind != LogDamage::kNone) status.set_damage(log->damage.Describe());
  *status.mutable_hard_state() = log->state;
  const walpb::Snapshot last = log->last_snapshot();
  status.set_snapshot_index(last.index());
  status.set_snapshot_term(last.term());
  status.set_first_index(log->base_index + 1);
  status.set_last_index(log->last_index);
  status.set_durable_segment(segments->listed.back().id.seq);
  status.set_durable_offset(log->end_offset);
  return status;
}

}  // namespace walrus
