// Reads the frames of a run of segment files in order and verifies every CRC.
//
// One decoder serves ReadAll, Verify, Repair and the offline tools, so they all
// agree on where a log ends and why. Decode() stops at the first frame that
// does not verify and classifies the stop (LogEnd):
//
//  - kClean: end of file, or a zero length field followed only by zeros
//    (preallocated space), in the last segment.
//  - kTornTail: the damage is the final record of the last segment, in the
//    shape a write cut short by a crash leaves: nothing after the damaged
//    frame's extent but zeros, and no verifiable record after it. Repair may
//    truncate it; the record was never acknowledged because the fsync that
//    would have covered it did not return.
//  - kCorrupt: anything else: a bad frame in a sealed (non-last) segment, a
//    malformed length field, a broken CRC chain between segments, damage
//    followed by a record that verifies (a valid record after the damage proves
//    the damaged bytes had been synced), or a segment without its complete
//    header. Never truncated.
//
// The segment header. Every file that carries a segment name had its header
// written and fdatasynced before the rename gave it that name: a crc record,
// the metadata record, then the snapshot marker {0, 0} (sequence 0, written
// by Create) or the last hard state (later segments, present whenever a hard
// state had been saved before the cut). So a named segment that is empty,
// zero-filled, or ends or breaks inside its header lost synced bytes: that is
// corruption, never a torn tail, even in the last segment. A torn tail can
// only lie after the header of the last segment. Whether a later segment's
// header holds a hard state is known when an earlier segment of the same read
// held one (the cut restates the last hard state); when the segment is the
// first one read, a damaged third record counts as header unless what is left
// of it says it is an entry or a snapshot marker.
//
// The one ambiguity of any checksummed log: a bit flip in the very last record
// looks like a torn write and is classified kTornTail. walrus also assumes a
// torn write persists a prefix of sectors: a crash that persisted a later page
// of an unsynced batch but not an earlier one is reported as kCorrupt (safe,
// but needs an operator), see docs/format.md.
#ifndef WALRUS_CORE_DECODER_H_
#define WALRUS_CORE_DECODER_H_

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/format.h"
#include "core/fs.h"

namespace walrus {

// A parsed walpb.Record whose data points into the decoder's buffer.
struct RecordView {
  int64_t type = 0;
  uint32_t crc = 0;
  bool has_data = false;
  absl::string_view data;
};

// Parses a marshalled walpb.Record (any field order, unknown fields skipped).
// False if the bytes are not a well-formed record.
bool ParseRecord(absl::string_view bytes, RecordView* out);

enum class FrameStatus {
  kOk,
  kZeroLength,  // preallocated space: end of data in this file
  kShort,       // the frame runs past the end of the bytes
  kMalformed,   // impossible length field or unparsable record (`*why` says which)
};

struct Frame {
  RecordView record;  // points into the bytes read
  uint64_t end = 0;   // just past the frame's padding
};

// Reads the frame at `offset` of `bytes` (a file's bytes, or a window of them
// starting at a frame). No CRC check: the caller chains the CRCs.
FrameStatus ReadFrame(absl::string_view bytes, uint64_t offset, Frame* frame, std::string* why);

// Where in the log a record was found.
struct RecordPosition {
  size_t file_index = 0;  // into the decoder's file list
  uint64_t offset = 0;    // of the frame's length field
  uint64_t end = 0;       // just past the frame's padding
};

struct LogEnd {
  enum Kind { kClean, kTornTail, kCorrupt };
  Kind kind = kClean;
  size_t file_index = 0;  // file where decoding stopped
  uint64_t offset = 0;    // kClean: end of data; else the first bad frame
  std::string reason;     // empty for kClean
};

class Decoder {
 public:
  // `paths`: the segment files in log order. Nothing is read until Decode().
  Decoder(FileSystem* fs, std::vector<std::string> paths);

  // Stops reading the last file at `offset` (the durable end when reading
  // while a writer appends); bytes past it are treated as absent.
  void LimitLastFile(uint64_t offset) { last_file_limit_ = offset; }
  // How much of a file is read at a time while its records are whole and
  // verify (1 MiB by default); a larger record is read whole, and damage is
  // classified on the whole file.
  void set_window_bytes(uint64_t bytes) { window_bytes_ = std::max<uint64_t>(bytes, 16); }

  using Visitor = absl::FunctionRef<absl::Status(const RecordView&, const RecordPosition&)>;

  // Calls `visit` for each verified record in order. Returns the first error of
  // `visit` or of the file system; otherwise OK, with end() telling how the log
  // ended (a damaged log is an OK return with end().kind != kClean).
  [[nodiscard]] absl::Status Decode(Visitor visit);

  const LogEnd& end() const { return end_; }
  const std::vector<std::string>& paths() const { return paths_; }
  // Running CRC after the last verified record.
  uint32_t last_crc() const { return crc_; }
  // Verified records of the file where decoding stopped (or of the last file).
  size_t records_in_last_file() const { return file_records_; }
  // End of the last verified frame in the last file read.
  uint64_t last_valid_end() const { return last_valid_end_; }

 private:
  // How a pass over some of a file's bytes ended.
  enum class Pass {
    kDone,     // the file's data ends here
    kMore,     // the bytes ended (a window: read on from *done)
    kZeros,    // a zero length field: the end if the rest is all zeros
    kTrouble,  // damage (whole: classified in end_, *stop set) or an error
  };
  // Decodes the first `size` bytes of one file, a window at a time while the
  // records are whole and verify; sets *stop once decoding must stop.
  [[nodiscard]] absl::Status DecodeFile(size_t file_index, ReadableFile* file, uint64_t size,
                                        bool is_last, Visitor visit, bool* stop);
  // The records of `bytes` (the file's bytes from offset `base`) from
  // `start` on; *done is where the records that counted end (relative to
  // `bytes`). `whole`: `bytes` is the whole file and damage is classified;
  // otherwise anything but a good record ends the pass.
  Pass DecodeRecords(size_t file_index, absl::string_view bytes, uint64_t base, bool whole,
                     bool is_last, Visitor visit, uint64_t* done, bool* stop, absl::Status* status,
                     uint64_t start = 0);
  // Up to `n` bytes of `file` from `offset`, into buffer_.
  [[nodiscard]] absl::StatusOr<absl::string_view> ReadWindow(ReadableFile* file, uint64_t offset,
                                                             uint64_t n);
  // True if `file` holds only zeros in [offset, size).
  [[nodiscard]] absl::StatusOr<bool> RestIsZero(ReadableFile* file, uint64_t offset, uint64_t size);
  // Classifies damage at `offset` of the last file.
  void ClassifyDamage(size_t file_index, absl::string_view bytes, uint64_t offset,
                      std::string reason);
  // How many records file `file_index` must open with (its header), as far
  // as the records read so far tell.
  size_t HeaderRecords(size_t file_index) const;
  // True if damage at `offset`, after the file's verified records, lies in
  // its header.
  bool InHeader(size_t file_index, absl::string_view bytes, uint64_t offset) const;
  // True if a frame after `offset` verifies against `prev_crc` or a pair of
  // consecutive frames verifies against each other.
  static bool VerifiableRecordAfter(absl::string_view bytes, uint64_t offset,
                                    std::optional<uint32_t> prev_crc);

  FileSystem* fs_;
  std::vector<std::string> paths_;
  std::optional<uint64_t> last_file_limit_;
  // One window of a file at a time (the whole file only to classify damage).
  std::string buffer_;
  uint64_t window_bytes_ = 1 << 20;
  uint32_t crc_ = 0;
  bool chain_known_ = false;        // false until the first file's crc record
  bool state_before_file_ = false;  // a hard state was read in an earlier file
  bool state_in_file_ = false;
  size_t file_records_ = 0;  // verified records in the current file
  uint64_t last_valid_end_ = 0;
  LogEnd end_;
};

}  // namespace walrus

#endif  // WALRUS_CORE_DECODER_H_
