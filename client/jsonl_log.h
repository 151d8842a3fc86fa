// Reads back the jsonl format LogPrinter writes (`walrusctl dump
// --format=jsonl`), for `walrusctl append --jsonl`. One JSON object per line:
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
#ifndef WALRUS_CLIENT_JSONL_LOG_H_
#define WALRUS_CLIENT_JSONL_LOG_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "raft.pb.h"

namespace walrus {

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

#endif  // WALRUS_CLIENT_JSONL_LOG_H_
