#include "core/payload.h"

#include "absl/strings/str_cat.h"

namespace walrus {
namespace {

template <typename Message>
bool ParseStrict(absl::string_view data, Message* message) {
  return message->ParseFromArray(data.data(), static_cast<int>(data.size())) &&
         message->unknown_fields().empty();
}

}  // namespace

std::string ParsePayload(const RecordView& record, Payload* out) {
  switch (static_cast<RecordType>(record.type)) {
    case RecordType::kEntry:
      out->type = RecordType::kEntry;
      if (!record.has_data || !ParseStrict(record.data, &out->entry)) {
        return "entry record does not hold a valid entry";
      }
      return "";
    case RecordType::kState:
      out->type = RecordType::kState;
      if (!record.has_data || !ParseStrict(record.data, &out->state)) {
        return "state record does not hold a valid hard state";
      }
      return "";
    case RecordType::kSnapshot:
      out->type = RecordType::kSnapshot;
      if (!record.has_data || !ParseStrict(record.data, &out->snapshot) ||
          (out->snapshot.has_conf_state() &&
           !out->snapshot.conf_state().unknown_fields().empty())) {
        return "snapshot record does not hold a valid snapshot";
      }
      return "";
    case RecordType::kMetadata:
      out->type = RecordType::kMetadata;
      out->metadata = record.data;
      return "";
    case RecordType::kCrc:
      out->type = RecordType::kCrc;
      if (record.has_data) return "crc record carries data";
      return "";
  }
  return absl::StrCat("unexpected record type ", record.type);
}

}  // namespace walrus
