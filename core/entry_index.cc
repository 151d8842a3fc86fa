#include "core/entry_index.h"

#include <algorithm>

namespace walrus {

void EntryIndex::Apply(const EntryIndexEvent& event) {
  switch (event.kind) {
    case EntryIndexEvent::kEntry:
      Add(event.location);
      break;
    case EntryIndexEvent::kRestart:
      Clear();
      break;
  }
}

void EntryIndex::Add(const EntryLocation& location) {
  if (location.index == 0) return;
  if (!empty()) TruncateAfter(location.index - 1);
  if (!empty() && last_index() + 1 != location.index) Clear();  // a gap: start over
  if (segments_.empty() || segments_.back().seq != location.seq) {
    // The segment before is sealed: give back what its growth reserved.
    if (!segments_.empty()) segments_.back().frames.shrink_to_fit();
    Segment segment;
    segment.seq = location.seq;
    segment.seg_index = location.seg_index;
    segment.first_index = location.index;
    segments_.push_back(std::move(segment));
  }
  segments_.back().frames.push_back({location.offset, location.length, location.prev_crc});
  ++size_;
}

void EntryIndex::TruncateAfter(uint64_t index) {
  while (!segments_.empty() && segments_.back().first_index > index) {
    size_ -= segments_.back().frames.size();
    segments_.pop_back();
  }
  if (segments_.empty() || segments_.back().last_index() <= index) return;
  Segment& last = segments_.back();
  const size_t keep = static_cast<size_t>(index - last.first_index + 1);
  size_ -= last.frames.size() - keep;
  last.frames.resize(keep);
}

void EntryIndex::DropSegmentsBefore(uint64_t seq) {
  while (!segments_.empty() && segments_.front().seq < seq) {
    size_ -= segments_.front().frames.size();
    segments_.pop_front();
  }
}

void EntryIndex::Clear() {
  segments_.clear();
  size_ = 0;
}

size_t EntryIndex::memory_bytes() const {
  size_t bytes = segments_.size() * sizeof(Segment);
  for (const Segment& segment : segments_) bytes += segment.frames.capacity() * sizeof(Frame);
  return bytes;
}

uint64_t EntryIndex::first_index() const {
  return segments_.empty() ? 0 : segments_.front().first_index;
}

uint64_t EntryIndex::last_index() const {
  return segments_.empty() ? 0 : segments_.back().last_index();
}

size_t EntryIndex::SegmentOf(uint64_t index) const {
  // The last segment whose first index is at or below `index`.
  auto it =
      std::upper_bound(segments_.begin(), segments_.end(), index,
                       [](uint64_t i, const Segment& segment) { return i < segment.first_index; });
  return static_cast<size_t>(it - segments_.begin()) - 1;
}

std::vector<EntryLocation> EntryIndex::Locate(uint64_t lo, uint64_t hi,
                                              uint64_t byte_budget) const {
  std::vector<EntryLocation> out;
  if (empty() || lo < first_index() || lo >= hi || lo > last_index()) return out;
  hi = std::min(hi, last_index() + 1);
  uint64_t least = 0;  // the smallest the entries so far can be
  for (size_t s = SegmentOf(lo); s < segments_.size(); ++s) {
    const Segment& segment = segments_[s];
    for (uint64_t i = std::max(lo, segment.first_index); i <= segment.last_index(); ++i) {
      if (i >= hi) return out;
      const Frame& f = segment.frames[static_cast<size_t>(i - segment.first_index)];
      const uint64_t at_least = f.length > kFrameOverhead ? f.length - kFrameOverhead : 0;
      if (byte_budget > 0 && !out.empty() && least + at_least > byte_budget) return out;
      least += at_least;
      out.push_back({i, segment.seq, f.offset, f.length, f.prev_crc, segment.seg_index});
    }
  }
  return out;
}

}  // namespace walrus
