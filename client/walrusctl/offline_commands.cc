#include "client/walrusctl/offline_commands.h"

#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "client/walrusctl/backup_commands.h"
#include "client/walrusctl/dump_format.h"
#include "client/walrusctl/progress.h"
#include "client/walrusctl/status_format.h"
#include "core/errors.h"
#include "core/inspect.h"
#include "core/verify.h"
#include "core/wal.h"

namespace walrus {

using cli::Args;
using cli::Fail;
using cli::kExitCorrupt;
using cli::kExitError;
using cli::kExitInUse;
using cli::kExitOk;
using cli::kExitTornTail;

int OfflineDump(const Args& args) {
  if (args.positional.size() != 1) return Fail(kExitError, "dump needs exactly one DIR");
  LogPrintOptions read_options;
  std::string error;
  if (!GetLogPrintOptions(args, &read_options, &error)) return Fail(kExitError, error);
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

int OfflineVerify(const Args& args) {
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
    std::printf("%s\n", cli::JsonObject()
                            .String("dir", args.positional[0])
                            .String("outcome", kOutcomes[report->outcome])
                            .Number("segments", report->segments)
                            .Number("records", report->records)
                            .Number("entries", report->entries)
                            .Number("first_index", report->first_index.value_or(0))
                            .Number("last_index", report->last_index.value_or(0))
                            .String("file", report->file)
                            .Number("offset", report->offset)
                            .String("reason", report->reason)
                            .Double("seconds", meter.elapsed_seconds(), 3)
                            .Build()
                            .c_str());
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

int OfflineStatus(const Args& args) {
  absl::StatusOr<DirInspection> inspection =
      InspectDir(PosixFs(), ResolveWalDir(args.positional[0]));
  if (!inspection.ok()) return Fail(kExitError, inspection.status().ToString());
  const StatusView view = DirStatusView(*inspection);
  std::string text = args.Has("json") ? StatusJson(view) : StatusText(view);
  std::fputs(text.c_str(), stdout);
  if (std::fflush(stdout) != 0) return Fail(kExitError, "writing to stdout failed");
  return kExitOk;
}

int OfflineRepair(const Args& args) {
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

}  // namespace walrus
