// walrus-lossy-fs: a FUSE file system for power-loss tests (LossyFs, see
// lossy_fs.h, is the crash model). Usage:
//
//   walrus-lossy-fs BACKING MOUNTPOINT [FUSE options, e.g. -o fsname=NAME]
//
// It loads the tree under BACKING (which must exist) as the durable state and
// serves it, single-threaded and in the foreground, at MOUNTPOINT. Control:
// write a command to MOUNTPOINT/.lossyfs-control (the file is not listed)
//
//   cut [tear=SECTOR] [seed=N]   power loss: the unsynced state is dropped
//                                (the last unsynced write torn at a SECTOR
//                                boundary, if given), the result is written to
//                                BACKING, and every later operation fails EIO
//                                until the file system is unmounted
//
// and read it back for the report of the last cut. Unmounting without a cut
// is a clean shutdown: the visible state goes to BACKING.
//
// Locks (fcntl, OFD, flock) are not implemented here on purpose: the kernel
// then keeps them locally for this mount, which is all one machine needs.
#define FUSE_USE_VERSION 31

#include <fuse3/fuse.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/powerloss/lossy_fs.h"

namespace walrus::testing {
namespace {

constexpr char kControlPath[] = "/.lossyfs-control";
constexpr uint64_t kControlHandle = UINT64_MAX;

struct State {
  std::string backing;
  LossyFs fs;
  std::map<uint64_t, NodePtr> handles;
  uint64_t next_handle = 1;
  bool powered_off = false;
  std::string report = "no cut yet\n";
};

State& S() { return *static_cast<State*>(fuse_get_context()->private_data); }

uint64_t NewHandle(NodePtr node) {
  State& s = S();
  s.handles[s.next_handle] = std::move(node);
  return s.next_handle++;
}

// The node an operation is about: its open handle if it has one (the file
// may be unlinked), else its path.
int NodeOf(const char* path, fuse_file_info* fi, NodePtr* node) {
  if (fi != nullptr && fi->fh != 0 && fi->fh != kControlHandle) {
    auto it = S().handles.find(fi->fh);
    if (it == S().handles.end()) return -EBADF;
    *node = it->second;
    return 0;
  }
  if (path == nullptr) return -ENOENT;
  return S().fs.Lookup(path, node);
}

bool IsControl(const char* path) { return path != nullptr && std::strcmp(path, kControlPath) == 0; }

// Parses and runs a control command; the report is kept for reads.
int RunControl(const std::string& text) {
  std::istringstream in(text);
  std::string word;
  in >> word;
  if (word != "cut") return -EINVAL;
  uint64_t tear = 0, seed = 0;
  while (in >> word) {
    if (std::sscanf(word.c_str(), "tear=%" SCNu64, &tear) == 1) continue;
    if (std::sscanf(word.c_str(), "seed=%" SCNu64, &seed) == 1) continue;
    return -EINVAL;
  }
  State& s = S();
  if (s.powered_off) return -EIO;
  LossReport r = s.fs.PowerLoss(tear, seed);
  s.powered_off = true;
  char line[512];
  std::snprintf(line, sizeof(line),
                "files_reverted=%d dirs_reverted=%d torn_bytes=%" PRIu64 " torn_of=%" PRIu64
                " torn_file=%s\n",
                r.files_reverted, r.dirs_reverted, r.torn_bytes, r.torn_of,
                r.torn_file.empty() ? "-" : r.torn_file.c_str());
  s.report = line;
  int rc = s.fs.DumpDurable(s.backing);
  if (rc != 0) s.report = "dump failed: " + std::string(std::strerror(-rc)) + "\n";
  return rc;
}

void* Init(fuse_conn_info* /*conn*/, fuse_config* cfg) {
  cfg->use_ino = 1;
  // Unlink at once and hand operations on open, unlinked files their handle
  // (no .fuse_hidden renames that would show up in the crash model).
  cfg->hard_remove = 1;
  cfg->nullpath_ok = 1;
  cfg->negative_timeout = 0;
  return fuse_get_context()->private_data;
}

void Destroy(void* data) {
  State* s = static_cast<State*>(data);
  if (s->powered_off) return;
  if (int rc = s->fs.DumpVisible(s->backing); rc != 0) {
    std::fprintf(stderr, "walrus-lossy-fs: saving %s: %s\n", s->backing.c_str(),
                 std::strerror(-rc));
  }
}

int GetAttr(const char* path, struct stat* st, fuse_file_info* fi) {
  if (IsControl(path) || (fi != nullptr && fi->fh == kControlHandle)) {
    std::memset(st, 0, sizeof(*st));
    st->st_mode = S_IFREG | 0600;
    st->st_nlink = 1;
    st->st_size = static_cast<off_t>(S().report.size());
    return 0;
  }
  if (S().powered_off && !(path != nullptr && std::strcmp(path, "/") == 0)) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  LossyFs::FillStat(*node, st);
  return 0;
}

int Open(const char* path, fuse_file_info* fi) {
  if (IsControl(path)) {
    fi->fh = kControlHandle;
    fi->direct_io = 1;  // no page cache: every read sees the current report
    return 0;
  }
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = S().fs.Lookup(path, &node); rc != 0) return rc;
  if (node->is_dir) return -EISDIR;
  if ((fi->flags & O_TRUNC) != 0) {
    if (int rc = LossyFs::Truncate(node.get(), 0); rc != 0) return rc;
  }
  fi->fh = NewHandle(node);
  return 0;
}

int Create(const char* path, mode_t mode, fuse_file_info* fi) {
  if (S().powered_off || IsControl(path)) return -EIO;
  NodePtr node;
  if (int rc = S().fs.Create(path, mode, (fi->flags & O_EXCL) != 0, &node); rc != 0) return rc;
  if ((fi->flags & O_TRUNC) != 0) {
    if (int rc = LossyFs::Truncate(node.get(), 0); rc != 0) return rc;
  }
  fi->fh = NewHandle(node);
  return 0;
}

int Read(const char* /*path*/, char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  if (fi->fh == kControlHandle) {
    const std::string& r = S().report;
    if (static_cast<size_t>(offset) >= r.size()) return 0;
    size_t n = std::min(size, r.size() - static_cast<size_t>(offset));
    std::memcpy(buf, r.data() + offset, n);
    return static_cast<int>(n);
  }
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(nullptr, fi, &node); rc != 0) return rc;
  return LossyFs::Read(*node, static_cast<uint64_t>(offset), size, buf);
}

int Write(const char* /*path*/, const char* buf, size_t size, off_t offset, fuse_file_info* fi) {
  if (fi->fh == kControlHandle) {
    int rc = RunControl(std::string(buf, size));
    return rc != 0 ? rc : static_cast<int>(size);
  }
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(nullptr, fi, &node); rc != 0) return rc;
  return S().fs.Write(node, static_cast<uint64_t>(offset), buf, size);
}

int Truncate(const char* path, off_t size, fuse_file_info* fi) {
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  return LossyFs::Truncate(node.get(), static_cast<uint64_t>(size));
}

int Fallocate(const char* path, int mode, off_t offset, off_t length, fuse_file_info* fi) {
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  return LossyFs::Fallocate(node.get(), mode, static_cast<uint64_t>(offset),
                            static_cast<uint64_t>(length));
}

int Fsync(const char* path, int /*datasync*/, fuse_file_info* fi) {
  if (fi != nullptr && fi->fh == kControlHandle) return 0;
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  S().fs.Sync(node.get());
  return 0;
}

int Release(const char* /*path*/, fuse_file_info* fi) {
  S().handles.erase(fi->fh);
  return 0;
}

int Flush(const char* /*path*/, fuse_file_info* /*fi*/) { return 0; }

int OpenDir(const char* path, fuse_file_info* fi) {
  if (S().powered_off && std::strcmp(path, "/") != 0) return -EIO;
  NodePtr node;
  if (int rc = S().fs.Lookup(path, &node); rc != 0) return rc;
  if (!node->is_dir) return -ENOTDIR;
  fi->fh = NewHandle(node);
  return 0;
}

int ReadDir(const char* path, void* buf, fuse_fill_dir_t filler, off_t /*offset*/,
            fuse_file_info* fi, fuse_readdir_flags /*flags*/) {
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  filler(buf, ".", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  filler(buf, "..", nullptr, 0, static_cast<fuse_fill_dir_flags>(0));
  for (const auto& [name, child] : node->entries) {
    struct stat st;
    LossyFs::FillStat(*child, &st);
    if (filler(buf, name.c_str(), &st, 0, static_cast<fuse_fill_dir_flags>(0)) != 0) break;
  }
  return 0;
}

int Mkdir(const char* path, mode_t mode) {
  return S().powered_off ? -EIO : S().fs.Mkdir(path, mode);
}
int Unlink(const char* path) { return S().powered_off ? -EIO : S().fs.Unlink(path); }
int Rmdir(const char* path) { return S().powered_off ? -EIO : S().fs.Rmdir(path); }
int Rename(const char* from, const char* to, unsigned int flags) {
  return S().powered_off ? -EIO : S().fs.Rename(from, to, flags);
}

int Chmod(const char* path, mode_t mode, fuse_file_info* fi) {
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  node->mode = mode & 07777;
  return 0;
}

int Chown(const char* /*path*/, uid_t /*uid*/, gid_t /*gid*/, fuse_file_info* /*fi*/) {
  return 0;  // owners are not modelled
}

int Utimens(const char* path, const struct timespec tv[2], fuse_file_info* fi) {
  if (S().powered_off) return -EIO;
  NodePtr node;
  if (int rc = NodeOf(path, fi, &node); rc != 0) return rc;
  LossyFs::Touch(node.get());
  (void)tv;
  return 0;
}

int StatFs(const char* /*path*/, struct statvfs* st) {
  std::memset(st, 0, sizeof(*st));
  st->f_bsize = st->f_frsize = 4096;
  st->f_blocks = st->f_bfree = st->f_bavail = 1u << 20;  // 4 GiB, never full
  st->f_files = st->f_ffree = 1u << 20;
  st->f_namemax = 255;
  return 0;
}

fuse_operations Operations() {
  fuse_operations ops{};
  ops.init = Init;
  ops.destroy = Destroy;
  ops.getattr = GetAttr;
  ops.open = Open;
  ops.create = Create;
  ops.read = Read;
  ops.write = Write;
  ops.truncate = Truncate;
  ops.fallocate = Fallocate;
  ops.fsync = Fsync;
  ops.fsyncdir = Fsync;
  ops.release = Release;
  ops.releasedir = Release;
  ops.flush = Flush;
  ops.opendir = OpenDir;
  ops.readdir = ReadDir;
  ops.mkdir = Mkdir;
  ops.unlink = Unlink;
  ops.rmdir = Rmdir;
  ops.rename = Rename;
  ops.chmod = Chmod;
  ops.chown = Chown;
  ops.utimens = Utimens;
  ops.statfs = StatFs;
  return ops;
}

}  // namespace
}  // namespace walrus::testing

int main(int argc, char** argv) {
  using walrus::testing::State;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s BACKING MOUNTPOINT [FUSE options]\n", argv[0]);
    return 2;
  }
  static State state;  // outlives fuse_main, which may call destroy late
  // Absolute: fuse_main changes to / before the loop runs.
  char* backing = realpath(argv[1], nullptr);
  if (backing == nullptr) {
    std::fprintf(stderr, "%s: %s: %s\n", argv[0], argv[1], std::strerror(errno));
    return 1;
  }
  state.backing = backing;
  free(backing);
  if (int rc = state.fs.Load(state.backing); rc != 0) {
    std::fprintf(stderr, "%s: loading %s: %s\n", argv[0], argv[1], std::strerror(-rc));
    return 1;
  }
  // Foreground and single-threaded: the crash model is not thread-safe, and
  // one loop keeps the order of operations the kernel sent.
  std::vector<char*> args = {argv[0], argv[2], const_cast<char*>("-f"), const_cast<char*>("-s")};
  for (int i = 3; i < argc; ++i) args.push_back(argv[i]);
  fuse_operations ops = walrus::testing::Operations();
  return fuse_main(static_cast<int>(args.size()), args.data(), &ops, &state);
}
