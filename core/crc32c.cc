#include "core/crc32c.h"

#include <isa-l/crc.h>

#include <climits>

namespace walrus::crc32c {

uint32_t Extend(uint32_t crc, absl::string_view data) {
  // ISA-L's crc32_iscsi works on the raw register: the standard CRC-32C
  // pre- and post-inverts it, so a finished CRC is continued by inverting it
  // back in and the result out again.
  uint32_t reg = ~crc;
  auto* p = reinterpret_cast<unsigned char*>(const_cast<char*>(data.data()));
  size_t left = data.size();
  while (left > 0) {
    int n = left > INT_MAX ? INT_MAX : static_cast<int>(left);
    reg = crc32_iscsi(p, n, reg);
    p += n;
    left -= n;
  }
  return ~reg;
}

}  // namespace walrus::crc32c
