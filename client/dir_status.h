// `walrusctl status DIR`: what `--server ADDR status` reports, read from a
// WAL directory by walrusctl itself (no daemon needed; a live one may own
// the directory, nothing is changed).
#ifndef WALRUS_CLIENT_DIR_STATUS_H_
#define WALRUS_CLIENT_DIR_STATUS_H_

#include <string>

#include "absl/status/statusor.h"
#include "core/fs.h"
#include "walrus.pb.h"

namespace walrus {

// Reads every segment of `dir` once: per segment its entries, index range,
// size and whether another process holds it locked (a writer that has not
// released it, or a backup reading it); the first and last index, the last
// hard state, every snapshot marker, and the space all files of `dir` use.
// Damage does not fail the call: it is described in `damage` and the
// segments before it are reported. NOT_FOUND if `dir` holds no segments.
[[nodiscard]] absl::StatusOr<v1::StatusResponse> ReadDirStatus(FileSystem* fs,
                                                               const std::string& dir);

}  // namespace walrus

#endif  // WALRUS_CLIENT_DIR_STATUS_H_
