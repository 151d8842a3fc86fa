#include "tests/powerloss/lossy_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <random>
#include <set>
#include <vector>

namespace walrus::testing {
namespace {

std::vector<std::string> SplitPath(const std::string& path) {
  std::vector<std::string> parts;
  size_t at = 0;
  while (at < path.size()) {
    size_t slash = path.find('/', at);
    if (slash == std::string::npos) slash = path.size();
    if (slash > at) parts.push_back(path.substr(at, slash - at));
    at = slash + 1;
  }
  return parts;
}

// Finds a visible path of `target` (for the loss report).
bool FindPath(const LossyNode& dir, const LossyNode* target, const std::string& prefix,
              std::set<const LossyNode*>* seen, std::string* out) {
  if (!seen->insert(&dir).second) return false;
  for (const auto& [name, child] : dir.entries) {
    std::string path = prefix + "/" + name;
    if (child.get() == target) {
      *out = path;
      return true;
    }
    if (child->is_dir && FindPath(*child, target, path, seen, out)) return true;
  }
  return false;
}

int WriteFile(const std::string& path, mode_t mode, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode | 0600);
  if (fd < 0) return -errno;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      ::close(fd);
      return -err;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return -errno;
  return 0;
}

int ReadFile(const std::string& path, std::string* data) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  char buffer[65536];
  data->clear();
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      return -err;
    }
    if (n == 0) break;
    data->append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return 0;
}

}  // namespace

LossyFs::LossyFs() : root_(NewNode(true, 0755)) {}

NodePtr LossyFs::NewNode(bool is_dir, mode_t mode) {
  auto node = std::make_shared<LossyNode>();
  node->is_dir = is_dir;
  node->mode = mode & 07777;
  node->ino = next_ino_++;
  Touch(node.get());
  return node;
}

void LossyFs::Touch(LossyNode* node) { clock_gettime(CLOCK_REALTIME, &node->mtime); }

int LossyFs::Lookup(const std::string& path, NodePtr* node) const {
  NodePtr at = root_;
  for (const std::string& part : SplitPath(path)) {
    if (!at->is_dir) return -ENOTDIR;
    auto it = at->entries.find(part);
    if (it == at->entries.end()) return -ENOENT;
    at = it->second;
  }
  *node = at;
  return 0;
}

int LossyFs::ResolveParent(const std::string& path, NodePtr* parent, std::string* name) const {
  std::vector<std::string> parts = SplitPath(path);
  if (parts.empty()) return -EBUSY;  // the root has no parent
  *name = parts.back();
  size_t cut = path.rfind('/');
  int rc = Lookup(cut == std::string::npos ? "" : path.substr(0, cut), parent);
  if (rc != 0) return rc;
  return (*parent)->is_dir ? 0 : -ENOTDIR;
}

int LossyFs::Create(const std::string& path, mode_t mode, bool exclusive, NodePtr* node) {
  NodePtr parent;
  std::string name;
  if (int rc = ResolveParent(path, &parent, &name); rc != 0) return rc;
  auto it = parent->entries.find(name);
  if (it != parent->entries.end()) {
    if (exclusive) return -EEXIST;
    if (it->second->is_dir) return -EISDIR;
    *node = it->second;
    return 0;
  }
  *node = NewNode(false, mode);
  parent->entries[name] = *node;
  Touch(parent.get());
  return 0;
}

int LossyFs::Mkdir(const std::string& path, mode_t mode) {
  NodePtr parent;
  std::string name;
  if (int rc = ResolveParent(path, &parent, &name); rc != 0) return rc;
  if (parent->entries.count(name) != 0) return -EEXIST;
  parent->entries[name] = NewNode(true, mode);
  Touch(parent.get());
  return 0;
}

int LossyFs::Unlink(const std::string& path) {
  NodePtr parent;
  std::string name;
  if (int rc = ResolveParent(path, &parent, &name); rc != 0) return rc;
  auto it = parent->entries.find(name);
  if (it == parent->entries.end()) return -ENOENT;
  if (it->second->is_dir) return -EISDIR;
  parent->entries.erase(it);  // an open handle keeps the node alive
  Touch(parent.get());
  return 0;
}

int LossyFs::Rmdir(const std::string& path) {
  NodePtr parent;
  std::string name;
  if (int rc = ResolveParent(path, &parent, &name); rc != 0) return rc;
  auto it = parent->entries.find(name);
  if (it == parent->entries.end()) return -ENOENT;
  if (!it->second->is_dir) return -ENOTDIR;
  if (!it->second->entries.empty()) return -ENOTEMPTY;
  parent->entries.erase(it);
  Touch(parent.get());
  return 0;
}

int LossyFs::Rename(const std::string& from, const std::string& to, unsigned int flags) {
  if ((flags & ~static_cast<unsigned int>(RENAME_NOREPLACE)) != 0) return -EINVAL;
  NodePtr from_parent, to_parent;
  std::string from_name, to_name;
  if (int rc = ResolveParent(from, &from_parent, &from_name); rc != 0) return rc;
  if (int rc = ResolveParent(to, &to_parent, &to_name); rc != 0) return rc;
  auto source = from_parent->entries.find(from_name);
  if (source == from_parent->entries.end()) return -ENOENT;
  NodePtr node = source->second;
  // A directory cannot move below itself.
  if (node->is_dir && to.size() > from.size() && to.compare(0, from.size(), from) == 0 &&
      to[from.size()] == '/') {
    return -EINVAL;
  }
  auto target = to_parent->entries.find(to_name);
  if (target != to_parent->entries.end()) {
    if (target->second == node) return 0;
    if ((flags & RENAME_NOREPLACE) != 0) return -EEXIST;
    if (node->is_dir && !target->second->is_dir) return -ENOTDIR;
    if (!node->is_dir && target->second->is_dir) return -EISDIR;
    if (target->second->is_dir && !target->second->entries.empty()) return -ENOTEMPTY;
  }
  from_parent->entries.erase(source);
  to_parent->entries[to_name] = node;
  Touch(from_parent.get());
  Touch(to_parent.get());
  return 0;
}

int LossyFs::Read(const LossyNode& node, uint64_t offset, size_t size, char* out) {
  if (node.is_dir) return -EISDIR;
  if (offset >= node.data.size()) return 0;
  size_t n = std::min<uint64_t>(size, node.data.size() - offset);
  std::memcpy(out, node.data.data() + offset, n);
  return static_cast<int>(n);
}

int LossyFs::Write(const NodePtr& node, uint64_t offset, const char* data, size_t size) {
  if (node->is_dir) return -EISDIR;
  if (size == 0) return 0;
  if (node->data.size() < offset + size) node->data.resize(offset + size);
  std::memcpy(node->data.data() + offset, data, size);
  if (node->dirty_lo >= node->dirty_hi) {
    node->dirty_lo = offset;
    node->dirty_hi = offset + size;
  } else {
    node->dirty_lo = std::min(node->dirty_lo, offset);
    node->dirty_hi = std::max(node->dirty_hi, offset + size);
  }
  node->dirty = true;
  last_write_node_ = node;
  Touch(node.get());
  return static_cast<int>(size);
}

int LossyFs::Truncate(LossyNode* node, uint64_t size) {
  if (node->is_dir) return -EISDIR;
  node->data.resize(size);
  node->min_size = std::min(node->min_size, size);
  node->dirty = true;
  Touch(node);
  return 0;
}

int LossyFs::Fallocate(LossyNode* node, int mode, uint64_t offset, uint64_t length) {
  if (node->is_dir) return -EISDIR;
  if ((mode & ~FALLOC_FL_KEEP_SIZE) != 0) return -EOPNOTSUPP;
  // Space is not modelled; only a size change is visible.
  if ((mode & FALLOC_FL_KEEP_SIZE) == 0 && node->data.size() < offset + length) {
    node->data.resize(offset + length);
    node->dirty = true;
  }
  return 0;
}

void LossyFs::Sync(LossyNode* node) {
  if (node->is_dir) {
    node->durable_entries = node->entries;
    return;
  }
  if (node->dirty) {
    std::string& disk = node->durable_data;
    disk.resize(std::min<uint64_t>(disk.size(), node->min_size));
    disk.resize(node->data.size());
    uint64_t hi = std::min<uint64_t>(node->dirty_hi, node->data.size());
    if (node->dirty_lo < hi) {
      std::memcpy(disk.data() + node->dirty_lo, node->data.data() + node->dirty_lo,
                  hi - node->dirty_lo);
    }
  }
  node->dirty = false;
  node->dirty_lo = node->dirty_hi = 0;
  node->min_size = node->data.size();
  if (last_write_node_.lock().get() == node) last_write_node_.reset();
}

LossReport LossyFs::PowerLoss(uint64_t tear_sector, uint64_t seed) {
  LossReport report;
  NodePtr torn = last_write_node_.lock();
  if (tear_sector > 0 && torn != nullptr && torn->dirty && torn->dirty_lo < torn->dirty_hi) {
    std::set<const LossyNode*> seen;
    (void)FindPath(*root_, torn.get(), "", &seen, &report.torn_file);
    // The file's unsynced changes, from the first byte changed to the last,
    // reach the disk as a prefix cut at a sector boundary: the sector
    // boundaries inside the range split it into pieces, and the disk got the
    // first k of them, k in [0, pieces]. (A page cache that wrote back a
    // later page but not an earlier one would leave a hole instead; walrus
    // reports such a hole as corruption rather than guess, see
    // core/decoder.h, so the model tears the way a device writing in order
    // does, as tests/support/mem_fs.h's kTearUnsynced does.)
    const uint64_t begin = torn->dirty_lo;
    const uint64_t end = std::min<uint64_t>(torn->dirty_hi, torn->data.size());
    std::vector<uint64_t> cuts;
    for (uint64_t b = (begin / tear_sector + 1) * tear_sector; b < end; b += tear_sector) {
      cuts.push_back(b);
    }
    cuts.push_back(end);
    std::mt19937_64 rng(seed);
    size_t k = rng() % (cuts.size() + 1);
    uint64_t kept_end = k == 0 ? begin : cuts[k - 1];
    std::string& disk = torn->durable_data;
    if (kept_end > begin) {
      if (disk.size() < kept_end) disk.resize(kept_end);
      std::memcpy(disk.data() + begin, torn->data.data() + begin, kept_end - begin);
    }
    report.torn_bytes = kept_end - begin;
    report.torn_of = end - begin;
  }
  // Count on the visible tree, then revert along the durable one (what is
  // not reachable there is gone).
  std::set<const LossyNode*> seen;
  std::vector<LossyNode*> stack = {root_.get()};
  while (!stack.empty()) {
    LossyNode* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    if (!node->is_dir) {
      if (node->dirty) ++report.files_reverted;
      continue;
    }
    if (node->entries != node->durable_entries) ++report.dirs_reverted;
    for (auto& [name, child] : node->entries) stack.push_back(child.get());
  }
  seen.clear();
  stack = {root_.get()};
  while (!stack.empty()) {
    LossyNode* node = stack.back();
    stack.pop_back();
    if (!seen.insert(node).second) continue;
    if (node->is_dir) {
      node->entries = node->durable_entries;
      for (auto& [name, child] : node->entries) stack.push_back(child.get());
    } else {
      node->data = node->durable_data;
      node->dirty = false;
      node->dirty_lo = node->dirty_hi = 0;
      node->min_size = node->data.size();
    }
  }
  last_write_node_.reset();
  return report;
}

void LossyFs::FillStat(const LossyNode& node, struct stat* st) {
  std::memset(st, 0, sizeof(*st));
  st->st_ino = node.ino;
  st->st_mode = (node.is_dir ? S_IFDIR : S_IFREG) | node.mode;
  st->st_nlink = node.is_dir ? 2 : 1;
  st->st_uid = ::getuid();
  st->st_gid = ::getgid();
  st->st_size = node.is_dir ? 0 : static_cast<off_t>(node.data.size());
  st->st_blksize = 4096;
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_atim = st->st_mtim = st->st_ctim = node.mtime;
}

int LossyFs::DumpDurable(const std::string& backing) const { return Dump(backing, true); }
int LossyFs::DumpVisible(const std::string& backing) const { return Dump(backing, false); }

int LossyFs::Dump(const std::string& backing, bool durable) const {
  namespace fs = std::filesystem;
  const std::string fresh = backing + ".new", old = backing + ".old";
  std::error_code ec;
  fs::remove_all(fresh, ec);
  fs::remove_all(old, ec);
  struct Item {
    const LossyNode* node;
    std::string path;
  };
  std::set<const LossyNode*> seen;  // a directory cycle (renames) is cut here
  std::vector<Item> stack = {{root_.get(), fresh}};
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    const LossyNode& node = *item.node;
    if (!node.is_dir) {
      if (int rc = WriteFile(item.path, node.mode, durable ? node.durable_data : node.data);
          rc != 0) {
        return rc;
      }
      continue;
    }
    if (!seen.insert(item.node).second) continue;
    if (::mkdir(item.path.c_str(), node.mode | 0700) != 0) return -errno;
    for (const auto& [name, child] : durable ? node.durable_entries : node.entries) {
      stack.push_back({child.get(), item.path + "/" + name});
    }
  }
  if (fs::exists(backing) && ::rename(backing.c_str(), old.c_str()) != 0) return -errno;
  if (::rename(fresh.c_str(), backing.c_str()) != 0) return -errno;
  fs::remove_all(old, ec);
  return 0;
}

int LossyFs::Load(const std::string& backing) {
  struct stat st;
  if (::stat(backing.c_str(), &st) != 0) return -errno;
  if (!S_ISDIR(st.st_mode)) return -ENOTDIR;
  root_ = NewNode(true, st.st_mode);
  struct Item {
    NodePtr dir;
    std::string path;
  };
  std::vector<Item> stack = {{root_, backing}};
  while (!stack.empty()) {
    Item item = stack.back();
    stack.pop_back();
    DIR* d = ::opendir(item.path.c_str());
    if (d == nullptr) return -errno;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      std::string path = item.path + "/" + name;
      if (::lstat(path.c_str(), &st) != 0 || !(S_ISDIR(st.st_mode) || S_ISREG(st.st_mode))) {
        ::closedir(d);
        return -EINVAL;  // only files and directories are modelled
      }
      NodePtr child = NewNode(S_ISDIR(st.st_mode), st.st_mode);
      if (child->is_dir) {
        stack.push_back({child, path});
      } else if (int rc = ReadFile(path, &child->data); rc != 0) {
        ::closedir(d);
        return rc;
      }
      child->durable_data = child->data;
      child->min_size = child->data.size();
      item.dir->entries[name] = child;
    }
    ::closedir(d);
    item.dir->durable_entries = item.dir->entries;
  }
  return 0;
}

}  // namespace walrus::testing
