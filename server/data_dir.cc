#include "server/data_dir.h"

#include <unistd.h>

#include <ctime>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace walrus {
namespace {

// mkdir -p, with each directory it creates made durable in its parent: until
// the parent is fsynced, a power failure can take the new directory, and
// every WAL file later fsynced inside it, away.
absl::Status CreateDurableDirs(FileSystem* fs, const std::string& dir) {
  if (fs->IsDirectory(dir)) return absl::OkStatus();
  const std::string parent = ParentDir(dir);
  if (parent != dir) {
    if (absl::Status s = CreateDurableDirs(fs, parent); !s.ok()) return s;
  }
  absl::Status created = fs->CreateDir(dir);
  if (!created.ok() && !(absl::IsAlreadyExists(created) && fs->IsDirectory(dir))) {
    return absl::Status(created.code(), absl::StrCat("create data directory: ", created.message()));
  }
  return fs->SyncDir(parent);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataDirLock>> DataDirLock::Acquire(FileSystem* fs,
                                                                  const std::string& data_dir,
                                                                  const std::string& lock_path,
                                                                  const std::string& listeners) {
  if (absl::Status s = CreateDurableDirs(fs, data_dir); !s.ok()) return s;
  // Also when the directory existed: a previous start may have crashed
  // between its mkdir and the fsync of the parent. Best effort: a parent this
  // process may not open (a mount point's, say) is no reason to refuse to
  // start on a directory it did not create.
  (void)fs->SyncDir(ParentDir(data_dir));
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
