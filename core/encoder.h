// Encodes records into frames in memory, keeping the running CRC.
//
// The encoder only fills a buffer; writing it to a file and syncing are the
// WAL's separate steps, so a group-commit batcher can encode many requests and
// issue one write and one fdatasync for all of them.
//
// Payloads are marshalled by hand, field for field as etcd's gogo-generated
// code does (Type, Term, Index always; Data when present), so walrus writes the
// same bytes etcd would for the same entry. tests/core/format_test.cc checks
// this against protobuf's own serialization.
#ifndef WALRUS_CORE_ENCODER_H_
#define WALRUS_CORE_ENCODER_H_

#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "core/format.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus {

// Not thread-safe.
class Encoder {
 public:
  explicit Encoder(uint32_t prev_crc) : crc_(prev_crc) {}

  // A point the encoder can be rolled back to (dropping records added since).
  struct Mark {
    size_t size;
    uint32_t crc;
  };

  // Appends one frame. `data` == nullptr omits the data field (Go's nil).
  void AddRecord(RecordType type, const absl::string_view* data);
  // The crc record that opens a segment: it carries the running CRC so far.
  void AddCrcRecord() { AddRecordWithCrc(RecordType::kCrc, nullptr, crc_); }
  void AddEntry(const raftpb::Entry& entry);
  void AddHardState(const raftpb::HardState& state);
  void AddSnapshot(const walpb::Snapshot& snapshot);
  void AddMetadata(absl::string_view metadata);

  // Bytes encoded and not yet taken.
  absl::string_view pending() const { return buffer_; }
  size_t pending_size() const { return buffer_.size(); }
  // Forgets the pending bytes once they were written (the CRC stays).
  void ClearPending() { buffer_.clear(); }

  Mark mark() const { return {buffer_.size(), crc_}; }
  void RollbackTo(const Mark& mark);

  uint32_t crc() const { return crc_; }

  // Marshals payloads exactly as etcd does (exposed for tests and tools).
  static void MarshalEntry(const raftpb::Entry& entry, std::string* out);
  static void MarshalHardState(const raftpb::HardState& state, std::string* out);
  static void MarshalSnapshot(const walpb::Snapshot& snapshot, std::string* out);

 private:
  void AddRecordWithCrc(RecordType type, const absl::string_view* data, uint32_t crc);

  uint32_t crc_;
  std::string buffer_;
  std::string scratch_;  // reused for payload marshalling
};

}  // namespace walrus

#endif  // WALRUS_CORE_ENCODER_H_
