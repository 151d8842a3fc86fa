// Parsing a verified record's payload by its type, strictly.
//
// The CRC covers a record's data but not its type field, so a flipped bit in
// the type can turn one kind of record into another with a valid CRC. Strict
// parsing catches nearly all such flips: every payload must parse as its type
// with no unknown fields and valid enum values, a crc record carries no data
// and a snapshot record does. (The rest — an entry without data read as a hard
// state — leaves a gap in the indexes, which ReadAll reports.)
#ifndef WALRUS_CORE_PAYLOAD_H_
#define WALRUS_CORE_PAYLOAD_H_

#include <string>

#include "core/decoder.h"
#include "core/format.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus {

struct Payload {
  RecordType type = RecordType::kCrc;
  raftpb::Entry entry;         // kEntry
  raftpb::HardState state;     // kState
  walpb::Snapshot snapshot;    // kSnapshot
  absl::string_view metadata;  // kMetadata; points into the record
};

// Empty on success, else why the record is damaged.
[[nodiscard]] std::string ParsePayload(const RecordView& record, Payload* out);

}  // namespace walrus

#endif  // WALRUS_CORE_PAYLOAD_H_
