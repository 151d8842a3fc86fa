// The sending side of a point-in-time backup of a live WAL: what to copy,
// fixed when the backup starts, and the chunks that carry it. walrusd's
// Backup RPC sends these chunks; the receiving side checks them and feeds
// them to a BackupWriter (core/backup.h).
//
// PlanBackup pins every segment up to the durable end (core/segment_pins.h)
// before it lists the directory, so every file the plan names stays until the
// plan is destroyed, however slowly the chunks are taken. Sealed segments are
// copied whole; the durable segment up to the durable offset, a record
// boundary, so the copy ends cleanly and holds every entry acknowledged
// before the backup started, whatever the writer appends meanwhile.
//
// BackupChunkReader reads the planned bytes of each file in order and gives
// each chunk its CRC-32C, computed where the bytes are read so that damage
// anywhere after that (in memory, on the wire, on the receiving disk) shows.
//
// Thread-safety: PlanBackup is thread-safe. A BackupPlan and a
// BackupChunkReader have one owner; the plan's pin may be dropped on any
// thread.
#ifndef WALRUS_CORE_BACKUP_SOURCE_H_
#define WALRUS_CORE_BACKUP_SOURCE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/fs.h"
#include "core/log_reader.h"
#include "core/segment_pins.h"

namespace walrus {

// One file of a backup: a segment name and the bytes of it to copy.
struct BackupFile {
  std::string name;
  uint64_t size_bytes = 0;
};

// What a point-in-time backup copies, fixed when it starts.
struct BackupPlan {
  // Keeps purge away from every file below until destroyed.
  std::unique_ptr<SegmentPins::Pin> pin;
  std::vector<BackupFile> files;  // in log order
  LogPosition durable;            // the durable end at the start
  uint64_t last_entry_index = 0;  // last entry acknowledged at the start
  uint64_t total_bytes = 0;
};

// Pins the segments of `dir` up to `durable.seq` in `pins` (the pin is named
// `holder` in logs and status), then plans the copy as the file comment says.
// `last_entry_index` is the last entry acknowledged at `durable`; the plan
// carries it so the receiver can check that the copy holds it. INTERNAL if
// the segments do not run without a gap from the oldest to the durable one;
// the file system's error if a size cannot be read. On error nothing stays
// pinned.
[[nodiscard]] absl::StatusOr<BackupPlan> PlanBackup(FileSystem* fs, const std::string& dir,
                                                    const LogPosition& durable,
                                                    uint64_t last_entry_index, SegmentPins* pins,
                                                    std::string holder);

// A run of bytes of one planned file.
struct BackupChunk {
  size_t file = 0;  // index into BackupPlan::files
  uint64_t offset = 0;
  absl::string_view data;  // valid until the next call to Next()
  uint32_t crc32c = 0;     // of `data`
};

class BackupChunkReader {
 public:
  // Reads the files of `plan` from `dir`, at most `chunk_bytes` a chunk.
  // REQUIRES: chunk_bytes > 0; `fs` and `plan` outlive the reader.
  BackupChunkReader(FileSystem* fs, std::string dir, const BackupPlan& plan, size_t chunk_bytes);
  BackupChunkReader(const BackupChunkReader&) = delete;
  BackupChunkReader& operator=(const BackupChunkReader&) = delete;

  // The next chunk: files in plan order, offsets contiguous from 0, up to
  // each file's planned size (a file of 0 bytes has no chunk, but is still
  // opened). true and *chunk set, or false once every file is read. INTERNAL
  // if a file ends before its planned size (the plan's promise broken); the
  // file system's error if a file cannot be opened or read. After an error
  // the reader is done: Next returns false.
  [[nodiscard]] absl::StatusOr<bool> Next(BackupChunk* chunk);

 private:
  // Ends the read with `error`.
  absl::Status Stop(absl::Status error);

  FileSystem* const fs_;
  const std::string dir_;
  const BackupPlan& plan_;
  std::string buffer_;
  size_t file_ = 0;  // the file being read
  std::unique_ptr<ReadableFile> open_;
  uint64_t offset_ = 0;  // in the open file
};

}  // namespace walrus

#endif  // WALRUS_CORE_BACKUP_SOURCE_H_
