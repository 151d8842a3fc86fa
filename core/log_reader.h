// The log reader: the one interpreter of a WAL directory's record stream.
//
// Recovery, ReadAll (write mode, read mode, recovery mode), Verify, Repair,
// `walrusctl status DIR` and offline backup all read a log through this file,
// so they agree on what the log holds and on where and why it ends: if
// `walrusctl verify DIR` says clean, walrusd starts on DIR and serves exactly
// the entries verify counted; if verify reports damage, walrusd refuses to
// start with the same words (LogDamage::Describe()).
//
// Two steps. SelectSegments() lists the directory and picks the segments a
// read covers (a writer locks them before reading); Replay() decodes them with
// the Decoder (frames, CRCs, the CRC chain, segment headers; decoder.h) and
// resolves the records into a log:
//
//  - Where a read starts. From the oldest segment (recovery, verify, status,
//    backup): the log's base is the oldest segment's name index - 1, the
//    index of the last entry saved before that segment was cut. Older
//    segments may have been purged, so there is nothing to compare with.
//    From a snapshot (etcd's ReadAll): at the last segment whose name index
//    is <= the snapshot's index, with the same rules from that segment's
//    base; the marker must be found with the same term (NOT_FOUND,
//    FAILED_PRECONDITION), and the result is the resolved log's entries
//    after the marker's index. If a later marker replaced the log past that
//    index, FAILED_PRECONDITION names the marker to read from instead.
//  - Entries. An entry at index i replaces every entry at i or later (Raft
//    truncates a conflicting suffix by appending over it); one at or below
//    the base lowers the base to i - 1. An entry past the end plus one leaves
//    a gap. A snapshot marker at or past the gap's last index bridges it,
//    before the entry (a follower installed a snapshot) or after it (Raft
//    may save a Ready's entries before the snapshot they follow, as etcd's
//    raftexample does): the log then continues after the gap. A gap no
//    marker bridges is corruption at the entry after it.
//  - Snapshot markers are all collected. They also move the base, as Raft's log does when it saves
//  a snapshot: a marker at
//    or below the base changes nothing (Raft snapshots at its applied index,
//    which trails the last index, so right after a cut the new segment's
//    first record may be a marker below its name); one whose index holds an
//    entry of the same term changes nothing either (compaction); one past the
//    last entry, or whose index holds an entry of another term (a leader's
//    snapshot over a divergent tail), replaces the whole log: the base
//    becomes the marker's index.
//  - Segment names. A segment is named after the index that followed the
//    writer's log when it was cut, so entries this read holds past that
//    index when the segment starts were gone by then: the log is cut back to
//    it (a marker that replaced the log from below its segment's name index
//    is the last record of its segment, so a read that started after the
//    entry it replaced still sees the log end there).
//  - The last hard state wins. Every segment's metadata must be the same.
//
// Damage. The read stops at the first record that does not verify, does not
// parse as its type, breaks the rules above, or at a gap in the segments'
// sequence numbers, and classifies the stop as the Decoder does: a torn tail
// (only after the header of the last segment, in the shape a crash leaves)
// or corruption, with the file, the offset and the entries affected. What
// precedes the stop is returned. Errors that are not damage (an I/O error
// such as EIO, a file that is not a regular file) are returned as errors and
// never classified: a read that failed says nothing about the bytes.
//
// Thread-safety: the functions are thread-safe; results have one owner.
#ifndef WALRUS_CORE_LOG_READER_H_
#define WALRUS_CORE_LOG_READER_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/decoder.h"
#include "core/fs.h"
#include "core/payload.h"
#include "core/segment.h"
#include "core/term_runs.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus {

// A byte position in the log: segment sequence number and offset.
struct LogPosition {
  uint64_t seq = 0;
  uint64_t offset = 0;
};

// Where and why a read stopped early.
struct LogDamage {
  enum Kind { kNone, kTornTail, kCorrupt };
  Kind kind = kNone;
  std::string file;     // segment path
  uint64_t offset = 0;  // of the first bad frame or record
  std::string reason;
  // The entries the damage affects: from `affected_from` to `affected_to`
  // (inclusive) when a later segment bounds them, else to the end of the log.
  uint64_t affected_from = 0;
  std::optional<uint64_t> affected_to;

  // "FILE at offset N (REASON); entries A to B affected".
  std::string Where() const;
  // "corruption in ..." or "torn tail in ...": the words every tool uses.
  std::string Describe() const;
};

// The segments one read covers.
struct LogSegments {
  std::string dir;
  std::vector<SegmentFile> listed;  // every segment of dir (up to the limit)
  size_t first = 0;                 // where reading starts in `listed`
  // Bytes of the last listed segment that exist for the reader.
  std::optional<uint64_t> last_limit;

  std::string PathOf(size_t i) const { return JoinPath(dir, listed[i].name); }
  // The sequence number of the segment a RecordPosition's file_index names.
  uint64_t SeqOf(size_t file_index) const { return listed[first + file_index].id.seq; }
};

struct LogReadOptions {
  // Read from the segment holding this marker (see the file comment);
  // without it, from the oldest segment.
  std::optional<walpb::Snapshot> snapshot;
  // Return the entries; false keeps only their indexes and terms.
  bool keep_entries = true;
  // How much of a file is read at a time (a record larger than this is read
  // whole; damage is classified on the whole file).
  size_t window_bytes = size_t{1} << 20;
  // Called for every record that verifies and parses, in order.
  std::function<void(const RecordPosition&, const Payload&)> on_record;
};

// The log a read resolved, up to where it stopped.
struct ReplayedLog {
  std::string metadata;
  raftpb::HardState state;
  uint64_t base_index = 0;             // the index before the first entry
  uint64_t last_index = 0;             // of the last entry; base_index if there is none
  std::vector<raftpb::Entry> entries;  // (base_index, last_index], if kept
  TermRuns terms;                      // the terms of (base_index, last_index], always
  struct MarkerRead {
    walpb::Snapshot snapshot;
    RecordPosition at;  // where it was read
  };
  std::vector<MarkerRead> markers;  // every marker read, in order
  size_t segments = 0;              // segments read
  uint64_t records = 0;             // records that verified
  LogDamage damage;
  // The end of the last verified record in the last segment read, and the
  // running CRC there: where a writer continues.
  uint64_t end_offset = 0;
  uint32_t end_crc = 0;
  // Where each entry's final version is, for a second read of the same
  // records (core/log_stream.h): runs of entries written one after another.
  // The entry at index i is the first entry record of index i at or after
  // the position of the last run whose first_index <= i.
  struct EntryRun {
    uint64_t first_index = 0;
    RecordPosition at;  // of the record of entry first_index
  };
  std::vector<EntryRun> runs;
  // The end of the last record that counts, per file read (index as in
  // RecordPosition::file_index).
  std::vector<uint64_t> file_ends;

  uint64_t entry_count() const { return last_index - base_index; }
  // The last marker read ({0, 0} if none).
  walpb::Snapshot last_snapshot() const {
    return markers.empty() ? walpb::Snapshot() : markers.back().snapshot;
  }
};

// Lists `dir` and picks the segments a read from `snapshot` (or from the
// oldest segment) covers. With `until` (a writer's durable position), later
// segments and bytes do not exist for the reader. NOT_FOUND if there are no
// segments, or none holds the snapshot's index; FAILED_PRECONDITION if a
// segment name is not a regular file; other I/O errors as they come.
[[nodiscard]] absl::StatusOr<LogSegments> SelectSegments(
    FileSystem* fs, const std::string& dir, const std::optional<walpb::Snapshot>& snapshot,
    std::optional<LogPosition> until = std::nullopt);

// Reads and resolves `segments` (see the file comment). Damage is not an
// error: it is in the result. Errors: I/O errors; with a snapshot, NOT_FOUND
// (no marker; unless the log is corrupt) and FAILED_PRECONDITION (marker term
// differs; entries replaced by a later snapshot).
[[nodiscard]] absl::StatusOr<ReplayedLog> Replay(FileSystem* fs, const LogSegments& segments,
                                                 const LogReadOptions& options);

// Replay() for a reader that may race a writer without a durable limit
// (`segments.last_limit` unset): such a reader can see the pages of an
// in-flight write out of order, so corruption in the last segment is read a
// second time; what is real corruption is still there on the second look.
[[nodiscard]] absl::StatusOr<ReplayedLog> ReplayBesideWriter(FileSystem* fs,
                                                             const LogSegments& segments,
                                                             const LogReadOptions& options);

// SelectSegments() and Replay().
[[nodiscard]] absl::StatusOr<ReplayedLog> ReadLog(FileSystem* fs, const std::string& dir,
                                                  const LogReadOptions& options);

}  // namespace walrus

#endif  // WALRUS_CORE_LOG_READER_H_
