#include "client/walrusctl/dump_format.h"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace walrus {
namespace {

// A member value of a flat JSON object: a string (unescaped) or the raw text
// of a number or literal.
struct JsonValue {
  bool is_string = false;
  std::string text;
};

using JsonObject = std::map<std::string, JsonValue>;

class FlatJsonParser {
 public:
  explicit FlatJsonParser(absl::string_view text) : text_(text) {}

  absl::StatusOr<JsonObject> ParseObject() {
    JsonObject object;
    SkipSpace();
    if (!Consume('{')) return Error("expected a JSON object starting with '{'");
    SkipSpace();
    if (Consume('}')) return Finish(std::move(object));
    while (true) {
      SkipSpace();
      if (Peek() != '"') return Error("expected a member name in double quotes");
      absl::StatusOr<std::string> name = ParseString();
      if (!name.ok()) return name.status();
      SkipSpace();
      if (!Consume(':')) return Error(absl::StrCat("expected ':' after \"", *name, "\""));
      SkipSpace();
      absl::StatusOr<JsonValue> value = ParseValue(*name);
      if (!value.ok()) return value.status();
      if (!object.emplace(*name, std::move(*value)).second) {
        return Error(absl::StrCat("member \"", *name, "\" appears twice"));
      }
      SkipSpace();
      if (Consume('}')) return Finish(std::move(object));
      if (!Consume(',')) return Error("expected ',' or '}' between members");
    }
  }

 private:
  absl::StatusOr<JsonObject> Finish(JsonObject object) {
    SkipSpace();
    if (pos_ != text_.size()) return Error("unexpected text after the object");
    return object;
  }

  absl::StatusOr<JsonValue> ParseValue(const std::string& name) {
    char c = Peek();
    if (c == '"') {
      absl::StatusOr<std::string> s = ParseString();
      if (!s.ok()) return s.status();
      return JsonValue{true, std::move(*s)};
    }
    if (c == '{' || c == '[') {
      return Error(absl::StrCat("member \"", name,
                                "\": nested objects and arrays are not part "
                                "of the dump format"));
    }
    // A number or a literal: taken raw, checked by whoever reads the member.
    size_t start = pos_;
    while (pos_ < text_.size() && (absl::ascii_isalnum(text_[pos_]) || text_[pos_] == '-' ||
                                   text_[pos_] == '+' || text_[pos_] == '.')) {
      ++pos_;
    }
    if (pos_ == start) return Error(absl::StrCat("member \"", name, "\" has no value"));
    return JsonValue{false, std::string(text_.substr(start, pos_ - start))};
  }

  absl::StatusOr<std::string> ParseString() {
    Consume('"');
    std::string out;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) return Error("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) break;
      char e = text_[pos_++];
      switch (e) {
        case '"':
          out += '"';
          break;
        case '\\':
          out += '\\';
          break;
        case '/':
          out += '/';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          absl::StatusOr<uint32_t> cp = ParseCodePoint();
          if (!cp.ok()) return cp.status();
          AppendUtf8(*cp, &out);
          break;
        }
        default:
          return Error(absl::StrCat("unknown escape '\\", std::string(1, e), "' in a string"));
      }
    }
    return Error("unterminated string");
  }

  // After "\u": four hex digits, or a surrogate pair "\uD8xx\uDCxx".
  absl::StatusOr<uint32_t> ParseCodePoint() {
    absl::StatusOr<uint32_t> high = Hex4();
    if (!high.ok() || *high < 0xD800 || *high > 0xDBFF) return high;
    if (text_.substr(pos_, 2) != "\\u") return Error("unpaired surrogate in \\u escape");
    pos_ += 2;
    absl::StatusOr<uint32_t> low = Hex4();
    if (!low.ok()) return low;
    if (*low < 0xDC00 || *low > 0xDFFF) return Error("unpaired surrogate in \\u escape");
    return 0x10000 + ((*high - 0xD800) << 10) + (*low - 0xDC00);
  }

  absl::StatusOr<uint32_t> Hex4() {
    if (pos_ + 4 > text_.size()) return Error("short \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      char c = text_[pos_++];
      int digit = absl::ascii_isdigit(c) ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
      if (digit < 0) return Error("bad hex digit in \\u escape");
      value = value * 16 + static_cast<uint32_t>(digit);
    }
    return value;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  void SkipSpace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  char Peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  bool Consume(char c) {
    if (Peek() != c || pos_ >= text_.size()) return false;
    ++pos_;
    return true;
  }
  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(what, " (column ", pos_ + 1, ")"));
  }

  absl::string_view text_;
  size_t pos_ = 0;
};

absl::Status MemberError(absl::string_view kind, absl::string_view name, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(kind, " member \"", name, "\" ", what));
}

// *out stays 0 if the member is absent and not required.
absl::Status GetUint(const JsonObject& object, absl::string_view kind, const char* name,
                     bool required, uint64_t* out) {
  *out = 0;
  auto it = object.find(name);
  if (it == object.end()) {
    return required ? MemberError(kind, name, "is missing") : absl::OkStatus();
  }
  const JsonValue& v = it->second;
  bool digits_only = !v.text.empty() && !v.is_string;
  for (char c : v.text) digits_only = digits_only && absl::ascii_isdigit(c);
  if (!digits_only || !absl::SimpleAtoi(v.text, out)) {
    return MemberError(kind, name,
                       absl::StrCat("must be an unsigned 64-bit integer, got ",
                                    v.is_string ? absl::StrCat("\"", v.text, "\"") : v.text));
  }
  return absl::OkStatus();
}

// Decodes a base64 string member; empty if absent and not required.
absl::Status GetBytes(const JsonObject& object, absl::string_view kind, const char* name,
                      bool required, std::string* out) {
  out->clear();
  auto it = object.find(name);
  if (it == object.end()) {
    return required ? MemberError(kind, name, "is missing") : absl::OkStatus();
  }
  if (!it->second.is_string) return MemberError(kind, name, "must be a base64 string");
  if (!absl::Base64Unescape(it->second.text, out)) {
    return MemberError(kind, name, "is not valid base64");
  }
  return absl::OkStatus();
}

const char* EntryTypeName(int type) {
  switch (type) {
    case raftpb::EntryNormal:
      return "normal";
    case raftpb::EntryConfChange:
      return "conf-change";
    case raftpb::EntryConfChangeV2:
      return "conf-change-v2";
    default:
      return "unknown";
  }
}

// Printable data as a quoted string, anything else as hex, cut at 64 bytes.
std::string Preview(absl::string_view data) {
  constexpr size_t kMax = 64;
  absl::string_view shown = data.substr(0, kMax);
  bool printable = true;
  for (unsigned char c : shown) printable = printable && std::isprint(c);
  std::string text = printable ? absl::StrCat("\"", absl::CEscape(shown), "\"")
                               : absl::StrCat("0x", absl::BytesToHexString(shown));
  if (data.size() > kMax) absl::StrAppend(&text, "... (", data.size(), " bytes)");
  return text;
}

// One jsonl line: the object and its newline.
void PrintJsonLine(FILE* out, const cli::JsonObject& object) {
  absl::FPrintF(out, "%s\n", object.Build());
}

}  // namespace

std::optional<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "jsonl") return LogFormat::kJsonl;
  return std::nullopt;
}

bool GetLogPrintOptions(const cli::Args& args, LogPrintOptions* out, std::string* error) {
  auto format_flag = args.flags.find("format");
  std::optional<LogFormat> format =
      ParseLogFormat(format_flag == args.flags.end() ? "text" : format_flag->second);
  if (!format.has_value()) {
    *error = "--format must be text or jsonl";
    return false;
  }
  out->format = *format;
  return cli::GetUint(args, "snapshot-index", &out->snapshot_index, error) &&
         cli::GetUint(args, "snapshot-term", &out->snapshot_term, error);
}

void LogPrinter::Metadata(absl::string_view metadata) {
  if (format_ == LogFormat::kJsonl) {
    PrintJsonLine(
        out_,
        cli::JsonObject().String("kind", "metadata").String("data", absl::Base64Escape(metadata)));
  } else {
    absl::FPrintF(out_, "WAL metadata: %s\n", metadata.empty() ? "(empty)" : Preview(metadata));
  }
}

void LogPrinter::HardState(const raftpb::HardState& s) {
  if (format_ == LogFormat::kJsonl) {
    PrintJsonLine(out_, cli::JsonObject()
                            .String("kind", "hardstate")
                            .Number("term", s.term())
                            .Number("vote", s.vote())
                            .Number("commit", s.commit()));
  } else {
    absl::FPrintF(out_, "Hard state: term=%d vote=%d commit=%d\n", s.term(), s.vote(), s.commit());
  }
}

void LogPrinter::Entry(const raftpb::Entry& e) {
  ++entries_;
  if (format_ == LogFormat::kJsonl) {
    PrintJsonLine(out_, cli::JsonObject()
                            .String("kind", "entry")
                            .Number("index", e.index())
                            .Number("term", e.term())
                            .Number("type", static_cast<uint64_t>(e.type()))
                            .String("data", absl::Base64Escape(e.data())));
    return;
  }
  if (!header_printed_) {
    absl::FPrintF(out_, "%10s %12s  %-14s %s\n", "term", "index", "type", "data");
    header_printed_ = true;
  }
  absl::FPrintF(out_, "%10d %12d  %-14s %s\n", e.term(), e.index(), EntryTypeName(e.type()),
                Preview(e.data()));
}

void LogPrinter::Truncated(uint64_t from) {
  if (format_ == LogFormat::kJsonl) {
    PrintJsonLine(out_, cli::JsonObject().String("kind", "truncate").Number("from", from));
  } else {
    absl::FPrintF(out_, "truncated: entries from %d on were replaced\n", from);
  }
}

void LogPrinter::Finish() {
  if (format_ == LogFormat::kText) absl::FPrintF(out_, "Entries: %d\n", entries_);
}

absl::StatusOr<LogLine> ParseLogLine(absl::string_view line) {
  absl::StatusOr<JsonObject> object = FlatJsonParser(line).ParseObject();
  if (!object.ok()) return object.status();
  auto kind = object->find("kind");
  if (kind == object->end() || !kind->second.is_string) {
    return absl::InvalidArgumentError("no \"kind\" string member");
  }
  LogLine out;
  const std::string& k = kind->second.text;
  absl::Status s;
  if (k == "metadata") {
    out.kind = LogLine::Kind::kMetadata;
    s = GetBytes(*object, k, "data", true, &out.metadata);
  } else if (k == "hardstate") {
    out.kind = LogLine::Kind::kHardState;
    uint64_t term, vote, commit;
    if (s.ok()) s = GetUint(*object, k, "term", false, &term);
    if (s.ok()) s = GetUint(*object, k, "vote", false, &vote);
    if (s.ok()) s = GetUint(*object, k, "commit", false, &commit);
    if (s.ok()) {
      out.state.set_term(term);
      out.state.set_vote(vote);
      out.state.set_commit(commit);
    }
  } else if (k == "entry") {
    out.kind = LogLine::Kind::kEntry;
    uint64_t index, term, type;
    std::string data;
    if (s.ok()) s = GetUint(*object, k, "index", true, &index);
    if (s.ok() && index == 0) s = MemberError(k, "index", "must be at least 1 (a Raft index)");
    if (s.ok()) s = GetUint(*object, k, "term", true, &term);
    if (s.ok()) s = GetUint(*object, k, "type", false, &type);
    if (s.ok() && (type > INT32_MAX || !raftpb::EntryType_IsValid(static_cast<int>(type)))) {
      s = MemberError(k, "type", absl::StrCat("must be 0, 1 or 2, got ", type));
    }
    if (s.ok()) s = GetBytes(*object, k, "data", false, &data);
    if (s.ok()) {
      out.entry.set_index(index);
      out.entry.set_term(term);
      out.entry.set_type(static_cast<raftpb::EntryType>(type));
      out.entry.set_data(std::move(data));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown kind \"", k, "\" (want metadata, hardstate or entry)"));
  }
  if (!s.ok()) return s;
  return out;
}

JsonlLogReader::~JsonlLogReader() { std::free(buffer_); }

absl::StatusOr<bool> JsonlLogReader::Next(LogLine* line) {
  while (true) {
    errno = 0;
    ssize_t n = getline(&buffer_, &capacity_, in_);
    if (n < 0) {
      if (std::ferror(in_)) {
        return absl::ErrnoToStatus(errno, absl::StrCat("reading line ", line_number_ + 1));
      }
      return false;
    }
    ++line_number_;
    absl::string_view text(buffer_, static_cast<size_t>(n));
    if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (absl::StripAsciiWhitespace(text).empty()) continue;
    absl::StatusOr<LogLine> parsed = ParseLogLine(text);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("line ", line_number_, ": ", parsed.status().message()));
    }
    *line = std::move(*parsed);
    return true;
  }
}

}  // namespace walrus
