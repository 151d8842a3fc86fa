#include "core/log_stream.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/decoder.h"
#include "core/format.h"
#include "core/payload.h"

namespace walrus {
namespace {

absl::Status Changed(const std::string& path, uint64_t offset, absl::string_view what) {
  return absl::DataLossError(absl::StrCat("wal: ", path, " at offset ", offset, ": ", what,
                                          " on the second read: the log changed while it was "
                                          "read"));
}

bool AtOrAfter(size_t file, uint64_t offset, const RecordPosition& at) {
  return file != at.file_index ? file > at.file_index : offset >= at.offset;
}

// Reads [offset, offset + n) of `file` into `*buffer`.
absl::Status ReadRange(ReadableFile* file, const std::string& path, uint64_t offset, size_t n,
                       std::string* buffer) {
  buffer->resize(n);
  size_t got = 0;
  while (got < n) {
    absl::StatusOr<size_t> read = file->Read(offset + got, n - got, buffer->data() + got);
    if (!read.ok()) return read.status();
    if (*read == 0) return Changed(path, offset + got, "the file ends early");
    got += *read;
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status StreamEntries(FileSystem* fs, const LogSegments& segments, const ReplayedLog& log,
                           size_t window_bytes,
                           const std::function<absl::Status(raftpb::Entry&&)>& visit) {
  uint64_t next = log.base_index + 1;
  if (next > log.last_index) return absl::OkStatus();
  size_t run = 0;  // the run holding `next`
  std::string window;
  std::string why;
  Payload payload;
  uint32_t crc = 0;
  bool chain_known = false;
  for (size_t f = 0; f < log.file_ends.size() && next <= log.last_index; ++f) {
    const std::string path = segments.PathOf(segments.first + f);
    absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs->NewReadableFile(path);
    if (!file.ok()) return file.status();
    const uint64_t end = log.file_ends[f];
    uint64_t offset = 0;
    size_t want = window_bytes;
    while (offset < end && next <= log.last_index) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(want, end - offset));
      if (absl::Status s = ReadRange(file->get(), path, offset, n, &window); !s.ok()) return s;
      uint64_t at = 0;
      while (at < n && next <= log.last_index) {
        Frame frame;
        FrameStatus status = ReadFrame(window, at, &frame, &why);
        if (status == FrameStatus::kShort) break;  // continues in the next window
        if (status != FrameStatus::kOk) return Changed(path, offset + at, "an unreadable frame");
        const RecordView& record = frame.record;
        if (record.type == static_cast<int64_t>(RecordType::kCrc)) {
          if (chain_known && record.crc != crc) return Changed(path, offset + at, "a CRC break");
          crc = record.crc;
          chain_known = true;
        } else {
          crc = crc32c::Extend(crc, record.data);
          if (crc != record.crc) return Changed(path, offset + at, "a CRC mismatch");
        }
        if (record.type == static_cast<int64_t>(RecordType::kEntry)) {
          if (std::string bad = ParsePayload(record, &payload); !bad.empty()) {
            return Changed(path, offset + at, bad);
          }
          while (run + 1 < log.runs.size() && log.runs[run + 1].first_index <= next) ++run;
          if (payload.entry.index() == next && !log.runs.empty() &&
              AtOrAfter(f, offset + at, log.runs[run].at)) {
            if (absl::Status s = visit(std::move(payload.entry)); !s.ok()) return s;
            ++next;
          }
        }
        at = frame.end;
      }
      if (at == 0) {
        // One record larger than the window: read it whole.
        if (n == end - offset) return Changed(path, offset, "a record cut short");
        want = std::max(want * 2, n * 2);
        continue;
      }
      offset += at;
      want = window_bytes;
    }
  }
  if (next <= log.last_index) {
    return absl::DataLossError(absl::StrCat("wal: entries ", next, " to ", log.last_index,
                                            " were not found on the second read: the log changed "
                                            "while it was read"));
  }
  return absl::OkStatus();
}

absl::Status StreamReadAll(FileSystem* fs, const std::string& dir, const walpb::Snapshot& snapshot,
                           std::optional<LogPosition> until,
                           const std::function<absl::Status(ReadAllResult&&)>& header,
                           const std::function<absl::Status(raftpb::Entry&&)>& entry) {
  absl::StatusOr<LogSegments> segments = SelectSegments(fs, dir, snapshot, until);
  if (!segments.ok()) return segments.status();
  LogReadOptions options;
  options.snapshot = snapshot;
  options.keep_entries = false;
  absl::StatusOr<ReplayedLog> log = ReplayBesideWriter(fs, *segments, options);
  if (!log.ok()) return log.status();
  ReadAllResult result;
  switch (log->damage.kind) {
    case LogDamage::kNone:
      break;
    case LogDamage::kCorrupt:
      return absl::DataLossError(absl::StrCat("wal: ", log->damage.Describe()));
    case LogDamage::kTornTail:
      result.torn_tail = log->damage.Where();
      break;
  }
  result.metadata = std::move(log->metadata);
  result.state = log->state;
  result.base_index = log->base_index;
  result.last_snapshot = log->last_snapshot();
  if (absl::Status s = header(std::move(result)); !s.ok()) return s;
  return StreamEntries(fs, *segments, *log, kStreamWindowBytes, entry);
}

}  // namespace walrus
