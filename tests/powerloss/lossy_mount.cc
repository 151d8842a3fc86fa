#include "tests/powerloss/lossy_mount.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace walrus::testing {
namespace {

constexpr char kControlName[] = "/.lossyfs-control";

// Runs a command to completion, its output appended to `log`; its exit code
// (-1 if it could not run).
int RunCommand(std::vector<std::string> args, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 2);
    dup2(fd, 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  if (pid < 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// "tid state wchan [kernel stack]" of every thread of `pid` (diagnostics).
std::string ThreadStates(pid_t pid) {
  std::string out;
  std::error_code ec;
  const std::string task = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(task, ec)) {
    auto read = [](const std::string& path) {
      std::ifstream in(path);
      std::stringstream text;
      text << in.rdbuf();
      return text.str();
    };
    std::string stat = read(t.path().string() + "/stat");
    size_t paren = stat.rfind(')');
    out +=
        t.path().filename().string() + " " +
        (paren != std::string::npos && paren + 2 < stat.size() ? stat.substr(paren + 2, 1) : "?") +
        " " + read(t.path().string() + "/wchan") + " [" + read(t.path().string() + "/stack") + "] ";
  }
  return out;
}

}  // namespace

std::string LossyFsBinary() {
  const char* path = getenv("WALRUS_LOSSY_FS");
  return path != nullptr ? path : WALRUS_LOSSY_FS_PATH;
}

LossyMount::LossyMount(std::string backing, std::string mountpoint, std::string log)
    : backing_(std::move(backing)), mountpoint_(std::move(mountpoint)), log_(std::move(log)) {}

LossyMount::~LossyMount() {
  if (pid_ > 0) (void)Unmount();
}

bool LossyMount::Mount(std::string* error) {
  std::vector<std::string> args = {LossyFsBinary(), backing_, mountpoint_, "-o",
                                   "fsname=walrus-lossy"};
  pid_ = fork();
  if (pid_ == 0) {
    // If the test dies, the file system gets SIGTERM, on which libfuse
    // unmounts and exits. (Not -o auto_unmount: its helper outlives the
    // process and may unmount the next mount at the same path.)
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 2);
    dup2(fd, 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  // The control file exists only inside the mount: once it answers, the
  // file system serves.
  const std::string control = mountpoint_ + kControlName;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      *error = "walrus-lossy-fs exited (see " + log_ + ")";
      return false;
    }
    struct stat st;
    if (stat(control.c_str(), &st) == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *error = "walrus-lossy-fs did not serve " + mountpoint_ + " within 10 s";
  (void)Unmount();
  return false;
}

std::string LossyMount::Cut(uint64_t tear_sector, uint64_t seed) {
  const std::string control = mountpoint_ + kControlName;
  std::string command = "cut tear=" + std::to_string(tear_sector) + " seed=" + std::to_string(seed);
  int fd = open(control.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return "error: open control file";
  ssize_t n = write(fd, command.data(), command.size());
  char report[512];
  ssize_t got =
      n == static_cast<ssize_t>(command.size()) ? pread(fd, report, sizeof(report), 0) : -1;
  close(fd);
  if (n != static_cast<ssize_t>(command.size())) return "error: the cut failed (see " + log_ + ")";
  if (got <= 0) return "error: no report";
  std::string out(report, static_cast<size_t>(got));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool LossyMount::Unmount() {
  if (pid_ <= 0) return true;
  int rc = RunCommand({"fusermount3", "-u", mountpoint_}, log_);
  if (rc != 0) {
    error_ = "fusermount3 -u failed (exit " + std::to_string(rc) + ")";
    // Busy or hung: detach the mount.
    (void)RunCommand({"fusermount3", "-u", "-z", mountpoint_}, log_);
  }
  if (!WaitExit(10)) {
    // Unmounted here but still served: a mount namespace made elsewhere on
    // the machine while this was mounted holds a copy of the mount, so the
    // kernel keeps the connection. The image is written (at the cut, or is
    // not wanted), so stop the process: SIGTERM ends libfuse's loop.
    kill(pid_, SIGTERM);
    if (!WaitExit(5)) {
      if (rc == 0) error_ = "walrus-lossy-fs ignored SIGTERM; its threads: " + ThreadStates(pid_);
      kill(pid_, SIGKILL);
      (void)WaitExit(10);
      rc = rc == 0 ? -1 : rc;
    }
  }
  pid_ = -1;
  return rc == 0;
}

bool LossyMount::WaitExit(double seconds) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

bool SyncPath(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

}  // namespace walrus::testing
