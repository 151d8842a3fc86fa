// LossyMount: runs walrus-lossy-fs (see lossy_fs_main.cc) for a test: mounts
// a backing directory, cuts power through the control file, unmounts.
//
// Cleanup: the destructor unmounts (lazily if a plain unmount fails) and
// reaps the file-system process; if this process dies instead, the file
// system gets SIGTERM (PR_SET_PDEATHSIG) and unmounts itself.
// Thread-safety: none; one test thread drives it.
#ifndef WALRUS_TESTS_POWERLOSS_LOSSY_MOUNT_H_
#define WALRUS_TESTS_POWERLOSS_LOSSY_MOUNT_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace walrus::testing {

// Path of the walrus-lossy-fs binary (WALRUS_LOSSY_FS, set by CMake).
std::string LossyFsBinary();

class LossyMount {
 public:
  // Both directories must exist; `log` receives the file system's stderr.
  LossyMount(std::string backing, std::string mountpoint, std::string log);
  ~LossyMount();
  LossyMount(const LossyMount&) = delete;
  LossyMount& operator=(const LossyMount&) = delete;

  // Mounts the backing image and waits (10 s at most) until it serves.
  // False, with the reason in *error, if it did not.
  [[nodiscard]] bool Mount(std::string* error);
  // Power loss: everything unsynced is dropped (the last unsynced write torn
  // at a `tear_sector` boundary if > 0), the result becomes the backing image
  // and the mount refuses everything until Unmount. Returns the file system's
  // report ("files_reverted=... torn_bytes=..."), or "error: ..." if the
  // command failed. The caller must have stopped every writer first.
  std::string Cut(uint64_t tear_sector, uint64_t seed);
  // Unmounts and waits for the file-system process (stopping it with
  // SIGTERM if the kernel still serves the mount elsewhere, e.g. in a mount
  // namespace created meanwhile); false (error() says why) if the unmount
  // failed and was done lazily, or the process had to be killed.
  bool Unmount();
  const std::string& error() const { return error_; }

  bool mounted() const { return pid_ > 0; }
  const std::string& mountpoint() const { return mountpoint_; }
  const std::string& backing() const { return backing_; }

 private:
  bool WaitExit(double seconds);

  std::string backing_;
  std::string mountpoint_;
  std::string log_;
  std::string error_;
  pid_t pid_ = -1;
};

// fsync(2) of a file or directory, as a program would do it (for the test's
// own setup steps on the mount). False on failure.
bool SyncPath(const std::string& path);

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_POWERLOSS_LOSSY_MOUNT_H_
