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
//
// The pending bytes sit in page-aligned memory at the same offset within a
// page as they will in the file (ClearPending says where the next ones go),
// so a direct write (O_DIRECT) can take all their whole blocks straight from
// the buffer instead of copying them into an aligned one first.
#ifndef WALRUS_CORE_ENCODER_H_
#define WALRUS_CORE_ENCODER_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <string>

#include "absl/strings/string_view.h"
#include "core/format.h"
#include "raft.pb.h"
#include "record.pb.h"

namespace walrus {

// Allocates in whole pages, page-aligned.
template <typename T>
struct PageAlignedAllocator {
  static constexpr size_t kPage = 4096;
  using value_type = T;
  PageAlignedAllocator() = default;
  template <typename U>
  PageAlignedAllocator(const PageAlignedAllocator<U>&) {}  // NOLINT: rebinding converts
  T* allocate(size_t n) {
    void* p = std::aligned_alloc(kPage, (n * sizeof(T) + kPage - 1) / kPage * kPage);
    if (p == nullptr) throw std::bad_alloc();
    return static_cast<T*>(p);
  }
  void deallocate(T* p, size_t) { std::free(p); }
  friend bool operator==(const PageAlignedAllocator&, const PageAlignedAllocator&) { return true; }
};

// Not thread-safe.
class Encoder {
 public:
  static constexpr size_t kPage = PageAlignedAllocator<char>::kPage;

  explicit Encoder(uint32_t prev_crc) : crc_(prev_crc) { buffer_.reserve(kPage); }

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
  absl::string_view pending() const {
    return absl::string_view(buffer_.data() + start_, buffer_.size() - start_);
  }
  size_t pending_size() const { return buffer_.size() - start_; }
  // Forgets the pending bytes once they were written (the CRC stays). The
  // next ones will be written at `next_offset` of the file: they start at
  // that offset within a page of memory.
  void ClearPending(uint64_t next_offset) {
    start_ = static_cast<size_t>(next_offset % kPage);
    buffer_.resize(start_);
  }

  Mark mark() const { return {pending_size(), crc_}; }
  void RollbackTo(const Mark& mark);

  uint32_t crc() const { return crc_; }

  // Marshals payloads exactly as etcd does (exposed for tests and tools).
  static void MarshalEntry(const raftpb::Entry& entry, std::string* out);
  static void MarshalHardState(const raftpb::HardState& state, std::string* out);
  static void MarshalSnapshot(const walpb::Snapshot& snapshot, std::string* out);

 private:
  void AddRecordWithCrc(RecordType type, const absl::string_view* data, uint32_t crc);

  uint32_t crc_;
  // [0, start_) is not encoded data, only the place of pending()'s first byte.
  std::basic_string<char, std::char_traits<char>, PageAlignedAllocator<char>> buffer_;
  size_t start_ = 0;
  std::string scratch_;  // reused for payload marshalling
};

}  // namespace walrus

#endif  // WALRUS_CORE_ENCODER_H_
