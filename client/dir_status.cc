#include "client/dir_status.h"

#include <algorithm>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/decoder.h"
#include "core/payload.h"
#include "core/segment.h"

namespace walrus {

absl::StatusOr<v1::StatusResponse> ReadDirStatus(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok()) return segments.status();
  if (segments->empty()) return absl::NotFoundError(absl::StrCat("no WAL segments in ", dir));
  v1::StatusResponse status;
  status.set_offline(true);
  status.set_created(true);
  status.set_data_dir(dir);
  std::vector<std::string> paths;
  for (const SegmentFile& file : *segments) {
    const std::string path = JoinPath(dir, file.name);
    paths.push_back(path);
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

  Decoder decoder(fs, paths);
  Payload payload;
  bool any_entry = false;
  absl::Status decoded =
      decoder.Decode([&](const RecordView& record, const RecordPosition& pos) -> absl::Status {
        if (std::string why = ParsePayload(record, &payload); !why.empty()) {
          return absl::DataLossError(
              absl::StrCat(paths[pos.file_index], " at offset ", pos.offset, ": ", why));
        }
        v1::SegmentStatus* segment = status.mutable_segments(static_cast<int>(pos.file_index));
        switch (payload.type) {
          case RecordType::kEntry: {
            const uint64_t index = payload.entry.index();
            if (segment->entries() == 0) segment->set_first_entry(index);
            segment->set_entries(segment->entries() + 1);
            segment->set_last_entry(index);
            if (!any_entry) status.set_first_index(index);
            any_entry = true;
            status.set_last_index(index);
            break;
          }
          case RecordType::kState:
            *status.mutable_hard_state() = payload.state;
            break;
          case RecordType::kSnapshot: {
            v1::SnapshotMarker* marker = status.add_snapshots();
            marker->set_index(payload.snapshot.index());
            marker->set_term(payload.snapshot.term());
            status.set_snapshot_index(payload.snapshot.index());
            status.set_snapshot_term(payload.snapshot.term());
            break;
          }
          default:
            break;
        }
        return absl::OkStatus();
      });
  if (!decoded.ok() && decoded.code() != absl::StatusCode::kDataLoss) return decoded;
  if (!decoded.ok()) {
    status.set_damage(std::string(decoded.message()));
  } else if (decoder.end().kind != LogEnd::kClean) {
    const LogEnd& end = decoder.end();
    status.set_damage(absl::StrCat(end.kind == LogEnd::kTornTail ? "torn tail" : "corruption",
                                   " in ", paths[end.file_index], " at offset ", end.offset, ": ",
                                   end.reason));
  }
  if (!any_entry) {
    status.set_first_index(status.snapshot_index() + 1);
    status.set_last_index(status.snapshot_index());
  }
  status.set_durable_segment(segments->back().id.seq);
  status.set_durable_offset(decoder.last_valid_end());
  return status;
}

}  // namespace walrus
