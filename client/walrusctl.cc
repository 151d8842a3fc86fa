// walrusctl: inspect, verify and repair a WAL directory (offline commands).
//
// Exit codes: 0 success, 1 usage or I/O error, 2 torn tail (repairable),
// 3 corruption, 4 the directory is held by a live process.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "client/log_printer.h"
#include "core/errors.h"
#include "core/verify.h"
#include "core/wal.h"

namespace walrus {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitError = 1;
constexpr int kExitTornTail = 2;
constexpr int kExitCorrupt = 3;
constexpr int kExitInUse = 4;

constexpr char kUsage[] = R"(usage: walrusctl COMMAND [ARGS]

Offline commands (on a WAL directory):
  dump DIR [--format=text|jsonl] [--snapshot-index N --snapshot-term T] [--allow-torn-tail]
        Print what ReadAll returns: metadata, hard state, entries after the
        snapshot. Fails (non-zero, message on stderr) on any damage; a torn
        tail fails with exit 2 unless --allow-torn-tail.
  verify DIR
        Check every segment. Exit 0 clean, 2 torn tail (repairable),
        3 corruption; the message names the file, offset and index range.
  repair DIR
        Truncate a torn tail of the last segment, keeping <segment>.broken.
        Refuses corruption (exit 3, nothing changed) and a directory a live
        process holds (exit 4).

Exit codes: 0 ok, 1 usage or I/O error, 2 torn tail, 3 corruption, 4 in use.
)";

// --name=value or --name value; positional arguments kept in order.
struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;
  std::string error;
};

Args ParseArgs(int argc, char** argv, int first, const std::vector<std::string>& bool_flags) {
  Args args;
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) {
      args.positional.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      args.flags[name.substr(0, eq)] = name.substr(eq + 1);
    } else if (std::find(bool_flags.begin(), bool_flags.end(), name) != bool_flags.end()) {
      args.flags[name] = "true";
    } else if (i + 1 < argc) {
      args.flags[name] = argv[++i];
    } else {
      args.error = absl::StrCat("flag --", name, " needs a value");
    }
  }
  return args;
}

int Fail(int code, absl::string_view message) {
  std::fprintf(stderr, "walrusctl: %.*s\n", static_cast<int>(message.size()), message.data());
  return code;
}

int ExitCodeFor(const absl::Status& status) {
  if (IsTornTail(status)) return kExitTornTail;
  if (status.code() == absl::StatusCode::kDataLoss) return kExitCorrupt;
  return kExitError;
}

bool GetUint(const Args& args, const std::string& name, uint64_t* out, std::string* error) {
  auto it = args.flags.find(name);
  if (it == args.flags.end()) return true;
  if (!absl::SimpleAtoi(it->second, out)) {
    *error = absl::StrCat("--", name, " must be a non-negative integer, got '", it->second, "'");
    return false;
  }
  return true;
}

int Dump(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "dump needs exactly one DIR");
  auto format_flag = args.flags.find("format");
  std::optional<LogFormat> format =
      ParseLogFormat(format_flag == args.flags.end() ? "text" : format_flag->second);
  if (!format.has_value()) return Fail(kExitError, "--format must be text or jsonl");
  uint64_t index = 0, term = 0;
  std::string error;
  if (!GetUint(args, "snapshot-index", &index, &error) ||
      !GetUint(args, "snapshot-term", &term, &error)) {
    return Fail(kExitError, error);
  }
  walpb::Snapshot snapshot;
  snapshot.set_index(index);
  snapshot.set_term(term);
  const std::string& dir = args.positional[0];
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRead(dir, snapshot, WalOptions());
  if (!wal.ok()) return Fail(ExitCodeFor(wal.status()), wal.status().ToString());
  absl::StatusOr<ReadAllResult> result = (*wal)->ReadAll();
  if (!result.ok()) return Fail(ExitCodeFor(result.status()), result.status().ToString());
  bool allow_torn = args.flags.count("allow-torn-tail") > 0;
  if (!result->torn_tail.empty() && !allow_torn) {
    return Fail(kExitTornTail, absl::StrCat("torn tail in ", result->torn_tail,
                                            " (never synced); not printing a shortened log. Use "
                                            "--allow-torn-tail to print what precedes it"));
  }
  LogPrinter printer(stdout, *format);
  printer.Metadata(result->metadata);
  printer.HardState(result->state);
  for (const raftpb::Entry& entry : result->entries) printer.Entry(entry);
  printer.Finish();
  if (!result->torn_tail.empty()) {
    std::fprintf(stderr, "walrusctl: warning: torn tail in %s (never synced)\n",
                 result->torn_tail.c_str());
  }
  if (std::fflush(stdout) != 0) return Fail(kExitError, "writing to stdout failed");
  return kExitOk;
}

int Verify(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "verify needs exactly one DIR");
  absl::StatusOr<VerifyReport> report = walrus::Verify(PosixFs(), args.positional[0]);
  if (!report.ok()) return Fail(kExitError, report.status().ToString());
  std::string line = report->Describe();
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

int Repair(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "repair needs exactly one DIR");
  absl::StatusOr<RepairReport> report = walrus::Repair(PosixFs(), args.positional[0]);
  if (!report.ok()) {
    if (report.status().code() == absl::StatusCode::kFailedPrecondition) {
      return Fail(kExitInUse, report.status().message());
    }
    return Fail(ExitCodeFor(report.status()), report.status().message());
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

}  // namespace
}  // namespace walrus

int main(int argc, char** argv) {
  using namespace walrus;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "help") == 0) {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? kExitError : kExitOk;
  }
  std::string command = argv[1];
  Args args = ParseArgs(argc, argv, 2, {"allow-torn-tail", "help"});
  if (!args.error.empty()) return Fail(kExitError, args.error);
  if (args.flags.count("help")) {
    std::fputs(kUsage, stdout);
    return kExitOk;
  }
  if (command == "dump") return Dump(args);
  if (command == "verify") return Verify(args);
  if (command == "repair") return Repair(args);
  return Fail(kExitError, absl::StrCat("unknown command '", command, "'; see walrusctl --help"));
}
