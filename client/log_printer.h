// Prints what ReadAll returns, in the two formats `walrusctl dump` and
// `walrusctl read` share: "jsonl" (one JSON object per line: metadata, hard
// state, then one per entry) and "text" (for people, like etcd-dump-logs).
#ifndef WALRUS_CLIENT_LOG_PRINTER_H_
#define WALRUS_CLIENT_LOG_PRINTER_H_

#include <cstdio>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "raft.pb.h"

namespace walrus {

enum class LogFormat { kText, kJsonl };

// Parses "text" or "jsonl".
std::optional<LogFormat> ParseLogFormat(absl::string_view name);

// Writes records to `out` as they come; not thread-safe.
class LogPrinter {
 public:
  LogPrinter(FILE* out, LogFormat format) : out_(out), format_(format) {}
  void Metadata(absl::string_view metadata);
  void HardState(const raftpb::HardState& state);
  void Entry(const raftpb::Entry& entry);
  // Text format's closing summary; nothing for jsonl.
  void Finish();

 private:
  FILE* out_;
  LogFormat format_;
  uint64_t entries_ = 0;
  bool header_printed_ = false;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_LOG_PRINTER_H_
