#include "core/term_runs.h"

#include <algorithm>
#include <iterator>

namespace walrus {

std::optional<uint64_t> TermRuns::TermAt(uint64_t index) const {
  if (empty() || index < first_ || index > last_) return std::nullopt;
  auto it = std::upper_bound(runs_.begin(), runs_.end(), index,
                             [](uint64_t i, const Run& run) { return i < run.first; });
  return std::prev(it)->term;
}

void TermRuns::Put(uint64_t index, uint64_t term) {
  if (empty() || index < first_ || index > last_ + 1) {
    runs_.clear();
    first_ = index;
  } else {
    while (!runs_.empty() && runs_.back().first >= index) runs_.pop_back();
  }
  if (runs_.empty() || runs_.back().term != term) runs_.push_back({index, term});
  last_ = index;
}

void TermRuns::TrimBefore(uint64_t index) {
  index = std::min(index, last_ + 1);
  if (index <= first_) return;
  first_ = index;
  // Keep the run holding `index` (if any) and everything after it.
  auto it = std::upper_bound(runs_.begin(), runs_.end(), index,
                             [](uint64_t i, const Run& run) { return i < run.first; });
  if (it != runs_.begin()) --it;
  runs_.erase(runs_.begin(), it);
  if (!runs_.empty()) runs_.front().first = std::max(runs_.front().first, index);
  if (empty()) runs_.clear();
}

void TermRuns::TruncateAfter(uint64_t index) {
  if (empty() || index >= last_) return;
  if (index < first_) {
    runs_.clear();
    last_ = first_ - 1;
    return;
  }
  while (!runs_.empty() && runs_.back().first > index) runs_.pop_back();
  last_ = index;
}

}  // namespace walrus
