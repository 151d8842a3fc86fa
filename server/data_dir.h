// Exclusive ownership of a data directory by one walrusd.
#ifndef WALRUS_SERVER_DATA_DIR_H_
#define WALRUS_SERVER_DATA_DIR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/fs.h"

namespace walrus {

// Holds an open-file-description lock on DIR/walrusd.lock for its lifetime,
// with the holder (pid, host, start time, listeners) written in the file so a
// second daemon can say who has the directory.
class DataDirLock {
 public:
  // Creates the directory (and missing parents) if needed, each made durable
  // in its parent, and fsyncs the data directory's parent on every start
  // (best effort if it existed): a WAL created inside is only as durable as
  // the directory's own entry.
  // FAILED_PRECONDITION naming the directory and the holder if another
  // process has it. `fs` must outlive the lock.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<DataDirLock>> Acquire(
      FileSystem* fs, const std::string& data_dir, const std::string& lock_path,
      const std::string& listeners);

 private:
  explicit DataDirLock(std::unique_ptr<FileLock> lock) : lock_(std::move(lock)) {}
  std::unique_ptr<FileLock> lock_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_DATA_DIR_H_
