// LossyFs: the in-memory model behind the power-loss FUSE file system (in
// the spirit of Jepsen's LazyFS), kept free of FUSE so it can be tested on
// its own.
//
// Crash model. Every node has two states: what a process sees (the page
// cache) and what would survive a power failure (the disk).
//  - File data and size become durable only when the file is fsynced or
//    fdatasynced (both persist data and size; nothing else is kept per file).
//  - Directory entries (create, mkdir, rename, unlink, rmdir) become durable
//    only when that directory is fsynced; each directory on its own, so a
//    rename between two directories is durable in each one separately.
//  - PowerLoss() replaces the visible state by the durable one. Optionally
//    the unsynced changes of the file written last are torn: a prefix of
//    them (from the first changed byte), cut at a sector boundary, reached
//    the disk (and the file's size, if they grew the file).
//    A file no durable entry names is gone; a file a durable entry names but
//    whose data was never synced is empty.
// This is stricter than ext4 or XFS (they persist metadata in journal
// commits the program does not ask for), which is the point: a program that
// is correct here relies only on what POSIX promises.
//
// Persistence. The durable image lives in a real directory tree (`backing`):
// Load() reads it as the initial state (all of it durable), DumpDurable()
// writes the durable state there (after PowerLoss) and DumpVisible() the
// visible state (a clean unmount, which syncs everything). Modes and sizes
// are kept; owners, times and holes are not.
//
// Errors are returned as negative errno values, the FUSE convention.
// Thread-safety: none; the FUSE adapter runs single-threaded.
#ifndef WALRUS_TESTS_POWERLOSS_LOSSY_FS_H_
#define WALRUS_TESTS_POWERLOSS_LOSSY_FS_H_

#include <sys/stat.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace walrus::testing {

struct LossyNode {
  bool is_dir = false;
  mode_t mode = 0;
  uint64_t ino = 0;
  struct timespec mtime {};
  // Files: what readers see, and what the disk holds.
  std::string data;
  std::string durable_data;
  // Since the last sync: whether anything changed, the byte range written
  // (empty when lo >= hi) and the smallest size the file had (a shrink
  // followed by a write must not bring old bytes back at the sync).
  bool dirty = false;
  uint64_t dirty_lo = 0, dirty_hi = 0;
  uint64_t min_size = 0;
  // Directories: visible entries, and the ones the disk holds.
  std::map<std::string, std::shared_ptr<LossyNode>> entries;
  std::map<std::string, std::shared_ptr<LossyNode>> durable_entries;
};
using NodePtr = std::shared_ptr<LossyNode>;

// What one PowerLoss() threw away, for the test's report.
struct LossReport {
  int files_reverted = 0;   // files with unsynced data or size
  int dirs_reverted = 0;    // directories with unsynced entry changes
  uint64_t torn_bytes = 0;  // unsynced bytes of the torn file that survived
  uint64_t torn_of = 0;     // the unsynced range's length (0: nothing torn)
  std::string torn_file;    // the torn file's visible path before the loss
};

class LossyFs {
 public:
  LossyFs();

  // Replaces everything by the tree under `backing` (all of it durable).
  // -errno if it cannot be read.
  [[nodiscard]] int Load(const std::string& backing);
  // Writes the durable (or visible) tree to `backing`, replacing what was
  // there (through `backing`.new and a rename, so a failure leaves the old
  // image). -errno on failure.
  [[nodiscard]] int DumpDurable(const std::string& backing) const;
  [[nodiscard]] int DumpVisible(const std::string& backing) const;

  // Power failure: the visible state becomes the durable one. With
  // `tear_sector` > 0 a sector-aligned prefix (chosen by `seed`, possibly
  // empty or whole) of the unsynced changes of the file written last
  // survives too.
  LossReport PowerLoss(uint64_t tear_sector, uint64_t seed);

  // Path operations; `path` is absolute within the file system ("/a/b").
  [[nodiscard]] int Lookup(const std::string& path, NodePtr* node) const;
  [[nodiscard]] int Create(const std::string& path, mode_t mode, bool exclusive, NodePtr* node);
  [[nodiscard]] int Mkdir(const std::string& path, mode_t mode);
  [[nodiscard]] int Unlink(const std::string& path);
  [[nodiscard]] int Rmdir(const std::string& path);
  // RENAME_NOREPLACE is honoured; RENAME_EXCHANGE is -EINVAL.
  [[nodiscard]] int Rename(const std::string& from, const std::string& to, unsigned int flags);

  // Node operations (the node may be unlinked and still open).
  [[nodiscard]] static int Read(const LossyNode& node, uint64_t offset, size_t size, char* out);
  [[nodiscard]] int Write(const NodePtr& node, uint64_t offset, const char* data, size_t size);
  [[nodiscard]] static int Truncate(LossyNode* node, uint64_t size);
  // mode 0 and FALLOC_FL_KEEP_SIZE; others -EOPNOTSUPP.
  [[nodiscard]] static int Fallocate(LossyNode* node, int mode, uint64_t offset, uint64_t length);
  // fsync or fdatasync of a file, fsync of a directory.
  void Sync(LossyNode* node);
  static void FillStat(const LossyNode& node, struct stat* st);
  static void Touch(LossyNode* node);

 private:
  NodePtr NewNode(bool is_dir, mode_t mode);
  int Dump(const std::string& backing, bool durable) const;
  // Splits "/a/b/c" into the parent node of "c" and "c".
  int ResolveParent(const std::string& path, NodePtr* parent, std::string* name) const;

  NodePtr root_;
  uint64_t next_ino_ = 1;
  // The file written last while unsynced: the candidate for tearing.
  std::weak_ptr<LossyNode> last_write_node_;
};

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_POWERLOSS_LOSSY_FS_H_
