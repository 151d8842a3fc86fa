#include "tests/sim/model.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"

namespace walrus::sim {
namespace {

uint64_t SplitMix(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

Verdict Refuse(absl::StatusCode code, std::string why) {
  Verdict v;
  v.code = code;
  v.why = std::move(why);
  return v;
}

Verdict CheckEpoch(const Request& r, const LogState& s) {
  if (r.epoch == s.epoch) return Verdict();
  return Refuse(absl::StatusCode::kFailedPrecondition,
                absl::StrCat("writer epoch ", r.epoch, " is not the current ", s.epoch));
}

// Not created, or fail-stopped: no writes.
Verdict CheckWritable(const LogState& s, bool fail_stopped) {
  if (!s.created) return Refuse(absl::StatusCode::kFailedPrecondition, "WAL not created");
  if (fail_stopped) return Refuse(absl::StatusCode::kUnavailable, "fail-stopped");
  return Verdict();
}

Verdict CheckAppend(const Request& r, LogState* s) {
  const v1::AppendRequest& req = *r.app;
  const auto& es = req.entries();
  const int n = es.size();
  if (req.entry_crc32c_size() != 0 && req.entry_crc32c_size() != n) {
    return Refuse(absl::StatusCode::kInvalidArgument, "entry_crc32c count");
  }
  for (int i = 0; i < n; ++i) {
    if (es[i].index() == 0) return Refuse(absl::StatusCode::kInvalidArgument, "index 0");
    if (i > 0 && es[i].index() != es[i - 1].index() + 1) {
      return Refuse(absl::StatusCode::kInvalidArgument, "indexes not contiguous");
    }
    if (i > 0 && es[i].term() < es[i - 1].term()) {
      return Refuse(absl::StatusCode::kInvalidArgument, "terms decrease");
    }
    if (req.entry_crc32c_size() != 0 && crc32c::Value(es[i].data()) != req.entry_crc32c(i)) {
      return Refuse(absl::StatusCode::kInvalidArgument, "entry CRC mismatch");
    }
  }
  const Marker newest = s->newest_marker();
  if (n > 0 && newest.index != 0 && es[0].index() <= newest.index) {
    return Refuse(
        absl::StatusCode::kFailedPrecondition,
        absl::StrCat("entry ", es[0].index(), " is covered by the snapshot at ", newest.index));
  }
  int skip = 0;
  while (skip < n && s->At(es[skip].index()) != nullptr &&
         s->TermAt(es[skip].index()) == es[skip].term()) {
    ++skip;
  }
  if (skip < n) {
    const raftpb::Entry& first = es[skip];
    if (first.index() > s->last_index() + 1) {
      return Refuse(absl::StatusCode::kInvalidArgument,
                    absl::StrCat("gap: entry ", first.index(), " after ", s->last_index()));
    }
    if (first.index() <= s->last_index() && first.index() <= s->hs.commit) {
      return Refuse(absl::StatusCode::kFailedPrecondition,
                    absl::StrCat("entry ", first.index(), " overwrites commit ", s->hs.commit));
    }
    // Right after the newest marker, the marker's term precedes the entry.
    const uint64_t prev = first.index() - 1 == newest.index && newest.index != 0
                              ? newest.term
                              : s->TermAt(first.index() - 1);
    if (prev != 0 && first.term() < prev) {
      return Refuse(absl::StatusCode::kInvalidArgument, "term below the previous entry's");
    }
  }
  HardState hs{req.hard_state().term(), req.hard_state().vote(), req.hard_state().commit()};
  const HardState& cur = s->hs;
  bool write_state = false;
  if (!hs.empty() && hs.term >= cur.term) {
    // Same term: a commit no higher with the same vote (or none) is an old
    // copy; any other vote in the term is a second vote.
    const bool same_term_copy =
        hs.term == cur.term && hs.commit <= cur.commit && (hs.vote == cur.vote || hs.vote == 0);
    if (!same_term_copy) {
      if (hs.term == cur.term && cur.vote != 0 && hs.vote != cur.vote) {
        return Refuse(absl::StatusCode::kFailedPrecondition, "second vote in a term");
      }
      if (hs.commit < cur.commit) {
        return Refuse(absl::StatusCode::kInvalidArgument,
                      absl::StrCat("commit ", hs.commit, " below the saved ", cur.commit));
      }
      write_state = !(hs == cur);
    }
  }
  Verdict v;
  for (int i = skip; i < n; ++i) {
    Record rec;
    rec.kind = Record::kEntry;
    rec.index = es[i].index();
    rec.entry = r.refs[static_cast<size_t>(i)];
    v.records.push_back(rec);
  }
  if (write_state) {
    Record rec;
    rec.kind = Record::kState;
    rec.hs = hs;
    v.records.push_back(rec);
  }
  return v;
}

Verdict CheckSnapshot(const Request& r, LogState* s) {
  const Marker newest = s->newest_marker();
  if (r.index == newest.index && newest.index != 0) {
    if (r.term == newest.term) return Verdict();
    return Refuse(absl::StatusCode::kFailedPrecondition,
                  absl::StrCat("marker ", r.index, " saved with term ", newest.term));
  }
  if (r.index < newest.index) return Verdict();  // superseded: a retry
  if (r.term < newest.term) {
    return Refuse(absl::StatusCode::kFailedPrecondition, "marker term below the newest marker's");
  }
  const bool replaces = s->At(r.index) == nullptr || s->TermAt(r.index) != r.term;
  if (replaces && s->hs.commit > r.index && s->last_index() > r.index) {
    return Refuse(
        absl::StatusCode::kFailedPrecondition,
        absl::StrCat("marker ", r.index, "/", r.term, " would discard committed entries after it"));
  }
  Verdict v;
  Record rec;
  rec.kind = Record::kMarker;
  rec.index = r.index;
  rec.term = r.term;
  v.records.push_back(rec);
  return v;
}

}  // namespace

std::string HardState::ToString() const {
  return absl::StrCat("{term ", term, " vote ", vote, " commit ", commit, "}");
}

std::string EntryData(uint64_t index, const EntryRef& ref) {
  uint64_t x = index * 0x100000001b3ULL ^ ref.term * 0x9e37ULL ^ ref.salt;
  std::string out(ref.size, '\0');
  for (size_t i = 0; i < out.size(); i += 8) {
    uint64_t r = SplitMix(&x);
    for (size_t j = 0; j < 8 && i + j < out.size(); ++j)
      out[i + j] = static_cast<char>(r >> (8 * j));
  }
  return out;
}

raftpb::Entry MakeEntry(uint64_t index, const EntryRef& ref) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(ref.term);
  e.set_type(static_cast<raftpb::EntryType>(ref.type));
  e.set_data(EntryData(index, ref));
  return e;
}

uint64_t LogState::TermAt(uint64_t index) const {
  const EntryRef* e = At(index);
  return e == nullptr ? 0 : e->term;
}

const EntryRef* LogState::At(uint64_t index) const {
  if (index <= base || index > last_index()) return nullptr;
  return &entries[index - base - 1];
}

std::string LogState::Summary() const {
  if (!created) return absl::StrCat("not created, epoch ", epoch);
  const Marker m = newest_marker();
  return absl::StrCat("base ", base, " last ", last_index(), " (term ", TermAt(last_index()),
                      ") hs ", hs.ToString(), " marker ", m.index, "/", m.term, " (",
                      markers.size(), " markers) epoch ", epoch);
}

std::string Request::ToString() const {
  std::string what;
  switch (kind) {
    case kCreate:
      what = absl::StrCat("Create(", metadata, ")");
      break;
    case kAppend: {
      what = "Append(";
      const auto& es = app->entries();
      if (!es.empty()) {
        absl::StrAppend(&what, es[0].index(), "/", es[0].term());
        if (es.size() > 1)
          absl::StrAppend(&what, "..", es[es.size() - 1].index(), "/", es[es.size() - 1].term());
      }
      const auto& hs = app->hard_state();
      if (hs.term() != 0 || hs.vote() != 0 || hs.commit() != 0) {
        absl::StrAppend(&what, es.empty() ? "" : " ", "hs ", hs.term(), "/", hs.vote(), "/",
                        hs.commit());
      }
      if (app->entry_crc32c_size() != 0) absl::StrAppend(&what, " crc");
      what += ")";
      break;
    }
    case kSnapshot:
      what = absl::StrCat("SaveSnapshot(", index, ", ", term, ")");
      break;
    case kRelease:
      what = absl::StrCat("ReleaseTo(", index, ")");
      break;
    case kFence:
      what = "Fence()";
      break;
  }
  if (kind != kFence) absl::StrAppend(&what, " epoch ", epoch);
  if (!label.empty()) absl::StrAppend(&what, " [", label, "]");
  return what;
}

Verdict Check(const Request& r, bool fail_stopped, LogState* s) {
  if (r.kind == Request::kFence) {
    Verdict v;
    v.value = s->epoch + 1;
    v.writes = true;
    Record rec;
    rec.kind = Record::kEpoch;
    v.records.push_back(rec);
    Apply(v.records.back(), s);
    return v;
  }
  if (Verdict v = CheckEpoch(r, *s); v.code != absl::StatusCode::kOk) return v;
  if (r.kind == Request::kCreate) {
    if (s->created) {
      if (s->metadata == r.metadata) return Verdict();
      return Refuse(absl::StatusCode::kFailedPrecondition, "created with other metadata");
    }
    Verdict v;
    v.value = 1;
    Record rec;
    rec.kind = Record::kCreate;
    rec.metadata = r.metadata;
    v.records.push_back(rec);
    v.writes = true;
    Apply(rec, s);
    return v;
  }
  if (r.kind == Request::kRelease) {
    if (!s->created) return Refuse(absl::StatusCode::kFailedPrecondition, "WAL not created");
    return Verdict();  // nothing logical changes
  }
  if (Verdict v = CheckWritable(*s, fail_stopped); v.code != absl::StatusCode::kOk) return v;
  Verdict v = r.kind == Request::kAppend ? CheckAppend(r, s) : CheckSnapshot(r, s);
  if (v.code != absl::StatusCode::kOk) return v;
  v.writes = !v.records.empty();
  for (const Record& rec : v.records) Apply(rec, s);
  v.value = s->last_index();
  if (r.kind == Request::kSnapshot) v.value = r.index;
  return v;
}

void Apply(const Record& rec, LogState* s) {
  switch (rec.kind) {
    case Record::kCreate:
      s->created = true;
      s->metadata = rec.metadata;
      s->markers = {Marker{0, 0}};
      return;
    case Record::kEpoch:
      ++s->epoch;
      return;
    case Record::kState:
      s->hs = rec.hs;
      return;
    case Record::kEntry:
      s->entries.resize(rec.index - s->base - 1);
      s->entries.push_back(rec.entry);
      return;
    case Record::kMarker:
      if (s->TermAt(rec.index) != rec.term || s->At(rec.index) == nullptr) {
        // A snapshot over a divergent tail or past the end replaces the log.
        s->base = rec.index;
        s->entries.clear();
      }
      s->markers.push_back(Marker{rec.index, rec.term});
      return;
  }
}

std::vector<LogState> Candidates(const LogState& acked, const std::vector<Record>& in_flight) {
  std::vector<LogState> out{acked};
  for (const Record& rec : in_flight) {
    LogState next = out.back();
    Apply(rec, &next);
    out.push_back(std::move(next));
  }
  return out;
}

bool SameRecoverableState(const LogState& a, const LogState& b) {
  if (a.created != b.created) return false;
  if (!a.created) return true;
  if (!(a.hs == b.hs) || !(a.newest_marker() == b.newest_marker())) return false;
  const uint64_t from = a.newest_marker().index;
  if (a.last_index() != b.last_index() && (a.last_index() > from || b.last_index() > from)) {
    return false;
  }
  for (uint64_t i = from + 1; i <= a.last_index(); ++i) {
    const EntryRef* x = a.At(i);
    const EntryRef* y = b.At(i);
    if (x == nullptr || y == nullptr || !(*x == *y)) return false;
  }
  return true;
}

}  // namespace walrus::sim
