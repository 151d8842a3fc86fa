// Prepares the next segment file ahead of time, so a cut does not wait for a
// file to be created and preallocated (etcd's filePipeline).
//
// Files are named "<n>.tmp" in the WAL directory, created, preallocated to the
// segment size and handed out by Take(). A crash leaves at most a stray .tmp
// file, which readers ignore and the writer removes on open.
#ifndef WALRUS_CORE_SEGMENT_PREPARER_H_
#define WALRUS_CORE_SEGMENT_PREPARER_H_

#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/fs.h"

namespace walrus {

struct PreparedSegment {
  std::string path;
  std::unique_ptr<WritableFile> file;
};

class SegmentPreparer {
 public:
  // With `background`, one thread keeps a file ready; without, Take() prepares
  // one on the caller's thread (deterministic, for crash tests).
  SegmentPreparer(FileSystem* fs, std::string dir, uint64_t segment_size, bool background);
  // Stops the thread and removes a prepared file that was never taken.
  ~SegmentPreparer();

  SegmentPreparer(const SegmentPreparer&) = delete;
  SegmentPreparer& operator=(const SegmentPreparer&) = delete;

  // A fresh preallocated file, or the error of preparing it (the next Take()
  // tries again). Thread-safe.
  [[nodiscard]] absl::StatusOr<PreparedSegment> Take();

 private:
  absl::StatusOr<PreparedSegment> Prepare();
  void Run();

  FileSystem* const fs_;
  const std::string dir_;
  const uint64_t segment_size_;
  uint64_t counter_ = 0;  // alternates names so a taken file never collides

  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<absl::StatusOr<PreparedSegment>> ready_;  // guarded by mu_
  bool stopping_ = false;                                 // guarded by mu_
  std::thread thread_;
};

}  // namespace walrus

#endif  // WALRUS_CORE_SEGMENT_PREPARER_H_
