#include "server/data_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/errors.h"

namespace walrus {

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(const std::string& data_dir,
                                                                  const std::string& lock_path,
                                                                  const std::string& listeners) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return ErrnoToStatus(ec.value(), absl::StrCat("create data directory ", data_dir));
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoToStatus(errno, absl::StrCat("open ", lock_path));
  struct flock lock;
  std::memset(&lock, 0, sizeof(lock));
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &lock) != 0) {
    int err = errno;
    char holder[512] = {0};
    ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (err == EAGAIN || err == EACCES) {
      std::string who =
          n > 0 ? std::string(absl::StripTrailingAsciiWhitespace(holder)) : "another process";
      return absl::FailedPreconditionError(
          absl::StrCat("data directory ", data_dir, " is in use by ", who));
    }
    return ErrnoToStatus(err, absl::StrCat("lock ", lock_path));
  }
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  char started[64];
  std::time_t now = std::time(nullptr);
  std::strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string info = absl::StrCat("walrusd pid ", ::getpid(), " on ", host, " since ", started,
                                  " listening on ", listeners, "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, info.data(), info.size(), 0) < 0) {
    int err = errno;
    ::close(fd);
    return ErrnoToStatus(err, absl::StrCat("write ", lock_path));
  }
  return std::unique_ptr<DataDirLock>(new DataDirLock(fd));
}

DataDirLock::~DataDirLock() { ::close(fd_); }

}  // namespace walrus
