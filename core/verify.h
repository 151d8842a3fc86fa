// Verify and Repair: what an operator runs on a WAL directory that is not open
// for writing.
#ifndef WALRUS_CORE_VERIFY_H_
#define WALRUS_CORE_VERIFY_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/fs.h"

namespace walrus {

struct VerifyReport {
  enum Outcome { kClean, kTornTail, kCorrupt };
  Outcome outcome = kClean;
  size_t segments = 0;
  uint64_t records = 0;
  uint64_t entries = 0;                 // in the log as resolved
  std::optional<uint64_t> first_index;  // of the entries read intact
  std::optional<uint64_t> last_index;
  // Where reading stopped, for kTornTail and kCorrupt.
  std::string file;     // segment path
  uint64_t offset = 0;  // byte offset of the first bad frame
  std::string reason;
  // The entries the damage affects: from `affected_from` up to `affected_to`
  // (inclusive) when a later segment bounds it, else to the end of the log.
  uint64_t affected_from = 0;
  std::optional<uint64_t> affected_to;

  // One line for people: outcome, file, offset, reason, index range; for
  // damage, LogDamage::Describe()'s words.
  std::string Describe() const;
};

// Called now and then while Verify reads: bytes of the segments checked so
// far and in all, segments finished and in all.
using VerifyProgressFn = std::function<void(uint64_t bytes_done, uint64_t bytes_total,
                                            size_t files_done, size_t files_total)>;

// Reads every segment of `dir` from the oldest, as recovery does, with the
// log reader (core/log_reader.h): frames, the CRC chain, segment headers,
// metadata agreement, every record parsed, no gaps. `entries`, `first_index`
// and `last_index` describe the log recovery resolves, which walrusd serves;
// damage is described in the words walrusd refuses to start with. Takes no
// locks and changes nothing. An error status means the log could not be read
// at all (no directory, no segments, an I/O error). `progress` may be empty.
[[nodiscard]] absl::StatusOr<VerifyReport> Verify(FileSystem* fs, const std::string& dir,
                                                  const VerifyProgressFn& progress = {});

struct RepairReport {
  bool repaired = false;      // false: the log was already clean
  std::string file;           // the truncated segment
  uint64_t truncated_at = 0;  // its new end of data
  uint64_t bytes_dropped = 0;
  std::string broken_copy;  // where the original was kept
  VerifyReport before;
};

// Truncates a torn tail: copies the last segment to "<name>.broken" (synced),
// then cuts the segment at the end of its last valid record, keeping its size
// preallocated, and syncs. Refuses (FAILED_PRECONDITION, nothing changed) a
// directory whose segments another process holds locked, and (DATA_LOSS,
// nothing changed) a log with corruption anywhere.
[[nodiscard]] absl::StatusOr<RepairReport> Repair(FileSystem* fs, const std::string& dir);

}  // namespace walrus

#endif  // WALRUS_CORE_VERIFY_H_
