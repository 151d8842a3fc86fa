#include "server/term_log.h"

namespace walrus {

std::optional<uint64_t> TermLog::TermAt(uint64_t index) const {
  if (index < first_ || index > last_index() || terms_.empty()) return std::nullopt;
  return terms_[index - first_];
}

void TermLog::Put(uint64_t index, uint64_t term) {
  Undo undo{first_, terms_.size(), {}};
  // An empty log, or one restarting past a gap (after a snapshot), begins anew.
  if (terms_.empty() || index < first_ || index > last_index() + 1) {
    undo.removed.assign(terms_.begin(), terms_.end());
    terms_.clear();
    first_ = index;
  } else {
    size_t keep = index - first_;
    if (keep < terms_.size()) {
      undo.removed.assign(terms_.begin() + static_cast<ptrdiff_t>(keep), terms_.end());
      terms_.resize(keep);
    }
  }
  terms_.push_back(term);
  undo_.push_back(std::move(undo));
}

void TermLog::Rollback() {
  for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
    if (it->first != first_) {
      terms_.assign(it->removed.begin(), it->removed.end());
      first_ = it->first;
      continue;
    }
    terms_.resize(it->size - it->removed.size());
    terms_.insert(terms_.end(), it->removed.begin(), it->removed.end());
  }
  undo_.clear();
}

}  // namespace walrus
