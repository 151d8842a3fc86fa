// libFuzzer target: ReadAll, recovery, Verify and Repair over arbitrary
// directory contents: the input becomes one to three segment files in an
// in-memory file system.
//
// Input layout: byte 0 picks the number of files (1 + b % 3); then, for each
// file but the last, a 2-byte little-endian length and a 2-byte first index
// for its name; the rest is the last file.
//
// Invariants: no crash or sanitizer report; every entry ReadAll or recovery
// returns is one an independent reader verifies (tests/fuzz/fuzz_util.h), in
// contiguous index order; a Repair that succeeds leaves a log that verifies
// clean; Verify's verdict is recovery's (clean: the same number of entries;
// torn tail; corruption), so `walrusctl verify` speaks for walrusd's start.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/format.h"
#include "core/verify.h"
#include "core/wal.h"
#include "tests/fuzz/fuzz_util.h"
#include "tests/support/mem_fs.h"

namespace {

constexpr char kDir[] = "/wal";

using Verified = std::multimap<uint64_t, walrus::raftpb::Entry>;

void CheckServed(const std::vector<walrus::raftpb::Entry>& served, const Verified& verified,
                 const char* who) {
  for (size_t i = 0; i < served.size(); ++i) {
    if (i > 0) {
      FUZZ_CHECK(served[i].index() == served[i - 1].index() + 1, "%s: indexes not contiguous", who);
    }
    bool found = false;
    auto [from, to] = verified.equal_range(served[i].index());
    for (auto it = from; it != to; ++it)
      found = found || walrus::fuzz::SameEntry(served[i], it->second);
    FUZZ_CHECK(found, "%s served entry %lu that no verified record holds", who,
               (unsigned long)served[i].index());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > (256 << 10)) return 0;
  size_t count = 1 + data[0] % 3;
  size_t header = 1 + 4 * (count - 1);
  if (size < header) return 0;
  std::vector<std::string> files;
  std::vector<uint64_t> first_index = {0};
  size_t at = header;
  for (size_t i = 0; i + 1 < count; ++i) {
    size_t len = data[1 + 4 * i] | data[2 + 4 * i] << 8;
    first_index.push_back(data[3 + 4 * i] | data[4 + 4 * i] << 8);
    len = std::min(len, size - at);
    files.emplace_back(reinterpret_cast<const char*>(data + at), len);
    at += len;
  }
  files.emplace_back(reinterpret_cast<const char*>(data + at), size - at);

  walrus::MemFileSystem fs;
  if (!fs.CreateDir(kDir).ok()) return 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::string path = walrus::JoinPath(kDir, walrus::SegmentName({i, first_index[i]}));
    auto file = fs.NewWritableFile(path);
    if (!file.ok() || !(*file)->Append(files[i]).ok() || !(*file)->Sync().ok()) return 0;
  }
  Verified verified;
  for (walrus::raftpb::Entry& e : walrus::fuzz::IndependentlyVerifiedEntries(files)) {
    uint64_t index = e.index();
    verified.emplace(index, std::move(e));
  }

  walrus::WalOptions options;
  options.fs = &fs;
  options.prepare_in_background = false;
  options.segment_size = 64 * 1024;
  if (auto reader = walrus::Wal::OpenForRead(kDir, walrus::walpb::Snapshot(), options);
      reader.ok()) {
    absl::StatusOr<walrus::ReadAllResult> read = (*reader)->ReadAll();
    if (read.ok()) {
      CheckServed(read->entries, verified, "ReadAll");
      for (size_t i = 0; i < read->entries.size(); ++i) {
        FUZZ_CHECK(read->entries[i].index() == i + 1, "ReadAll from 0: entry %zu has index %lu", i,
                   (unsigned long)read->entries[i].index());
      }
    }
  }
  absl::StatusOr<walrus::VerifyReport> report = walrus::Verify(&fs, kDir);
  {
    std::unique_ptr<walrus::MemFileSystem> copy = fs.CrashClone({walrus::CrashMode::kKeepAll});
    absl::StatusOr<walrus::RepairReport> repaired = walrus::Repair(copy.get(), kDir);
    if (repaired.ok() && repaired->repaired) {
      absl::StatusOr<walrus::VerifyReport> after = walrus::Verify(copy.get(), kDir);
      FUZZ_CHECK(after.ok(), "verify fails after a repair");
      FUZZ_CHECK(after->outcome == walrus::VerifyReport::kClean, "repair left: %s",
                 after->Describe().c_str());
    }
  }
  if (auto wal = walrus::Wal::OpenForRecovery(kDir, options); wal.ok()) {
    absl::StatusOr<walrus::ReadAllResult> read = (*wal)->ReadAll();
    // One rule set: verify's verdict is recovery's, and a clean log serves
    // exactly the entries verify counted.
    if (report.ok()) {
      switch (report->outcome) {
        case walrus::VerifyReport::kClean:
          FUZZ_CHECK(read.ok(), "verify clean, recovery fails: %s",
                     std::string(read.status().message()).c_str());
          FUZZ_CHECK(read->entries.size() == report->entries,
                     "verify counted %lu entries, recovery serves %zu",
                     (unsigned long)report->entries, read->entries.size());
          break;
        case walrus::VerifyReport::kTornTail:
          FUZZ_CHECK(walrus::IsTornTail(read.status()), "verify: torn tail, recovery: %s",
                     std::string(read.status().message()).c_str());
          break;
        case walrus::VerifyReport::kCorrupt:
          FUZZ_CHECK(read.status().code() == absl::StatusCode::kDataLoss &&
                         !walrus::IsTornTail(read.status()),
                     "verify: corruption, recovery: %s",
                     std::string(read.status().message()).c_str());
          break;
      }
    }
    if (read.ok()) {
      CheckServed(read->entries, verified, "recovery");
      // A recovered log takes an append.
      walrus::raftpb::Entry next;
      next.set_index((*wal)->last_index() + 1);
      next.set_term(read->state.term() + 1);
      next.set_data("next");
      bool must_sync = false;
      if ((*wal)->Append(walrus::raftpb::HardState(), {next}, &must_sync).ok())
        (void)(*wal)->Sync();
    }
  }
  return 0;
}
