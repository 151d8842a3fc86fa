// Finding segment files in a WAL directory (etcd's readWALNames,
// searchIndex and isValidSeq).
#ifndef WALRUS_CORE_SEGMENT_H_
#define WALRUS_CORE_SEGMENT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/format.h"
#include "core/fs.h"

namespace walrus {

struct SegmentFile {
  SegmentId id;
  std::string name;
};

// The segment files of `dir` in sequence order; other names are ignored.
// NOT_FOUND if `dir` does not exist; FAILED_PRECONDITION if a segment name
// belongs to something other than a regular file (a directory, a FIFO).
[[nodiscard]] absl::StatusOr<std::vector<SegmentFile>> ListSegments(FileSystem* fs,
                                                                    const std::string& dir);

// Drops the cached pages of every segment file of `dir`
// (FileSystem::DropCachedPages), so the next reads of them come from the
// device. A recovery does this before it reads: after a failed fdatasync the
// page cache can hold "clean" pages the disk never got, and a log rebuilt on
// them loses what follows once the cache lets them go.
[[nodiscard]] absl::Status DropCachedSegments(FileSystem* fs, const std::string& dir);

// True if `dir` holds at least one segment file.
bool WalExists(FileSystem* fs, const std::string& dir);

// The position of the last segment whose first index is <= `index`: the
// segment a reader starting after `index` must begin with.
std::optional<size_t> SearchIndex(const std::vector<SegmentFile>& segments, uint64_t index);

// True if the sequence numbers from `from` on are consecutive.
bool IsContiguous(const std::vector<SegmentFile>& segments, size_t from);

}  // namespace walrus

#endif  // WALRUS_CORE_SEGMENT_H_
