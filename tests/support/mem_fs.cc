#include "tests/support/mem_fs.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <random>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/errors.h"

namespace walrus {

namespace {

std::vector<std::string> SplitPath(absl::string_view path) {
  std::vector<std::string> parts;
  for (absl::string_view part : absl::StrSplit(path, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.emplace_back(part);
  }
  return parts;
}

std::string NormalPath(absl::string_view path) {
  return absl::StrCat("/", absl::StrJoin(SplitPath(path), "/"));
}

absl::Status Error(int err, absl::string_view op, absl::string_view path) {
  return ErrnoToStatus(err, absl::StrCat(op, " ", path));
}

absl::Status Dead(absl::string_view op, absl::string_view path) {
  return ErrnoToStatus(EIO, absl::StrCat(op, " ", path, " (handle from before a crash)"));
}

}  // namespace

// What every handle holds: the inode itself (so it follows renames and
// outlives unlinks, as a descriptor does) and the generation it belongs to.
class MemFileSystem::Handle {
 public:
  // Requires fs->mu_.
  Handle(MemFileSystem* fs, std::shared_ptr<Inode> inode, std::string path)
      : fs_(fs), inode_(std::move(inode)), path_(std::move(path)), generation_(fs->generation_) {}

 protected:
  // Requires fs_->mu_. A handle from before a crash fails with EIO.
  absl::Status Check(absl::string_view op, bool closed = false) const {
    if (closed) return Error(EBADF, op, path_);
    if (generation_ != fs_->generation_) return Dead(op, path_);
    return absl::OkStatus();
  }

  MemFileSystem* const fs_;
  const std::shared_ptr<Inode> inode_;
  // Normalised, for faults and sync counts; a lock keeps the caller's spelling.
  const std::string path_;
  const uint64_t generation_;
};

class MemFileSystem::MemWritableFile : public WritableFile, private Handle {
 public:
  MemWritableFile(MemFileSystem* fs, std::shared_ptr<Inode> inode, std::string path,
                  uint64_t offset)
      : Handle(fs, std::move(inode), std::move(path)), offset_(offset) {}

  absl::Status Append(absl::string_view data) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    uint64_t partial = 0;
    if (absl::Status s = Start(FsOp::kAppend, "write", &partial); !s.ok()) {
      // A short write before the error; it may not grow past the capacity.
      uint64_t n = std::min<uint64_t>(partial, data.size());
      if (uint64_t room = fs_->Room(); room != kUnlimited) {
        uint64_t limit = inode_->data.size() + room;  // the end it may reach
        n = std::min(n, limit > offset_ ? limit - offset_ : 0);
      }
      inode_->Write(offset_, data.substr(0, n));
      return s;
    }
    uint64_t end = offset_ + data.size();
    uint64_t growth = end > inode_->data.size() ? end - inode_->data.size() : 0;
    if (growth > fs_->Room()) return Error(ENOSPC, "write", path_);
    inode_->Write(offset_, data);
    offset_ = end;
    return absl::OkStatus();
  }

  absl::Status Sync() override {
    std::unique_lock<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Check("fdatasync", closed_); !s.ok()) return s;
    fs_->BeginSync(lock, path_, /*is_dir=*/false);
    // Check again: the observer may have crashed the file system under us.
    if (absl::Status s = Start(FsOp::kSync, "fdatasync"); !s.ok()) {
      inode_->writeback_failed = true;
      return s;
    }
    inode_->MarkSynced();
    return absl::OkStatus();
  }

  absl::Status Preallocate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Start(FsOp::kPreallocate, "fallocate"); !s.ok()) return s;
    uint64_t old = inode_->data.size();
    if (size <= old) return absl::OkStatus();  // fallocate never shrinks
    if (size - old > fs_->Room()) return Error(ENOSPC, "fallocate", path_);
    inode_->Resize(size);
    return absl::OkStatus();
  }

  absl::Status WriteZeros(uint64_t offset, uint64_t len) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Start(FsOp::kWriteZeros, "write"); !s.ok()) return s;
    uint64_t end = offset + len;
    uint64_t growth = end > inode_->data.size() ? end - inode_->data.size() : 0;
    if (growth > fs_->Room()) return Error(ENOSPC, "write", path_);
    // Unsynced data like any other write: a crash may drop it.
    inode_->Write(offset, std::string(len, '\0'));
    return absl::OkStatus();
  }

  absl::Status Truncate(uint64_t size) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Start(FsOp::kTruncate, "ftruncate"); !s.ok()) return s;
    inode_->Resize(size);
    offset_ = size;
    return absl::OkStatus();
  }

  uint64_t Offset() const override { return offset_; }

  absl::StatusOr<uint64_t> LinkCount() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Check("fstat", closed_); !s.ok()) return s;
    return fs_->LinksTo(inode_.get());
  }

  absl::Status Close() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    absl::Status s = Check("close", closed_);
    closed_ = true;
    return s;
  }

 private:
  // The handle is usable and no fault is injected.
  absl::Status Start(FsOp op, absl::string_view what, uint64_t* partial = nullptr) {
    if (absl::Status s = Check(what, closed_); !s.ok()) return s;
    return fs_->CheckFault(op, path_, "", what, partial);
  }

  uint64_t offset_;
  bool closed_ = false;
};

class MemFileSystem::MemReadableFile : public ReadableFile, private Handle {
 public:
  using Handle::Handle;

  absl::StatusOr<size_t> Read(uint64_t offset, size_t n, char* scratch) override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Check("read"); !s.ok()) return s;
    if (absl::Status s = fs_->CheckFault(FsOp::kRead, path_, "", "read"); !s.ok()) return s;
    const std::string& data = inode_->data;
    if (offset >= data.size()) return size_t{0};
    size_t count = std::min<uint64_t>(n, data.size() - offset);
    std::memcpy(scratch, data.data() + offset, count);
    return count;
  }

  absl::StatusOr<uint64_t> Size() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    if (absl::Status s = Check("stat"); !s.ok()) return s;
    return static_cast<uint64_t>(inode_->data.size());
  }
};

class MemFileSystem::MemFileLock : public FileLock, private Handle {
 public:
  using Handle::Handle;
  // After a crash the inode is no longer in the file system: clearing its
  // flag is harmless.
  ~MemFileLock() override {
    std::lock_guard<std::mutex> lock(fs_->mu_);
    inode_->locked = false;
  }
  const std::string& path() const override { return path_; }
};

MemFileSystem::MemFileSystem() : root_(std::make_shared<Dir>()) {}
MemFileSystem::~MemFileSystem() = default;

MemFileSystem::Lookup MemFileSystem::Resolve(const std::string& path) const {
  Lookup r;
  r.parts = SplitPath(path);
  r.path = absl::StrCat("/", absl::StrJoin(r.parts, "/"));
  if (r.parts.empty()) {
    r.is_root = true;
    r.node.dir = root_;
    return r;
  }
  std::shared_ptr<Dir> dir = root_;
  for (size_t i = 0; i + 1 < r.parts.size(); ++i) {
    auto it = dir->entries.find(r.parts[i]);
    if (it == dir->entries.end() || it->second.dir == nullptr) {
      r.err = it == dir->entries.end() ? ENOENT : ENOTDIR;
      return r;
    }
    dir = it->second.dir;
  }
  r.parent = dir;
  r.name = r.parts.back();
  if (auto it = dir->entries.find(r.name); it != dir->entries.end()) r.node = it->second;
  return r;
}

absl::Status MemFileSystem::CheckFault(FsOp op, const std::string& path,
                                       const std::string& other_path, absl::string_view what,
                                       uint64_t* partial_bytes) {
  for (auto it = faults_.begin(); it != faults_.end(); ++it) {
    if (it->op != op) continue;
    const std::string& sub = it->path_substring;
    bool match = path.find(sub) != std::string::npos ||
                 (!other_path.empty() && other_path.find(sub) != std::string::npos);
    if (!match) continue;
    int err = it->err;
    if (partial_bytes != nullptr) *partial_bytes = it->partial_bytes;
    if (it->count != Fault::kForever && --it->count <= 0) faults_.erase(it);
    return ErrnoToStatus(err, absl::StrCat(what, " ", path, " (injected fault)"));
  }
  return absl::OkStatus();
}

void MemFileSystem::ForEachFile(
    const std::function<void(const std::string&, const Inode&)>& fn) const {
  std::vector<std::pair<std::string, const Dir*>> todo = {{"", root_.get()}};
  while (!todo.empty()) {
    auto [prefix, dir] = todo.back();
    todo.pop_back();
    for (const auto& [name, node] : dir->entries) {
      std::string path = absl::StrCat(prefix, "/", name);
      if (node.dir != nullptr) todo.emplace_back(path, node.dir.get());
      if (node.file != nullptr) fn(path, *node.file);
    }
  }
}

uint64_t MemFileSystem::LinksTo(const Inode* inode) const {
  uint64_t links = 0;
  ForEachFile([&](const std::string&, const Inode& file) {
    if (&file == inode) ++links;
  });
  return links;
}

uint64_t MemFileSystem::Used() const {
  std::set<const Inode*> seen;  // a file with two names counts once
  uint64_t used = 0;
  ForEachFile([&](const std::string&, const Inode& file) {
    if (seen.insert(&file).second) used += file.data.size();
  });
  return used;
}

uint64_t MemFileSystem::Room() const {
  if (capacity_ == kUnlimited) return kUnlimited;
  uint64_t used = Used();
  return used < capacity_ ? capacity_ - used : 0;
}

void MemFileSystem::BeginSync(std::unique_lock<std::mutex>& lock, const std::string& path,
                              bool is_dir) {
  ++sync_counts_[path];
  SyncPoint point{++total_syncs_, path, is_dir};
  if (!observer_) return;
  SyncObserver observer = observer_;  // a copy: the observer may replace itself
  lock.unlock();
  observer(point);
  lock.lock();
}

absl::StatusOr<std::unique_ptr<WritableFile>> MemFileSystem::NewWritableFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Lookup r = Resolve(path);
  if (absl::Status s = CheckFault(FsOp::kCreate, r.path, "", "create"); !s.ok()) return s;
  if (r.is_root || r.node.dir != nullptr) return Error(EISDIR, "create", path);
  if (r.parent == nullptr) return Error(r.err, "create", path);
  std::shared_ptr<Inode> inode = r.node.file;
  if (inode != nullptr) {
    inode->Resize(0);  // O_TRUNC: the same inode, so the truncation is unsynced too
  } else {
    inode = std::make_shared<Inode>();
    r.parent->entries[r.name] = Node{inode, nullptr};
  }
  return std::make_unique<MemWritableFile>(this, std::move(inode), r.path, 0);
}

absl::StatusOr<std::unique_ptr<WritableFile>> MemFileSystem::OpenWritableFile(
    const std::string& path, uint64_t offset) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> inode = OpenFile(path, "open", FsOp::kOpen);
  if (!inode.ok()) return inode.status();
  return std::make_unique<MemWritableFile>(this, *std::move(inode), NormalPath(path), offset);
}

absl::StatusOr<std::unique_ptr<ReadableFile>> MemFileSystem::NewReadableFile(
    const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> inode = OpenFile(path, "open", FsOp::kOpen);
  if (!inode.ok()) return inode.status();
  return std::make_unique<MemReadableFile>(this, *std::move(inode), NormalPath(path));
}

absl::StatusOr<std::shared_ptr<MemFileSystem::Inode>> MemFileSystem::OpenFile(
    const std::string& path, absl::string_view what, std::optional<FsOp> fault) {
  Lookup r = Resolve(path);
  if (fault.has_value()) {
    if (absl::Status s = CheckFault(*fault, r.path, "", what); !s.ok()) return s;
  }
  if (r.node.dir != nullptr) return Error(EISDIR, what, path);
  if (r.parent == nullptr) return Error(r.err, what, path);
  if (r.node.file == nullptr) return Error(ENOENT, what, path);
  return r.node.file;
}

absl::StatusOr<std::shared_ptr<MemFileSystem::Dir>> MemFileSystem::OpenDir(
    const std::string& path, absl::string_view what) const {
  Lookup r = Resolve(path);
  if (r.node.dir != nullptr) return r.node.dir;
  if (r.parent == nullptr) return Error(r.err, what, path);
  return Error(r.node.file != nullptr ? ENOTDIR : ENOENT, what, path);
}

absl::StatusOr<std::vector<std::string>> MemFileSystem::ListDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Dir>> d = OpenDir(dir, "opendir");
  if (!d.ok()) return d.status();
  std::vector<std::string> names;
  for (const auto& [name, node] : (*d)->entries) names.push_back(name);
  return names;  // std::map keeps them sorted
}

absl::Status MemFileSystem::CreateDir(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  Lookup r = Resolve(dir);
  if (absl::Status s = CheckFault(FsOp::kCreateDir, r.path, "", "mkdir"); !s.ok()) return s;
  if (r.is_root || !r.node.empty()) return Error(EEXIST, "mkdir", dir);
  if (r.parent == nullptr) return Error(r.err, "mkdir", dir);
  r.parent->entries[r.name] = Node{nullptr, std::make_shared<Dir>()};
  return absl::OkStatus();
}

absl::Status MemFileSystem::RemoveAll(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Lookup r = Resolve(path);
  if (absl::Status s = CheckFault(FsOp::kRemove, r.path, "", "remove"); !s.ok()) return s;
  if (r.is_root) {
    root_->entries.clear();
    return absl::OkStatus();
  }
  if (r.parent == nullptr) {
    return r.err == ENOENT ? absl::OkStatus() : Error(r.err, "remove", path);
  }
  // Detaching the subtree is enough: its directories keep their own durable
  // entries, so before the parent is synced a crash brings all of it back,
  // exactly as an unsynced rm -rf would.
  r.parent->entries.erase(r.name);
  return absl::OkStatus();
}

absl::Status MemFileSystem::RemoveFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  Lookup r = Resolve(path);
  if (absl::Status s = CheckFault(FsOp::kRemove, r.path, "", "unlink"); !s.ok()) return s;
  if (r.node.dir != nullptr) return Error(EISDIR, "unlink", path);
  if (r.parent == nullptr) return Error(r.err, "unlink", path);
  if (r.node.file == nullptr) return Error(ENOENT, "unlink", path);
  r.parent->entries.erase(r.name);
  return absl::OkStatus();
}

absl::Status MemFileSystem::Rename(const std::string& from, const std::string& to) {
  std::lock_guard<std::mutex> lock(mu_);
  Lookup src = Resolve(from);
  Lookup dst = Resolve(to);
  const std::string what = absl::StrCat(from, " -> ", to);
  if (absl::Status s = CheckFault(FsOp::kRename, src.path, dst.path, "rename"); !s.ok()) return s;
  if (src.is_root || dst.is_root) return Error(EBUSY, "rename", what);
  if (src.parent == nullptr) return Error(src.err, "rename", what);
  if (src.node.empty()) return Error(ENOENT, "rename", what);
  if (dst.parent == nullptr) return Error(dst.err, "rename", what);
  if (src.node == dst.node) return absl::OkStatus();  // same inode: rename(2) does nothing
  if (src.node.dir != nullptr) {
    // A directory cannot move below itself.
    if (dst.parts.size() >= src.parts.size() &&
        std::equal(src.parts.begin(), src.parts.end(), dst.parts.begin())) {
      return Error(EINVAL, "rename", what);
    }
    if (dst.node.file != nullptr) return Error(ENOTDIR, "rename", what);
    if (dst.node.dir != nullptr && !dst.node.dir->entries.empty()) {
      return Error(ENOTEMPTY, "rename", what);
    }
  } else if (dst.node.dir != nullptr) {
    return Error(EISDIR, "rename", what);
  }
  Node moving = src.node;
  src.parent->entries.erase(src.name);
  dst.parent->entries[dst.name] = std::move(moving);
  return absl::OkStatus();
}

absl::Status MemFileSystem::SyncDir(const std::string& dir) {
  std::unique_lock<std::mutex> lock(mu_);
  if (absl::StatusOr<std::shared_ptr<Dir>> d = OpenDir(dir, "open"); !d.ok()) return d.status();
  const std::string path = NormalPath(dir);
  BeginSync(lock, path, /*is_dir=*/true);
  // Looked up again: the observer may have crashed or changed the tree.
  absl::StatusOr<std::shared_ptr<Dir>> d = OpenDir(dir, "open");
  if (!d.ok()) return d.status();
  if (absl::Status s = CheckFault(FsOp::kSyncDir, path, "", "fsync"); !s.ok()) return s;
  (*d)->durable = (*d)->entries;
  return absl::OkStatus();
}

bool MemFileSystem::Exists(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return !Resolve(path).node.empty();
}

bool MemFileSystem::IsDirectory(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  return Resolve(path).node.dir != nullptr;
}

absl::StatusOr<uint64_t> MemFileSystem::FileSize(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> inode = OpenFile(path, "stat");
  if (!inode.ok()) return inode.status();
  return static_cast<uint64_t>((*inode)->data.size());
}

absl::StatusOr<std::unique_ptr<FileLock>> MemFileSystem::TryLockFile(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> inode = OpenFile(path, "open");
  if (!inode.ok()) return inode.status();
  if ((*inode)->locked) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is locked by another holder"));
  }
  (*inode)->locked = true;
  return std::make_unique<MemFileLock>(this, *std::move(inode), path);
}

absl::Status MemFileSystem::DropCachedPages(const std::string& path) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> inode = OpenFile(path, "fadvise");
  if (!inode.ok()) return inode.status();
  if ((*inode)->writeback_failed) (*inode)->RevertToSynced();
  return absl::OkStatus();
}

void MemFileSystem::InjectFault(Fault fault) {
  if (fault.count == 0 || fault.count < Fault::kForever) return;
  std::lock_guard<std::mutex> lock(mu_);
  faults_.push_back(std::move(fault));
}

int MemFileSystem::SyncCount(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = sync_counts_.find(NormalPath(path));
  return it == sync_counts_.end() ? 0 : it->second;
}

// Builds a crash image of the tree. Memo tables keep a file (or, in kKeepAll,
// a directory) that several entries name as one object in the image.
class MemFileSystem::ImageBuilder {
 public:
  explicit ImageBuilder(const CrashOptions& options) : options_(options), rng_(options.seed) {
    for (const auto& [path, cut] : options.tear_at) tear_at_[NormalPath(path)] = cut;
  }

  std::shared_ptr<Dir> CopyDir(const std::shared_ptr<Dir>& dir, const std::string& path) {
    if (options_.mode == CrashMode::kKeepAll) {
      auto [it, inserted] = dirs_.try_emplace(dir.get());
      if (!inserted) return it->second;
      it->second = std::make_shared<Dir>();
      std::shared_ptr<Dir> out = it->second;  // fill after memoising: cycles end here
      for (const auto& [name, node] : dir->entries) {
        out->entries[name] = CopyNode(node, JoinName(path, name));
      }
      for (const auto& [name, node] : dir->durable) {
        out->durable[name] = CopyNode(node, JoinName(path, name));
      }
      return out;
    }
    // Durable entries can form a cycle (directories renamed into each other
    // with only some of the parents synced); an entry that would repeat a
    // directory on the current path is dropped.
    if (!on_path_.insert(dir.get()).second) return nullptr;
    auto out = std::make_shared<Dir>();
    const auto& source = options_.drop_unsynced_dir_ops ? dir->durable : dir->entries;
    for (const auto& [name, node] : source) {
      Node copy = CopyNode(node, JoinName(path, name));
      if (!copy.empty()) out->entries[name] = std::move(copy);
    }
    on_path_.erase(dir.get());
    out->durable = out->entries;
    return out;
  }

 private:
  static std::string JoinName(const std::string& dir, const std::string& name) {
    return dir == "/" ? absl::StrCat("/", name) : absl::StrCat(dir, "/", name);
  }

  Node CopyNode(const Node& node, const std::string& path) {
    if (node.dir != nullptr) return Node{nullptr, CopyDir(node.dir, path)};
    auto [it, inserted] = files_.try_emplace(node.file.get());
    if (inserted) it->second = CopyFile(*node.file, path);
    return Node{it->second, nullptr};
  }

  std::shared_ptr<Inode> CopyFile(const Inode& file, const std::string& path) {
    if (options_.mode == CrashMode::kKeepAll) {
      auto out = std::make_shared<Inode>(file);
      out->locked = false;
      return out;
    }
    if (options_.mode == CrashMode::kDropUnsynced || file.dirty_lo >= file.dirty_hi) {
      return file.Torn(0);
    }
    if (auto it = tear_at_.find(path); it != tear_at_.end()) return file.Torn(it->second);
    const uint64_t sector = std::max<uint64_t>(1, options_.sector_size);
    const uint64_t first = file.dirty_lo / sector;
    const uint64_t last = (file.dirty_hi + sector - 1) / sector;
    std::uniform_int_distribution<uint64_t> pick(first, last);
    return file.Torn(pick(rng_) * sector);
  }

  const CrashOptions& options_;
  std::mt19937_64 rng_;
  std::map<std::string, uint64_t> tear_at_;
  std::map<const Inode*, std::shared_ptr<Inode>> files_;
  std::map<const Dir*, std::shared_ptr<Dir>> dirs_;
  std::set<const Dir*> on_path_;
};

std::shared_ptr<MemFileSystem::Dir> MemFileSystem::BuildImage(const CrashOptions& options) const {
  ImageBuilder builder(options);
  return builder.CopyDir(root_, "/");
}

std::unique_ptr<MemFileSystem> MemFileSystem::CrashClone(const CrashOptions& options) const {
  auto clone = std::make_unique<MemFileSystem>();
  std::lock_guard<std::mutex> lock(mu_);
  clone->root_ = BuildImage(options);
  clone->capacity_ = capacity_;
  return clone;
}

void MemFileSystem::Crash(const CrashOptions& options) {
  std::lock_guard<std::mutex> lock(mu_);
  root_ = BuildImage(options);
  ++generation_;
}

absl::StatusOr<std::string> MemFileSystem::Contents(const std::string& path) const {
  std::lock_guard<std::mutex> lock(mu_);
  Lookup r = Resolve(path);
  if (r.node.file == nullptr) return Error(r.node.dir ? EISDIR : ENOENT, "open", path);
  return r.node.file->data;
}

absl::Status MemFileSystem::EditBytes(const std::string& path, uint64_t offset, uint64_t len,
                                      const std::function<void(char*)>& edit) {
  std::lock_guard<std::mutex> lock(mu_);
  absl::StatusOr<std::shared_ptr<Inode>> found = OpenFile(path, "open");
  if (!found.ok()) return found.status();
  Inode& inode = **found;
  if (offset > inode.data.size() || len > inode.data.size() - offset) {
    return absl::OutOfRangeError(absl::StrCat(path, ": [", offset, ", +", len, ") is past its ",
                                              inode.data.size(), " bytes"));
  }
  edit(inode.data.data() + offset);
  // The same bytes on disk, where the disk has them; past the synced size the
  // range is unsynced anyway (see the Inode invariant).
  uint64_t end = std::min<uint64_t>(offset + len, inode.synced.size());
  if (offset < end) inode.synced.replace(offset, end - offset, inode.data, offset, end - offset);
  return absl::OkStatus();
}

absl::Status MemFileSystem::Corrupt(const std::string& path, uint64_t offset,
                                    absl::string_view bytes) {
  return EditBytes(path, offset, bytes.size(),
                   [&](char* p) { std::memcpy(p, bytes.data(), bytes.size()); });
}

absl::Status MemFileSystem::FlipBit(const std::string& path, uint64_t offset, int bit) {
  if (bit < 0 || bit > 7) return absl::InvalidArgumentError(absl::StrCat("bit ", bit));
  return EditBytes(path, offset, 1, [&](char* p) { *p = static_cast<char>(*p ^ (1 << bit)); });
}

absl::Status MemFileSystem::ZeroRange(const std::string& path, uint64_t offset, uint64_t len) {
  return EditBytes(path, offset, len, [&](char* p) { std::memset(p, 0, len); });
}

std::vector<std::string> MemFileSystem::AllFiles() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> files;
  ForEachFile([&](const std::string& path, const Inode&) { files.push_back(path); });
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace walrus
