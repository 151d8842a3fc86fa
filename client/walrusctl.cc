// walrusctl: inspect, verify and repair a WAL directory (offline commands,
// here), and talk to a walrusd (remote commands, client/remote_commands.h).
//
// Exit codes (client/cli.h): 0 success, 1 usage or I/O error, 2 torn tail
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
#include "client/backup_commands.h"
#include "client/cli.h"
#include "client/client.h"
#include "client/log_printer.h"
#include "client/progress.h"
#include "client/remote_commands.h"
#include "client/status_format.h"
#include "core/errors.h"
#include "core/inspect.h"
#include "core/verify.h"
#include "core/wal.h"

namespace walrus {
namespace {

constexpr char kUsage[] =
    R"(usage: walrusctl [--server ADDR] [--timeout SECONDS] [SECURITY] COMMAND [ARGS]

Offline commands (on a WAL directory):
  dump DIR [--format=text|jsonl] [--snapshot-index N --snapshot-term T] [--allow-torn-tail]
       [--start-index N] [--end-index N] [--entry-type normal|confchange|confchangev2]
        Print what ReadAll returns: metadata, hard state, entries after the
        snapshot (only those from --start-index to --end-index, inclusive,
        of --entry-type, if given). Fails (non-zero, message on stderr) on
        any damage; a torn tail fails with exit 2 unless --allow-torn-tail.
  verify DIR [--json]
        Check every segment. Exit 0 clean, 2 torn tail (repairable),
        3 corruption; the message names the file, offset and index range.
  status DIR [--json]
        Segments with their entries and sizes, first and last index, hard
        state, snapshot markers, which segments a live process holds locked,
        disk use. Reads only; works while walrusd owns DIR.
  backup DIR DEST [--json]
        Point-in-time copy of DIR (a WAL directory, or a walrusd data
        directory holding wal/) while a walrusd may be writing it: locks the
        released segments it reads so walrusd's purge keeps them, copies
        every file, the last one up to its last valid record. DEST (which
        must not exist) appears only complete and verified.
  repair DIR
        Truncate a torn tail of the last segment, keeping <segment>.broken.
        Refuses corruption (exit 3, nothing changed) and a directory a live
        process holds (exit 4).

Remote commands (on a walrusd; --server ADDR before the command, or the
WALRUS_SERVER environment variable; ADDR is host:port or unix:PATH):
  append --jsonl FILE|- [--batch-entries N] [--batch-bytes B]
        Replay the `dump --format=jsonl` format (FILE, or - for stdin): a
        metadata line creates the WAL if needed (the same metadata again is
        fine), entries go in appends of at most N entries (1000) and about
        B bytes (4194304), the last hard state with the last append. So
          walrusctl dump DIR --format=jsonl | walrusctl --server A append --jsonl -
        copies a log. A malformed line stops it (exit 1) naming the line.
  read [--format=text|jsonl] [--snapshot-index N --snapshot-term T]
        Print the daemon's durable log exactly as dump prints a directory.
  entries --from N [--to M] [--format=text|jsonl]
        Print durable entries N..M (M: the last) from the daemon's ranged
        reads, as dump prints entries. Exit 7 if N is compacted (released,
        or before a marker that replaced the log).
  follow --from N [--format=text|jsonl]
        Print durable entries from N on as they become durable, until
        interrupted or the stream ends (exit 7: fell behind a release; 6: a
        marker replaced what was printed). A line says when a new leader
        replaced entries already printed ("truncated", or kind "truncate").
  snapshot --index N --term T
        Record a snapshot marker (durable when the command returns).
  release --index N
        Release the segments wholly before the one holding index N, clamped
        to the newest durable snapshot marker (the output says so).
  status [--json]
        The daemon's state: entries, hard state, segments (held, released,
        pinned by a backup), purge policy and what blocks it, health.
  backup DEST [--json] [--chunk-bytes N]
        Point-in-time backup through the daemon while appends continue: it
        pins the segments, fixes the durable end, streams the files; every
        chunk's CRC-32C is checked. DEST (which must not exist) appears only
        complete, verified, and holding every entry acknowledged before the
        backup started.
  fence
        Issue a new writer epoch and print it: from now on the daemon refuses
        writes carrying an older epoch (the previous writer is fenced out).
        Pass the printed epoch with --epoch to later writing commands.

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

using cli::Args;
using cli::Fail;
using cli::kExitCorrupt;
using cli::kExitError;
using cli::kExitInUse;
using cli::kExitOk;
using cli::kExitTornTail;

int Dump(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "dump needs exactly one DIR");
  cli::LogReadOptions read_options;
  std::string error;
  if (!cli::GetLogReadOptions(args, &read_options, &error)) return Fail(kExitError, error);
  const uint64_t index = read_options.snapshot_index, term = read_options.snapshot_term;
  walpb::Snapshot snapshot;
  snapshot.set_index(index);
  snapshot.set_term(term);
  uint64_t start_index = 0, end_index = UINT64_MAX;
  if (!cli::GetUint(args, "start-index", &start_index, &error) ||
      !cli::GetUint(args, "end-index", &end_index, &error)) {
    return Fail(kExitError, error);
  }
  if (start_index > end_index) {
    return Fail(kExitError, "--start-index must not be greater than --end-index");
  }
  std::optional<raftpb::EntryType> entry_type;
  if (args.Has("entry-type")) {
    const std::string& t = args.flags.at("entry-type");
    if (t == "normal" || t == "0") {
      entry_type = raftpb::EntryNormal;
    } else if (t == "confchange" || t == "1") {
      entry_type = raftpb::EntryConfChange;
    } else if (t == "confchangev2" || t == "2") {
      entry_type = raftpb::EntryConfChangeV2;
    } else {
      return Fail(kExitError,
                  absl::StrCat("bad --entry-type '", t, "': normal, confchange or confchangev2"));
    }
  }
  const std::string& dir = args.positional[0];
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRead(dir, snapshot, WalOptions());
  if (!wal.ok()) return Fail(cli::OfflineExitCode(wal.status()), wal.status().ToString());
  absl::StatusOr<ReadAllResult> result = (*wal)->ReadAll();
  if (!result.ok()) return Fail(cli::OfflineExitCode(result.status()), result.status().ToString());
  bool allow_torn = args.flags.count("allow-torn-tail") > 0;
  if (!result->torn_tail.empty() && !allow_torn) {
    return Fail(kExitTornTail, absl::StrCat("torn tail in ", result->torn_tail,
                                            " (never synced); not printing a shortened log. Use "
                                            "--allow-torn-tail to print what precedes it"));
  }
  LogPrinter printer(stdout, read_options.format);
  printer.Metadata(result->metadata);
  printer.HardState(result->state);
  ProgressMeter meter("dump", "entries", "");
  uint64_t done = 0;
  for (const raftpb::Entry& entry : result->entries) {
    if (++done % 1024 == 0) meter.Update(done, result->entries.size());
    if (entry.index() < start_index || entry.index() > end_index) continue;
    if (entry_type.has_value() && entry.type() != *entry_type) continue;
    printer.Entry(entry);
  }
  printer.Finish();
  meter.Update(done, result->entries.size());
  meter.Finish();
  if (!result->torn_tail.empty()) {
    std::fprintf(stderr, "walrusctl: warning: torn tail in %s (never synced)\n",
                 result->torn_tail.c_str());
  }
  if (std::fflush(stdout) != 0) return Fail(kExitError, "writing to stdout failed");
  return kExitOk;
}

int Verify(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "verify needs exactly one DIR");
  ProgressMeter meter("verify", "bytes", "segments");
  absl::StatusOr<VerifyReport> report =
      walrus::Verify(PosixFs(), args.positional[0],
                     [&](uint64_t done, uint64_t total, size_t files_done, size_t files_total) {
                       meter.Update(done, total, files_done, files_total);
                     });
  meter.Finish();
  if (!report.ok()) return Fail(kExitError, report.status().ToString());
  std::string line = report->Describe();
  if (args.Has("json")) {
    static const char* const kOutcomes[] = {"clean", "torn_tail", "corrupt"};
    std::printf(
        "{\"dir\":%s,\"outcome\":\"%s\",\"segments\":%zu,\"records\":%lu,\"entries\":%lu,"
        "\"first_index\":%lu,\"last_index\":%lu,\"file\":%s,\"offset\":%lu,\"reason\":%s,"
        "\"seconds\":%.3f}\n",
        cli::JsonQuote(args.positional[0]).c_str(), kOutcomes[report->outcome], report->segments,
        static_cast<unsigned long>(report->records), static_cast<unsigned long>(report->entries),
        static_cast<unsigned long>(report->first_index.value_or(0)),
        static_cast<unsigned long>(report->last_index.value_or(0)),
        cli::JsonQuote(report->file).c_str(), static_cast<unsigned long>(report->offset),
        cli::JsonQuote(report->reason).c_str(), meter.elapsed_seconds());
    std::fflush(stdout);
    return report->outcome == VerifyReport::kClean      ? kExitOk
           : report->outcome == VerifyReport::kTornTail ? kExitTornTail
                                                        : kExitCorrupt;
  }
  switch (report->outcome) {
    case VerifyReport::kClean:
      std::printf("%s\n", line.c_str());
      return kExitOk;
    case VerifyReport::kTornTail:
      return Fail(kExitTornTail, line);
    case VerifyReport::kCorrupt:
      return Fail(kExitCorrupt, line);
  }
  return kExitError;
}

int DirStatus(const Args& args) {
  absl::StatusOr<DirInspection> inspection =
      InspectDir(PosixFs(), ResolveWalDir(args.positional[0]));
  if (!inspection.ok()) return Fail(kExitError, inspection.status().ToString());
  const StatusView view = DirStatusView(*inspection);
  std::string text = args.Has("json") ? StatusJson(view) : StatusText(view);
  std::fputs(text.c_str(), stdout);
  if (std::fflush(stdout) != 0) return Fail(kExitError, "writing to stdout failed");
  return kExitOk;
}

int Repair(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "repair needs exactly one DIR");
  absl::StatusOr<RepairReport> report = walrus::Repair(PosixFs(), args.positional[0]);
  if (!report.ok()) {
    if (IsInUse(report.status())) return Fail(kExitInUse, report.status().message());
    return Fail(cli::OfflineExitCode(report.status()), report.status().message());
  }
  if (!report->repaired) {
    std::printf("nothing to repair: %s\n", report->before.Describe().c_str());
    return kExitOk;
  }
  std::printf("repaired: %s truncated at offset %lu (%s); original kept as %s\n",
              report->file.c_str(), static_cast<unsigned long>(report->truncated_at),
              report->before.reason.c_str(), report->broken_copy.c_str());
  return kExitOk;
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
  int i = 1;
  for (; i < argc && std::strncmp(argv[i], "--", 2) == 0; ++i) {
    std::string arg = argv[i];
    if (arg == "--help") {
      global.help = true;
      continue;
    }
    size_t eq = arg.find('=');
    std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    std::string value;
    if (name != "server" && name != "timeout" && name != "epoch" && paths.count(name) == 0) {
      global.error = absl::StrCat("unknown global flag ", arg, "; see walrusctl --help");
      break;
    }
    if (eq != std::string::npos) {
      value = arg.substr(eq + 1);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      global.error = absl::StrCat("flag --", name, " needs a value");
      break;
    }
    if (name == "server") {
      global.server = value;
    } else if (paths.count(name) > 0) {
      *paths.at(name) = value;
    } else if (name == "epoch") {
      cli::Args parsed;
      parsed.flags["epoch"] = value;
      if (!cli::GetUint(parsed, "epoch", &global.security.epoch, &global.error)) break;
    } else {
      cli::Args parsed;
      parsed.flags["timeout"] = value;
      if (!cli::GetDouble(parsed, "timeout", &global.timeout_seconds, &global.error)) break;
      if (global.timeout_seconds <= 0) {
        global.error = "--timeout must be more than 0 seconds";
        break;
      }
    }
  }
  *next = i;
  return global;
}

int RunRemote(const std::string& command, const GlobalFlags& global, const Args& args) {
  if (global.server.empty()) {
    return Fail(kExitError, absl::StrCat(command,
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
  return RunRemoteCommand(command, client->get(), args);
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
    std::fputs(kUsage, asked ? stdout : stderr);
    return asked ? kExitOk : kExitError;
  }
  std::string command = argv[first];
  Args args = cli::ParseArgs(argc, argv, first + 1, {"allow-torn-tail", "help", "json"});
  if (!args.error.empty()) return Fail(kExitError, args.error);
  if (args.flags.count("help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (command == "dump") return Dump(args);
  if (command == "verify") return Verify(args);
  if (command == "repair") return Repair(args);
  // Offline forms of backup and status (a directory argument).
  if (command == "backup" && args.positional.size() == 2) return OfflineBackupCommand(args);
  if (command == "status" && args.positional.size() == 1) return DirStatus(args);
  if (IsRemoteCommand(command)) return RunRemote(command, global, args);
  return Fail(kExitError, absl::StrCat("unknown command '", command, "'; see walrusctl --help"));
}
