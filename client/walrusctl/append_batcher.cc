#include "client/walrusctl/append_batcher.h"

#include <utility>

namespace walrus {

size_t EntryWireBytes(const raftpb::Entry& entry) {
  // 1 tag byte + up to 10 length bytes for the entry, 4 for its fixed32 CRC.
  constexpr size_t kOverhead = 16;
  return entry.ByteSizeLong() + kOverhead;
}

std::optional<std::vector<raftpb::Entry>> AppendBatcher::Add(raftpb::Entry entry) {
  const size_t bytes = EntryWireBytes(entry);
  std::optional<std::vector<raftpb::Entry>> full;
  if (!pending_.empty()) {
    bool contiguous = entry.index() == pending_.back().index() + 1;
    bool fits =
        pending_.size() < limits_.max_entries && pending_bytes_ + bytes <= limits_.max_bytes;
    if (!contiguous || !fits) full = TakePending();
  }
  pending_bytes_ += bytes;
  pending_.push_back(std::move(entry));
  return full;
}

std::vector<raftpb::Entry> AppendBatcher::TakePending() {
  std::vector<raftpb::Entry> batch = std::move(pending_);
  pending_.clear();
  pending_bytes_ = 0;
  return batch;
}

}  // namespace walrus
