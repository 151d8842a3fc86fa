// TermRuns: the term of each entry of a log, stored as runs of (first index,
// term), so it grows with the number of term changes, not with entries. The
// log model keeps one for what is written; the log reader one for what it
// has read so far.
//
// Thread-safety: none.
#ifndef WALRUS_CORE_TERM_RUNS_H_
#define WALRUS_CORE_TERM_RUNS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace walrus {

// The term of each entry in [first_index(), last_index()], as runs.
class TermRuns {
 public:
  // Empty; the next entry will be `first_index`.
  explicit TermRuns(uint64_t first_index = 1) : first_(first_index), last_(first_index - 1) {}

  uint64_t first_index() const { return first_; }
  // The last entry's index, or first_index()-1 if empty.
  uint64_t last_index() const { return last_; }
  bool empty() const { return last_ < first_; }
  size_t run_count() const { return runs_.size(); }
  std::optional<uint64_t> TermAt(uint64_t index) const;

  // Drops entries at `index` and later, then appends `term` at `index`. If
  // `index` is outside [first_index(), last_index()+1], the log restarts at
  // `index` (a log continuing after a snapshot past its end).
  void Put(uint64_t index, uint64_t term);
  // Forgets the terms of entries below `index` (at most up to the last).
  void TrimBefore(uint64_t index);
  // Forgets the terms of entries after `index`.
  void TruncateAfter(uint64_t index);

 private:
  struct Run {
    uint64_t first;
    uint64_t term;
  };
  std::vector<Run> runs_;  // increasing `first`; runs_[0].first == first_
  uint64_t first_;
  uint64_t last_;
};

}  // namespace walrus

#endif  // WALRUS_CORE_TERM_RUNS_H_
