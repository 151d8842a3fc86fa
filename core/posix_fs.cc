// The real file system: POSIX calls, errors through ErrnoToStatus.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/fs.h"

namespace walrus {
namespace {

absl::Status Errno(absl::string_view op, const std::string& path) {
  return ErrnoToStatus(errno, absl::StrCat(op, " ", path));
}

// What stat(2) says of `path` (of `fd` itself when path is ""), asking the
// kernel for `mask` only (STATX_TYPE, STATX_NLINK, STATX_SIZE). Never ask for
// the timestamps of a file being written: on kernels with fine-grained
// timestamps (Linux 6.13 and later), reading a file's mtime makes its next
// write take a new, fine-grained one, which dirties the inode, and that
// file's next fdatasync then writes the inode as well as the data, one more
// device write per sync. stat(2) and fstat(2) always ask for them. On a
// kernel without statx(2) (before 4.11, and so without fine-grained
// timestamps either) glibc answers it with fstatat(2).
// Returns 0, or -1 with errno set.
int StatOnly(int fd, const char* path, unsigned int mask, struct statx* out) {
  return ::statx(fd, path, path[0] == '\0' ? AT_EMPTY_PATH : 0, mask, out);
}

// A buffer aligned for direct I/O, grown as needed and kept.
class AlignedBuffer {
 public:
  static constexpr size_t kAlign = 4096;

  char* data() { return data_.get(); }
  size_t capacity() const { return capacity_; }
  // Makes room for `n` bytes (contents not kept); false if out of memory.
  bool Reserve(size_t n) {
    if (n <= capacity_) return true;
    const size_t size = (n + kAlign - 1) / kAlign * kAlign;
    void* p = std::aligned_alloc(kAlign, size);
    if (p == nullptr) return false;
    data_.reset(static_cast<char*>(p));
    capacity_ = size;
    return true;
  }

 private:
  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> data_;
  size_t capacity_ = 0;
};

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, uint64_t offset)
      : path_(std::move(path)), fd_(fd), offset_(offset) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
    if (direct_fd_ >= 0) ::close(direct_fd_);
  }

  absl::Status Append(absl::string_view data) override {
    if (direct_fd_ >= 0 && data.size() >= direct_min_bytes_) {
      bool refused = false;
      absl::Status s = AppendDirect(data, &refused);
      if (!refused) return s;
      StopDirectIo();  // the device will not take this alignment: buffered from here on
    }
    if (absl::Status s = WriteAll(data, offset_); !s.ok()) return s;
    if (direct_fd_ >= 0) KeepTailBlock(data);
    offset_ += data.size();
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    // One inode: this syncs what either descriptor wrote.
    if (::fdatasync(fd_) != 0) return Errno("fdatasync", path_);
    return absl::OkStatus();
  }

  absl::Status Preallocate(uint64_t size) override {
    int err = ::posix_fallocate(fd_, 0, static_cast<off_t>(size));
    // File systems without fallocate (tmpfs on old kernels, some FUSE) fall
    // back to plain appends; preallocation is an optimisation only.
    if (err == EOPNOTSUPP || err == ENOSYS) return absl::OkStatus();
    if (err != 0) return ErrnoToStatus(err, absl::StrCat("fallocate ", path_));
    return absl::OkStatus();
  }

  absl::Status WriteZeros(uint64_t offset, uint64_t len) override {
    static const std::string* const kZeros = new std::string(size_t{1} << 20, '\0');
    const uint64_t end = offset + len;
    for (uint64_t at = offset; at < end;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kZeros->size(), end - at));
      if (absl::Status s = WriteAll(absl::string_view(kZeros->data(), n), at); !s.ok()) return s;
      at += n;
    }
    if (direct_fd_ >= 0) return LoadTailBlock();  // zeros may have covered its bytes
    return absl::OkStatus();
  }

  absl::Status StartWriteback(uint64_t offset, uint64_t len, bool wait) override {
    unsigned int flags = SYNC_FILE_RANGE_WRITE;
    if (wait) flags |= SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WAIT_AFTER;
    while (::sync_file_range(fd_, static_cast<off_t>(offset), static_cast<off_t>(len), flags) !=
           0) {
      if (errno == EINTR) continue;
      // A file system without it (some FUSE) just gets no hint.
      if (errno == ENOSYS || errno == EOPNOTSUPP || errno == ESPIPE) return absl::OkStatus();
      return Errno("sync_file_range", path_);
    }
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return Errno("ftruncate", path_);
    offset_ = size;
    if (direct_fd_ >= 0) return LoadTailBlock();
    return absl::OkStatus();
  }

  uint64_t Offset() const override { return offset_; }

  absl::Status UseDirectIo(uint64_t min_bytes) override {
    direct_min_bytes_ = min_bytes;
    if (direct_fd_ >= 0) return absl::OkStatus();
    // A second descriptor on the same inode, whatever its name is now (the
    // file may have been renamed since it was opened).
    const std::string self = absl::StrCat("/proc/self/fd/", fd_);
    int fd = ::open(self.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
    if (fd < 0) {
      if (errno == EINVAL) {
        return absl::UnimplementedError(
            absl::StrCat("direct I/O not supported by the file system of ", path_));
      }
      return Errno("open (O_DIRECT)", path_);
    }
    direct_fd_ = fd;
    if (absl::Status s = LoadTailBlock(); !s.ok()) {
      StopDirectIo();
      return s;
    }
    return absl::OkStatus();
  }

  bool direct_io() const override { return direct_fd_ >= 0; }

  absl::StatusOr<uint64_t> LinkCount() override {
    struct statx st;
    if (StatOnly(fd_, "", STATX_NLINK, &st) != 0) return Errno("stat", path_);
    return static_cast<uint64_t>(st.stx_nlink);
  }

  absl::Status Close() override {
    StopDirectIo();
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return Errno("close", path_);
    return absl::OkStatus();
  }

 private:
  static constexpr uint64_t kBlock = AlignedBuffer::kAlign;

  // pwrite(2) of all of `data` at `at` through the buffered descriptor,
  // retrying short writes and EINTR.
  absl::Status WriteAll(absl::string_view data, uint64_t at) {
    while (!data.empty()) {
      ssize_t n = ::pwrite(fd_, data.data(), data.size(), static_cast<off_t>(at));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("write", path_);
      }
      if (n == 0) return ErrnoToStatus(EIO, absl::StrCat("write ", path_, " (wrote 0 bytes)"));
      data.remove_prefix(static_cast<size_t>(n));
      at += static_cast<uint64_t>(n);
    }
    return absl::OkStatus();
  }

  // Writes [start of Offset()'s block, Offset() + data.size()) rounded up to
  // whole blocks: the kept bytes of the partial block, `data`, zeros. Sets
  // *refused, writing nothing, if the kernel refuses the direct write itself.
  // Where `data` sits in memory at the same offset within a page as it goes
  // in the file (the Encoder places it so), its whole blocks are written from
  // where they are; only the blocks at either end go through the staging
  // buffer. Otherwise all of it is copied there first.
  absl::Status AppendDirect(absl::string_view data, bool* refused) {
    const size_t kept = tail_block_.size();  // Offset() % kBlock
    const uint64_t start = offset_ - kept;
    const size_t head = (kBlock - kept) % kBlock;  // the bytes that complete the kept block
    const bool congruent = reinterpret_cast<uintptr_t>(data.data()) % kBlock == kept;
    const size_t middle =
        congruent && data.size() >= head + kBlock ? (data.size() - head) / kBlock * kBlock : 0;
    const size_t used = kept + data.size();
    const size_t staged = middle == 0 ? (used + kBlock - 1) / kBlock * kBlock : 2 * kBlock;
    if (!buffer_.Reserve(staged)) {
      return absl::ResourceExhaustedError(
          absl::StrCat("write ", path_, ": no memory for a ", staged, "-byte direct write"));
    }
    char* buf = buffer_.data();
    struct iovec iov[3];
    int count = 0;
    size_t rest = 0;  // the bytes of the partial block the write ends in
    if (middle == 0) {
      std::memcpy(buf, tail_block_.data(), kept);
      std::memcpy(buf + kept, data.data(), data.size());
      std::memset(buf + used, 0, staged - used);
      iov[count++] = {buf, staged};
      rest = used % kBlock;
    } else {
      if (kept > 0) {
        std::memcpy(buf, tail_block_.data(), kept);
        std::memcpy(buf + kept, data.data(), head);
        iov[count++] = {buf, kBlock};
      }
      iov[count++] = {const_cast<char*>(data.data() + head), middle};
      rest = data.size() - head - middle;
      if (rest > 0) {
        char* last = buf + kBlock;
        std::memcpy(last, data.data() + head + middle, rest);
        std::memset(last + rest, 0, kBlock - rest);
        iov[count++] = {last, kBlock};
      }
    }
    if (absl::Status s = WriteDirect(iov, count, start, refused); !s.ok() || *refused) return s;
    offset_ += data.size();
    // The new partial block: the last `rest` bytes written.
    tail_block_.assign(data.size() >= rest ? data.data() + data.size() - rest : buf + used - rest,
                       rest);
    return absl::OkStatus();
  }

  // pwritev(2) of the whole blocks in `iov` at `at` (block-aligned) through
  // the direct descriptor, retrying short writes and EINTR. Sets *refused,
  // writing nothing, if the kernel refuses the first write as unaligned.
  absl::Status WriteDirect(struct iovec* iov, int count, uint64_t at, bool* refused) {
    uint64_t done = 0;
    while (count > 0) {
      ssize_t n = ::pwritev(direct_fd_, iov, count, static_cast<off_t>(at + done));
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EINVAL && done == 0) {
          *refused = true;
          return absl::OkStatus();
        }
        return Errno("write", path_);
      }
      if (n == 0) return ErrnoToStatus(EIO, absl::StrCat("write ", path_, " (wrote 0 bytes)"));
      done += static_cast<uint64_t>(n);
      for (size_t left = static_cast<size_t>(n); left > 0;) {
        const size_t step = std::min(left, iov->iov_len);
        iov->iov_base = static_cast<char*>(iov->iov_base) + step;
        iov->iov_len -= step;
        left -= step;
        if (iov->iov_len == 0) {
          ++iov;
          --count;
        }
      }
      if (count > 0 && done % kBlock != 0) {
        // A short direct write that ends inside a block cannot go on aligned.
        return ErrnoToStatus(EIO, absl::StrCat("write ", path_, " (short direct write)"));
      }
    }
    return absl::OkStatus();
  }

  // After a buffered append of `data` at Offset() (not yet advanced): the
  // bytes of the new end's block before it.
  void KeepTailBlock(absl::string_view data) {
    const uint64_t end = offset_ + data.size();
    const size_t keep = static_cast<size_t>(end % kBlock);
    if (end - keep >= offset_) {
      tail_block_.assign(data.data() + (data.size() - keep), keep);  // a new block
    } else {
      tail_block_.append(data.data(), data.size());  // the same block, further on
    }
  }

  // Reads the bytes of Offset()'s block before Offset() into tail_block_.
  absl::Status LoadTailBlock() {
    const size_t keep = static_cast<size_t>(offset_ % kBlock);
    tail_block_.clear();
    if (keep == 0) return absl::OkStatus();
    if (!buffer_.Reserve(kBlock)) {
      return absl::ResourceExhaustedError(absl::StrCat("read ", path_, ": no memory"));
    }
    const uint64_t start = offset_ - keep;
    ssize_t n;
    do {
      n = ::pread(direct_fd_, buffer_.data(), kBlock, static_cast<off_t>(start));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return Errno("read", path_);
    if (static_cast<size_t>(n) < keep) {
      return absl::DataLossError(absl::StrCat("read ", path_, ": the file ends before offset ",
                                              offset_, " where writing continues"));
    }
    tail_block_.assign(buffer_.data(), keep);
    return absl::OkStatus();
  }

  void StopDirectIo() {
    if (direct_fd_ >= 0) ::close(direct_fd_);
    direct_fd_ = -1;
    tail_block_.clear();
  }

  std::string path_;
  int fd_;
  uint64_t offset_;
  // With direct I/O: the O_DIRECT descriptor, the smallest append that uses
  // it, the bytes of the partial block before offset_, and the aligned
  // staging buffer.
  int direct_fd_ = -1;
  uint64_t direct_min_bytes_ = 0;
  std::string tail_block_;
  AlignedBuffer buffer_;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_, scratch + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Errno("read", path_);
      }
      if (r == 0) break;
      done += r;
    }
    return done;
  }

  absl::StatusOr<uint64_t> Size() override {
    struct statx st;
    if (StatOnly(fd_, "", STATX_SIZE, &st) != 0) return Errno("stat", path_);
    return static_cast<uint64_t>(st.stx_size);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixFileLock : public FileLock {
 public:
  PosixFileLock(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  // Closing the descriptor releases the open-file-description lock.
  ~PosixFileLock() override { ::close(fd_); }
  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

class PosixFileSystem : public FileSystem {
 public:
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return Errno("create", path);
    return std::make_unique<PosixWritableFile>(path, fd, 0);
  }

  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritableFile(const std::string& path,
                                                                 uint64_t offset) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", path);
    return std::make_unique<PosixWritableFile>(path, fd, offset);
  }

  absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer; regular
    // files ignore the flag.
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return Errno("open", path);
    struct statx st;
    if (StatOnly(fd, "", STATX_TYPE, &st) != 0) {
      absl::Status s = Errno("stat", path);
      ::close(fd);
      return s;
    }
    if (!S_ISREG(st.stx_mode)) {
      ::close(fd);
      return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
    }
    return std::make_unique<PosixReadableFile>(path, fd);
  }

  absl::StatusOr<bool> IsRegularFile(const std::string& path) override {
    struct statx st;
    if (StatOnly(AT_FDCWD, path.c_str(), STATX_TYPE, &st) != 0) return Errno("stat", path);
    return S_ISREG(st.stx_mode);
  }

  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return Errno("opendir", dir);
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return ErrnoToStatus(err, absl::StrCat("readdir ", dir));
    std::sort(names.begin(), names.end());
    return names;
  }

  absl::Status CreateDir(const std::string& dir) override {
    if (::mkdir(dir.c_str(), 0700) != 0) return Errno("mkdir", dir);
    return absl::OkStatus();
  }

  absl::Status RemoveAll(const std::string& path) override {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("remove ", path));
    return absl::OkStatus();
  }

  absl::Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return Errno("unlink", path);
    return absl::OkStatus();
  }

  absl::Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return Errno("rename", from + " -> " + to);
    return absl::OkStatus();
  }

  absl::Status SyncDir(const std::string& dir) override {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("open", dir);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return ErrnoToStatus(err, absl::StrCat("fsync ", dir));
    return absl::OkStatus();
  }

  absl::Status DropCachedPages(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", path);
    // Length 0: to the end of the file. Dirty pages are only scheduled for
    // writeback, not dropped; that is fine, they hold what a write put there.
    int err = ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
    if (err != 0) return ErrnoToStatus(err, absl::StrCat("fadvise ", path));
    return absl::OkStatus();
  }

  bool Exists(const std::string& path) override {
    struct statx st;
    return StatOnly(AT_FDCWD, path.c_str(), STATX_TYPE, &st) == 0;
  }

  bool IsDirectory(const std::string& path) override {
    struct statx st;
    return StatOnly(AT_FDCWD, path.c_str(), STATX_TYPE, &st) == 0 && S_ISDIR(st.stx_mode);
  }

  absl::StatusOr<uint64_t> FileSize(const std::string& path) override {
    struct statx st;
    if (StatOnly(AT_FDCWD, path.c_str(), STATX_SIZE, &st) != 0) return Errno("stat", path);
    return static_cast<uint64_t>(st.stx_size);
  }

  absl::StatusOr<std::unique_ptr<FileLock>> TryLockFile(const std::string& path) override {
    // A write lock needs a descriptor open for writing.
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return Errno("open", path);
    struct flock lock;
    std::memset(&lock, 0, sizeof(lock));
    lock.l_type = F_WRLCK;
    lock.l_whence = SEEK_SET;
    if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EAGAIN || err == EACCES) {
        return absl::FailedPreconditionError(
            absl::StrCat(path, " is locked by another process (or another WAL handle)"));
      }
      return ErrnoToStatus(err, absl::StrCat("lock ", path));
    }
    return std::make_unique<PosixFileLock>(path, fd);
  }
};

}  // namespace

FileSystem* PosixFs() {
  static PosixFileSystem* fs = new PosixFileSystem();
  return fs;
}

}  // namespace walrus
