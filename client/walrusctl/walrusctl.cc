// walrusctl: inspect, verify and repair a WAL directory (offline commands,
// client/walrusctl/offline_commands.h), and talk to a walrusd (remote commands,
// client/walrusctl/remote_commands.h). Here: the command table, the global
// flags, and main.
//
// Exit codes (client/cli/cli.h): 0 success, 1 usage or I/O error, 2 torn tail
// (repairable), 3 corruption, 4 the directory is held by a live process;
// remote: 5 daemon unavailable, 6 refused, 7 not found, 8 disk full, 9 request
// too large.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "client/cli/cli.h"
#include "client/client.h"
#include "client/walrusctl/backup_commands.h"
#include "client/walrusctl/offline_commands.h"
#include "client/walrusctl/remote_commands.h"

namespace walrus {
namespace {

using cli::Args;
using cli::Fail;
using cli::kExitError;
using cli::kExitOk;

using OfflineHandler = int (*)(const Args& args);
using RemoteHandler = int (*)(WalClient* client, const Args& args);

// walrusctl's commands, one row each. A command runs offline (on a WAL
// directory) or remote (on a walrusd, through --server); one that has both
// forms runs offline when given its directory form's `offline_positionals`
// positional arguments, and remote otherwise. --help prints each section's
// paragraphs in the table's order.
struct Command {
  const char* name;
  OfflineHandler offline;      // nullptr: remote only
  RemoteHandler remote;        // nullptr: offline only
  size_t offline_positionals;  // read only when both handlers are set
  const char* offline_usage;   // its paragraph of --help, if offline
  const char* remote_usage;    // its paragraph of --help, if remote
};

constexpr Command kCommands[] = {
    {"dump", OfflineDump, nullptr, 0,
     R"(  dump DIR [--format=text|jsonl] [--snapshot-index N --snapshot-term T] [--allow-torn-tail]
       [--start-index N] [--end-index N] [--entry-type normal|confchange|confchangev2]
        Print what ReadAll returns: metadata, hard state, entries after the
        snapshot (only those from --start-index to --end-index, inclusive,
        of --entry-type, if given). Fails (non-zero, message on stderr) on
        any damage; a torn tail fails with exit 2 unless --allow-torn-tail.
)",
     nullptr},
    {"verify", OfflineVerify, nullptr, 0,
     R"(  verify DIR [--json]
        Check every segment. Exit 0 clean, 2 torn tail (repairable),
        3 corruption; the message names the file, offset and index range.
)",
     nullptr},
    {"append", nullptr, RemoteAppend, 0, nullptr,
     R"(  append --jsonl FILE|- [--batch-entries N] [--batch-bytes B]
        Replay the `dump --format=jsonl` format (FILE, or - for stdin): a
        metadata line creates the WAL if needed (the same metadata again is
        fine), entries go in appends of at most N entries (1000) and about
        B bytes (4194304), the last hard state with the last append. So
          walrusctl dump DIR --format=jsonl | walrusctl --server A append --jsonl -
        copies a log. A malformed line stops it (exit 1) naming the line.
)"},
    {"read", nullptr, RemoteRead, 0, nullptr,
     R"(  read [--format=text|jsonl] [--snapshot-index N --snapshot-term T]
        Print the daemon's durable log exactly as dump prints a directory.
)"},
    {"entries", nullptr, RemoteEntries, 0, nullptr,
     R"(  entries --from N [--to M] [--format=text|jsonl]
        Print durable entries N..M (M: the last) from the daemon's ranged
        reads, as dump prints entries. Exit 7 if N is compacted (released,
        or before a marker that replaced the log).
)"},
    {"follow", nullptr, RemoteFollow, 0, nullptr,
     R"(  follow --from N [--format=text|jsonl]
        Print durable entries from N on as they become durable, until
        interrupted or the stream ends (exit 7: fell behind a release; 6: a
        marker replaced what was printed). A line says when a new leader
        replaced entries already printed ("truncated", or kind "truncate").
)"},
    {"snapshot", nullptr, RemoteSnapshot, 0, nullptr,
     R"(  snapshot --index N --term T
        Record a snapshot marker (durable when the command returns).
)"},
    {"release", nullptr, RemoteRelease, 0, nullptr,
     R"(  release --index N
        Release the segments wholly before the one holding index N, clamped
        to the newest durable snapshot marker (the output says so).
)"},
    {"status", OfflineStatus, RemoteStatus, 1,
     R"(  status DIR [--json]
        Segments with their entries and sizes, first and last index, hard
        state, snapshot markers, which segments a live process holds locked,
        disk use. Reads only; works while walrusd owns DIR.
)",
     R"(  status [--json]
        The daemon's state: entries, hard state, segments (held, released,
        pinned by a backup), purge policy and what blocks it, health.
)"},
    {"backup", OfflineBackupCommand, RemoteBackup, 2,
     R"(  backup DIR DEST [--json]
        Point-in-time copy of DIR (a WAL directory, or a walrusd data
        directory holding wal/) while a walrusd may be writing it: locks the
        released segments it reads so walrusd's purge keeps them, copies
        every file, the last one up to its last valid record. DEST (which
        must not exist) appears only complete and verified.
)",
     R"(  backup DEST [--json] [--chunk-bytes N]
        Point-in-time backup through the daemon while appends continue: it
        pins the segments, fixes the durable end, streams the files; every
        chunk's CRC-32C is checked. DEST (which must not exist) appears only
        complete, verified, and holding every entry acknowledged before the
        backup started.
)"},
    {"repair", OfflineRepair, nullptr, 0,
     R"(  repair DIR
        Truncate a torn tail of the last segment, keeping <segment>.broken.
        Refuses corruption (exit 3, nothing changed) and a directory a live
        process holds (exit 4).
)",
     nullptr},
    {"fence", nullptr, RemoteFence, 0, nullptr,
     R"(  fence
        Issue a new writer epoch and print it: from now on the daemon refuses
        writes carrying an older epoch (the previous writer is fenced out).
        Pass the printed epoch with --epoch to later writing commands.
)"},
};

constexpr char kUsageHead[] =
    R"(usage: walrusctl [--server ADDR] [--timeout SECONDS] [SECURITY] COMMAND [ARGS]

Offline commands (on a WAL directory):
)";
constexpr char kRemoteUsageHead[] = R"(
Remote commands (on a walrusd; --server ADDR before the command, or the
WALRUS_SERVER environment variable; ADDR is host:port or unix:PATH):
)";
constexpr char kUsageTail[] = R"(
Security flags (before the command):
  --tls-ca-file FILE     TLS: verify the daemon against this CA (PEM)
  --tls-cert-file FILE   mutual TLS: client certificate (with --tls-key-file)
  --tls-key-file FILE    mutual TLS: its private key
  --tls-server-name NAME check the daemon's certificate for NAME
  --token-file FILE      send the bearer token in FILE (env WALRUS_TOKEN_FILE)
  --epoch N              writer epoch for append/snapshot/release (default 0)

Progress (bytes, files, rate, time left) is drawn on stderr for backup,
verify and dump when stderr is a terminal.

Calls that find the daemon unavailable are retried with backoff; each call
must finish within --timeout seconds (default 10; read: 300).

Exit codes: 0 ok, 1 usage, I/O or input error, 2 torn tail, 3 corruption
(DATA_LOSS), 4 in use, 5 daemon unavailable or timed out, 6 refused by the
daemon (FAILED_PRECONDITION, INVALID_ARGUMENT: nothing written), 7 not found
(snapshot marker), 8 the daemon's disk is full, 9 a request larger than the
daemon accepts (an entry over its --max-message-bytes; never succeeds on a
retry). PERMISSION_DENIED (the daemon's file system refused it: an operator
problem, the WAL fail-stops) exits 1.
)";

std::string Usage() {
  std::string text = kUsageHead;
  for (const Command& command : kCommands) {
    if (command.offline_usage != nullptr) text += command.offline_usage;
  }
  text += kRemoteUsageHead;
  for (const Command& command : kCommands) {
    if (command.remote_usage != nullptr) text += command.remote_usage;
  }
  return text + kUsageTail;
}

const Command* FindCommand(absl::string_view name) {
  for (const Command& command : kCommands) {
    if (name == command.name) return &command;
  }
  return nullptr;
}

// Whether `command`, given `args`, runs on a directory rather than a walrusd.
bool RunsOffline(const Command& command, const Args& args) {
  if (command.remote == nullptr) return true;
  if (command.offline == nullptr) return false;
  return args.positional.size() == command.offline_positionals;
}

// Global flags come before the command: --server ADDR, --timeout SECONDS,
// --help. Sets *next to the index of the command.
struct GlobalFlags {
  std::string server;
  ClientOptions security;      // TLS, token and epoch fields only
  double timeout_seconds = 0;  // 0: the defaults
  bool help = false;
  std::string error;
};

GlobalFlags ParseGlobalFlags(int argc, char** argv, int* next) {
  GlobalFlags global;
  if (const char* env = std::getenv("WALRUS_SERVER"); env != nullptr) global.server = env;
  if (const char* env = std::getenv("WALRUS_TOKEN_FILE"); env != nullptr) {
    global.security.token_file = env;
  }
  const std::map<std::string, std::string*> paths = {
      {"tls-ca-file", &global.security.tls_ca_file},
      {"tls-cert-file", &global.security.tls_cert_file},
      {"tls-key-file", &global.security.tls_key_file},
      {"tls-server-name", &global.security.tls_server_name},
      {"token-file", &global.security.token_file},
  };
  const Args parsed = cli::ParseLeadingFlags(argc, argv, 1, {"help"}, next);
  if (!parsed.error.empty()) {
    global.error = parsed.error;
    return global;
  }
  for (const auto& [name, value] : parsed.flags) {
    if (name == "help") {
      global.help = true;
    } else if (name == "server") {
      global.server = value;
    } else if (paths.count(name) > 0) {
      *paths.at(name) = value;
    } else if (name != "epoch" && name != "timeout") {
      global.error = absl::StrCat("unknown global flag --", name, "; see walrusctl --help");
      return global;
    }
  }
  if (!cli::GetUint(parsed, "epoch", &global.security.epoch, &global.error)) return global;
  if (!cli::GetDouble(parsed, "timeout", &global.timeout_seconds, &global.error)) return global;
  if (parsed.Has("timeout") && global.timeout_seconds <= 0) {
    global.error = "--timeout must be more than 0 seconds";
  }
  return global;
}

int RunRemote(const Command& command, const GlobalFlags& global, const Args& args) {
  if (global.server.empty()) {
    return Fail(kExitError, absl::StrCat(command.name,
                                         " talks to a walrusd: pass --server ADDR "
                                         "before the command, or set WALRUS_SERVER"));
  }
  ClientOptions options = global.security;
  if (global.timeout_seconds > 0) {
    auto timeout =
        std::chrono::milliseconds(static_cast<int64_t>(std::ceil(global.timeout_seconds * 1000)));
    options.call_timeout = timeout;
    options.read_timeout = timeout;
  }
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(global.server, options);
  if (!client.ok()) return Fail(kExitError, client.status().message());
  return command.remote(client->get(), args);
}

}  // namespace
}  // namespace walrus

int main(int argc, char** argv) {
  using namespace walrus;
  int first = 1;
  GlobalFlags global = ParseGlobalFlags(argc, argv, &first);
  if (!global.error.empty()) return Fail(kExitError, global.error);
  if (first >= argc || global.help || std::strcmp(argv[first], "help") == 0) {
    bool asked = global.help || first < argc;
    std::fputs(Usage().c_str(), asked ? stdout : stderr);
    return asked ? kExitOk : kExitError;
  }
  const std::string name = argv[first];
  Args args = cli::ParseArgs(argc, argv, first + 1, {"allow-torn-tail", "help", "json"});
  if (!args.error.empty()) return Fail(kExitError, args.error);
  if (args.flags.count("help")) {
    std::fputs(Usage().c_str(), stdout);
    return kExitOk;
  }
  const Command* command = FindCommand(name);
  if (command == nullptr) {
    return Fail(kExitError, absl::StrCat("unknown command '", name, "'; see walrusctl --help"));
  }
  if (RunsOffline(*command, args)) return command->offline(args);
  return RunRemote(*command, global, args);
}
