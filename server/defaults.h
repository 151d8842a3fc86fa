// Defaults that walrusd's flags (server/config.h) and the components they
// configure both start from. The WAL's own defaults live in core
// (kDefaultSegmentSize in core/format.h, kDefaultRetainReleasedSegments in
// core/purge.h).
#ifndef WALRUS_SERVER_DEFAULTS_H_
#define WALRUS_SERVER_DEFAULTS_H_

#include <cstddef>

namespace walrus {

// Requests one group commit takes at the most, in bytes (WalStore).
inline constexpr size_t kDefaultMaxBatchBytes = size_t{16} << 20;
// The largest gRPC message walrusd accepts.
inline constexpr size_t kDefaultMaxMessageBytes = size_t{16} << 20;

}  // namespace walrus

#endif  // WALRUS_SERVER_DEFAULTS_H_
