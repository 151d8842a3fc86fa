// The on-disk format in one place. The prose spec, with a byte-level example,
// is docs/format.md; this header is its code.
//
// A WAL is a directory of segment files named SegmentName(seq, index):
// "%016x-%016x.wal", the sequence number and the index of the first entry the
// segment may hold. A segment is a run of frames:
//
//   +----------------------+--------------------------+-----------+
//   | length field (8, LE) | walpb.Record (len bytes) | 0..7 zero |
//   +----------------------+--------------------------+-----------+
//
// The low 56 bits of the length field are the record length; when padding is
// present the top byte is 0x80 | pad, so frames stay 8-byte aligned (a length
// field never straddles a 512-byte sector, which is why a torn write can cut a
// record but never garble a length). A zero length field is preallocated space:
// the end of data in that file.
//
// Record.crc is the running CRC-32C over the data of every record so far, this
// one included; each segment starts with a crc record carrying the previous
// segment's running CRC (so a lost or reordered segment breaks the chain), then
// the metadata record, then the last hard state.
#ifndef WALRUS_CORE_FORMAT_H_
#define WALRUS_CORE_FORMAT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace walrus {

enum class RecordType : int64_t {
  kMetadata = 1,
  kEntry = 2,
  kState = 3,
  kCrc = 4,
  kSnapshot = 5,
};

inline constexpr size_t kFrameHeaderSize = 8;
inline constexpr size_t kFrameAlignment = 8;
static_assert(kFrameHeaderSize == kFrameAlignment, "a length field must fit one aligned slot");
// The smallest unit a disk writes atomically; a torn write loses whole sectors.
inline constexpr size_t kSectorSize = 512;
static_assert(kSectorSize % kFrameAlignment == 0, "length fields must not straddle sectors");

inline constexpr uint64_t kDefaultSegmentSize = 64'000'000;  // etcd's SegmentSizeBytes
// Writes to the tail segment of at least this many bytes go around the page
// cache (WalOptions::direct_io).
inline constexpr uint64_t kDefaultDirectIoMinBytes = 256 * 1024;
// etcd's decoder refuses a frame whose record plus padding reaches 10 MiB, so
// walrus refuses to write one (etcd could not read it back) and treats one on
// disk as corruption.
inline constexpr uint64_t kMaxFrameBody = 10ULL * 1024 * 1024;
inline constexpr bool FrameBodyFits(uint64_t record_len, uint64_t pad) {
  return record_len < kMaxFrameBody && record_len + pad < kMaxFrameBody;
}

inline constexpr absl::string_view kSegmentSuffix = ".wal";

// The length field for a record of `record_len` bytes.
uint64_t EncodeFrameLength(uint64_t record_len);
// Splits a length field into the record length and the padding after it.
// Returns false if the field is malformed (bad padding flag bits).
bool DecodeFrameLength(uint64_t field, uint64_t* record_len, uint64_t* pad);
inline constexpr uint64_t PaddingFor(uint64_t record_len) {
  return (kFrameAlignment - record_len % kFrameAlignment) % kFrameAlignment;
}

struct SegmentId {
  uint64_t seq = 0;
  uint64_t index = 0;  // first entry index the segment may hold
  bool operator==(const SegmentId&) const = default;
};

std::string SegmentName(uint64_t seq, uint64_t index);
inline std::string SegmentName(SegmentId id) { return SegmentName(id.seq, id.index); }
// Parses "%016x-%016x.wal"; nullopt for anything else.
std::optional<SegmentId> ParseSegmentName(absl::string_view name);

}  // namespace walrus

#endif  // WALRUS_CORE_FORMAT_H_
