#include "tests/integration/daemon.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"

namespace walrus::testing {

std::string DaemonBinary() {
  const char* path = getenv("WALRUS_DAEMON");
  return path != nullptr ? path : WALRUS_DAEMON_PATH;
}

Daemon::Daemon(std::string data_dir, std::vector<std::string> extra_flags)
    : data_dir_(std::move(data_dir)), extra_flags_(std::move(extra_flags)) {
  // The socket lives beside the data directory: unix socket paths are
  // limited to ~100 bytes, so keep it short and unique.
  static int counter = 0;
  socket_ = absl::StrCat("/tmp/walrus-it-", getpid(), "-", counter++, ".sock");
  target_ = "unix:" + socket_;
  log_path_ = data_dir_ + ".log";
}

Daemon::~Daemon() {
  if (pid_ > 0) Kill9();
  unlink(socket_.c_str());
}

void Daemon::Spawn() {
  unlink(socket_.c_str());
  std::vector<std::string> args = {DaemonBinary(), "--data-dir",       data_dir_, "--listen",
                                   target_,        "--metrics-listen", ""};
  args.insert(args.end(), extra_flags_.begin(), extra_flags_.end());
  args.insert(args.begin(), prefix_.begin(), prefix_.end());
  pid_ = fork();
  if (pid_ == 0) {
    // A test that dies (a ctest timeout) takes its daemon with it, which
    // also frees a test file system the daemon's data directory is on.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(fd, 2);
    dup2(fd, 1);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
}

bool Daemon::Start() {
  Spawn();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    // A fresh channel each try: a channel that failed to connect backs off
    // for a second or more before it tries again.
    stub_ = NewStub();
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
    v1::StatusRequest request;
    v1::StatusResponse response;
    if (access(socket_.c_str(), F_OK) == 0) {
      grpc::Status status = stub_->Status(&context, request, &response);
      // A daemon that wants a bearer token answers, just not with a status.
      if (status.ok() || status.error_code() == grpc::StatusCode::UNAUTHENTICATED) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::unique_ptr<v1::WAL::Stub> Daemon::NewStub() const {
  return v1::WAL::NewStub(grpc::CreateChannel(target_, grpc::InsecureChannelCredentials()));
}

int Daemon::RunToExit() {
  Spawn();
  int code = WaitExit(10);
  if (code == -1) Kill9();
  return code;
}

int Daemon::Signal(int signal, double timeout_seconds) {
  if (pid_ <= 0) return -1;
  kill(pid_, signal);
  return WaitExit(timeout_seconds);
}

void Daemon::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitExit(10);
}

int Daemon::WaitExit(double timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      return 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

std::string Daemon::log() const {
  std::ifstream in(log_path_);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace walrus::testing
