// Writes the fuzzers' seed corpus from real WALs (seeded workloads on the
// in-memory file system): make_corpus OUT_DIR writes OUT_DIR/decoder,
// OUT_DIR/readall and OUT_DIR/append_plan. The output is committed under
// tests/fuzz/corpus/; rerun after a format change.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/segment.h"
#include "core/wal.h"
#include "tests/support/mem_fs.h"
#include "tests/support/workload.h"
#include "walrus.pb.h"

namespace walrus {
namespace {

void Write(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// Drops preallocated zeros past the last frame (kept 8-byte aligned).
std::string Trim(std::string bytes) {
  size_t end = bytes.find_last_not_of('\0');
  end = end == std::string::npos ? 0 : (end + 8) / 8 * 8;
  bytes.resize(std::min(end, bytes.size()));
  return bytes;
}

// The segments of a seeded workload's WAL.
std::vector<std::pair<SegmentId, std::string>> MakeLog(uint64_t seed, int steps) {
  MemFileSystem fs;
  WalOptions options;
  options.fs = &fs;
  options.segment_size = 4096;
  options.prepare_in_background = false;
  testing::Workload workload(seed, /*max_entry_bytes=*/300);
  auto wal = Wal::Create("/wal", workload.Metadata(), options);
  if (!wal.ok()) return {};
  for (int i = 0; i < steps; ++i) {
    testing::WorkloadStep step = workload.Next();
    if (step.kind == testing::WorkloadStep::kSnapshot) {
      (void)(*wal)->SaveSnapshot(step.snapshot);
    } else {
      (void)(*wal)->Save(step.state, step.entries);
    }
  }
  (void)(*wal)->Close();
  std::vector<std::pair<SegmentId, std::string>> out;
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(&fs, "/wal");
  if (!segments.ok()) return {};
  for (const SegmentFile& s : *segments) {
    out.push_back({s.id, Trim(*fs.Contents(JoinPath("/wal", s.name)))});
  }
  return out;
}

void Le16(std::string* out, uint64_t v) {
  out->push_back(static_cast<char>(v & 0xff));
  out->push_back(static_cast<char>((v >> 8) & 0xff));
}

}  // namespace
}  // namespace walrus

int main(int argc, char** argv) {
  using namespace walrus;
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus OUT_DIR\n");
    return 64;
  }
  const std::string out = argv[1];
  int files = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    auto log = MakeLog(seed, 6 + 4 * static_cast<int>(seed));
    if (log.empty()) return 1;
    // decoder: single segments, whole, torn in the last record, bit-flipped.
    const std::string& last = log.back().second;
    Write(absl::StrCat(out, "/decoder/seg-", seed), log.front().second);
    Write(absl::StrCat(out, "/decoder/torn-", seed), last.substr(0, last.size() * 3 / 4));
    std::string flipped = log.front().second;
    flipped[flipped.size() / 2] ^= 0x10;
    Write(absl::StrCat(out, "/decoder/flip-", seed), flipped);
    // readall: the first one to three segments in the fuzzer's layout.
    size_t n = std::min<size_t>(log.size(), 1 + seed % 3);
    std::string input(1, static_cast<char>(n - 1));
    for (size_t i = 0; i + 1 < n; ++i) Le16(&input, log[i].second.size());
    for (size_t i = 1; i < n; ++i) Le16(&input, log[i].first.index);
    for (size_t i = 0; i < n; ++i) input += log[i].second;
    Write(absl::StrCat(out, "/readall/log-", seed), input);
    files += 4;
  }
  // append_plan: a tip header and requests of the shapes Raft sends.
  for (uint64_t shape = 0; shape < 6; ++shape) {
    std::string input = {0, 20, 0, 0x11, 1, 10, 1, 0};
    v1::AppendRequest request;
    uint64_t first = shape < 3 ? 21 : 11 + shape;  // append, or overwrite a suffix
    for (uint64_t i = first; i < first + 1 + shape; ++i) {
      raftpb::Entry* e = request.add_entries();
      e->set_index(i);
      e->set_term(3 + shape / 3);
      e->set_data(absl::StrCat("entry-", i));
      if (shape % 2 == 0) request.add_entry_crc32c(crc32c::Value(e->data()));
    }
    request.mutable_hard_state()->set_term(3 + shape / 3);
    request.mutable_hard_state()->set_vote(1);
    request.mutable_hard_state()->set_commit(10 + shape);
    request.set_sequence(shape);
    input += request.SerializeAsString();
    Write(absl::StrCat(out, "/append_plan/req-", shape), input);
    ++files;
  }
  std::printf("wrote %d corpus files to %s\n", files, out.c_str());
  return 0;
}
