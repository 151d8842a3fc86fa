// Helpers shared by the tests: temporary directories, entry builders and
// printers that make failures show the actual content.
#ifndef WALRUS_TESTS_SUPPORT_TEST_UTIL_H_
#define WALRUS_TESTS_SUPPORT_TEST_UTIL_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus::testing {

// Built with AddressSanitizer or ThreadSanitizer: figures such as RSS or
// timing-bound behaviour mean nothing there.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string Sub(absl::string_view name) const;

 private:
  std::string path_;
};

raftpb::Entry MakeEntry(uint64_t index, uint64_t term, absl::string_view data = "x");
std::vector<raftpb::Entry> MakeEntries(uint64_t first, uint64_t last, uint64_t term,
                                       size_t data_bytes = 16);
raftpb::HardState MakeState(uint64_t term, uint64_t vote, uint64_t commit);
walpb::Snapshot MakeSnapshot(uint64_t index, uint64_t term);

// "index/term" of each entry, e.g. "1/1 2/1 3/2", for readable assertions.
std::string Describe(const std::vector<raftpb::Entry>& entries);

// Reads and writes whole files through the POSIX file system.
std::string ReadFile(const std::string& path);
void WriteFile(const std::string& path, absl::string_view bytes);

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_SUPPORT_TEST_UTIL_H_
