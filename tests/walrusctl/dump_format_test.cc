// The jsonl dump format read back: what LogPrinter writes parses to the same
// records, and malformed lines are refused with a reason and a line number.
#include "client/walrusctl/dump_format.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace walrus {
namespace {

// What LogPrinter prints for these records, as one string.
std::string Printed(const std::string& metadata, const raftpb::HardState& state,
                    const std::vector<raftpb::Entry>& entries) {
  char* buffer = nullptr;
  size_t size = 0;
  FILE* out = open_memstream(&buffer, &size);
  LogPrinter printer(out, LogFormat::kJsonl);
  printer.Metadata(metadata);
  printer.HardState(state);
  for (const raftpb::Entry& e : entries) printer.Entry(e);
  printer.Finish();
  std::fclose(out);
  std::string text(buffer, size);
  std::free(buffer);
  return text;
}

// Reads every record of `text`; the error (with its line) if any.
absl::StatusOr<std::vector<LogLine>> ReadAllLines(const std::string& text) {
  FILE* in = fmemopen(const_cast<char*>(text.data()), text.size(), "r");
  JsonlLogReader reader(in);
  std::vector<LogLine> lines;
  LogLine line;
  absl::StatusOr<bool> more;
  while ((more = reader.Next(&line)).ok() && *more) lines.push_back(line);
  std::fclose(in);
  if (!more.ok()) return more.status();
  return lines;
}

std::string Error(absl::string_view line) {
  absl::StatusOr<LogLine> parsed = ParseLogLine(line);
  EXPECT_FALSE(parsed.ok()) << "parsed: " << line;
  EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(parsed.status().message());
}

TEST(JsonlLog, PrinterOutput_ParsesBackToTheSameRecords) {
  raftpb::HardState state;
  state.set_term(7);
  state.set_vote(2);
  state.set_commit(18446744073709551615ull);  // the largest uint64 survives
  std::vector<raftpb::Entry> entries(3);
  std::string binary("\x00\xff\n\"\\", 5);
  for (int i = 0; i < 3; ++i) {
    entries[i].set_index(i + 1);
    entries[i].set_term(7);
    entries[i].set_type(static_cast<raftpb::EntryType>(i));
    entries[i].set_data(i == 0 ? "" : binary + std::to_string(i));
  }
  absl::StatusOr<std::vector<LogLine>> lines =
      ReadAllLines(Printed(std::string("meta\0data", 9), state, entries));
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 5u);
  EXPECT_EQ((*lines)[0].kind, LogLine::Kind::kMetadata);
  EXPECT_EQ((*lines)[0].metadata, std::string("meta\0data", 9));
  EXPECT_EQ((*lines)[1].kind, LogLine::Kind::kHardState);
  EXPECT_EQ((*lines)[1].state.SerializeAsString(), state.SerializeAsString());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ((*lines)[2 + i].kind, LogLine::Kind::kEntry);
    EXPECT_EQ((*lines)[2 + i].entry.SerializeAsString(), entries[i].SerializeAsString())
        << (*lines)[2 + i].entry.ShortDebugString();
  }
}

TEST(JsonlLog, MembersInAnyOrderWithWhitespace_AndUnknownMembersIgnored) {
  absl::StatusOr<LogLine> line = ParseLogLine(
      " { \"data\" : \"eA==\" ,\t\"future\":true, \"term\":3,\"index\":9,\"kind\":\"entry\" } ");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->entry.index(), 9u);
  EXPECT_EQ(line->entry.term(), 3u);
  EXPECT_EQ(line->entry.data(), "x");
  EXPECT_EQ(line->entry.type(), raftpb::EntryNormal);
}

TEST(JsonlLog, HardStateMembersAbsent_AreZero) {
  absl::StatusOr<LogLine> line = ParseLogLine(R"({"kind":"hardstate","term":4})");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->state.term(), 4u);
  EXPECT_EQ(line->state.vote(), 0u);
  EXPECT_EQ(line->state.commit(), 0u);
}

TEST(JsonlLog, EscapesInStrings_AreDecoded) {
  absl::StatusOr<LogLine> line =
      ParseLogLine(R"({"kind":"metadata","data":"\u0065\u0041\u003d\u003D"})");
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(line->metadata, "x");  // "eA==" spelled with escapes
}

TEST(JsonlLog, MalformedLines_AreRefusedWithTheReason) {
  EXPECT_NE(Error("").find("JSON object"), std::string::npos);
  EXPECT_NE(Error("[1,2]").find("JSON object"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","index":1,"term":1)").find("','"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","index":1,"term":1} x)").find("after the object"),
            std::string::npos);
  EXPECT_NE(Error(R"({"index":1,"term":1})").find("kind"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"snapshot"})").find("unknown kind"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","index":1,"index":2,"term":1})").find("twice"),
            std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","index":{"a":1},"term":1})").find("nested"),
            std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","data":"unterminated)").find("unterminated"),
            std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","index":1,"term":1,"data":"\q"})").find("escape"),
            std::string::npos);
}

TEST(JsonlLog, EntryWithoutIndexOrTerm_IsMalformed) {
  EXPECT_NE(Error(R"({"kind":"entry","term":1})").find("\"index\" is missing"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"entry","index":1})").find("\"term\" is missing"), std::string::npos);
}

TEST(JsonlLog, IndexZero_IsMalformed) {
  EXPECT_NE(Error(R"({"kind":"entry","index":0,"term":1})").find("at least 1"), std::string::npos);
}

TEST(JsonlLog, NumbersThatAreNotUnsigned64BitIntegers_AreMalformed) {
  for (const char* bad : {"-1", "1.5", "1e3", "18446744073709551616", "\"12\"", "true", "null"}) {
    std::string line = std::string(R"({"kind":"entry","term":1,"index":)") + bad + "}";
    EXPECT_NE(Error(line).find("unsigned 64-bit integer"), std::string::npos) << line;
  }
}

TEST(JsonlLog, UnknownEntryType_IsMalformed) {
  EXPECT_NE(Error(R"({"kind":"entry","index":1,"term":1,"type":3})").find("0, 1 or 2"),
            std::string::npos);
}

TEST(JsonlLog, BadBase64_IsMalformed) {
  EXPECT_NE(Error(R"({"kind":"metadata","data":"@@@"})").find("base64"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"metadata","data":12})").find("base64"), std::string::npos);
  EXPECT_NE(Error(R"({"kind":"metadata"})").find("missing"), std::string::npos);
}

TEST(JsonlLogReader, MalformedLine_ErrorNamesItsLineNumberCountingBlankLines) {
  absl::StatusOr<std::vector<LogLine>> lines = ReadAllLines(
      "{\"kind\":\"metadata\",\"data\":\"\"}\n"
      "\n"
      "{\"kind\":\"entry\",\"index\":1,\"term\":1}\r\n"
      "{\"kind\":\"entry\",\"index\":2,\"term\":1,}\n");
  ASSERT_FALSE(lines.ok());
  EXPECT_EQ(lines.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(lines.status().message().substr(0, 8), "line 4: ") << lines.status();
}

TEST(JsonlLogReader, BlankLinesAndCrlf_AreSkippedAndStripped) {
  absl::StatusOr<std::vector<LogLine>> lines =
      ReadAllLines("\n  \r\n{\"kind\":\"entry\",\"index\":1,\"term\":1}\r\n\n");
  ASSERT_TRUE(lines.ok()) << lines.status();
  ASSERT_EQ(lines->size(), 1u);
  EXPECT_EQ((*lines)[0].entry.index(), 1u);
}

TEST(JsonlLogReader, LastLineWithoutNewline_IsRead) {
  absl::StatusOr<std::vector<LogLine>> lines =
      ReadAllLines("{\"kind\":\"entry\",\"index\":1,\"term\":1}");
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(lines->size(), 1u);
}

}  // namespace
}  // namespace walrus
