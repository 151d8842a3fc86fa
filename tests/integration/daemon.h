// Starts and stops real walrusd processes for integration tests: a data
// directory of its own, a Unix socket (no port races) plus, on request, a
// loopback TCP port, and a stub connected to it.
#ifndef WALRUS_TESTS_INTEGRATION_DAEMON_H_
#define WALRUS_TESTS_INTEGRATION_DAEMON_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "walrus.grpc.pb.h"

namespace walrus::testing {

// Path of the walrusd binary (WALRUS_DAEMON, set by CMake).
std::string DaemonBinary();

class Daemon {
 public:
  // `data_dir` must exist or be creatable; extra flags are appended.
  Daemon(std::string data_dir, std::vector<std::string> extra_flags = {});
  ~Daemon();  // SIGKILL if still running

  // The process gets SIGKILL when the thread that started it exits (so a
  // dying test leaves no daemon behind): start it from the test's thread.
  //
  // Starts the process and waits until it answers Status (10 s at most; an
  // UNAUTHENTICATED answer counts, for daemons started with a token file).
  // Returns false (and the log tells why) if it exited or never answered.
  bool Start();
  // Starts and waits for it to exit; returns the exit code (-1 if it did not
  // exit within 10 s).
  int RunToExit();
  // Sends `signal` and waits for the exit code (-1 on timeout).
  int Signal(int signal, double timeout_seconds = 10);
  void Kill9();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  // Later starts run `prefix... walrusd flags...`; the prefix must exec the
  // daemon in the same process (e.g. /usr/bin/env VAR=VALUE), so pid() and
  // signals still reach it. Empty: walrusd itself.
  void set_command_prefix(std::vector<std::string> prefix) { prefix_ = std::move(prefix); }

  // Where the process's stderr goes (default: beside the data directory).
  // A data directory on a test file system that loses power would lose it.
  void set_log_path(std::string path) { log_path_ = std::move(path); }

  const std::string& target() const { return target_; }
  const std::string& data_dir() const { return data_dir_; }
  std::string wal_dir() const { return data_dir_ + "/wal"; }
  std::string log() const;  // what the process wrote to stderr
  v1::WAL::Stub* stub() { return stub_.get(); }
  std::unique_ptr<v1::WAL::Stub> NewStub() const;

 private:
  void Spawn();
  int WaitExit(double timeout_seconds);

  std::string data_dir_;
  std::vector<std::string> extra_flags_;
  std::vector<std::string> prefix_;
  std::string socket_;
  std::string target_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::unique_ptr<v1::WAL::Stub> stub_;
};

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_INTEGRATION_DAEMON_H_
