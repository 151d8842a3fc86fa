#include "server/data_dir.h"

#include <unistd.h>

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
  FileSystem* fs = PosixFs();
  if (!fs->Exists(lock_path)) {
    absl::StatusOr<std::unique_ptr<WritableFile>> created = fs->NewWritableFile(lock_path);
    if (!created.ok()) return created.status();
    (void)(*created)->Close();
  }
  absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(lock_path);
  if (!lock.ok()) {
    if (lock.status().code() != absl::StatusCode::kFailedPrecondition) return lock.status();
    absl::StatusOr<std::string> holder = ReadFileToString(fs, lock_path);
    std::string who = holder.ok() && !holder->empty()
                          ? std::string(absl::StripTrailingAsciiWhitespace(*holder))
                          : "another process";
    return absl::FailedPreconditionError(
        absl::StrCat("data directory ", data_dir, " is in use by ", who));
  }
  // Say who holds it, for the next one who tries.
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  char started[64];
  std::time_t now = std::time(nullptr);
  std::strftime(started, sizeof(started), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  std::string info = absl::StrCat("walrusd pid ", ::getpid(), " on ", host, " since ", started,
                                  " listening on ", listeners, "\n");
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs->OpenWritableFile(lock_path, 0);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Truncate(0); !s.ok()) return s;
  if (absl::Status s = (*file)->Append(info); !s.ok()) return s;
  if (absl::Status s = (*file)->Close(); !s.ok()) return s;
  return std::unique_ptr<DataDirLock>(new DataDirLock(std::move(*lock)));
}

}  // namespace walrus
