// walrusd's configuration: every flag also read from a WALRUS_* environment
// variable (the flag name upper-cased, '-' as '_'); a flag on the command line
// wins over the environment, which wins over the default.
#ifndef WALRUS_SERVER_CONFIG_H_
#define WALRUS_SERVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace walrus {

struct Config {
  std::string data_dir = "./data";
  std::vector<std::string> listen = {"127.0.0.1:7070"};
  std::string metrics_listen = "127.0.0.1:9464";  // "" disables
  uint64_t segment_size_bytes = 64'000'000;
  uint64_t max_batch_bytes = 16 << 20;
  std::chrono::microseconds max_batch_delay{0};
  uint64_t max_message_bytes = 16 << 20;
  std::chrono::microseconds slow_fsync_threshold{1'000'000};
  std::string log_level = "info";
  std::string log_format = "text";
  bool read_only = false;
  // Issue 4: segment garbage collection.
  uint64_t retain_released_segments = 5;
  bool help = false;
  bool version = false;

  std::string WalDir() const;
  std::string LockPath() const;
};

// Parses argv and the environment. INVALID_ARGUMENT names the bad flag.
[[nodiscard]] absl::StatusOr<Config> ParseConfig(int argc, char** argv, char** envp);
// The --help text: every flag, its variable, default and meaning.
std::string ConfigHelp();

}  // namespace walrus

#endif  // WALRUS_SERVER_CONFIG_H_
