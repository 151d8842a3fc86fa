#include "client/log_printer.h"

#include <cctype>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace walrus {
namespace {

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

}  // namespace

std::optional<LogFormat> ParseLogFormat(absl::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "jsonl") return LogFormat::kJsonl;
  return std::nullopt;
}

void LogPrinter::Metadata(absl::string_view metadata) {
  if (format_ == LogFormat::kJsonl) {
    absl::FPrintF(out_, "{\"kind\":\"metadata\",\"data\":\"%s\"}\n", absl::Base64Escape(metadata));
  } else {
    absl::FPrintF(out_, "WAL metadata: %s\n", metadata.empty() ? "(empty)" : Preview(metadata));
  }
}

void LogPrinter::HardState(const raftpb::HardState& s) {
  if (format_ == LogFormat::kJsonl) {
    absl::FPrintF(out_, "{\"kind\":\"hardstate\",\"term\":%d,\"vote\":%d,\"commit\":%d}\n",
                  s.term(), s.vote(), s.commit());
  } else {
    absl::FPrintF(out_, "Hard state: term=%d vote=%d commit=%d\n", s.term(), s.vote(), s.commit());
  }
}

void LogPrinter::Entry(const raftpb::Entry& e) {
  ++entries_;
  if (format_ == LogFormat::kJsonl) {
    absl::FPrintF(out_,
                  "{\"kind\":\"entry\",\"index\":%d,\"term\":%d,\"type\":%d,\"data\":\"%s\"}\n",
                  e.index(), e.term(), static_cast<int>(e.type()), absl::Base64Escape(e.data()));
    return;
  }
  if (!header_printed_) {
    absl::FPrintF(out_, "%10s %12s  %-14s %s\n", "term", "index", "type", "data");
    header_printed_ = true;
  }
  absl::FPrintF(out_, "%10d %12d  %-14s %s\n", e.term(), e.index(), EntryTypeName(e.type()),
                Preview(e.data()));
}

void LogPrinter::Finish() {
  if (format_ == LogFormat::kText) absl::FPrintF(out_, "Entries: %d\n", entries_);
}

}  // namespace walrus
