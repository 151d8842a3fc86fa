// Streaming a log: its entries one at a time, in bounded memory.
//
// A read that collects the whole log holds every entry at once; a daemon
// serving many readers of a large log cannot. The log reader's rules
// (core/log_reader.h) need the whole record stream before they know which
// entries are in the log (a later record may truncate, replace or bridge
// what came before), so a streamed read reads the segments twice:
//
//  1. Replay() without keeping entries resolves the log: where it starts and
//     ends, its damage, and for every entry which record holds its final
//     version (ReplayedLog::runs, a few positions, not one per entry).
//  2. StreamEntries() reads the same records again, one window of a file at a
//     time, checks their CRC chain again, and passes each entry of the
//     resolved log to the caller, in index order.
//
// Memory: one window (a single record larger than it is read whole) plus the
// reader's term index; time to the first entry is one pass over the records
// before it. The segments must not change between the two passes below the
// ends the first pass saw: callers read up to a writer's durable end, and pin
// the segments against purge. If the second pass finds other bytes than the
// first, it fails DATA_LOSS and says the log changed while it was read.
//
// Thread-safety: the functions are thread-safe; the caller owns its arguments.
#ifndef WALRUS_CORE_LOG_STREAM_H_
#define WALRUS_CORE_LOG_STREAM_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/entry_index.h"
#include "core/fs.h"
#include "core/log_reader.h"
#include "core/wal.h"
#include "raft.pb.h"

namespace walrus {

// The default window of StreamEntries().
inline constexpr size_t kStreamWindowBytes = 1 << 20;

// Passes the entries of `log` (a Replay() of `segments`) to `visit` in index
// order, reading the segments again. Returns the first error of `visit`, an
// I/O error, or DATA_LOSS if the records differ from the first read.
[[nodiscard]] absl::Status StreamEntries(FileSystem* fs, const LogSegments& segments,
                                         const ReplayedLog& log, size_t window_bytes,
                                         const std::function<absl::Status(raftpb::Entry&&)>& visit);

// Passes where each entry of `log` (a Replay() of `segments`) lies on disk to
// `visit`, in index order, reading the segments again (the EntryIndex of a
// recovered log). Errors as StreamEntries().
[[nodiscard]] absl::Status LocateEntries(
    FileSystem* fs, const LogSegments& segments, const ReplayedLog& log,
    const std::function<absl::Status(const EntryLocation&)>& visit);

// Reads the entries at `locations` (consecutive indexes, as
// EntryIndex::Locate gives them) with one read per segment they lie in,
// checking each frame's CRC from its location's running CRC. Stops before
// the entries' encoded sizes would pass `max_bytes`, but returns at least one
// (etcd raft's Storage.Entries); 0 means no limit. NOT_FOUND if a segment is
// gone (it was purged); DATA_LOSS if the bytes are not the entries the index
// says.
[[nodiscard]] absl::StatusOr<std::vector<raftpb::Entry>> ReadLocatedEntries(
    FileSystem* fs, const std::string& dir, absl::Span<const EntryLocation> locations,
    uint64_t max_bytes);

// ReadAll of a Wal opened for reading (Wal::OpenForRead with `until`), with
// the same answers and errors, but streamed: `header` gets the result
// without entries (metadata, hard state, base index, newest marker, torn
// tail), then `entry` each entry in order. An error from either stops the
// read and is returned.
[[nodiscard]] absl::Status StreamReadAll(FileSystem* fs, const std::string& dir,
                                         const walpb::Snapshot& snapshot,
                                         std::optional<LogPosition> until,
                                         const std::function<absl::Status(ReadAllResult&&)>& header,
                                         const std::function<absl::Status(raftpb::Entry&&)>& entry);

}  // namespace walrus

#endif  // WALRUS_CORE_LOG_STREAM_H_
