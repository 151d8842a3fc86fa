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

void AppendBytesField(std::string* out, char tag, absl::string_view bytes) {
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

void Encoder::AddEntry(const raftpb::Entry& entry) {
  MarshalEntry(entry, &scratch_);
  absl::string_view data = scratch_;
  AddRecord(RecordType::kEntry, &data);
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
  buffer_.resize(mark.size);
  crc_ = mark.crc;
}

}  // namespace walrus
