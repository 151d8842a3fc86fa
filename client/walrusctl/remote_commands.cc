#include "client/walrusctl/remote_commands.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/walrusctl/append_batcher.h"
#include "client/walrusctl/backup_commands.h"
#include "client/walrusctl/dump_format.h"
#include "client/walrusctl/status_format.h"
#include "core/wal.h"

namespace walrus {
namespace {

using cli::Args;
using cli::Fail;
using cli::kExitError;
using cli::kExitOk;

int FailRemote(absl::string_view what, const absl::Status& status) {
  return Fail(
      cli::RemoteExitCode(status),
      absl::StrCat(what, ": ", absl::StatusCodeToString(status.code()), ": ", status.message()));
}

int FinishStdout() {
  if (std::fflush(stdout) != 0) return Fail(kExitError, "writing to stdout failed");
  return kExitOk;
}

// `status` with `prefix` and `suffix` around its message; code and payloads
// (what tells a too-large request from a full disk) kept.
absl::Status Annotate(const absl::Status& status, absl::string_view prefix,
                      absl::string_view suffix) {
  absl::Status out(status.code(), absl::StrCat(prefix, status.message(), suffix));
  status.ForEachPayload(
      [&out](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

// Sends the batches of `append --jsonl` and counts what went out.
class JsonlAppender {
 public:
  explicit JsonlAppender(WalClient* client) : client_(client) {}

  // On failure the status names the batch; AfterFailure() says what is durable.
  absl::Status Send(const std::vector<raftpb::Entry>& batch, const raftpb::HardState& state) {
    absl::StatusOr<uint64_t> last = client_->Append(state, batch);
    if (!last.ok()) {
      std::string what = batch.empty() ? "append of the hard state"
                                       : absl::StrCat("append of entries ", batch.front().index(),
                                                      "..", batch.back().index());
      std::string unknown;
      // A timeout or a lost connection leaves the batch's fate unknown.
      if (last.status().code() == absl::StatusCode::kUnavailable ||
          last.status().code() == absl::StatusCode::kDeadlineExceeded) {
        unknown = "; whether it was written is unknown (see walrusctl status)";
      }
      return Annotate(last.status(), absl::StrCat(what, " failed: "),
                      absl::StrCat(unknown, "; ", Durable()));
    }
    ++appends_;
    entries_ += batch.size();
    last_index_ = *last;
    return absl::OkStatus();
  }

  // What the daemon has acknowledged so far, for a failure's message: a
  // rerun must know where the log ends.
  std::string Durable() const {
    if (appends_ == 0) return "nothing from this input was appended";
    return absl::StrCat("entries up to index ", last_index_, " are durable (", entries_,
                        " entries in ", appends_, " appends went before it)");
  }

  uint64_t appends() const { return appends_; }
  uint64_t entries() const { return entries_; }
  uint64_t last_index() const { return last_index_; }

 private:
  WalClient* client_;
  uint64_t appends_ = 0;
  uint64_t entries_ = 0;
  uint64_t last_index_ = 0;
};

}  // namespace

int RemoteAppend(WalClient* client, const Args& args) {
  auto file_flag = args.flags.find("jsonl");
  if (file_flag == args.flags.end() || !args.positional.empty()) {
    return Fail(kExitError, "usage: append --jsonl FILE|-");
  }
  BatchLimits limits;
  uint64_t max_entries = limits.max_entries, max_bytes = limits.max_bytes;
  std::string error;
  if (!cli::GetUint(args, "batch-entries", &max_entries, &error) ||
      !cli::GetUint(args, "batch-bytes", &max_bytes, &error)) {
    return Fail(kExitError, error);
  }
  if (max_entries == 0 || max_bytes == 0) {
    return Fail(kExitError, "--batch-entries and --batch-bytes must be at least 1");
  }
  limits.max_entries = max_entries;
  limits.max_bytes = max_bytes;

  const std::string& path = file_flag->second;
  FILE* in = path == "-" ? stdin : std::fopen(path.c_str(), "r");
  if (in == nullptr) return Fail(kExitError, absl::StrCat(path, ": ", std::strerror(errno)));
  struct Closer {
    FILE* f;
    ~Closer() {
      if (f != stdin) std::fclose(f);
    }
  } closer{in};

  JsonlLogReader reader(in);
  AppendBatcher batcher(limits);
  JsonlAppender appender(client);
  std::optional<std::string> metadata;
  uint64_t metadata_line = 0;
  bool created = false;
  raftpb::HardState state;  // the last one read; goes with the last batch
  const raftpb::HardState unchanged;
  LogLine line;
  while (true) {
    absl::StatusOr<bool> more = reader.Next(&line);
    if (!more.ok()) {
      return Fail(kExitError,
                  absl::StrCat(path, ": ", more.status().message(), "; ", appender.Durable()));
    }
    if (!*more) break;
    switch (line.kind) {
      case LogLine::Kind::kMetadata: {
        if (metadata.has_value()) {
          if (*metadata == line.metadata) break;
          return Fail(kExitError, absl::StrCat(path, ": line ", reader.line_number(),
                                               ": metadata differs from line ", metadata_line));
        }
        if (appender.appends() > 0 || batcher.pending_entries() > 0) {
          return Fail(kExitError, absl::StrCat(path, ": line ", reader.line_number(),
                                               ": metadata must come before the entries; ",
                                               appender.Durable()));
        }
        metadata = line.metadata;
        metadata_line = reader.line_number();
        absl::StatusOr<bool> c = client->Create(*metadata);
        if (!c.ok()) return FailRemote("create", c.status());
        created = *c;
        break;
      }
      case LogLine::Kind::kHardState:
        state = line.state;
        break;
      case LogLine::Kind::kEntry:
        if (std::optional<std::vector<raftpb::Entry>> full = batcher.Add(std::move(line.entry))) {
          // More entries follow, so this is not the last batch: no hard state.
          if (absl::Status s = appender.Send(*full, unchanged); !s.ok()) {
            return FailRemote(absl::StrCat(path, ": line ", reader.line_number()), s);
          }
        }
        break;
    }
  }
  std::vector<raftpb::Entry> last = batcher.TakePending();
  if (!last.empty() || !IsEmptyHardState(state)) {
    if (absl::Status s = appender.Send(last, state); !s.ok()) {
      return FailRemote(absl::StrCat(path, ": at the end"), s);
    }
  }
  std::printf("%s; appended %lu entries in %lu appends%s\n",
              !metadata.has_value() ? "no metadata line (WAL must exist)"
              : created             ? "created the WAL"
                                    : "WAL existed with the same metadata",
              static_cast<unsigned long>(appender.entries()),
              static_cast<unsigned long>(appender.appends()),
              appender.appends() > 0
                  ? absl::StrCat("; the log ends at index ", appender.last_index()).c_str()
                  : "");
  return FinishStdout();
}

int RemoteRead(WalClient* client, const Args& args) {
  if (!args.positional.empty()) return Fail(kExitError, "read takes no positional arguments");
  LogPrintOptions read_options;
  std::string error;
  if (!GetLogPrintOptions(args, &read_options, &error)) return Fail(kExitError, error);
  const uint64_t index = read_options.snapshot_index, term = read_options.snapshot_term;
  absl::StatusOr<ReadAllReply> log = client->ReadAll(index, term);
  if (!log.ok()) return FailRemote("read", log.status());
  LogPrinter printer(stdout, read_options.format);
  printer.Metadata(log->metadata);
  printer.HardState(log->state);
  for (const raftpb::Entry& entry : log->entries) printer.Entry(entry);
  printer.Finish();
  return FinishStdout();
}

int RemoteEntries(WalClient* client, const Args& args) {
  if (!args.Has("from") || !args.positional.empty()) {
    return Fail(kExitError, "usage: entries --from N [--to M] [--format=text|jsonl]");
  }
  uint64_t from = 0, to = 0;
  std::string error;
  LogPrintOptions read_options;
  if (!cli::GetUint(args, "from", &from, &error) || !cli::GetUint(args, "to", &to, &error) ||
      !GetLogPrintOptions(args, &read_options, &error)) {
    return Fail(kExitError, error);
  }
  if (from == 0 || (to != 0 && to < from)) return Fail(kExitError, "want 1 <= --from <= --to");
  LogPrinter printer(stdout, read_options.format);
  uint64_t next = from;
  do {
    // Each answer holds what fits in one message; ask again from the next.
    const uint64_t hi = to != 0 ? to + 1 : next + 1;
    absl::StatusOr<v1::EntriesResponse> got = client->Entries(next, std::max(hi, next + 1));
    if (!got.ok()) return FailRemote("entries", got.status());
    if (to == 0) to = got->last_index();  // to the last durable entry
    if (got->entries_size() == 0) break;
    for (const raftpb::Entry& e : got->entries()) printer.Entry(e);
    next += static_cast<uint64_t>(got->entries_size());
  } while (next <= to);
  printer.Finish();
  return FinishStdout();
}

int RemoteFollow(WalClient* client, const Args& args) {
  if (!args.Has("from") || !args.positional.empty()) {
    return Fail(kExitError, "usage: follow --from N [--format=text|jsonl]");
  }
  uint64_t from = 0;
  std::string error;
  LogPrintOptions read_options;
  if (!cli::GetUint(args, "from", &from, &error) ||
      !GetLogPrintOptions(args, &read_options, &error)) {
    return Fail(kExitError, error);
  }
  LogPrinter printer(stdout, read_options.format);
  absl::Status ended = client->Follow(from, 0, [&](const v1::FollowResponse& m) {
    if (m.truncated_from() != 0) printer.Truncated(m.truncated_from());
    for (const raftpb::Entry& e : m.entries()) printer.Entry(e);
    std::fflush(stdout);
    return absl::OkStatus();
  });
  return FailRemote("follow", ended);
}

int RemoteSnapshot(WalClient* client, const Args& args) {
  if (!args.Has("index") || !args.Has("term") || !args.positional.empty()) {
    return Fail(kExitError, "usage: snapshot --index N --term T");
  }
  uint64_t index = 0, term = 0;
  std::string error;
  if (!cli::GetUint(args, "index", &index, &error) || !cli::GetUint(args, "term", &term, &error)) {
    return Fail(kExitError, error);
  }
  if (absl::Status s = client->SaveSnapshot(index, term); !s.ok()) {
    return FailRemote("snapshot", s);
  }
  std::printf("snapshot marker saved: index %lu term %lu\n", static_cast<unsigned long>(index),
              static_cast<unsigned long>(term));
  return FinishStdout();
}

int RemoteRelease(WalClient* client, const Args& args) {
  if (!args.Has("index") || !args.positional.empty()) {
    return Fail(kExitError, "usage: release --index N");
  }
  uint64_t index = 0;
  std::string error;
  if (!cli::GetUint(args, "index", &index, &error)) return Fail(kExitError, error);
  absl::StatusOr<WalClient::Released> released = client->ReleaseTo(index);
  if (!released.ok()) return FailRemote("release", released.status());
  if (released->clamped) {
    std::printf(
        "released to index %lu, not %lu: the newest durable snapshot marker is at %lu, and "
        "entries no snapshot covers are never released\n",
        static_cast<unsigned long>(released->released_to), static_cast<unsigned long>(index),
        static_cast<unsigned long>(released->released_to));
  }
  std::printf("released %u segment%s before the one holding index %lu\n", released->segments,
              released->segments == 1 ? "" : "s",
              static_cast<unsigned long>(released->released_to));
  return FinishStdout();
}

int RemoteFence(WalClient* client, const Args& args) {
  if (!args.positional.empty()) return Fail(kExitError, "usage: fence");
  absl::StatusOr<uint64_t> epoch = client->Fence();
  if (!epoch.ok()) return FailRemote("fence", epoch.status());
  std::printf("writer epoch %lu issued; writes with an older epoch are now refused\n",
              static_cast<unsigned long>(*epoch));
  return FinishStdout();
}

int RemoteStatus(WalClient* client, const Args& args) {
  if (!args.positional.empty()) return Fail(kExitError, "usage: status [--json]");
  absl::StatusOr<v1::StatusResponse> status = client->Status();
  if (!status.ok()) return FailRemote("status", status.status());
  const StatusView view = DaemonStatusView(*status);
  std::string text = args.Has("json") ? StatusJson(view) : StatusText(view);
  std::fputs(text.c_str(), stdout);
  return FinishStdout();
}

}  // namespace walrus
