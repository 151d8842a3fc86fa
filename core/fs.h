// The file-system interface the WAL does all of its I/O through.
//
// Two implementations. The product has one, PosixFs() (core/posix_fs.cc). The
// testing library has MemFileSystem (tests/support/mem_fs.h), an in-memory file
// system that remembers what was synced and can simulate a crash that drops or
// tears unsynced data, or fail a write or an fsync with EIO or ENOSPC; every
// durability claim of the WAL is tested against it. Power loss of the real
// walrusd is tested below this interface instead: PosixFs on a FUSE file system
// that drops unsynced data (tests/powerloss).
//
// Errors: every call returns an absl::Status built by ErrnoToStatus() (POSIX) or
// its in-memory equivalent, so the codes are the same across implementations:
// ENOSPC/EDQUOT -> RESOURCE_EXHAUSTED, ENOENT -> NOT_FOUND, EEXIST ->
// ALREADY_EXISTS, EACCES/EPERM -> PERMISSION_DENIED, a held lock ->
// FAILED_PRECONDITION, anything else (EIO, ...) -> UNAVAILABLE. The errno is kept
// as a payload (ErrnoOf()).
#ifndef WALRUS_CORE_FS_H_
#define WALRUS_CORE_FS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walrus {

// A file open for writing at an explicit offset. Not thread-safe: one owner.
class WritableFile {
 public:
  virtual ~WritableFile() = default;

  // Writes all of `data` at Offset() and advances it. Short writes are retried
  // until done; on error the bytes at [Offset(), Offset()+size) are unspecified
  // and Offset() is unchanged.
  [[nodiscard]] virtual absl::Status Append(absl::string_view data) = 0;

  // fdatasync(2): makes every byte written so far, and the file size, durable.
  // After a failure the state of the page cache is unknown (Linux may have
  // dropped the dirty pages and cleared the error), so callers must never
  // retry it: they go fail-stop instead.
  [[nodiscard]] virtual absl::Status Sync() = 0;

  // Reserves `size` bytes on disk and extends the file to that size (fallocate
  // mode 0), so later appends inside it need no allocation. Contents read as 0.
  [[nodiscard]] virtual absl::Status Preallocate(uint64_t size) = 0;

  // Writes `len` zero bytes at `offset` (pwrite(2) of zeros), growing the
  // file if the range ends past its size; Offset() does not move. Unlike
  // Preallocate, the blocks end up written on disk, so a later append and
  // fdatasync into them need not commit an extent conversion as well. The
  // zeros are data like any other write: durable only after Sync().
  [[nodiscard]] virtual absl::Status WriteZeros(uint64_t offset, uint64_t len) = 0;

  // Pushes the dirty pages of [offset, offset+len) towards the device without
  // making anything durable (sync_file_range(2)): with `wait`, returns once
  // their writeback has finished; without, once it has started. Lets a
  // writer of many bytes keep few dirty pages in the page cache, so a later
  // fdatasync has little to flush. A hint only: OK if the file system cannot
  // (the default).
  [[nodiscard]] virtual absl::Status StartWriteback(uint64_t offset, uint64_t len, bool wait) {
    (void)offset;
    (void)len;
    (void)wait;
    return absl::OkStatus();
  }

  // Sets the file size to `size` and Offset() to `size`.
  [[nodiscard]] virtual absl::Status Truncate(uint64_t size) = 0;

  // Turns later Appends of at least `min_bytes` into direct I/O (O_DIRECT):
  // the bytes go from memory to the device in whole aligned blocks, without
  // being copied into the page cache (smaller appends stay buffered, so what
  // readers of a recent small write want is still cached). The last, partial
  // block is kept in memory and written again with the next direct append:
  // its bytes before Offset() unchanged, zeros after it, so a block torn by a
  // crash still holds every byte synced before. Durability is unchanged: only
  // Sync() makes the writes durable (the device's cache, the file's extents).
  // If a direct write is refused (an alignment the device does not take),
  // that append and the later ones are buffered. UNIMPLEMENTED if the file
  // system cannot (the default): appends stay buffered.
  [[nodiscard]] virtual absl::Status UseDirectIo(uint64_t min_bytes) {
    (void)min_bytes;
    return absl::UnimplementedError("direct I/O not supported by this file system");
  }
  // Whether large Appends go around the page cache now.
  virtual bool direct_io() const { return false; }

  virtual uint64_t Offset() const = 0;

  // How many directory entries name the file (st_nlink). 0 once it
  // was unlinked or renamed over: writes and syncs still succeed, into a file
  // no restart will find, so a writer checks this after each sync.
  // UNIMPLEMENTED if the file system cannot tell (the default).
  [[nodiscard]] virtual absl::StatusOr<uint64_t> LinkCount() {
    return absl::UnimplementedError("link count not supported by this file system");
  }

  // Closes the descriptor. Does not sync.
  [[nodiscard]] virtual absl::Status Close() = 0;
};

// A file open for reading. Thread-compatible.
class ReadableFile {
 public:
  virtual ~ReadableFile() = default;
  // Reads up to `n` bytes at `offset` into `scratch`; returns the number read
  // (less than n only at end of file).
  [[nodiscard]] virtual absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) = 0;
  [[nodiscard]] virtual absl::StatusOr<uint64_t> Size() = 0;
};

// An exclusive lock on one file, held until the object is destroyed. POSIX
// uses open-file-description locks (F_OFD_SETLK), the kind etcd takes on Linux:
// a second descriptor of the same file closing does not drop it (unlike POSIX
// record locks), and it conflicts with etcd's own locks on the same files.
class FileLock {
 public:
  virtual ~FileLock() = default;
  virtual const std::string& path() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  // Creates (or truncates) `path` with mode 0600 and opens it at offset 0.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(
      const std::string& path) = 0;
  // Opens an existing file for writing at `offset`.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritableFile(
      const std::string& path, uint64_t offset) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(
      const std::string& path) = 0;

  // Names (not paths) of the entries of `dir`, sorted, without "." and "..".
  [[nodiscard]] virtual absl::StatusOr<std::vector<std::string>> ListDir(
      const std::string& dir) = 0;
  // mkdir with mode 0700; ALREADY_EXISTS if it exists.
  [[nodiscard]] virtual absl::Status CreateDir(const std::string& dir) = 0;
  // Removes `path` and, if it is a directory, everything below it. OK if absent.
  [[nodiscard]] virtual absl::Status RemoveAll(const std::string& path) = 0;
  [[nodiscard]] virtual absl::Status RemoveFile(const std::string& path) = 0;
  // rename(2): atomic replacement of `to`. Durable only after SyncDir of the
  // parent directories.
  [[nodiscard]] virtual absl::Status Rename(const std::string& from, const std::string& to) = 0;
  // fsync(2) on a directory: makes creations, renames and removals of its
  // entries durable.
  [[nodiscard]] virtual absl::Status SyncDir(const std::string& dir) = 0;
  virtual bool Exists(const std::string& path) = 0;
  virtual bool IsDirectory(const std::string& path) = 0;
  // Whether `path` is a regular file (not a directory, FIFO, socket or
  // device). NOT_FOUND if it does not exist.
  [[nodiscard]] virtual absl::StatusOr<bool> IsRegularFile(const std::string& path) {
    if (!Exists(path)) return absl::NotFoundError(path);
    return !IsDirectory(path);
  }
  [[nodiscard]] virtual absl::StatusOr<uint64_t> FileSize(const std::string& path) = 0;

  // Drops the cached pages of the existing file `path` that are not dirty
  // (posix_fadvise POSIX_FADV_DONTNEED), so the next reads come from the
  // device. Why it matters: after a failed fdatasync Linux marks the pages it
  // could not write clean and keeps them, so a restart would read back bytes
  // the disk never got. An fsync first is no cure (it reports nothing for
  // those pages any more). Advice only: OK on a file system that caches
  // nothing apart from the device (the default).
  [[nodiscard]] virtual absl::Status DropCachedPages(const std::string& path) {
    (void)path;
    return absl::OkStatus();
  }

  // Takes an exclusive lock on the existing file `path` without waiting.
  // FAILED_PRECONDITION if another holder (this or another process) has it.
  [[nodiscard]] virtual absl::StatusOr<std::unique_ptr<FileLock>> TryLockFile(
      const std::string& path) = 0;
};

// The real file system. Thread-safe; a process-wide instance.
FileSystem* PosixFs();

// Reads the whole file into `*buffer`, reusing its memory: the buffer only
// grows (no zero-filling or page faults for every file of a long log). The
// returned view covers the file's bytes and lives as long as `*buffer`.
[[nodiscard]] absl::StatusOr<absl::string_view> ReadFileInto(FileSystem* fs,
                                                             const std::string& path,
                                                             std::string* buffer);
// Reads the whole file into memory.
[[nodiscard]] absl::StatusOr<std::string> ReadFileToString(FileSystem* fs, const std::string& path);

// Joins a directory and a name with one '/'.
std::string JoinPath(absl::string_view dir, absl::string_view name);
// The directory part of `path` ("." if none).
std::string ParentDir(absl::string_view path);

}  // namespace walrus

#endif  // WALRUS_CORE_FS_H_
