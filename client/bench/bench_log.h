// The log walrus-bench writes: where it starts on the daemon, which indexes
// each append gets, what the entries hold, and how far the daemon has
// acknowledged. See client/bench/walrus_bench.cc for how clients share it.
#ifndef WALRUS_CLIENT_BENCH_BENCH_LOG_H_
#define WALRUS_CLIENT_BENCH_BENCH_LOG_H_

#include <atomic>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/client.h"
#include "walrus.pb.h"

namespace walrus {

struct BenchStart {
  uint64_t first_index = 1;  // the first index the bench appends
  uint64_t term = 1;         // the term of every entry it appends
  std::string note;          // what it found, for the operator
};

// Creates the WAL with `metadata`, or finds the log already there (the same
// metadata, or FAILED_PRECONDITION for other metadata: the bench continues
// that log too), and reads from Status where to continue: after the last
// index (or snapshot marker), in the saved hard state's term. A log without
// a hard state gets {term 1} first, so entry terms never run ahead of it.
// FAILED_PRECONDITION if the daemon is fail-stop or read-only.
[[nodiscard]] absl::StatusOr<BenchStart> PrepareLog(WalClient* client, absl::string_view metadata);

// Thread-safe.
class BenchLog {
 public:
  BenchLog(uint64_t first_index, uint64_t term, uint64_t entries_per_append, uint64_t entry_bytes);

  // The first of the next entries_per_append indexes, in allocation order.
  uint64_t Allocate() { return next_.fetch_add(entries_per_append_); }

  // An append of entries first..last. An entry's data is a fixed pseudo-random
  // pattern stamped with its index, so building the same index twice gives
  // the same entry.
  v1::AppendRequest Build(uint64_t first, uint64_t last) const;

  // Records that the daemon's log reached `last_index` (an acknowledgement).
  void Acknowledged(uint64_t last_index);
  // The highest index acknowledged so far (first_index - 1 before any).
  uint64_t acknowledged() const { return acknowledged_.load(); }

  uint64_t entries_per_append() const { return entries_per_append_; }
  uint64_t entry_bytes() const { return payload_.size(); }

 private:
  const uint64_t term_;
  const uint64_t entries_per_append_;
  std::string payload_;
  std::atomic<uint64_t> next_;
  std::atomic<uint64_t> acknowledged_;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_BENCH_BENCH_LOG_H_
