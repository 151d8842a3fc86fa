#include "core/segment.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace walrus {

absl::StatusOr<std::vector<SegmentFile>> ListSegments(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<std::string>> names = fs->ListDir(dir);
  if (!names.ok()) return names.status();
  std::vector<SegmentFile> segments;
  for (const std::string& name : *names) {
    std::optional<SegmentId> id = ParseSegmentName(name);
    if (!id.has_value()) continue;
    // A directory or a FIFO under a segment's name would fail or block every
    // read; say so instead.
    absl::StatusOr<bool> regular = fs->IsRegularFile(JoinPath(dir, name));
    if (!regular.ok() && regular.status().code() != absl::StatusCode::kNotFound) {
      return regular.status();
    }
    if (regular.ok() && !*regular) {
      return absl::FailedPreconditionError(absl::StrCat(
          "wal: ", JoinPath(dir, name), " has a segment's name but is not a regular file"));
    }
    segments.push_back({*id, name});
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
