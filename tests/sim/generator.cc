#include "tests/sim/generator.h"

#include <algorithm>

#include "core/crc32c.h"

namespace walrus::sim {

Request Generator::CreateRequest(uint64_t epoch) const {
  Request r;
  r.kind = Request::kCreate;
  r.metadata = metadata_;
  r.epoch = epoch;
  r.label = "create";
  return r;
}

uint64_t Generator::Term(const LogState& plan) const {
  return std::max(plan.hs.term,
                  std::max(plan.TermAt(plan.last_index()), plan.newest_marker().term));
}

EntryRef Generator::NewEntry(uint64_t term) {
  EntryRef e;
  e.term = term;
  e.type = rng_->Percent(5) ? 1 : 0;  // now and then a conf change
  switch (rng_->Below(4)) {
    case 0:
      e.size = static_cast<uint32_t>(rng_->Range(0, 64));
      break;
    case 1:
      e.size = static_cast<uint32_t>(rng_->Range(64, 700));
      break;
    case 2:
      e.size = static_cast<uint32_t>(rng_->Range(700, 3000));
      break;
    default:
      e.size = static_cast<uint32_t>(rng_->Range(3000, 9000));
      break;
  }
  e.salt = rng_->Next();
  return e;
}

Request Generator::Entries(const LogState& plan, uint64_t first, int count, uint64_t term) {
  Request r;
  r.kind = Request::kAppend;
  r.epoch = plan.epoch;
  r.app = std::make_shared<v1::AppendRequest>();
  r.app->set_epoch(plan.epoch);
  const bool crc = rng_->Percent(30);
  for (int i = 0; i < count; ++i) {
    EntryRef ref = NewEntry(term);
    *r.app->add_entries() = MakeEntry(first + i, ref);
    if (crc) r.app->add_entry_crc32c(crc32c::Value(r.app->entries(i).data()));
    r.refs.push_back(ref);
  }
  return r;
}

Request Generator::State(const LogState& plan, const HardState& hs) {
  Request r;
  r.kind = Request::kAppend;
  r.epoch = plan.epoch;
  r.app = std::make_shared<v1::AppendRequest>();
  r.app->set_epoch(plan.epoch);
  r.app->mutable_hard_state()->set_term(hs.term);
  r.app->mutable_hard_state()->set_vote(hs.vote);
  r.app->mutable_hard_state()->set_commit(hs.commit);
  return r;
}

Request Generator::Snapshot(const LogState& plan, uint64_t index, uint64_t term) {
  Request r;
  r.kind = Request::kSnapshot;
  r.epoch = plan.epoch;
  r.index = index;
  r.term = term;
  return r;
}

void Generator::Add(Request r, LogState* plan, std::vector<Request>* out) {
  (void)Check(r, /*fail_stopped=*/false, plan);
  out->push_back(std::move(r));
}

void Generator::AppendNew(LogState* plan, std::vector<Request>* out) {
  const uint64_t term = Term(*plan);
  if (term == 0) return Election(plan, out);
  const uint64_t first = plan->last_index() + 1;
  const int count = static_cast<int>(rng_->Range(1, 4));
  Request r = Entries(*plan, first, count, term);
  r.label = "append";
  if (rng_->Percent(50)) {
    // The hard state of the same Ready: commit moves up to the new end.
    HardState hs = plan->hs;
    hs.term = term;
    hs.commit = rng_->Range(plan->hs.commit, first + count - 1);
    r.app->mutable_hard_state()->set_term(hs.term);
    r.app->mutable_hard_state()->set_vote(hs.vote);
    r.app->mutable_hard_state()->set_commit(hs.commit);
  }
  Add(std::move(r), plan, out);
}

void Generator::CommitOnly(LogState* plan, std::vector<Request>* out) {
  if (plan->last_index() <= plan->hs.commit || plan->hs.term == 0) return AppendNew(plan, out);
  HardState hs = plan->hs;
  hs.commit = rng_->Range(plan->hs.commit + 1, plan->last_index());
  Request r = State(*plan, hs);
  r.label = "commit";
  Add(std::move(r), plan, out);
}

void Generator::Election(LogState* plan, std::vector<Request>* out) {
  HardState hs{Term(*plan) + 1, rng_->Range(0, 3), plan->hs.commit};
  if (rng_->Percent(60)) {
    // State before entries: the vote is saved on its own.
    Request r = State(*plan, hs);
    r.label = "election";
    Add(std::move(r), plan, out);
    if (rng_->Percent(50)) AppendNew(plan, out);
    return;
  }
  // The new leader's first (empty) entry with the hard state.
  Request r = Entries(*plan, plan->last_index() + 1, 1, hs.term);
  r.app->mutable_hard_state()->set_term(hs.term);
  r.app->mutable_hard_state()->set_vote(hs.vote);
  r.app->mutable_hard_state()->set_commit(hs.commit);
  r.label = "election+entry";
  Add(std::move(r), plan, out);
}

void Generator::LeaderChange(LogState* plan, std::vector<Request>* out) {
  const uint64_t lo = std::max(plan->hs.commit, plan->base) + 1;
  if (plan->last_index() < lo) return Election(plan, out);
  // A new leader that never saw our uncommitted tail from `first` on.
  const uint64_t term = Term(*plan) + 1;
  const uint64_t first = rng_->Range(lo, plan->last_index());
  HardState hs{term, rng_->Range(0, 3), plan->hs.commit};
  Request r = Entries(*plan, first, static_cast<int>(rng_->Range(1, 4)), term);
  r.label = "leader change overwrites tail";
  if (rng_->Percent(50)) {
    Request s = State(*plan, hs);
    s.label = "new term";
    Add(std::move(s), plan, out);
  } else {
    r.app->mutable_hard_state()->set_term(hs.term);
    r.app->mutable_hard_state()->set_vote(hs.vote);
    r.app->mutable_hard_state()->set_commit(hs.commit);
  }
  Add(std::move(r), plan, out);
}

void Generator::LaggingSnapshot(LogState* plan, std::vector<Request>* out) {
  const uint64_t lo = std::max(plan->newest_marker().index, plan->base) + 1;
  const uint64_t hi = std::min(plan->hs.commit, plan->last_index());
  if (hi < lo) return AppendNew(plan, out);
  // Raft snapshots at its applied index, which trails the last index.
  const uint64_t index = rng_->Percent(50) ? hi : rng_->Range(lo, hi);
  Request r = Snapshot(*plan, index, plan->TermAt(index));
  r.label = "snapshot";
  Add(std::move(r), plan, out);
  if (rng_->Percent(60)) Release(plan, out);
}

void Generator::FollowerSnapshot(LogState* plan, std::vector<Request>* out) {
  // The leader's snapshot: past our end, or inside our uncommitted tail with
  // a newer term (our tail there diverged).
  const uint64_t lo = std::max(plan->hs.commit, plan->base) + 1;
  uint64_t index = 0;
  uint64_t term = Term(*plan) + rng_->Range(0, 1);
  if (plan->last_index() >= lo && rng_->Percent(50)) {
    index = rng_->Range(lo, plan->last_index());
    term = std::max(term, plan->TermAt(index) + 1);
  } else {
    index = plan->last_index() + rng_->Range(1, 12);
  }
  HardState hs{term, term == plan->hs.term ? plan->hs.vote : 0, index};
  Request state = State(*plan, hs);
  state.label = "follower snapshot: hard state";
  Request snap = Snapshot(*plan, index, term);
  snap.label = "follower snapshot";
  if (rng_->Percent(50)) {
    // raftexample: rd.HardState and rd.Entries, then rd.Snapshot.
    Add(std::move(state), plan, out);
    Add(std::move(snap), plan, out);
  } else {
    // etcd's server: the snapshot first, then the hard state.
    Add(std::move(snap), plan, out);
    Add(std::move(state), plan, out);
  }
}

void Generator::Release(LogState* plan, std::vector<Request>* out) {
  Request r;
  r.kind = Request::kRelease;
  r.epoch = plan->epoch;
  r.index =
      rng_->Percent(70) ? plan->newest_marker().index : rng_->Range(0, plan->newest_marker().index);
  r.label = "release";
  Add(std::move(r), plan, out);
}

void Generator::Bad(LogState* plan, std::vector<Request>* out) {
  const uint64_t last = plan->last_index();
  const uint64_t term = std::max<uint64_t>(Term(*plan), 1);
  Request r;
  switch (rng_->Below(10)) {
    case 0:
      r = Entries(*plan, last + 2, 2, term);
      r.label = "bad: gap";
      break;
    case 1:
      r = Entries(*plan, last + 1, 3, term);
      r.app->mutable_entries(2)->set_index(last + 4);
      r.label = "bad: indexes not contiguous";
      break;
    case 2:
      r = Entries(*plan, last + 1, 2, term + 1);
      r.app->mutable_entries(1)->set_term(term);
      r.refs[1].term = term;
      r.label = "bad: terms decrease";
      break;
    case 3:
      r = Entries(*plan, last + 1, 2, term);
      r.app->clear_entry_crc32c();
      r.app->add_entry_crc32c(crc32c::Value(r.app->entries(0).data()));
      r.app->add_entry_crc32c(crc32c::Value(r.app->entries(1).data()) ^ 1);
      r.label = "bad: CRC mismatch";
      break;
    case 4: {
      const uint64_t lo = plan->base + 1;
      if (plan->hs.commit < lo || plan->hs.commit > last) return AppendNew(plan, out);
      r = Entries(*plan, rng_->Range(lo, plan->hs.commit), 2, term + 1);
      r.label = "bad: overwrites committed entries";
      break;
    }
    case 5:
      if (plan->hs.commit == 0) return CommitOnly(plan, out);
      r = State(*plan, HardState{plan->hs.term + 1, 0, rng_->Range(0, plan->hs.commit - 1)});
      r.label = "bad: commit goes down";
      break;
    case 6:
      if (plan->hs.vote == 0) return Election(plan, out);
      r = State(*plan, HardState{plan->hs.term, plan->hs.vote % 3 + 1, plan->hs.commit});
      r.label = "bad: second vote in a term";
      break;
    case 7:
      r = Entries(*plan, last + 1, 1, term);
      r.epoch = plan->epoch == 0 || rng_->Percent(30) ? plan->epoch + 1 : plan->epoch - 1;
      r.app->set_epoch(r.epoch);
      r.label = "bad: wrong writer epoch";
      break;
    case 8:
      if (plan->newest_marker().index == 0) return LaggingSnapshot(plan, out);
      r = Snapshot(*plan, plan->newest_marker().index, plan->newest_marker().term + 1);
      r.label = "bad: marker term differs";
      break;
    default:
      r = CreateRequest(plan->epoch);
      r.metadata += "-other";
      r.label = "bad: other metadata";
      break;
  }
  Add(std::move(r), plan, out);
}

// Raft resends the entries it still has; once a snapshot replaced them, it
// sends the snapshot instead.
bool Generator::Superseded(const Request& r, const LogState& plan) {
  return r.kind == Request::kAppend && r.app->entries_size() > 0 &&
         r.app->entries(0).index() <= plan.base;
}

std::vector<Request> Generator::Next(const LogState& acked, const std::vector<Request>& recent) {
  LogState plan = acked;
  std::vector<Request> out;
  const int count = static_cast<int>(rng_->Percent(40) ? rng_->Range(2, 5) : 1);
  while (static_cast<int>(out.size()) < count) {
    const uint64_t pick = rng_->Below(100);
    if (!plan.created) {
      Add(CreateRequest(plan.epoch), &plan, &out);
    } else if (pick < 30) {
      AppendNew(&plan, &out);
    } else if (pick < 38) {
      CommitOnly(&plan, &out);
    } else if (pick < 44) {
      Election(&plan, &out);
    } else if (pick < 51) {
      LeaderChange(&plan, &out);
    } else if (pick < 62) {
      LaggingSnapshot(&plan, &out);
    } else if (pick < 68) {
      FollowerSnapshot(&plan, &out);
    } else if (pick < 72) {
      Release(&plan, &out);
    } else if (pick < 80) {
      Bad(&plan, &out);
    } else if (pick < 83) {
      if (!allow_fence_) continue;
      Request r;
      r.kind = Request::kFence;
      r.label = "fence";
      Add(std::move(r), &plan, &out);
    } else if (pick < 88 && !recent.empty()) {
      // A retry of a request whose answer was lost.
      Request r = recent[rng_->Below(recent.size())];
      if (r.kind == Request::kFence) continue;
      if (Superseded(r, plan)) continue;
      r.label = "retry of " + r.label;
      Add(std::move(r), &plan, &out);
    } else if (!out.empty()) {
      // The same request twice in one batch.
      Request r = out[rng_->Below(out.size())];
      if (r.kind == Request::kFence || Superseded(r, plan)) continue;
      r.label = "duplicate of " + r.label;
      Add(std::move(r), &plan, &out);
    }
  }
  return out;
}

}  // namespace walrus::sim
