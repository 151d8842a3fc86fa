#include "server/append_plan.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/wal.h"

namespace walrus {
namespace {

absl::Status CheckShape(const v1::AppendRequest& request) {
  const auto& entries = request.entries();
  if (request.entry_crc32c_size() != 0 && request.entry_crc32c_size() != entries.size()) {
    return absl::InvalidArgumentError(absl::StrCat("entry_crc32c has ", request.entry_crc32c_size(),
                                                   " values for ", entries.size(), " entries"));
  }
  for (int i = 0; i < entries.size(); ++i) {
    const raftpb::Entry& e = entries[i];
    if (e.index() == 0) return absl::InvalidArgumentError("entry index 0 is not a Raft index");
    if (i > 0 && e.index() != entries[i - 1].index() + 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          "entry indexes are not contiguous: ", entries[i - 1].index(), " then ", e.index()));
    }
    if (i > 0 && e.term() < entries[i - 1].term()) {
      return absl::InvalidArgumentError(absl::StrCat("entry terms decrease at index ", e.index()));
    }
    if (request.entry_crc32c_size() != 0) {
      uint32_t actual = crc32c::Value(e.data());
      if (actual != request.entry_crc32c(i)) {
        return absl::InvalidArgumentError(
            absl::StrCat("entry ", e.index(), " data does not match its CRC-32C (sent 0x",
                         absl::Hex(request.entry_crc32c(i)), ", data gives 0x", absl::Hex(actual),
                         "): corrupted in memory or in transit; nothing written"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<AppendPlan> PlanAppend(const LogTip& tip, const v1::AppendRequest& request) {
  if (absl::Status s = CheckShape(request); !s.ok()) return s;
  const auto& entries = request.entries();
  AppendPlan plan;
  // Skip what the log already holds with the same term.
  while (plan.skip < static_cast<size_t>(entries.size())) {
    const raftpb::Entry& e = entries[static_cast<int>(plan.skip)];
    std::optional<uint64_t> term = tip.terms.TermAt(e.index());
    if (!term.has_value() || *term != e.term()) break;
    ++plan.skip;
  }
  uint64_t last_after = tip.last_index();
  if (plan.skip < static_cast<size_t>(entries.size())) {
    const raftpb::Entry& first = entries[static_cast<int>(plan.skip)];
    uint64_t next = std::max(tip.last_index(), tip.snapshot_index) + 1;
    if (first.index() > next) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry ", first.index(), " leaves a gap: the log ends at index ", next - 1));
    }
    if (first.index() <= tip.state.commit()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "entry ", first.index(), " (term ", first.term(),
          ") would overwrite a committed entry: commit index is ", tip.state.commit()));
    }
    if (!tip.terms.empty() && first.index() < tip.terms.first_index()) {
      return absl::FailedPreconditionError(absl::StrCat("entry ", first.index(),
                                                        " is below the oldest index held (",
                                                        tip.terms.first_index(), ")"));
    }
    std::optional<uint64_t> prev_term = tip.terms.TermAt(first.index() - 1);
    if (prev_term.has_value() && first.term() < *prev_term) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", first.index(), " has term ",
                                                     first.term(), ", below the term ", *prev_term,
                                                     " of the entry before it"));
    }
    last_after = entries[entries.size() - 1].index();
  }

  const raftpb::HardState& hs = request.hard_state();
  const raftpb::HardState& cur = tip.state;
  if (!IsEmptyHardState(hs)) {
    bool stale = hs.term() < cur.term() || (hs.term() == cur.term() && hs.commit() < cur.commit());
    if (!stale) {
      if (hs.term() == cur.term() && cur.vote() != 0 && hs.vote() != cur.vote()) {
        return absl::FailedPreconditionError(absl::StrCat("vote for ", hs.vote(), " in term ",
                                                          hs.term(), " but ", cur.vote(),
                                                          " was already voted for in that term"));
      }
      if (hs.commit() > std::max(last_after, tip.snapshot_index)) {
        return absl::InvalidArgumentError(
            absl::StrCat("commit index ", hs.commit(), " is beyond the last index ", last_after));
      }
      plan.write_state =
          hs.term() != cur.term() || hs.vote() != cur.vote() || hs.commit() != cur.commit();
    }
  }
  return plan;
}

absl::StatusOr<bool> PlanSnapshot(const LogTip& tip, uint64_t index, uint64_t term) {
  if (index == tip.snapshot_index && tip.snapshot_index != 0) {
    if (term == tip.snapshot_term) return false;
    return absl::FailedPreconditionError(absl::StrCat(
        "a snapshot at index ", index, " was saved with term ", tip.snapshot_term, ", not ", term));
  }
  if (index < tip.snapshot_index) return false;  // superseded by a newer marker
  std::optional<uint64_t> entry_term = tip.terms.TermAt(index);
  if (entry_term.has_value() && *entry_term != term) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot term ", term, " at index ", index,
                                                      " differs from the term ", *entry_term,
                                                      " of the entry there"));
  }
  return true;
}

void ApplyPlan(const AppendPlan& plan, const v1::AppendRequest& request, LogTip* tip) {
  for (int i = static_cast<int>(plan.skip); i < request.entries_size(); ++i) {
    tip->terms.Put(request.entries(i).index(), request.entries(i).term());
  }
  if (plan.write_state) tip->state = request.hard_state();
}

}  // namespace walrus
