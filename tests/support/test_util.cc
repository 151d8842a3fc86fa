#include "tests/support/test_util.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"

namespace walrus::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(base != nullptr && *base ? base : "/tmp", "/walrus-test-XXXXXX");
  char* made = mkdtemp(tmpl.data());
  EXPECT_NE(made, nullptr) << "mkdtemp " << tmpl;
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Sub(absl::string_view name) const { return absl::StrCat(path_, "/", name); }

raftpb::Entry MakeEntry(uint64_t index, uint64_t term, absl::string_view data) {
  raftpb::Entry entry;
  entry.set_index(index);
  entry.set_term(term);
  entry.set_type(raftpb::EntryNormal);
  entry.set_data(std::string(data));
  return entry;
}

std::vector<raftpb::Entry> MakeEntries(uint64_t first, uint64_t last, uint64_t term,
                                       size_t data_bytes) {
  std::vector<raftpb::Entry> entries;
  for (uint64_t i = first; i <= last; ++i) {
    std::string data = absl::StrCat("entry-", i, "-term-", term, "-");
    data.resize(std::max(data.size(), data_bytes), static_cast<char>('a' + i % 26));
    entries.push_back(MakeEntry(i, term, data));
  }
  return entries;
}

raftpb::HardState MakeState(uint64_t term, uint64_t vote, uint64_t commit) {
  raftpb::HardState state;
  state.set_term(term);
  state.set_vote(vote);
  state.set_commit(commit);
  return state;
}

walpb::Snapshot MakeSnapshot(uint64_t index, uint64_t term) {
  walpb::Snapshot snapshot;
  snapshot.set_index(index);
  snapshot.set_term(term);
  return snapshot;
}

std::string Describe(const std::vector<raftpb::Entry>& entries) {
  return absl::StrJoin(entries, " ", [](std::string* out, const raftpb::Entry& e) {
    absl::StrAppend(out, e.index(), "/", e.term());
  });
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void WriteFile(const std::string& path, absl::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace walrus::testing
