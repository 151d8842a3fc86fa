#include "core/encoder.h"

#include <cstring>

#include "absl/base/internal/endian.h"
#include "core/crc32c.h"
#include "core/varint.h"

namespace walrus {
namespace {

constexpr char kTag1Varint = 0x08;
constexpr char kTag2Varint = 0x10;
constexpr char kTag3Varint = 0x18;
constexpr char kTag3Bytes = 0x1a;
constexpr char kTag4Bytes = 0x22;

template <typename String>
void AppendBytesField(String* out, char tag, absl::string_view bytes) {
  out->push_back(tag);
  varint::Append(out, bytes.size());
  out->append(bytes.data(), bytes.size());
}

}  // namespace

void Encoder::MarshalEntry(const raftpb::Entry& entry, std::string* out) {
  out->clear();
  out->push_back(kTag1Varint);
  // Go marshals the int32 enum as a sign-extended varint.
  varint::Append(out, static_cast<uint64_t>(static_cast<int64_t>(entry.type())));
  out->push_back(kTag2Varint);
  varint::Append(out, entry.term());
  out->push_back(kTag3Varint);
  varint::Append(out, entry.index());
  if (entry.has_data()) AppendBytesField(out, kTag4Bytes, entry.data());
}

void Encoder::MarshalHardState(const raftpb::HardState& state, std::string* out) {
  out->clear();
  out->push_back(kTag1Varint);
  varint::Append(out, state.term());
  out->push_back(kTag2Varint);
  varint::Append(out, state.vote());
  out->push_back(kTag3Varint);
  varint::Append(out, state.commit());
}

void Encoder::MarshalSnapshot(const walpb::Snapshot& snapshot, std::string* out) {
  out->clear();
  out->push_back(kTag1Varint);
  varint::Append(out, snapshot.index());
  out->push_back(kTag2Varint);
  varint::Append(out, snapshot.term());
  if (snapshot.has_conf_state()) {
    AppendBytesField(out, kTag3Bytes, snapshot.conf_state().SerializeAsString());
  }
}

void Encoder::AddRecord(RecordType type, const absl::string_view* data) {
  uint32_t crc = data != nullptr ? crc32c::Extend(crc_, *data) : crc_;
  AddRecordWithCrc(type, data, crc);
}

void Encoder::AddRecordWithCrc(RecordType type, const absl::string_view* data, uint32_t crc) {
  crc_ = crc;
  // Frame: length field, then the record {type, crc, data}, then padding.
  size_t frame_start = buffer_.size();
  buffer_.append(kFrameHeaderSize, '\0');
  buffer_.push_back(kTag1Varint);
  varint::Append(&buffer_, static_cast<uint64_t>(type));
  buffer_.push_back(kTag2Varint);
  varint::Append(&buffer_, crc);
  if (data != nullptr) AppendBytesField(&buffer_, kTag3Bytes, *data);
  uint64_t record_len = buffer_.size() - frame_start - kFrameHeaderSize;
  buffer_.append(PaddingFor(record_len), '\0');
  uint64_t field = absl::little_endian::FromHost64(EncodeFrameLength(record_len));
  std::memcpy(&buffer_[frame_start], &field, sizeof(field));
}

// The hot path: the same bytes as MarshalEntry + AddRecord, without
// marshalling the payload into scratch_ first: the payload is written once,
// straight into the frame, and the CRC runs over it there. The CRC field
// precedes the payload and its varint is 1 to 5 bytes long; 5 are reserved,
// which is right for 15 of 16 CRC values, and the payload moves back over
// the slack otherwise.
void Encoder::AddEntry(const raftpb::Entry& entry) {
  constexpr size_t kCrcSlot = 5;  // the longest varint of a uint32
  char head[4 * 11];
  char* h = head;
  *h++ = kTag1Varint;
  // Go marshals the int32 enum as a sign-extended varint.
  h = varint::Put(h, static_cast<uint64_t>(static_cast<int64_t>(entry.type())));
  *h++ = kTag2Varint;
  h = varint::Put(h, entry.term());
  *h++ = kTag3Varint;
  h = varint::Put(h, entry.index());
  const absl::string_view data = entry.has_data() ? absl::string_view(entry.data()) : "";
  if (entry.has_data()) {
    *h++ = kTag4Bytes;
    h = varint::Put(h, data.size());
  }
  const size_t head_len = static_cast<size_t>(h - head);
  const size_t payload_len = head_len + data.size();

  const size_t frame_start = buffer_.size();
  char prefix[kFrameHeaderSize + 4 + kCrcSlot + 1 + 10];
  char* p = prefix + kFrameHeaderSize;  // the length field is filled in last
  *p++ = kTag1Varint;
  p = varint::Put(p, static_cast<uint64_t>(RecordType::kEntry));
  *p++ = kTag2Varint;
  const size_t crc_at = static_cast<size_t>(p - prefix);
  p += kCrcSlot;
  *p++ = kTag3Bytes;
  p = varint::Put(p, payload_len);
  buffer_.append(prefix, static_cast<size_t>(p - prefix));
  const size_t payload_at = buffer_.size();
  buffer_.append(head, head_len);
  buffer_.append(data.data(), data.size());

  crc_ = crc32c::Extend(crc_, absl::string_view(buffer_.data() + payload_at, payload_len));
  char crc_varint[kCrcSlot];
  const size_t crc_len = static_cast<size_t>(varint::Put(crc_varint, crc_) - crc_varint);
  std::memcpy(&buffer_[frame_start + crc_at], crc_varint, crc_len);
  if (crc_len < kCrcSlot) {
    const size_t tail_at = frame_start + crc_at + kCrcSlot;
    std::memmove(&buffer_[frame_start + crc_at + crc_len], &buffer_[tail_at],
                 buffer_.size() - tail_at);
    buffer_.resize(buffer_.size() - (kCrcSlot - crc_len));
  }
  const uint64_t record_len = buffer_.size() - frame_start - kFrameHeaderSize;
  const uint64_t field = absl::little_endian::FromHost64(EncodeFrameLength(record_len));
  std::memcpy(&buffer_[frame_start], &field, sizeof(field));
  buffer_.append(PaddingFor(record_len), '\0');
}

void Encoder::AddHardState(const raftpb::HardState& state) {
  MarshalHardState(state, &scratch_);
  absl::string_view data = scratch_;
  AddRecord(RecordType::kState, &data);
}

void Encoder::AddSnapshot(const walpb::Snapshot& snapshot) {
  MarshalSnapshot(snapshot, &scratch_);
  absl::string_view data = scratch_;
  AddRecord(RecordType::kSnapshot, &data);
}

void Encoder::AddMetadata(absl::string_view metadata) {
  AddRecord(RecordType::kMetadata, &metadata);
}

void Encoder::RollbackTo(const Mark& mark) {
  buffer_.resize(start_ + mark.size);
  crc_ = mark.crc;
}

}  // namespace walrus
