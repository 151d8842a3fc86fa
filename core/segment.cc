#include "core/segment.h"

#include <algorithm>

namespace walrus {

absl::StatusOr<std::vector<SegmentFile>> ListSegments(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
  if (!names.ok()) return names.status();
  std::vector<SegmentFile> segments;
  for (const std::string& name : *names) {
    if (std::optional<SegmentId> id = ParseSegmentName(name)) {
      segments.push_back({*id, name});
    }
  }
  std::sort(segments.begin(), segments.end(),
            [](const SegmentFile& a, const SegmentFile& b) { return a.id.seq < b.id.seq; });
  return segments;
}

absl::Status DropCachedSegments(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok()) return segments.status();
  for (const SegmentFile& segment : *segments) {
    if (absl::Status s = fs->DropCachedPages(JoinPath(dir, segment.name)); !s.ok()) return s;
  }
  return absl::OkStatus();
}

bool WalExists(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  return segments.ok() && !segments->empty();
}

std::optional<size_t> SearchIndex(const std::vector<SegmentFile>& segments, uint64_t index) {
  for (size_t i = segments.size(); i-- > 0;) {
    if (segments[i].id.index <= index) return i;
  }
  return std::nullopt;
}

bool IsContiguous(const std::vector<SegmentFile>& segments, size_t from) {
  for (size_t i = from + 1; i < segments.size(); ++i) {
    if (segments[i].id.seq != segments[i - 1].id.seq + 1) return false;
  }
  return true;
}

}  // namespace walrus
