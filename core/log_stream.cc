#include "core/log_stream.h"

#include <algorithm>
#include <memory>
#include <utility>

#include "absl/functional/function_ref.h"
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

// The second read of StreamEntries and LocateEntries: each entry of the
// resolved log, with where its frame is.
absl::Status WalkEntries(
    FileSystem* fs, const LogSegments& segments, const ReplayedLog& log, size_t window_bytes,
    absl::FunctionRef<absl::Status(raftpb::Entry&&, const EntryLocation&)> visit) {
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
        const uint32_t prev_crc = crc;
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
            const SegmentId id = segments.listed[segments.first + f].id;
            const EntryLocation location{next,        id.seq,
                                         offset + at, static_cast<uint32_t>(frame.end - at),
                                         prev_crc,    id.index};
            if (absl::Status s = visit(std::move(payload.entry), location); !s.ok()) return s;
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

}  // namespace

absl::Status StreamEntries(FileSystem* fs, const LogSegments& segments, const ReplayedLog& log,
                           size_t window_bytes,
                           const std::function<absl::Status(raftpb::Entry&&)>& visit) {
  return WalkEntries(
      fs, segments, log, window_bytes,
      [&](raftpb::Entry&& entry, const EntryLocation&) { return visit(std::move(entry)); });
}

absl::Status LocateEntries(FileSystem* fs, const LogSegments& segments, const ReplayedLog& log,
                           const std::function<absl::Status(const EntryLocation&)>& visit) {
  return WalkEntries(
      fs, segments, log, kStreamWindowBytes,
      [&](raftpb::Entry&&, const EntryLocation& location) { return visit(location); });
}

absl::StatusOr<std::vector<raftpb::Entry>> ReadLocatedEntries(
    FileSystem* fs, const std::string& dir, absl::Span<const EntryLocation> locations,
    uint64_t max_bytes) {
  std::vector<raftpb::Entry> out;
  out.reserve(locations.size());
  uint64_t total = 0;
  std::string bytes;
  std::string why;
  Payload payload;
  size_t at = 0;
  while (at < locations.size()) {
    // The frames of one segment: one read of their span.
    size_t end = at + 1;
    while (end < locations.size() && locations[end].seq == locations[at].seq) ++end;
    const EntryLocation& first = locations[at];
    const EntryLocation& last = locations[end - 1];
    const std::string path = JoinPath(dir, SegmentName(first.seq, first.seg_index));
    absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs->NewReadableFile(path);
    if (!file.ok()) return file.status();
    if (absl::Status s =
            ReadRange(file->get(), path, first.offset,
                      static_cast<size_t>(last.offset + last.length - first.offset), &bytes);
        !s.ok()) {
      return s;
    }
    auto damaged = [&](const EntryLocation& l, absl::string_view what) {
      return absl::DataLossError(
          absl::StrCat("wal: ", path, " at offset ", l.offset, ": entry ", l.index, " ", what));
    };
    for (size_t i = at; i < end; ++i) {
      const EntryLocation& l = locations[i];
      Frame frame;
      if (ReadFrame(bytes, l.offset - first.offset, &frame, &why) != FrameStatus::kOk) {
        return damaged(l, absl::StrCat("has no readable frame: ", why));
      }
      if (crc32c::Extend(l.prev_crc, frame.record.data) != frame.record.crc) {
        return damaged(l, "fails its CRC");
      }
      if (frame.record.type != static_cast<int64_t>(RecordType::kEntry)) {
        return damaged(l, "is not where the index says");
      }
      if (std::string bad = ParsePayload(frame.record, &payload); !bad.empty()) {
        return damaged(l, bad);
      }
      if (payload.entry.index() != l.index) return damaged(l, "is not where the index says");
      total += payload.entry.ByteSizeLong();
      if (max_bytes != 0 && !out.empty() && total > max_bytes) return out;
      out.push_back(std::move(payload.entry));
    }
    at = end;
  }
  return out;
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
