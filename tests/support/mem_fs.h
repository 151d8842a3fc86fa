// MemFileSystem: an in-memory FileSystem that models what Linux keeps across a
// power failure, and injects I/O errors, so the WAL's durability claims can be
// tested deterministically (in the spirit of LevelDB's fault_injection_test
// and RocksDB's FaultInjectionTestFS).
//
// Model
//   Paths are '/'-separated; relative paths are taken from "/" (there is no
//   working directory), duplicate and trailing slashes and "." are ignored and
//   ".." is resolved lexically. "/", "" and "." name the root, which always
//   exists. A path's parent must exist (NOT_FOUND) and be a directory.
//
//   A file is an inode: its current bytes (what reads see), the bytes as of
//   its last WritableFile::Sync() (fdatasync: content and size), and the
//   extent of everything changed since then (writes, zero-fills by WriteZeros
//   included, and size changes by
//   Truncate, Preallocate and NewWritableFile's O_TRUNC). Applying the
//   unsynced changes in order to the synced bytes gives the current bytes, so
//   the two images are all a crash needs. Durability is per inode: a handle
//   keeps writing to an inode after it is renamed or unlinked.
//
//   A directory maps names to files or directories, twice: its current
//   entries and its durable entries (as of its last SyncDir). Creating,
//   renaming or removing an entry is durable only after SyncDir of the
//   directory(ies) involved; a rename across directories needs both. A new
//   directory's own entry needs SyncDir of its parent.
//
//   Page cache: a failed Sync leaves the file's unsynced changes readable (as
//   the "page cache"), as Linux does after a failed fdatasync. Linux also
//   marks those pages clean, so dropping the cache (DropCachedPages) makes
//   reads return what the disk has; here DropCachedPages reverts a file whose
//   last Sync failed to its synced bytes (all of its unsynced changes, also
//   later ones: a fail-stopped writer makes none). Other files keep their
//   unsynced changes (dirty pages are not dropped). LinkCount() of a
//   WritableFile counts the entries reachable from the root that name its
//   inode (0 once unlinked, renamed over or removed with its directory).
//
// Errors
//   Every failure is ErrnoToStatus(errno, "<op> <path>") (core/errors.h), so
//   codes and the errno payload match PosixFs: ENOENT, EEXIST, EISDIR,
//   ENOTDIR, ENOTEMPTY, ENOSPC, EIO... A held lock is FAILED_PRECONDITION
//   naming the path, as in PosixFs. An injected fault is checked before
//   anything else about the call, and a call that fails changes nothing
//   (except FailNextAppendAfter's prefix).
//
// Ownership and threads
//   Thread-safe: one mutex guards all state. Handles (WritableFile,
//   ReadableFile, FileLock) point into the file system, which must outlive
//   them. A WritableFile itself has one owner, as core/fs.h says. The sync
//   observer runs without the mutex held, so it may call anything here,
//   including CrashClone() and Crash().
//
// Crash modes (CrashClone returns the image, Crash replaces this state by it)
//   kKeepAll      A process crash (kill -9): every write and every directory
//                 operation survives, sizes are the current sizes, and what
//                 was unsynced stays unsynced (the page cache outlives the
//                 process), so a later power-failure crash can still drop it.
//   kDropUnsynced A power failure: each file reverts to its synced bytes and
//                 synced size; each directory to its durable entries (unless
//                 drop_unsynced_dir_ops is false), so a file or directory that
//                 only a non-durable entry names is gone and a removed or
//                 renamed-away one is back.
//   kTearUnsynced Like kDropUnsynced, but of each file's unsynced changes the
//                 part below a cut offset B survives. B is a multiple of
//                 sector_size from the sector holding the first changed byte
//                 up to the first boundary at or past the last changed byte
//                 (so "none" and "all" are both possible), drawn from `seed`,
//                 or given by CrashOptions::tear_at. If B is at or past the
//                 last changed byte, the file is as it is now (current bytes
//                 and size). Otherwise bytes below B read as the current
//                 bytes, bytes from B on as the synced bytes, and the size is
//                 max(synced size, min(B, current size)): an append that grew
//                 the file is cut at B, a preallocated (and synced) file keeps
//                 its size, and an unsynced shrink survives only with all the
//                 other changes. kDropUnsynced is the same with B = 0.
//   After kDropUnsynced and kTearUnsynced everything in the image is durable.
//   In all modes the image holds no lock. After Crash(), every handle from
//   before fails (EIO, i.e. UNAVAILABLE) and releasing an old lock is a no-op;
//   capacity, injected faults, the observer and the sync counters stay. A
//   CrashClone() image has no handles, the same capacity, no faults, no
//   observer and zero counters, and the original is untouched.
#ifndef WALRUS_TESTS_SUPPORT_MEM_FS_H_
#define WALRUS_TESTS_SUPPORT_MEM_FS_H_

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/fs.h"

namespace walrus {

// The calls a fault can be injected into.
enum class FsOp {
  kAppend,       // WritableFile::Append
  kSync,         // WritableFile::Sync
  kSyncDir,      // FileSystem::SyncDir
  kRename,       // FileSystem::Rename (matches `from` or `to`)
  kCreate,       // FileSystem::NewWritableFile
  kOpen,         // FileSystem::OpenWritableFile and NewReadableFile
  kPreallocate,  // WritableFile::Preallocate
  kWriteZeros,   // WritableFile::WriteZeros
  kTruncate,     // WritableFile::Truncate
  kRemove,       // FileSystem::RemoveFile and RemoveAll
  kCreateDir,    // FileSystem::CreateDir
  kRead,         // ReadableFile::Read
};

// One injected fault: the next `count` calls of `op` whose normalised path
// (e.g. "/data/wal/0.wal") contains `path_substring` fail with `err`.
struct Fault {
  static constexpr int kForever = -1;  // as `count`: a device that stays broken

  FsOp op = FsOp::kAppend;
  int err = EIO;
  int count = 1;
  std::string path_substring;
  // kAppend only: the first `partial_bytes` of the data are written at
  // Offset() (unsynced) before the call fails, and Offset() stays put: a
  // short write followed by an error, as pwrite(2) can do on ENOSPC or EIO.
  uint64_t partial_bytes = 0;
};

enum class CrashMode { kKeepAll, kDropUnsynced, kTearUnsynced };

struct CrashOptions {
  CrashMode mode = CrashMode::kDropUnsynced;
  // kDropUnsynced/kTearUnsynced: false keeps every directory operation, synced
  // or not, as when the journal happened to commit them before the power
  // failure (ext4 commits every few seconds); file data is still dropped.
  bool drop_unsynced_dir_ops = true;
  // kTearUnsynced: seeds the choice of each file's cut offset; files are
  // visited in path order, so a seed always gives the same image.
  uint64_t seed = 0;
  uint64_t sector_size = 512;
  // kTearUnsynced: path -> cut offset B, used as given (not rounded, so a
  // test can tear inside a sector too). Paths are normalised, as the file is
  // named in the image (with dir ops dropped, a rename's old name); files not
  // listed draw B from `seed`.
  std::map<std::string, uint64_t> tear_at;
};

// Passed to the sync observer at the start of every WritableFile::Sync() and
// SyncDir(), before the sync takes effect (and before an injected fault).
struct SyncPoint {
  uint64_t number = 0;  // 1 for the first sync of this object, then 2, 3, ...
  std::string path;     // normalised path of the file or directory
  bool is_dir = false;
};

class MemFileSystem : public FileSystem {
 public:
  static constexpr uint64_t kUnlimited = std::numeric_limits<uint64_t>::max();

  MemFileSystem();
  ~MemFileSystem() override;
  MemFileSystem(const MemFileSystem&) = delete;
  MemFileSystem& operator=(const MemFileSystem&) = delete;

  // FileSystem.
  absl::StatusOr<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<WritableFile>> OpenWritableFile(const std::string& path,
                                                                 uint64_t offset) override;
  absl::StatusOr<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override;
  absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) override;
  absl::Status CreateDir(const std::string& dir) override;
  absl::Status RemoveAll(const std::string& path) override;
  absl::Status RemoveFile(const std::string& path) override;
  absl::Status Rename(const std::string& from, const std::string& to) override;
  absl::Status SyncDir(const std::string& dir) override;
  bool Exists(const std::string& path) override;
  bool IsDirectory(const std::string& path) override;
  absl::StatusOr<uint64_t> FileSize(const std::string& path) override;
  absl::StatusOr<std::unique_ptr<FileLock>> TryLockFile(const std::string& path) override;
  absl::Status DropCachedPages(const std::string& path) override;

  // Capacity: the sum of the sizes of all files reachable from the root may
  // not exceed `bytes`. An Append, WriteZeros or Preallocate that would grow past it
  // fails with ENOSPC and changes nothing. Truncate is not checked (ftruncate
  // makes a sparse file), nor are unlinked files still open. Lowering the
  // capacity below what is used fails only later growth.
  void SetCapacity(uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    capacity_ = bytes;
  }
  uint64_t UsedBytes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return Used();
  }

  // Fault injection. Faults are queued; a call consumes the first one that
  // matches it. A count of 0 injects nothing.
  //
  // A failed Sync makes nothing durable but leaves the data in the "page
  // cache", so a later Sync that succeeds would persist it. Linux may instead
  // have dropped the dirty pages and cleared the error, so a retried fsync
  // proves nothing there: tests catch retries with SyncCount().
  void InjectFault(Fault fault);
  void FailNext(FsOp op, int err, int count = 1, std::string path_substring = "",
                uint64_t partial_bytes = 0) {
    InjectFault(Fault{op, err, count, std::move(path_substring), partial_bytes});
  }
  // The next matching Append writes `partial_bytes` of its data, then fails.
  void FailNextAppendAfter(uint64_t partial_bytes, int err, std::string path_substring = "") {
    InjectFault(Fault{FsOp::kAppend, err, 1, std::move(path_substring), partial_bytes});
  }
  void ClearFaults() {
    std::lock_guard<std::mutex> lock(mu_);
    faults_.clear();
  }

  // Sync calls that reached the file system (on an open, valid handle),
  // successful or failed, per normalised path (the path a WritableFile was
  // opened with, or SyncDir's directory), and in total. Lets a test assert
  // that a failed fsync was never retried.
  int SyncCount(const std::string& path) const;
  uint64_t TotalSyncCount() const {
    std::lock_guard<std::mutex> lock(mu_);
    return total_syncs_;
  }

  // Called at the start of every Sync()/SyncDir(); nullptr removes it.
  using SyncObserver = std::function<void(const SyncPoint&)>;
  void SetSyncObserver(SyncObserver observer) {
    std::lock_guard<std::mutex> lock(mu_);
    observer_ = std::move(observer);
  }

  // What the disk holds after a crash now (see the modes above). CrashClone
  // leaves this file system and its handles untouched; Crash invalidates all
  // of its handles and locks.
  std::unique_ptr<MemFileSystem> CrashClone(const CrashOptions& options) const;
  void Crash(const CrashOptions& options);

  // Test helpers. Contents returns the current bytes. Corrupt, FlipBit and
  // ZeroRange change bytes in place as media corruption would: in the current
  // and in the synced image alike (where the synced image has the byte), so
  // the change survives any crash. They need the range inside the file
  // (OUT_OF_RANGE otherwise) and do not count as writes.
  absl::StatusOr<std::string> Contents(const std::string& path) const;
  absl::Status Corrupt(const std::string& path, uint64_t offset, absl::string_view bytes);
  absl::Status FlipBit(const std::string& path, uint64_t offset, int bit);
  absl::Status ZeroRange(const std::string& path, uint64_t offset, uint64_t len);
  // Normalised paths of all files reachable from the root, sorted.
  std::vector<std::string> AllFiles() const;

 private:
  // The data model. Handles and directory entries share inodes and
  // directories by shared_ptr, as names and descriptors share them in a
  // kernel.
  struct Dir;
  // File contents. Invariant: outside [dirty_lo, dirty_hi) the current and the
  // synced bytes agree (up to the shorter size), and every byte past the synced
  // size lies inside it; so a sync or a tear copies only the changed range,
  // which keeps syncs of large preallocated segments cheap.
  struct Inode {
    static constexpr uint64_t kClean = std::numeric_limits<uint64_t>::max();

    std::string data;
    std::string synced;
    uint64_t dirty_lo = kClean;
    uint64_t dirty_hi = 0;
    bool locked = false;
    // The last Sync failed: the unsynced changes are "clean" cached pages the
    // disk never got (see Page cache above).
    bool writeback_failed = false;

    void Touch(uint64_t begin, uint64_t end) {
      if (begin >= end) return;
      dirty_lo = std::min(dirty_lo, begin);
      dirty_hi = std::max(dirty_hi, end);
    }
    void Resize(uint64_t size) {
      uint64_t old = data.size();
      data.resize(size, '\0');
      Touch(std::min(old, size), std::max(old, size));
    }
    // pwrite: a write past the end fills the gap with zeros.
    void Write(uint64_t offset, absl::string_view bytes) {
      if (bytes.empty()) return;
      uint64_t old = data.size();
      uint64_t end = offset + bytes.size();
      if (end > old) data.resize(end, '\0');
      data.replace(offset, bytes.size(), bytes.data(), bytes.size());
      Touch(std::min(offset, old), end);
    }
    void MarkSynced() {
      synced.resize(data.size(), '\0');
      uint64_t end = std::min<uint64_t>(dirty_hi, data.size());
      if (dirty_lo < end) synced.replace(dirty_lo, end - dirty_lo, data, dirty_lo, end - dirty_lo);
      dirty_lo = kClean;
      dirty_hi = 0;
      writeback_failed = false;
    }
    // Reads see the disk again: the unsynced changes are gone.
    void RevertToSynced() {
      data = synced;
      dirty_lo = kClean;
      dirty_hi = 0;
      writeback_failed = false;
    }
    // What the disk holds if the unsynced changes survive below `cut` only
    // (see kTearUnsynced above for the size). Fully synced.
    std::shared_ptr<Inode> Torn(uint64_t cut) const {
      auto out = std::make_shared<Inode>();
      if (cut >= dirty_hi) {
        out->data = data;
      } else {
        uint64_t size = std::max<uint64_t>(synced.size(), std::min<uint64_t>(cut, data.size()));
        out->data = synced;
        out->data.resize(size, '\0');
        uint64_t end = std::min<uint64_t>({cut, data.size(), size});
        if (dirty_lo < end) {
          out->data.replace(dirty_lo, end - dirty_lo, data, dirty_lo, end - dirty_lo);
        }
      }
      out->synced = out->data;
      return out;
    }
  };

  // A directory entry: exactly one of the two is set.
  struct Node {
    std::shared_ptr<Inode> file;
    std::shared_ptr<Dir> dir;
    bool empty() const { return file == nullptr && dir == nullptr; }
    bool operator==(const Node&) const = default;
  };

  struct Dir {
    std::map<std::string, Node> entries;
    std::map<std::string, Node> durable;
  };

  // A resolved path. For the root, is_root is set and node.dir is the root.
  // Otherwise parent is the containing directory (null if a component on the
  // way is missing, err then says ENOENT or ENOTDIR) and node the entry, if any.
  struct Lookup {
    std::vector<std::string> parts;
    std::string path;  // normalised: "/a/b"
    bool is_root = false;
    int err = 0;
    std::shared_ptr<Dir> parent;
    std::string name;
    Node node;
  };

  class Handle;
  class MemWritableFile;
  class MemReadableFile;
  class MemFileLock;
  class ImageBuilder;

  // All below require mu_ held.
  Lookup Resolve(const std::string& path) const;
  // The file at `path`, after an injected `fault`, if given.
  absl::StatusOr<std::shared_ptr<Inode>> OpenFile(const std::string& path, absl::string_view what,
                                                  std::optional<FsOp> fault = std::nullopt);
  absl::StatusOr<std::shared_ptr<Dir>> OpenDir(const std::string& path,
                                               absl::string_view what) const;
  // The first queued fault matching `op` and either path, consumed.
  absl::Status CheckFault(FsOp op, const std::string& path, const std::string& other_path,
                          absl::string_view what, uint64_t* partial_bytes = nullptr);
  void ForEachFile(const std::function<void(const std::string&, const Inode&)>& fn) const;
  // Entries reachable from the root that name `inode`.
  uint64_t LinksTo(const Inode* inode) const;
  uint64_t Used() const;
  // Bytes files may still grow by (kUnlimited without a capacity).
  uint64_t Room() const;
  absl::Status EditBytes(const std::string& path, uint64_t offset, uint64_t len,
                         const std::function<void(char*)>& edit);
  std::shared_ptr<Dir> BuildImage(const CrashOptions& options) const;
  // Counts a sync, then runs the observer with `lock` released; returns with
  // it held again.
  void BeginSync(std::unique_lock<std::mutex>& lock, const std::string& path, bool is_dir);

  mutable std::mutex mu_;
  std::shared_ptr<Dir> root_;
  // Bumped by Crash(); handles of an older generation are dead.
  uint64_t generation_ = 0;
  uint64_t capacity_ = kUnlimited;
  std::vector<Fault> faults_;
  std::map<std::string, int> sync_counts_;
  uint64_t total_syncs_ = 0;
  SyncObserver observer_;
};

}  // namespace walrus

#endif  // WALRUS_TESTS_SUPPORT_MEM_FS_H_
