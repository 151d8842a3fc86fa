#include "core/format.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"

namespace walrus {

uint64_t EncodeFrameLength(uint64_t record_len) {
  uint64_t pad = PaddingFor(record_len);
  if (pad == 0) return record_len;
  return record_len | ((0x80 | pad) << 56);
}

bool DecodeFrameLength(uint64_t field, uint64_t* record_len, uint64_t* pad) {
  *record_len = field & ~(uint64_t{0xff} << 56);
  uint64_t top = field >> 56;
  if (top == 0) {
    *pad = 0;
  } else if ((top & 0x80) != 0 && (top & 0x78) == 0 && (top & 0x7) != 0) {
    // Writers set the flag only with padding: 0x80 alone is damage.
    *pad = top & 0x7;
  } else {
    return false;
  }
  return *pad == PaddingFor(*record_len);
}

std::string SegmentName(uint64_t seq, uint64_t index) {
  return absl::StrFormat("%016x-%016x%s", seq, index, kSegmentSuffix);
}

std::optional<SegmentId> ParseSegmentName(absl::string_view name) {
  // 16 hex + '-' + 16 hex + ".wal"
  if (name.size() != 33 + kSegmentSuffix.size() || name[16] != '-' ||
      name.substr(33) != kSegmentSuffix) {
    return std::nullopt;
  }
  SegmentId id;
  auto hex = [](absl::string_view s, uint64_t* out) {
    for (char c : s) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
    }
    return absl::SimpleHexAtoi(s, out);
  };
  if (!hex(name.substr(0, 16), &id.seq) || !hex(name.substr(17, 16), &id.index)) {
    return std::nullopt;
  }
  return id;
}

}  // namespace walrus
