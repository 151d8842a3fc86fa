#include "core/log_model.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "google/protobuf/unknown_field_set.h"

namespace walrus {
namespace {

bool IsEmpty(const raftpb::HardState& s) {
  return s.term() == 0 && s.vote() == 0 && s.commit() == 0;
}

constexpr int kMaxEntryType = 2;  // EntryConfChangeV2

// The entry's type if it is none of etcd's raftpb (EntryNormal,
// EntryConfChange, EntryConfChangeV2), which no Raft node could apply. The
// parser keeps an unknown enum value of a proto2 message as an unknown field 1
// (and type() reads as normal), so that is where it shows.
std::optional<uint64_t> UnknownType(const raftpb::Entry& e) {
  if (static_cast<int>(e.type()) < 0 || static_cast<int>(e.type()) > kMaxEntryType) {
    return static_cast<uint64_t>(e.type());
  }
  const google::protobuf::UnknownFieldSet& unknown = e.unknown_fields();
  for (int i = 0; i < unknown.field_count(); ++i) {
    const google::protobuf::UnknownField& field = unknown.field(i);
    if (field.number() == raftpb::Entry::kTypeFieldNumber &&
        field.type() == google::protobuf::UnknownField::TYPE_VARINT) {
      return field.varint();
    }
  }
  return std::nullopt;
}

absl::Status CheckShape(const LogRequest& request) {
  static const google::protobuf::RepeatedPtrField<raftpb::Entry> kNone;
  const auto& entries = request.entries != nullptr ? *request.entries : kNone;
  const size_t crcs = request.entry_crc32c.size();
  if (crcs != 0 && crcs != static_cast<size_t>(entries.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("entry_crc32c has ", crcs, " values for ", entries.size(), " entries"));
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
    if (std::optional<uint64_t> type = UnknownType(e); type.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry ", e.index(), " has type ", *type,
                       "; Raft entries are normal (0), conf change (1) or conf change v2 (2)"));
    }
    if (crcs != 0) {
      uint32_t actual = crc32c::Value(e.data());
      if (actual != request.entry_crc32c[static_cast<size_t>(i)]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "entry ", e.index(), " data does not match its CRC-32C (sent 0x",
            absl::Hex(request.entry_crc32c[static_cast<size_t>(i)]), ", data gives 0x",
            absl::Hex(actual), "): corrupted in memory or in transit; nothing written"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

uint64_t LogState::last_index() const {
  return std::max(terms.last_index(), newest_marker().index);
}

void LogModel::Reset(absl::Span<const raftpb::Entry> entries, uint64_t base_index,
                     absl::Span<const SnapshotMarker> markers, const raftpb::HardState& state) {
  TermRuns terms(entries.empty() ? base_index + 1 : entries.front().index());
  for (const raftpb::Entry& e : entries) terms.Put(e.index(), e.term());
  Reset(std::move(terms), base_index, markers, state);
}

void LogModel::Reset(TermRuns terms, uint64_t base_index, absl::Span<const SnapshotMarker> markers,
                     const raftpb::HardState& state) {
  LogState s;
  if (!markers.empty()) s.markers.assign(markers.begin(), markers.end());
  s.terms = terms.empty() ? TermRuns(std::max(base_index, s.newest_marker().index) + 1)
                          : std::move(terms);
  s.hard_state = state;
  synced_ = s;
  encoded_ = std::move(s);
  dirty_ = false;
}

absl::StatusOr<AppendPlan> LogModel::PlanAppend(const LogRequest& request) const {
  if (absl::Status s = CheckShape(request); !s.ok()) return s;
  const LogState& log = encoded_;
  const SnapshotMarker& marker = log.newest_marker();
  const uint64_t commit = log.hard_state.commit();
  AppendPlan plan;
  const int count = request.entries != nullptr ? request.entries->size() : 0;
  // Raft never sends an entry a snapshot covers: such a request is a stale
  // duplicate (or a client bug), whatever the log still holds there.
  if (count > 0 && marker.index != 0 && (*request.entries)[0].index() <= marker.index) {
    const raftpb::Entry& first = (*request.entries)[0];
    return absl::FailedPreconditionError(absl::StrCat(
        "entry ", first.index(), " (term ", first.term(), ") is at or below the snapshot at index ",
        marker.index, " (term ", marker.term, "), which covers it; nothing written"));
  }
  // Skip what the log already holds with the same term.
  while (static_cast<int>(plan.skip) < count) {
    const raftpb::Entry& e = (*request.entries)[static_cast<int>(plan.skip)];
    std::optional<uint64_t> term = log.terms.TermAt(e.index());
    if (!term.has_value() || *term != e.term()) break;
    ++plan.skip;
  }
  if (static_cast<int>(plan.skip) < count) {
    const raftpb::Entry& first = (*request.entries)[static_cast<int>(plan.skip)];
    const uint64_t next = log.last_index() + 1;
    if (first.index() > next) {
      return absl::InvalidArgumentError(
          absl::StrCat("entry ", first.index(), " leaves a gap: the log ends at index ", next - 1));
    }
    // Replacing an existing entry truncates the log from there: never at or
    // below the commit. Appending past the last entry is no overwrite, even
    // below a commit that ran ahead of the log.
    if (first.index() <= log.terms.last_index() && first.index() <= commit) {
      return absl::FailedPreconditionError(
          absl::StrCat("entry ", first.index(), " (term ", first.term(),
                       ") would overwrite a committed entry: commit index is ", commit));
    }
    if (!log.terms.empty() && first.index() < log.terms.first_index()) {
      return absl::FailedPreconditionError(absl::StrCat("entry ", first.index(),
                                                        " is below the oldest index held (",
                                                        log.terms.first_index(), ")"));
    }
    // Right after the newest marker, the marker says what precedes the entry:
    // a snapshot installed over a divergent tail supersedes the stale entry.
    std::optional<uint64_t> prev_term = first.index() - 1 == marker.index && marker.index != 0
                                            ? std::optional<uint64_t>(marker.term)
                                            : log.terms.TermAt(first.index() - 1);
    if (prev_term.has_value() && first.term() < *prev_term) {
      return absl::InvalidArgumentError(absl::StrCat("entry ", first.index(), " has term ",
                                                     first.term(), ", below the term ", *prev_term,
                                                     " of the entry before it"));
    }
  }

  const raftpb::HardState& hs = request.hard_state;
  const raftpb::HardState& cur = log.hard_state;
  if (!IsEmpty(hs)) {
    const bool stale =
        hs.term() < cur.term() || (hs.term() == cur.term() && hs.commit() <= cur.commit() &&
                                   (hs.vote() == cur.vote() || hs.vote() == 0));
    if (!stale) {
      if (hs.term() == cur.term() && cur.vote() != 0 && hs.vote() != cur.vote()) {
        return absl::FailedPreconditionError(absl::StrCat("vote for ", hs.vote(), " in term ",
                                                          hs.term(), " but ", cur.vote(),
                                                          " was already voted for in that term"));
      }
      if (hs.commit() < cur.commit()) {
        return absl::InvalidArgumentError(
            absl::StrCat("hard state (term ", hs.term(), ", commit ", hs.commit(),
                         ") would lower the saved commit index ", cur.commit(),
                         "; Raft never lowers a commit; nothing written"));
      }
      plan.write_state =
          hs.term() != cur.term() || hs.vote() != cur.vote() || hs.commit() != cur.commit();
    }
  }
  plan.awaits_sync = dirty_ || static_cast<int>(plan.skip) < count || plan.write_state;
  return plan;
}

absl::StatusOr<SnapshotPlan> LogModel::PlanSnapshot(uint64_t index, uint64_t term) const {
  const LogState& log = encoded_;
  const SnapshotMarker& newest = log.newest_marker();
  SnapshotPlan plan;
  if (index == std::numeric_limits<uint64_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot index ", index, " leaves no room for a following entry"));
  }
  if (index == 0) {
    if (term != 0) {
      return absl::InvalidArgumentError("a snapshot at index 0 cannot have a term");
    }
  } else if (index == newest.index) {
    if (term != newest.term) {
      return absl::FailedPreconditionError(absl::StrCat(
          "a snapshot at index ", index, " was saved with term ", newest.term, ", not ", term));
    }
  } else if (index > newest.index) {
    if (term < newest.term) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot at index ", index, " has term ", term, ", below the term ", newest.term,
          " of the snapshot at index ", newest.index, "; terms never decrease along a Raft log"));
    }
    // A marker over an entry of another term (or past the end) is a
    // follower installing its leader's snapshot over a divergent tail: Raft
    // discards the log, and so does RecordSnapshot. The saved commit may
    // already cover the index (raftexample saves the Ready's hard state
    // before its snapshot), but not an entry after it: those would be
    // committed entries thrown away.
    const std::optional<uint64_t> entry_term = log.terms.TermAt(index);
    const uint64_t commit = log.hard_state.commit();
    const uint64_t last = log.terms.last_index();
    if (ReplacesLog(index, term) && commit > index && last > index) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot at index ", index, " (term ", term, ") does not match the entry there (",
          entry_term.has_value() ? absl::StrCat("term ", *entry_term) : std::string("none"),
          ") and would discard committed entries ", index + 1, "..", std::min(commit, last),
          " (commit index ", commit, "); nothing written"));
    }
    plan.write = true;
  }
  // index < newest.index: superseded by a newer marker, nothing to do.
  plan.awaits_sync = dirty_ || plan.write;
  return plan;
}

uint64_t LogModel::ReleaseLimit(uint64_t index) const {
  uint64_t durable = 0;
  for (const SnapshotMarker& m : synced_.markers) durable = std::max(durable, m.index);
  return std::min(index, durable);
}

void LogModel::RecordEntry(uint64_t index, uint64_t term) {
  encoded_.terms.Put(index, term);
  dirty_ = true;
}

void LogModel::RecordState(const raftpb::HardState& state) {
  encoded_.hard_state = state;
  dirty_ = true;
}

bool LogModel::ReplacesLog(uint64_t index, uint64_t term) const {
  const LogState& log = encoded_;
  if (index == 0 || index <= log.newest_marker().index) return false;
  if (!log.terms.empty() && index < log.terms.first_index()) return false;
  const std::optional<uint64_t> entry_term = log.terms.TermAt(index);
  return !entry_term.has_value() || *entry_term != term;
}

void LogModel::RecordSnapshot(uint64_t index, uint64_t term, uint64_t seq) {
  // A marker that does not match the entry at its index (another term, or
  // no entry: past the end) replaces the log, as installing a snapshot does
  // in Raft: the next entry follows the marker. The log reader reads it the
  // same way. A marker over an entry of its own term is a compaction and
  // changes nothing.
  if (ReplacesLog(index, term)) encoded_.terms = TermRuns(index + 1);
  encoded_.markers.push_back({index, term, seq});
  dirty_ = true;
}

void LogModel::Commit() {
  if (!dirty_) return;
  synced_ = encoded_;
  dirty_ = false;
}

void LogModel::Rollback() {
  if (!dirty_) return;
  encoded_ = synced_;
  dirty_ = false;
}

void LogModel::Release(uint64_t index, uint64_t first_locked_seq) {
  const uint64_t covered = ReleaseLimit(index);
  for (LogState* s : {&synced_, &encoded_}) {
    s->terms.TrimBefore(covered);
    std::vector<SnapshotMarker>& m = s->markers;
    auto keep_from = std::find_if(m.begin(), m.end() - 1, [&](const SnapshotMarker& marker) {
      return marker.seq >= first_locked_seq;
    });
    m.erase(m.begin(), keep_from);
  }
}

}  // namespace walrus
