// The purge policy: deletes released segments (etcd's purgeFile with
// --max-wals), so a log that Raft keeps releasing does not fill the disk.
//
// A segment is *released* once the writer dropped its lock on it
// (Wal::ReleaseTo): every segment whose sequence number is below the writer's
// oldest locked one. PurgeReleased deletes released segments oldest first,
// keeping the newest `retain_released` of them, and deletes a file only
//  - while it holds the file's OFD lock itself (TryLockFile): a file another
//    process holds locked (an offline backup, etcd's tools, a writer) is
//    never deleted;
//  - if no in-process pin (core/segment_pins.h) covers it.
// The first file it may not delete stops it: the segments kept are always a
// contiguous run up to the tail (no holes), which is what Open and a
// backup's reader need. The report says which file blocked it and why, so a
// stuck backup shows up as a log line and a metric instead of a disk that
// silently fills. Deletions are made durable with one fsync of the
// directory.
//
// Thread-safety: PurgeReleased may run on any thread, concurrently with the
// writer appending to the same directory (it touches released files only);
// two purges of one directory must not run at once.
#ifndef WALRUS_CORE_PURGE_H_
#define WALRUS_CORE_PURGE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/fs.h"
#include "core/segment.h"
#include "core/segment_pins.h"

namespace walrus {

// Released segments kept by default, as etcd's --max-wals.
inline constexpr uint64_t kDefaultRetainReleasedSegments = 5;

struct PurgePolicy {
  // The writer's oldest locked segment: everything below it is released.
  uint64_t first_unreleased_seq = 0;
  // Released segments to keep, newest first (etcd's --max-wals). 0 deletes
  // every released segment at once.
  uint64_t retain_released = kDefaultRetainReleasedSegments;
};

// What stopped a purge before it deleted everything the policy allows.
struct PurgeBlocker {
  std::string file;    // path of the oldest segment that could not be deleted
  std::string holder;  // "pinned by backup #3" or "locked by another process ..."
};

struct PurgeReport {
  std::vector<SegmentFile> purged;  // oldest first
  uint64_t purged_bytes = 0;
  uint64_t released = 0;  // released segments present before the purge
  std::optional<PurgeBlocker> blocked;

  // One line for a log: what was deleted, what is kept, what blocks.
  std::string Describe() const;
};

// Applies `policy` to the segments of `dir`. `pins` may be null (nothing is
// pinned in-process). An error status means a deletion or the directory
// fsync failed: the files named in `*partial` (if not null) were unlinked
// before it, and the log is still contiguous.
[[nodiscard]] absl::StatusOr<PurgeReport> PurgeReleased(FileSystem* fs, const std::string& dir,
                                                        const PurgePolicy& policy,
                                                        SegmentPins* pins,
                                                        PurgeReport* partial = nullptr);

}  // namespace walrus

#endif  // WALRUS_CORE_PURGE_H_
