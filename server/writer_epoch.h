// The writer epoch file: the fencing state of one data directory.
//
// A Raft node restarted elsewhere calls Fence, which raises the epoch; from
// then on the old incarnation's writes (carrying the old epoch) are refused.
// For that to hold across a daemon restart the epoch must be durable before
// Fence returns it, so it lives in a small file next to the WAL directory
// (never inside it: the WAL directory stays exactly what etcd's reader
// expects). The file holds one line, "walrus-writer-epoch N\n".
//
// Replacement is atomic and durable: the new content goes to PATH.tmp, which
// is fsynced, renamed over PATH, and the directory is fsynced; a crash at any
// point leaves either the old or the new epoch, never a mix or nothing.
#ifndef WALRUS_SERVER_WRITER_EPOCH_H_
#define WALRUS_SERVER_WRITER_EPOCH_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/fs.h"

namespace walrus {

// The epoch stored at `path`: 0 if there is no file (never fenced).
// DATA_LOSS if the file exists but does not hold a valid epoch (refuse to
// start rather than guess: guessing low would let a fenced writer back in).
[[nodiscard]] absl::StatusOr<uint64_t> LoadWriterEpoch(FileSystem* fs, const std::string& path);

// Durably replaces the epoch at `path` with `epoch`. On error the file holds
// the old or the new epoch (callers must treat the new one as possibly in
// force, see WalStore::Fence).
[[nodiscard]] absl::Status StoreWriterEpoch(FileSystem* fs, const std::string& path,
                                            uint64_t epoch);

}  // namespace walrus

#endif  // WALRUS_SERVER_WRITER_EPOCH_H_
