// walrusd's configuration: every flag also read from a WALRUS_* environment
// variable (the flag name upper-cased, '-' as '_'); a flag on the command line
// wins over the environment, which wins over the default.
#ifndef WALRUS_SERVER_CONFIG_H_
#define WALRUS_SERVER_CONFIG_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/format.h"
#include "core/purge.h"
#include "server/defaults.h"

namespace walrus {

struct Config {
  std::string data_dir = "./data";
  std::vector<std::string> listen = {"127.0.0.1:7070"};
  std::string metrics_listen = "127.0.0.1:9464";  // "" disables
  uint64_t segment_size_bytes = kDefaultSegmentSize;
  uint64_t max_batch_bytes = kDefaultMaxBatchBytes;
  std::chrono::microseconds max_batch_delay{0};
  uint64_t max_message_bytes = kDefaultMaxMessageBytes;
  std::chrono::microseconds slow_fsync_threshold{1'000'000};
  std::string log_level = "info";
  std::string log_format = "text";
  bool read_only = false;
  bool direct_io = true;
  uint64_t direct_io_min_bytes = kDefaultDirectIoMinBytes;

  // Security (docs/security.md). TLS on every TCP listener when
  // tls_cert_file is set; files are re-read every tls_refresh_interval.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_ca_file;  // verifies client certificates
  bool tls_require_client_cert = false;
  std::chrono::microseconds tls_refresh_interval{60'000'000};
  uint32_t unix_socket_mode = 0600;  // 0600 or 0660
  std::string auth_token_file;       // "" disables token authentication
  bool insecure = false;             // allow plaintext on non-loopback TCP
  bool insecure_metrics = false;     // allow --metrics-listen off loopback (implied by insecure)
  std::string health_listen;         // "" disables the plaintext health listener
  // Appends in frames on a Unix socket (server/local_socket.h); "" disables.
  std::string local_socket;
  uint32_t local_max_connections = 16;
  // Limits (0 disables the ones that are durations).
  uint32_t max_concurrent_streams = 100;
  std::chrono::microseconds max_connection_idle{1'800'000'000};  // 30 min
  std::chrono::microseconds max_connection_age{3'600'000'000};   // 1 h
  std::chrono::microseconds handshake_timeout{10'000'000};
  uint64_t memory_quota_bytes = 1ull << 30;
  // Bytes an AppendStream, and all of them together, may hold before they
  // stop reading requests (backpressure; server/byte_budget.h).
  uint64_t stream_budget_bytes = 64ull << 20;
  uint64_t append_budget_bytes = 512ull << 20;
  // The threads that run ReadAll, Backup and Status (server/read_pool.h).
  uint32_t read_workers = 4;
  std::chrono::microseconds read_queue_timeout{5'000'000};
  std::chrono::microseconds backup_stall_timeout{60'000'000};

  // Segment garbage collection.
  uint64_t retain_released_segments = kDefaultRetainReleasedSegments;
  bool help = false;
  bool version = false;

  std::string WalDir() const;
  std::string LockPath() const;
  // The writer epoch file (server/writer_epoch.h), beside the WAL directory.
  std::string EpochPath() const;
};

// Parses argv and the environment. INVALID_ARGUMENT names the bad flag, or
// the flags that do not go together (e.g. --tls-cert-file without
// --tls-key-file, --tls-require-client-cert without --tls-ca-file).
[[nodiscard]] absl::StatusOr<Config> ParseConfig(int argc, char** argv, char** envp);
// The --help text: every flag, its variable, default and meaning.
std::string ConfigHelp();
// Every flag walrusd takes (without the leading "--"), in --help order, and
// the environment variable that sets each.
std::vector<std::pair<std::string, std::string>> ConfigFlags();

}  // namespace walrus

#endif  // WALRUS_SERVER_CONFIG_H_
