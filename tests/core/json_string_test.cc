#include "core/json_string.h"

#include <string>

#include "gtest/gtest.h"

namespace walrus {
namespace {

TEST(JsonStringTest, PlainText_IsQuoted) {
  EXPECT_EQ(JsonString("wal/0001.wal"), "\"wal/0001.wal\"");
}

TEST(JsonStringTest, QuotesAndBackslashes_AreEscaped) {
  EXPECT_EQ(JsonString("say \"hi\" C:\\x"), R"("say \"hi\" C:\\x")");
}

TEST(JsonStringTest, ControlCharacters_AreEscaped) {
  EXPECT_EQ(JsonString("a\nb\rc\td\x01\x1f"), R"("a\nb\rc\td\u0001\u001f")");
  EXPECT_EQ(JsonString(std::string("\0", 1)), R"("\u0000")");
}

TEST(JsonStringTest, Utf8AndHighBytes_PassThrough) {
  EXPECT_EQ(JsonString("walrus \xC3\xA9\xF0\x9F\x90\x8B"), "\"walrus \xC3\xA9\xF0\x9F\x90\x8B\"");
}

TEST(JsonStringTest, Append_KeepsWhatWasThere) {
  std::string out = "{\"msg\":";
  AppendJsonString("x", &out);
  EXPECT_EQ(out, "{\"msg\":\"x\"");
}

}  // namespace
}  // namespace walrus
