// Point-in-time backups of a WAL directory.
//
// BackupWriter builds the copy: every byte goes to "<dest>.tmp", each file is
// fsynced, the copy is checked (Verify must find it clean and, if asked, its
// entries must reach a given index), then the directory is fsynced, renamed
// to <dest> and the parent fsynced. A crash or an error at any point leaves
// no <dest> (at most a <dest>.tmp that the next backup removes), never a
// partial backup under the real name. walrusctl's online backup feeds it the
// chunks of the Backup RPC; OfflineBackup feeds it from a directory.
//
// OfflineBackup is etcd's method for a directory that a live writer may
// own: it opens every segment file (an open descriptor keeps reading a file
// even if it is unlinked later) and takes the OFD lock of every file it can
// (the released ones; the writer holds the rest), so walrusd's purge stops at
// them instead of deleting them; reads every file to its end; and takes the
// last segment only up to its last valid record: whatever follows it was not
// yet synced when read (an in-progress or torn tail) and is left out. Every
// entry acknowledged before the backup started is therefore in the copy.
//
// Thread-safety: a BackupWriter has one owner. OfflineBackup is thread-safe.
#ifndef WALRUS_CORE_BACKUP_H_
#define WALRUS_CORE_BACKUP_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/fs.h"
#include "core/verify.h"

namespace walrus {

struct BackupProgress {
  uint64_t bytes_done = 0;
  uint64_t bytes_total = 0;  // may grow while the last file is read
  uint64_t files_done = 0;
  uint64_t files_total = 0;
};
using BackupProgressFn = std::function<void(const BackupProgress&)>;

class BackupWriter {
 public:
  // Starts a backup into `dest`. ALREADY_EXISTS (nothing changed) if `dest`
  // exists; a leftover "<dest>.tmp" of an interrupted backup is removed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<BackupWriter>> Begin(FileSystem* fs,
                                                                           const std::string& dest);
  // Removes "<dest>.tmp" unless Commit() succeeded.
  ~BackupWriter();
  BackupWriter(const BackupWriter&) = delete;
  BackupWriter& operator=(const BackupWriter&) = delete;

  // Starts the next file. INVALID_ARGUMENT unless `name` is a segment name
  // (core/format.h) whose sequence number follows the previous file's.
  // REQUIRES: no file open.
  [[nodiscard]] absl::Status OpenFile(const std::string& name);
  // Appends to the open file. INVALID_ARGUMENT unless `offset` is the number
  // of bytes written to it so far (chunks arrive in order, none missing).
  [[nodiscard]] absl::Status Write(uint64_t offset, absl::string_view data);
  // fsyncs and closes the open file. INVALID_ARGUMENT if `expected_size` is
  // given and differs from what was written.
  [[nodiscard]] absl::Status CloseFile(std::optional<uint64_t> expected_size = std::nullopt);
  // Cuts the last (closed) file at the end of its last valid record, dropping
  // a torn or in-progress tail and preallocated zeros. Returns the new size.
  // DATA_LOSS if a file before the last is damaged; ABORTED if the last one
  // is damaged in a way a torn write does not explain (real corruption, or
  // a read that raced the writer: RewriteLastFile() and copy it again).
  [[nodiscard]] absl::StatusOr<uint64_t> TrimLastFile();
  // Empties the last (closed) file and opens it again for writing at 0.
  [[nodiscard]] absl::Status RewriteLastFile();

  // Checks the copy and publishes it as `dest` (see the file comment).
  // DATA_LOSS (and no `dest`) if Verify finds it anything but clean, or if
  // `must_hold_index` is set and the copy's last entry is below it.
  [[nodiscard]] absl::StatusOr<VerifyReport> Commit(std::optional<uint64_t> must_hold_index);

  uint64_t bytes_written() const { return bytes_written_; }

 private:
  BackupWriter(FileSystem* fs, std::string dest);

  FileSystem* const fs_;
  const std::string dest_;
  const std::string tmp_;
  std::vector<std::string> files_;  // names, in order
  std::unique_ptr<WritableFile> open_;
  uint64_t bytes_written_ = 0;
  bool committed_ = false;
};

struct BackupSummary {
  std::string dest;
  uint64_t files = 0;
  uint64_t bytes = 0;
  uint64_t locked_files = 0;  // files this backup held locked (released ones)
  VerifyReport verified;
};

// Backs up the WAL directory `dir` into `dest` by the method in the file
// comment. `progress` (may be empty) is called after every chunk.
// FAILED_PRECONDITION if the directory changed under the backup in a way it
// cannot follow (a segment other than the oldest vanished); DATA_LOSS if the
// log is corrupt; ALREADY_EXISTS if `dest` exists; INVALID_ARGUMENT if `dest`
// lies inside `dir` (it would become part of the log). Nothing is left at `dest`
// on error.
[[nodiscard]] absl::StatusOr<BackupSummary> OfflineBackup(FileSystem* fs, const std::string& dir,
                                                          const std::string& dest,
                                                          const BackupProgressFn& progress = {});

// Bytes per read while copying.
inline constexpr size_t kBackupChunkBytes = 1 << 20;

}  // namespace walrus

#endif  // WALRUS_CORE_BACKUP_H_
