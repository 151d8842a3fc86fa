// The two formats `walrusctl dump`, `read`, `entries` and `follow` print,
// and the jsonl one read back by `walrusctl append --jsonl`:
//
//   text    for people, like etcd-dump-logs.
//   jsonl   one JSON object per line: metadata, hard state, then one per
//           entry:
//
//   {"kind":"metadata","data":"<base64>"}
//   {"kind":"hardstate","term":T,"vote":V,"commit":C}
//   {"kind":"entry","index":I,"term":T,"type":0,"data":"<base64>"}
//
// The parser takes exactly this shape: a flat object with string and integer
// members, in any order, with any JSON whitespace. Required: "kind";
// metadata's "data"; an entry's "index" (>= 1) and "term". Optional, 0 or
// empty when absent: the hard state's three numbers, an entry's "type"
// (0 normal, 1 conf change, 2 conf change v2) and "data". Members it does not
// know are ignored, so a later printer may add some. Integers are unsigned
// 64-bit decimals; anything else (signs, fractions, exponents, nested objects
// or arrays, duplicate members, bad base64) is malformed.
#ifndef WALRUS_CLIENT_WALRUSCTL_DUMP_FORMAT_H_
#define WALRUS_CLIENT_WALRUSCTL_DUMP_FORMAT_H_

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/cli/cli.h"
#include "raft.pb.h"

namespace walrus {

enum class LogFormat { kText, kJsonl };

// Parses "text" or "jsonl".
std::optional<LogFormat> ParseLogFormat(absl::string_view name);

// What `dump` and `read` share: --format (text|jsonl, default text) and the
// snapshot to read from (--snapshot-index/--snapshot-term, default 0/0).
struct LogPrintOptions {
  LogFormat format = LogFormat::kText;
  uint64_t snapshot_index = 0;
  uint64_t snapshot_term = 0;
};
// False with `*error` set on a bad value.
bool GetLogPrintOptions(const cli::Args& args, LogPrintOptions* out, std::string* error);

// Writes records to `out` as they come; not thread-safe.
class LogPrinter {
 public:
  LogPrinter(FILE* out, LogFormat format) : out_(out), format_(format) {}
  void Metadata(absl::string_view metadata);
  void HardState(const raftpb::HardState& state);
  void Entry(const raftpb::Entry& entry);
  // The line `follow` prints when a new leader replaced entries from `from`
  // on, already printed.
  void Truncated(uint64_t from);
  // Text format's closing summary; nothing for jsonl.
  void Finish();

 private:
  FILE* out_;
  LogFormat format_;
  uint64_t entries_ = 0;
  bool header_printed_ = false;
};

struct LogLine {
  enum class Kind { kMetadata, kHardState, kEntry };
  Kind kind = Kind::kEntry;
  std::string metadata;     // kMetadata
  raftpb::HardState state;  // kHardState
  raftpb::Entry entry;      // kEntry
};

// Parses one line (without its newline). INVALID_ARGUMENT says what is wrong
// with it; the caller adds where.
[[nodiscard]] absl::StatusOr<LogLine> ParseLogLine(absl::string_view line);

// Reads lines from a FILE one at a time (memory stays bounded by the longest
// line). Blank lines are skipped; a trailing '\r' is dropped.
// Not thread-safe; does not own `in`.
class JsonlLogReader {
 public:
  explicit JsonlLogReader(FILE* in) : in_(in) {}
  ~JsonlLogReader();
  JsonlLogReader(const JsonlLogReader&) = delete;
  JsonlLogReader& operator=(const JsonlLogReader&) = delete;

  // Reads the next record into *line: true, or false at the end of the
  // input. INVALID_ARGUMENT for a malformed line ("line 7: ..."), and a read
  // error as the errno's code.
  [[nodiscard]] absl::StatusOr<bool> Next(LogLine* line);

  // The number of the line Next() read last (1-based).
  uint64_t line_number() const { return line_number_; }

 private:
  FILE* in_;
  char* buffer_ = nullptr;  // getline's
  size_t capacity_ = 0;
  uint64_t line_number_ = 0;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_DUMP_FORMAT_H_
