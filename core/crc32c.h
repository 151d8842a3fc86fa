// CRC-32C (Castagnoli), the checksum of etcd's WAL, from Intel ISA-L
// (hardware-accelerated). Matches Go's crc32.Update(crc, crc32.MakeTable(
// crc32.Castagnoli), data): `crc` is a finished CRC value, not a raw register.
#ifndef WALRUS_CORE_CRC32C_H_
#define WALRUS_CORE_CRC32C_H_

#include <cstdint>

#include "absl/strings/string_view.h"

namespace walrus::crc32c {

// Extends `crc` (the CRC of some earlier bytes, 0 for none) with `data`.
uint32_t Extend(uint32_t crc, absl::string_view data);

inline uint32_t Value(absl::string_view data) { return Extend(0, data); }

}  // namespace walrus::crc32c

#endif  // WALRUS_CORE_CRC32C_H_
