// Shared by the libFuzzer targets: an independent CRC-32C, an independent
// frame walker (the oracle for "never serve a record that fails its CRC"),
// and a check that aborts with a message, which libFuzzer reports as a crash.
#ifndef WALRUS_TESTS_FUZZ_FUZZ_UTIL_H_
#define WALRUS_TESTS_FUZZ_FUZZ_UTIL_H_

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "raft.pb.h"
#include "record.pb.h"

namespace walrus::fuzz {

#define FUZZ_CHECK(cond, ...)                                 \
  do {                                                        \
    if (!(cond)) {                                            \
      std::fprintf(stderr, "FUZZ_CHECK failed: %s: ", #cond); \
      std::fprintf(stderr, __VA_ARGS__);                      \
      std::fprintf(stderr, "\n");                             \
      std::abort();                                           \
    }                                                         \
  } while (0)

// CRC-32C bit by bit, as Go's crc32.Update with the Castagnoli table: shares
// no code with core/crc32c (ISA-L), so the two check each other.
inline uint32_t SlowCrc32c(uint32_t crc, const std::string& data) {
  crc = ~crc;
  for (unsigned char c : data) {
    crc ^= c;
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
  }
  return ~crc;
}

// The entries of every record that an independent reading of `files` (in log
// order) verifies: 8-byte little-endian length fields (low 56 bits the
// record length, top byte 0x80|pad), protobuf's own walpb.Record parser, the
// running CRC-32C chained across files. Stops at the first frame it cannot
// verify. More permissive than core/decoder (no padding or strictness
// checks), so anything the real reader serves must be in here.
inline std::vector<raftpb::Entry> IndependentlyVerifiedEntries(
    const std::vector<std::string>& files) {
  std::vector<raftpb::Entry> out;
  uint32_t crc = 0;
  for (const std::string& bytes : files) {
    uint64_t offset = 0;
    while (bytes.size() - offset >= 8) {
      uint64_t field = 0;
      for (int i = 7; i >= 0; --i)
        field = field << 8 | static_cast<unsigned char>(bytes[offset + i]);
      if (field == 0) break;  // preallocated space: next file
      uint64_t len = field & ((uint64_t{1} << 56) - 1);
      uint64_t pad = (field >> 56) & 0x80 ? (field >> 56) & 0x7 : 0;
      uint64_t body = offset + 8;
      if (len > bytes.size() - body || pad > bytes.size() - body - len) return out;
      walpb::Record record;
      if (!record.ParseFromArray(bytes.data() + body, static_cast<int>(len))) return out;
      if (record.type() == 4) {
        if (crc != 0 && record.crc() != crc) return out;
        crc = record.crc();
      } else {
        uint32_t want = SlowCrc32c(crc, record.data());
        if (want != record.crc()) return out;
        crc = want;
        raftpb::Entry entry;
        if (record.type() == 2 && entry.ParseFromString(record.data())) out.push_back(entry);
      }
      offset = body + len + pad;
    }
  }
  return out;
}

inline bool SameEntry(const raftpb::Entry& a, const raftpb::Entry& b) {
  return a.index() == b.index() && a.term() == b.term() && a.type() == b.type() &&
         a.data() == b.data();
}

}  // namespace walrus::fuzz

#endif  // WALRUS_TESTS_FUZZ_FUZZ_UTIL_H_
