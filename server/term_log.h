// The term of every entry the log holds, by index: what the server needs to
// apply Raft's append rule (skip entries already present with the same term,
// truncate at the first conflict) without reading the log back.
//
// Changes since the last Checkpoint() can be undone (a batch whose write ran
// out of space). Not thread-safe; owned by the committer.
#ifndef WALRUS_SERVER_TERM_LOG_H_
#define WALRUS_SERVER_TERM_LOG_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace walrus {

class TermLog {
 public:
  // Empty log whose next entry will be `first_index`.
  explicit TermLog(uint64_t first_index = 1) : first_(first_index) {}

  uint64_t first_index() const { return first_; }
  // Index of the last entry, or first_index()-1 if empty.
  uint64_t last_index() const { return first_ + terms_.size() - 1; }
  bool empty() const { return terms_.empty(); }
  std::optional<uint64_t> TermAt(uint64_t index) const;

  // Drops entries at `index` and later, then appends `term` at `index`.
  // If `index` is outside [first_index(), last_index()+1] (an empty log, or a
  // log continuing after a snapshot past its end), the log restarts at `index`.
  void Put(uint64_t index, uint64_t term);

  void Checkpoint() { undo_.clear(); }
  void Rollback();

 private:
  struct Undo {
    uint64_t first;
    size_t size;
    std::vector<uint64_t> removed;  // the tail removed by the change
  };
  uint64_t first_;
  std::deque<uint64_t> terms_;
  std::vector<Undo> undo_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_TERM_LOG_H_
