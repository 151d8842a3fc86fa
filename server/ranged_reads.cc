// WalStore's ranged reads (Entries, Term): etcd raft's Storage served from
// the entry index the committer publishes after each batch. The index says
// where each durable entry's frame is; the read takes the frames of a range
// with one read per segment (from the page cache, for a recent log) and
// checks each frame's CRC, so a node keeps no copy of its log in memory.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/log_stream.h"
#include "server/wal_store.h"

namespace walrus {
namespace {

// What a failed read of located entries means to the caller: a segment that
// is gone was purged (its entries are compacted); anything else stands.
absl::Status ReadError(const absl::Status& s, uint64_t lo) {
  if (s.code() != absl::StatusCode::kNotFound) return s;
  return absl::NotFoundError(absl::StrCat("entry ", lo,
                                          " is compacted: its segment was purged while it was "
                                          "read (",
                                          s.message(), ")"));
}

}  // namespace

absl::StatusOr<WalStore::Range> WalStore::Entries(uint64_t lo, uint64_t hi,
                                                  uint64_t max_bytes) const {
  if (lo == 0 || lo >= hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("Entries: want 1 <= lo < hi, got lo ", lo, " and hi ", hi));
  }
  const uint64_t budget =
      max_bytes == 0 ? kMaxEntriesBytes : std::min<uint64_t>(max_bytes, kMaxEntriesBytes);
  Range out;
  std::vector<EntryLocation> at;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    absl::StatusOr<std::pair<uint64_t, uint64_t>> served = ServedRangeLocked();
    if (!served.ok()) return served.status();
    out.first = served->first;
    out.last = served->second;
    if (lo < out.first) {
      return absl::NotFoundError(
          absl::StrCat("entry ", lo, " is compacted: the first index walrusd serves is ", out.first,
                       " (newest snapshot marker ", status_.newest_snapshot().index, ")"));
    }
    if (hi > out.last + 1) {
      return absl::OutOfRangeError(absl::StrCat(
          "entries up to ", hi - 1, " are not all durable: the last index is ", out.last));
    }
    // Every location under one lock: the answer is one version of the log,
    // even if a new leader rewrites the tail while the frames are read.
    at = entry_index_.Locate(lo, hi, budget);
    if (at.empty()) {
      return absl::InternalError(absl::StrCat("the entry index does not hold entry ", lo,
                                              " (it holds ", entry_index_.first_index(), " to ",
                                              entry_index_.last_index(), ")"));
    }
  }
  absl::StatusOr<std::vector<raftpb::Entry>> got =
      ReadLocatedEntries(options_.fs, options_.wal_dir, at, budget);
  if (!got.ok()) return ReadError(got.status(), lo);
  out.entries = std::move(*got);
  return out;
}

absl::StatusOr<WalStore::Range> WalStore::Term(uint64_t index, uint64_t* term) const {
  std::vector<EntryLocation> at;
  Range out;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    absl::StatusOr<std::pair<uint64_t, uint64_t>> served = ServedRangeLocked();
    if (!served.ok()) return served.status();
    out.first = served->first;
    out.last = served->second;
    if (index > out.last) {
      return absl::OutOfRangeError(
          absl::StrCat("entry ", index, " is not durable: the last index is ", out.last));
    }
    if (index < out.first - 1) {
      return absl::NotFoundError(absl::StrCat("the term of entry ", index,
                                              " is compacted: the first index is ", out.first));
    }
    if (const SnapshotMarker newest = status_.newest_snapshot(); index == newest.index) {
      *term = newest.term;
      return out;
    }
    if (std::optional<uint64_t> known = terms_.TermAt(index); known.has_value()) {
      *term = *known;
      return out;
    }
    if (index + 1 == out.first) {
      return absl::NotFoundError(absl::StrCat("the term of entry ", index,
                                              " is compacted: the first index is ", out.first));
    }
    // Released terms are forgotten by the log model; the entry is still
    // held: read it.
    at = entry_index_.Locate(index, index + 1);
  }
  absl::StatusOr<std::vector<raftpb::Entry>> got =
      ReadLocatedEntries(options_.fs, options_.wal_dir, at, 0);
  if (!got.ok()) return ReadError(got.status(), index);
  if (got->empty()) return absl::InternalError(absl::StrCat("no entry ", index, " was read"));
  *term = got->front().term();
  return out;
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> WalStore::ServedRange() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return ServedRangeLocked();
}

absl::StatusOr<std::pair<uint64_t, uint64_t>> WalStore::ServedRangeLocked() const {
  if (options_.read_only) {
    return absl::FailedPreconditionError("a read-only walrusd keeps no entry index: use ReadAll");
  }
  if (!status_.created) {
    return absl::FailedPreconditionError("WAL not created: call Create with the metadata first");
  }
  // The index holds the resolved log's entries in segments not released:
  // entries a compaction marker covers stay readable (for slow followers)
  // until their segment is released; a marker that replaced the log leaves
  // none before it.
  const uint64_t last = status_.last_index;
  const uint64_t first = entry_index_.empty() ? last + 1 : entry_index_.first_index();
  return std::make_pair(first, last);
}

}  // namespace walrus
