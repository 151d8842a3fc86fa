#include "server/config.h"

#include <functional>
#include <map>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/fs.h"

namespace walrus {
namespace {

struct FlagSpec {
  const char* name;
  const char* value_name;  // empty for a boolean
  const char* help;
  std::function<std::string(const Config&)> show;
  std::function<bool(Config*, const std::string&, bool repeat)> set;
};

bool ParseBytes(const std::string& s, uint64_t* out) { return absl::SimpleAtoi(s, out); }

bool ParseDuration(const std::string& s, std::chrono::microseconds* out) {
  absl::Duration d;
  if (!absl::ParseDuration(s, &d) || d < absl::ZeroDuration()) return false;
  *out = std::chrono::microseconds(absl::ToInt64Microseconds(d));
  return true;
}

bool ParseBool(const std::string& s, bool* out) {
  std::string v = absl::AsciiStrToLower(s);
  if (v == "true" || v == "1" || v == "yes") return *out = true, true;
  if (v == "false" || v == "0" || v == "no") return *out = false, true;
  return false;
}

std::string ShowDuration(std::chrono::microseconds us) {
  return absl::FormatDuration(absl::Microseconds(us.count()));
}

const std::vector<FlagSpec>& Specs() {
  static const auto* specs = new std::vector<FlagSpec>{
      {"data-dir", "DIR",
       "directory walrusd owns: the WAL lives in DIR/wal, the ownership lock in "
       "DIR/walrusd.lock",
       [](const Config& c) { return c.data_dir; },
       [](Config* c, const std::string& v, bool) { return !(c->data_dir = v).empty(); }},
      {"listen", "ADDR",
       "gRPC listener, host:port or unix:PATH; repeat the flag (or separate with commas) "
       "for several",
       [](const Config& c) { return absl::StrJoin(c.listen, ","); },
       [](Config* c, const std::string& v, bool repeat) {
         if (!repeat) c->listen.clear();
         for (absl::string_view part : absl::StrSplit(v, ',', absl::SkipEmpty())) {
           c->listen.emplace_back(part);
         }
         return !c->listen.empty();
       }},
      {"metrics-listen", "HOST:PORT",
       "Prometheus /metrics listener (plaintext HTTP); loopback only unless "
       "--insecure-metrics; empty disables it",
       [](const Config& c) { return c.metrics_listen; },
       [](Config* c, const std::string& v, bool) { return c->metrics_listen = v, true; }},
      {"segment-size-bytes", "BYTES", "size at which a new WAL segment is cut (etcd: 64000000)",
       [](const Config& c) { return absl::StrCat(c.segment_size_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->segment_size_bytes) && c->segment_size_bytes >= 4096;
       }},
      {"direct-io", "",
       "write batches of at least --direct-io-min-bytes to the WAL around the page cache "
       "(O_DIRECT) where the file system takes it; durability is the same either way (each "
       "batch is fdatasync'd), large entries are faster; --direct-io=false buffers every "
       "write (walrus_wal_direct_io shows which)",
       [](const Config& c) { return c.direct_io ? "true" : "false"; },
       [](Config* c, const std::string& v, bool) { return ParseBool(v, &c->direct_io); }},
      {"direct-io-min-bytes", "BYTES",
       "smallest batch written with direct I/O; smaller ones stay in the page cache, where "
       "reads of recent entries find them",
       [](const Config& c) { return absl::StrCat(c.direct_io_min_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->direct_io_min_bytes);
       }},
      {"max-batch-bytes", "BYTES", "upper bound of one group-commit batch (one write + fsync)",
       [](const Config& c) { return absl::StrCat(c.max_batch_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->max_batch_bytes) && c->max_batch_bytes > 0;
       }},
      {"max-batch-delay", "DURATION",
       "wait this long for more appends before each fsync (0: never wait; the batch is "
       "whatever arrived during the previous fsync)",
       [](const Config& c) { return ShowDuration(c.max_batch_delay); },
       [](Config* c, const std::string& v, bool) { return ParseDuration(v, &c->max_batch_delay); }},
      {"max-message-bytes", "BYTES", "largest gRPC message accepted",
       [](const Config& c) { return absl::StrCat(c.max_message_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->max_message_bytes) && c->max_message_bytes >= 1024 &&
                c->max_message_bytes <= (1u << 30);
       }},
      {"slow-fsync-threshold", "DURATION", "log a warning for each fsync slower than this",
       [](const Config& c) { return ShowDuration(c.slow_fsync_threshold); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->slow_fsync_threshold);
       }},
      {"log-level", "LEVEL", "trace, debug, info, warn, error",
       [](const Config& c) { return c.log_level; },
       [](Config* c, const std::string& v, bool) {
         c->log_level = v;
         return v == "trace" || v == "debug" || v == "info" || v == "warn" || v == "error";
       }},
      {"log-format", "FORMAT", "text or json (one JSON object per line)",
       [](const Config& c) { return c.log_format; },
       [](Config* c, const std::string& v, bool) {
         c->log_format = v;
         return v == "text" || v == "json";
       }},
      {"read-only", "",
       "serve reads only; also starts on a corrupt log (writes fail FAILED_PRECONDITION)",
       [](const Config& c) { return c.read_only ? "true" : "false"; },
       [](Config* c, const std::string& v, bool) { return ParseBool(v, &c->read_only); }},

      // Security and limits (docs/security.md).
      {"tls-cert-file", "FILE",
       "TLS on every TCP listener: the server certificate chain (PEM); re-read every "
       "--tls-refresh-interval, so a rotated certificate needs no restart",
       [](const Config& c) { return c.tls_cert_file; },
       [](Config* c, const std::string& v, bool) { return c->tls_cert_file = v, true; }},
      {"tls-key-file", "FILE", "the private key of --tls-cert-file (PEM)",
       [](const Config& c) { return c.tls_key_file; },
       [](Config* c, const std::string& v, bool) { return c->tls_key_file = v, true; }},
      {"tls-ca-file", "FILE",
       "CA bundle (PEM) that client certificates are verified against (mutual TLS)",
       [](const Config& c) { return c.tls_ca_file; },
       [](Config* c, const std::string& v, bool) { return c->tls_ca_file = v, true; }},
      {"tls-require-client-cert", "",
       "refuse TLS clients without a certificate signed by --tls-ca-file (mutual TLS)",
       [](const Config& c) { return c.tls_require_client_cert ? "true" : "false"; },
       [](Config* c, const std::string& v, bool) {
         return ParseBool(v, &c->tls_require_client_cert);
       }},
      {"tls-refresh-interval", "DURATION",
       "how often the TLS files are checked for changes (at least 1s)",
       [](const Config& c) { return ShowDuration(c.tls_refresh_interval); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->tls_refresh_interval) &&
                c->tls_refresh_interval >= std::chrono::seconds(1);
       }},
      {"unix-socket-mode", "MODE",
       "file mode of unix:PATH listeners: 0600 (owner only) or 0660 (owner and group)",
       [](const Config& c) { return c.unix_socket_mode == 0660 ? "0660" : "0600"; },
       [](Config* c, const std::string& v, bool) {
         if (v == "0600" || v == "600") return c->unix_socket_mode = 0600, true;
         if (v == "0660" || v == "660") return c->unix_socket_mode = 0660, true;
         return false;
       }},
      {"auth-token-file", "FILE",
       "require \"authorization: Bearer TOKEN\" on every call; the file holds the accepted "
       "tokens, one per line, and is re-read when it changes. Needs TLS, a unix socket or a "
       "loopback listener",
       [](const Config& c) { return c.auth_token_file; },
       [](Config* c, const std::string& v, bool) { return c->auth_token_file = v, true; }},
      {"insecure", "",
       "allow plaintext on non-loopback TCP listeners (anyone on the network can write the "
       "log); logs a warning",
       [](const Config& c) { return c.insecure ? "true" : "false"; },
       [](Config* c, const std::string& v, bool) { return ParseBool(v, &c->insecure); }},
      {"insecure-metrics", "",
       "allow --metrics-listen on a non-loopback address: /metrics is plaintext HTTP without "
       "authentication and shows the WAL's sizes, indexes and data directory to anyone who can "
       "reach it (--insecure allows it too)",
       [](const Config& c) { return c.insecure_metrics ? "true" : "false"; },
       [](Config* c, const std::string& v, bool) { return ParseBool(v, &c->insecure_metrics); }},
      {"health-listen", "HOST:PORT",
       "separate plaintext listener serving only grpc.health.v1 (for probes that cannot "
       "speak TLS); empty disables it",
       [](const Config& c) { return c.health_listen; },
       [](Config* c, const std::string& v, bool) { return c->health_listen = v, true; }},
      {"local-socket", "PATH",
       "also take appends in length-prefixed frames on this Unix socket, for a Raft node on "
       "the same host: a shorter path per append than gRPC (docs/local-socket.md); created "
       "with --unix-socket-mode, authenticated with --auth-token-file if set; empty disables it",
       [](const Config& c) { return c.local_socket; },
       [](Config* c, const std::string& v, bool) { return c->local_socket = v, true; }},
      {"local-max-connections", "N",
       "connections the --local-socket serves at once; more are refused RESOURCE_EXHAUSTED",
       [](const Config& c) { return absl::StrCat(c.local_max_connections); },
       [](Config* c, const std::string& v, bool) {
         return absl::SimpleAtoi(v, &c->local_max_connections) && c->local_max_connections > 0 &&
                c->local_max_connections <= 1024;
       }},
      {"max-concurrent-streams", "N", "concurrent calls per connection (HTTP/2 streams)",
       [](const Config& c) { return absl::StrCat(c.max_concurrent_streams); },
       [](Config* c, const std::string& v, bool) {
         return absl::SimpleAtoi(v, &c->max_concurrent_streams) && c->max_concurrent_streams > 0;
       }},
      {"max-connection-idle", "DURATION",
       "close connections without calls for this long (0: never)",
       [](const Config& c) { return ShowDuration(c.max_connection_idle); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->max_connection_idle);
       }},
      {"max-connection-age", "DURATION",
       "ask clients to reconnect after this long (GOAWAY; calls in flight finish; 0: never)",
       [](const Config& c) { return ShowDuration(c.max_connection_age); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->max_connection_age);
       }},
      {"handshake-timeout", "DURATION",
       "a new connection must finish its handshake (TLS included) within this",
       [](const Config& c) { return ShowDuration(c.handshake_timeout); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->handshake_timeout) &&
                c->handshake_timeout >= std::chrono::milliseconds(100);
       }},
      {"memory-quota-bytes", "BYTES",
       "memory gRPC may use for all connections and calls (a resource quota)",
       [](const Config& c) { return absl::StrCat(c.memory_quota_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->memory_quota_bytes) && c->memory_quota_bytes >= (1u << 20);
       }},
      {"stream-budget-bytes", "BYTES",
       "bytes one AppendStream may hold (appends not yet durable plus acknowledgements the "
       "client has not taken) before walrusd stops reading from it until some are released; "
       "a single larger append still goes through",
       [](const Config& c) { return absl::StrCat(c.stream_budget_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->stream_budget_bytes) && c->stream_budget_bytes >= 1024;
       }},
      {"append-budget-bytes", "BYTES",
       "the same across all AppendStreams together: over it, every stream waits",
       [](const Config& c) { return absl::StrCat(c.append_budget_bytes); },
       [](Config* c, const std::string& v, bool) {
         return ParseBytes(v, &c->append_budget_bytes) && c->append_budget_bytes >= 1024;
       }},
      {"read-workers", "N",
       "threads that run ReadAll, Backup and Status calls; more calls wait for one",
       [](const Config& c) { return absl::StrCat(c.read_workers); },
       [](Config* c, const std::string& v, bool) {
         return absl::SimpleAtoi(v, &c->read_workers) && c->read_workers > 0 &&
                c->read_workers <= 1024;
       }},
      {"read-queue-timeout", "DURATION",
       "how long a ReadAll, Backup or Status call waits for a free read worker before it "
       "fails RESOURCE_EXHAUSTED",
       [](const Config& c) { return ShowDuration(c.read_queue_timeout); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->read_queue_timeout);
       }},
      {"backup-stall-timeout", "DURATION",
       "cancel a Backup or ReadAll whose client has taken no data for this long, freeing its "
       "read worker and releasing its pin (so the purge can go on)",
       [](const Config& c) { return ShowDuration(c.backup_stall_timeout); },
       [](Config* c, const std::string& v, bool) {
         return ParseDuration(v, &c->backup_stall_timeout) &&
                c->backup_stall_timeout >= std::chrono::milliseconds(100);
       }},

      // Segment garbage collection.
      {"retain-released-segments", "N",
       "released segments (ReleaseTo) kept before the purge deletes the oldest (etcd's "
       "--max-wals); 0 deletes them at once. A segment pinned by a backup, or locked by "
       "another process, is never deleted",
       [](const Config& c) { return absl::StrCat(c.retain_released_segments); },
       [](Config* c, const std::string& v, bool) {
         return absl::SimpleAtoi(v, &c->retain_released_segments);
       }},
  };
  return *specs;
}

std::string EnvName(const char* flag) {
  return absl::StrCat("WALRUS_", absl::AsciiStrToUpper(absl::StrReplaceAll(flag, {{"-", "_"}})));
}

const FlagSpec* Find(absl::string_view name) {
  for (const FlagSpec& spec : Specs()) {
    if (name == spec.name) return &spec;
  }
  return nullptr;
}

// Flags that only make sense together; checked once everything is parsed.
absl::Status CheckSecurityFlags(const Config& c) {
  if (c.tls_cert_file.empty() != c.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  if (c.tls_cert_file.empty() && (!c.tls_ca_file.empty() || c.tls_require_client_cert)) {
    return absl::InvalidArgumentError(
        "--tls-ca-file and --tls-require-client-cert need TLS: set --tls-cert-file and "
        "--tls-key-file");
  }
  if (c.tls_require_client_cert && c.tls_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls-require-client-cert needs --tls-ca-file (the CA client certificates are "
        "verified against)");
  }
  return absl::OkStatus();
}

}  // namespace

std::string Config::WalDir() const { return JoinPath(data_dir, "wal"); }
std::string Config::LockPath() const { return JoinPath(data_dir, "walrusd.lock"); }
std::string Config::EpochPath() const { return JoinPath(data_dir, "writer-epoch"); }

absl::StatusOr<Config> ParseConfig(int argc, char** argv, char** envp) {
  Config config;
  std::map<std::string, std::string> env;
  for (char** e = envp; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const FlagSpec& spec : Specs()) {
    auto it = env.find(EnvName(spec.name));
    if (it != env.end() && !spec.set(&config, it->second, false)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", it->second, "' in ", EnvName(spec.name)));
    }
  }
  std::map<std::string, int> seen;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      config.help = true;
      continue;
    }
    if (arg == "--version") {
      config.version = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", arg, "'"));
    }
    std::string name = arg.substr(2), value;
    size_t eq = name.find('=');
    const FlagSpec* spec = Find(eq == std::string::npos ? name : name.substr(0, eq));
    if (spec == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag ", arg, " (see --help)"));
    }
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
    } else if (*spec->value_name == '\0') {
      value = "true";
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("flag --", spec->name, " needs a value"));
    }
    if (!spec->set(&config, value, seen[spec->name]++ > 0)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad value '", value, "' for --", spec->name, " (see --help)"));
    }
  }
  if (absl::Status s = CheckSecurityFlags(config); !s.ok()) return s;
  return config;
}

std::string ConfigHelp() {
  Config defaults;
  std::string out =
      "usage: walrusd [FLAGS]\n\n"
      "walrusd serves one WAL directory (etcd's WAL format) to a Raft node over gRPC.\n"
      "Every flag can also be set with the environment variable shown; a flag on the\n"
      "command line wins.\n\n";
  for (const FlagSpec& spec : Specs()) {
    std::string head = *spec.value_name ? absl::StrCat("--", spec.name, "=", spec.value_name)
                                        : absl::StrCat("--", spec.name);
    absl::StrAppend(&out, "  ", head, "  [", EnvName(spec.name), "]\n      ", spec.help,
                    "\n      default: ", spec.show(defaults), "\n");
  }
  absl::StrAppend(&out, "  --help, --version\n");
  return out;
}

std::vector<std::pair<std::string, std::string>> ConfigFlags() {
  std::vector<std::pair<std::string, std::string>> flags;
  for (const FlagSpec& spec : Specs()) flags.emplace_back(spec.name, EnvName(spec.name));
  return flags;
}

}  // namespace walrus
