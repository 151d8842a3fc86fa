#include "core/decoder.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/base/internal/endian.h"
#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/varint.h"

namespace walrus {

FrameStatus ReadFrame(absl::string_view bytes, uint64_t offset, Frame* frame, std::string* why) {
  if (bytes.size() - offset < kFrameHeaderSize) return FrameStatus::kShort;
  uint64_t field;
  std::memcpy(&field, bytes.data() + offset, sizeof(field));
  field = absl::little_endian::ToHost64(field);
  if (field == 0) return FrameStatus::kZeroLength;
  uint64_t record_len = 0, pad = 0;
  if (!DecodeFrameLength(field, &record_len, &pad) || !FrameBodyFits(record_len, pad)) {
    *why = absl::StrCat("malformed frame length field 0x", absl::Hex(field));
    return FrameStatus::kMalformed;
  }
  uint64_t body = offset + kFrameHeaderSize;
  if (bytes.size() - body < record_len + pad) return FrameStatus::kShort;
  if (!ParseRecord(bytes.substr(body, record_len), &frame->record)) {
    *why = "unparsable record";
    return FrameStatus::kMalformed;
  }
  // Padding is not covered by the CRC; writers (etcd's too) zero it, so
  // anything else there is damage.
  for (uint64_t i = body + record_len; i < body + record_len + pad; ++i) {
    if (bytes[i] != 0) {
      *why = "non-zero frame padding";
      return FrameStatus::kMalformed;
    }
  }
  frame->end = body + record_len + pad;
  return FrameStatus::kOk;
}

namespace {

bool AllZero(absl::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == 0; });
}

// Offset just past the last non-zero byte at or after `from`.
uint64_t EndOfNonZero(absl::string_view bytes, uint64_t from) {
  uint64_t end = bytes.size();
  while (end > from && bytes[end - 1] == 0) --end;
  return end;
}

// The crc field of a record whose header survives even if the rest is damaged
// (encoders write type first, then crc).
std::optional<uint32_t> PeekRecordCrc(absl::string_view record) {
  uint64_t tag = 0, value = 0;
  if (!varint::Read(&record, &tag) || tag != 0x08 || !varint::Read(&record, &value)) {
    return std::nullopt;
  }
  if (!varint::Read(&record, &tag) || tag != 0x10 || !varint::Read(&record, &value) ||
      value > UINT32_MAX) {
    return std::nullopt;
  }
  return static_cast<uint32_t>(value);
}

// The type field of a record whose first bytes survive.
std::optional<int64_t> PeekRecordType(absl::string_view record) {
  uint64_t tag = 0, value = 0;
  if (!varint::Read(&record, &tag) || tag != 0x08 || !varint::Read(&record, &value)) {
    return std::nullopt;
  }
  return static_cast<int64_t>(value);
}

bool Verifies(const RecordView& record, uint32_t prev_crc) {
  // Only records that carry data prove anything; an empty record's crc would
  // just repeat its predecessor's, which zeros and garbage can imitate.
  return record.has_data && !record.data.empty() && record.type >= 1 && record.type <= 5 &&
         record.type != static_cast<int64_t>(RecordType::kCrc) &&
         crc32c::Extend(prev_crc, record.data) == record.crc;
}

}  // namespace

bool ParseRecord(absl::string_view bytes, RecordView* out) {
  *out = RecordView();
  while (!bytes.empty()) {
    uint64_t tag = 0;
    if (!varint::Read(&bytes, &tag)) return false;
    uint64_t field = tag >> 3;
    uint64_t wire_type = tag & 7;
    uint64_t value = 0;
    switch (wire_type) {
      case 0:  // varint
        if (!varint::Read(&bytes, &value)) return false;
        if (field == 1) out->type = static_cast<int64_t>(value);
        if (field == 2) {
          if (value > UINT32_MAX) return false;
          out->crc = static_cast<uint32_t>(value);
        }
        break;
      case 1:  // fixed64
        if (bytes.size() < 8) return false;
        bytes.remove_prefix(8);
        break;
      case 2:  // length-delimited
        if (!varint::Read(&bytes, &value) || value > bytes.size()) return false;
        if (field == 3) {
          out->has_data = true;
          out->data = bytes.substr(0, value);
        }
        bytes.remove_prefix(value);
        break;
      case 5:  // fixed32
        if (bytes.size() < 4) return false;
        bytes.remove_prefix(4);
        break;
      default:
        return false;
    }
    if (field == 0) return false;
  }
  return true;
}

Decoder::Decoder(FileSystem* fs, std::vector<std::string> paths)
    : fs_(fs), paths_(std::move(paths)) {}

absl::Status Decoder::Decode(Visitor visit) {
  crc_ = 0;
  chain_known_ = false;
  state_before_file_ = false;
  state_in_file_ = false;
  end_ = LogEnd();
  for (size_t i = 0; i < paths_.size(); ++i) {
    absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs_->NewReadableFile(paths_[i]);
    if (!file.ok()) return file.status();
    absl::StatusOr<uint64_t> size = (*file)->Size();
    if (!size.ok()) return size.status();
    const bool is_last = i + 1 == paths_.size();
    uint64_t limit = *size;
    if (is_last && last_file_limit_.has_value()) limit = std::min(limit, *last_file_limit_);
    bool stop = false;
    absl::Status status = DecodeFile(i, file->get(), limit, is_last, visit, &stop);
    if (!status.ok() || stop) return status;
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::string_view> Decoder::ReadWindow(ReadableFile* file, uint64_t offset,
                                                      uint64_t n) {
  if (buffer_.size() < n) buffer_.resize(n);
  absl::StatusOr<size_t> got = file->Read(offset, n, buffer_.data());
  if (!got.ok()) return got.status();
  return absl::string_view(buffer_.data(), *got);  // the file may have shrunk
}

absl::StatusOr<bool> Decoder::RestIsZero(ReadableFile* file, uint64_t offset, uint64_t size) {
  while (offset < size) {
    absl::StatusOr<absl::string_view> window =
        ReadWindow(file, offset, std::min<uint64_t>(window_bytes_, size - offset));
    if (!window.ok()) return window.status();
    if (window->empty()) return true;
    if (!AllZero(*window)) return false;
    offset += window->size();
  }
  return true;
}

absl::Status Decoder::DecodeFile(size_t file_index, ReadableFile* file, uint64_t size, bool is_last,
                                 Visitor visit, bool* stop) {
  last_valid_end_ = 0;
  file_records_ = 0;
  state_before_file_ = state_before_file_ || state_in_file_;
  state_in_file_ = false;
  // Window by window while every record is whole and verifies, which is
  // what a log is made of; anything else is decided on the whole file.
  uint64_t offset = 0;
  uint64_t want = window_bytes_;
  while (offset < size) {
    absl::StatusOr<absl::string_view> window =
        ReadWindow(file, offset, std::min<uint64_t>(want, size - offset));
    if (!window.ok()) return window.status();
    if (window->size() < std::min<uint64_t>(want, size - offset)) size = offset + window->size();
    uint64_t done = 0;
    absl::Status status;
    const Pass pass = DecodeRecords(file_index, *window, offset, /*whole=*/false, is_last, visit,
                                    &done, stop, &status);
    if (!status.ok()) return status;
    offset += done;
    if (pass == Pass::kTrouble) break;
    if (pass == Pass::kZeros) {
      absl::StatusOr<bool> zeros = RestIsZero(file, offset, size);
      if (!zeros.ok()) return zeros.status();
      if (!*zeros) break;
      offset = size;
      break;
    }
    // A record larger than the window: read it whole next time.
    want = done == 0 ? std::max(want * 2, window->size() * 2) : window_bytes_;
    if (done == 0 && offset + window->size() >= size) break;  // cut short: a torn end
  }
  if (offset < size) {
    // Damage, or what may be: classify it on the file's bytes from the start.
    absl::StatusOr<absl::string_view> whole = ReadWindow(file, 0, size);
    if (!whole.ok()) return whole.status();
    uint64_t done = 0;
    absl::Status status;
    (void)DecodeRecords(file_index, whole->substr(0, size), 0, /*whole=*/true, is_last, visit,
                        &done, stop, &status, offset);
    if (!status.ok() || *stop) return status;
  }
  if (const size_t want_records = HeaderRecords(file_index); file_records_ < want_records) {
    *stop = true;
    std::string reason = file_records_ == 0
                             ? std::string("segment holds no header: empty or zero-filled")
                             : absl::StrCat("segment ends inside its header (", file_records_,
                                            " of ", want_records, " records)");
    end_ = {LogEnd::kCorrupt, file_index, last_valid_end_, std::move(reason)};
    return absl::OkStatus();
  }
  if (is_last) end_ = {LogEnd::kClean, file_index, last_valid_end_, std::string()};
  return absl::OkStatus();
}

Decoder::Pass Decoder::DecodeRecords(size_t file_index, absl::string_view bytes, uint64_t base,
                                     bool whole, bool is_last, Visitor visit, uint64_t* done,
                                     bool* stop, absl::Status* status, uint64_t start) {
  uint64_t offset = start;
  *done = start;
  auto fail = [&](std::string reason) {
    if (!whole) return Pass::kTrouble;
    *stop = true;
    if (InHeader(file_index, bytes, offset)) {
      end_ = {LogEnd::kCorrupt, file_index, offset,
              absl::StrCat(reason, "; inside the segment header, which was synced before the ",
                           "segment was named")};
    } else if (is_last) {
      ClassifyDamage(file_index, bytes, offset, std::move(reason));
    } else {
      end_ = {LogEnd::kCorrupt, file_index, offset, std::move(reason)};
    }
    return Pass::kTrouble;
  };
  while (offset < bytes.size()) {
    Frame frame;
    std::string why;
    switch (ReadFrame(bytes, offset, &frame, &why)) {
      case FrameStatus::kZeroLength:
        if (!whole) return Pass::kZeros;
        if (!AllZero(bytes.substr(offset))) {
          return fail("zero length field followed by non-zero data");
        }
        *done = bytes.size();
        return Pass::kDone;
      case FrameStatus::kShort:
        if (!whole) return Pass::kMore;
        if (bytes.size() - offset < kFrameHeaderSize && AllZero(bytes.substr(offset))) {
          *done = bytes.size();  // zeros too short for a length field: the end
          return Pass::kDone;
        }
        return fail("incomplete frame at end of file");
      case FrameStatus::kMalformed:
        return fail(why);
      case FrameStatus::kOk:
        break;
    }
    const RecordView& record = frame.record;
    const bool is_crc = record.type == static_cast<int64_t>(RecordType::kCrc);
    if (file_records_ == 0 && !is_crc) {
      return fail(absl::StrCat("segment opens with a record of type ", record.type,
                               ", not its crc record"));
    }
    if (file_records_ == 1 && record.type != static_cast<int64_t>(RecordType::kMetadata)) {
      return fail(absl::StrCat("segment header holds a record of type ", record.type,
                               " where its metadata record belongs"));
    }
    if (is_crc) {
      // The crc record opening a segment carries the running CRC of everything
      // before it; the first file read gives the chain its start.
      if (chain_known_ && record.crc != crc_) {
        return fail(absl::StrCat("crc chain broken: segment expects 0x", absl::Hex(record.crc),
                                 ", previous records end at 0x", absl::Hex(crc_)));
      }
      crc_ = record.crc;
      chain_known_ = true;
    } else {
      uint32_t expected = crc32c::Extend(crc_, record.data);
      if (expected != record.crc) {
        return fail(absl::StrCat("crc mismatch: record says 0x", absl::Hex(record.crc),
                                 ", data gives 0x", absl::Hex(expected)));
      }
      crc_ = expected;
    }
    ++file_records_;
    if (record.type == static_cast<int64_t>(RecordType::kState)) state_in_file_ = true;
    *status = visit(record, RecordPosition{file_index, base + offset, base + frame.end});
    if (!status->ok()) return Pass::kTrouble;
    offset = frame.end;
    last_valid_end_ = base + offset;
    *done = offset;
  }
  return Pass::kMore;
}

size_t Decoder::HeaderRecords(size_t file_index) const {
  const std::string& path = paths_[file_index];
  std::optional<SegmentId> id = ParseSegmentName(path.substr(path.rfind('/') + 1));
  // Create writes crc, metadata and the snapshot marker {0, 0}; a cut writes
  // crc, metadata and the last hard state, if one was ever saved.
  if ((id.has_value() && id->seq == 0) || state_before_file_) return 3;
  return 2;
}

bool Decoder::InHeader(size_t file_index, absl::string_view bytes, uint64_t offset) const {
  const size_t want = HeaderRecords(file_index);
  if (file_records_ < want) return true;
  if (file_records_ > 2 || want > 2) return false;
  // The third record of a segment read without its predecessors: a hard state
  // there may be the header's; an entry or a snapshot marker is not.
  std::optional<int64_t> type;
  if (bytes.size() - offset > kFrameHeaderSize) {
    type = PeekRecordType(bytes.substr(offset + kFrameHeaderSize));
  }
  return !type.has_value() || (*type != static_cast<int64_t>(RecordType::kEntry) &&
                               *type != static_cast<int64_t>(RecordType::kSnapshot));
}

void Decoder::ClassifyDamage(size_t file_index, absl::string_view bytes, uint64_t offset,
                             std::string reason) {
  end_ = {LogEnd::kCorrupt, file_index, offset, reason};
  // How far the damaged frame claims to reach. A torn write cuts a frame short
  // but never garbles its length field: the field is 8-byte aligned and so
  // lies within one sector, which is written whole or not at all.
  uint64_t extent = bytes.size();
  std::optional<uint32_t> damaged_crc;
  if (bytes.size() - offset >= kFrameHeaderSize) {
    uint64_t field;
    std::memcpy(&field, bytes.data() + offset, sizeof(field));
    field = absl::little_endian::ToHost64(field);
    uint64_t record_len = 0, pad = 0;
    if (field == 0) {
      extent = offset;
    } else if (!DecodeFrameLength(field, &record_len, &pad) || !FrameBodyFits(record_len, pad)) {
      return;  // a garbled length is corruption, not a tear
    } else {
      uint64_t body = offset + kFrameHeaderSize;
      extent = std::min<uint64_t>(bytes.size(), body + record_len + pad);
      damaged_crc = PeekRecordCrc(bytes.substr(body, extent - body));
    }
  }
  if (EndOfNonZero(bytes, offset) > extent) {
    end_.reason += "; data follows the damaged record";
    return;
  }
  if (VerifiableRecordAfter(bytes, offset, damaged_crc)) {
    end_.reason += "; a valid record follows the damaged one";
    return;
  }
  end_.kind = LogEnd::kTornTail;
}

bool Decoder::VerifiableRecordAfter(absl::string_view bytes, uint64_t offset,
                                    std::optional<uint32_t> prev_crc) {
  uint64_t limit = EndOfNonZero(bytes, offset);
  for (uint64_t p = offset + kFrameAlignment; p + kFrameHeaderSize <= limit; p += kFrameAlignment) {
    Frame first;
    std::string why;
    if (ReadFrame(bytes, p, &first, &why) != FrameStatus::kOk) continue;
    if (prev_crc.has_value() && Verifies(first.record, *prev_crc)) return true;
    Frame second;
    if (ReadFrame(bytes, first.end, &second, &why) == FrameStatus::kOk &&
        Verifies(second.record, first.record.crc)) {
      return true;
    }
  }
  return false;
}

}  // namespace walrus
