// Protobuf base-128 varints, for the hand-written record codec.
#ifndef WALRUS_CORE_VARINT_H_
#define WALRUS_CORE_VARINT_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace walrus::varint {

// Writes `v` at `p` (up to 10 bytes) and returns the end.
inline char* Put(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}

// Appends `v` to a std::string (or another basic_string of char).
template <typename String>
void Append(String* out, uint64_t v) {
  char buf[10];
  out->append(buf, static_cast<size_t>(Put(buf, v) - buf));
}

// Reads a varint from the front of `*in`, consuming it. False if truncated or
// longer than 10 bytes.
inline bool Read(absl::string_view* in, uint64_t* v) {
  uint64_t result = 0;
  for (int i = 0; i < 10 && i < static_cast<int>(in->size()); ++i) {
    uint64_t byte = static_cast<unsigned char>((*in)[i]);
    result |= (byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      if (i == 9 && byte > 1) return false;  // overflows 64 bits
      in->remove_prefix(i + 1);
      *v = result;
      return true;
    }
  }
  return false;
}

}  // namespace walrus::varint

#endif  // WALRUS_CORE_VARINT_H_
