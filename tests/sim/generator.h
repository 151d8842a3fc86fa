// Raft-shaped requests for the simulator: what one node of a Raft cluster
// asks its WAL to do, including what a buggy or stale client might send.
//
// The generator plans against a copy of the acknowledged state and applies
// each request it makes to that copy (model.h's Check), so the requests of
// one step continue each other: an election then the new leader's entries; a
// hard state whose commit runs ahead of the log then the snapshot of the same
// Ready; a leader change that overwrites the uncommitted tail; a snapshot
// that lands inside a divergent tail. Sizes vary so that small segments cut
// often and snapshots land right after a cut.
#ifndef WALRUS_TESTS_SIM_GENERATOR_H_
#define WALRUS_TESTS_SIM_GENERATOR_H_

#include <string>
#include <vector>

#include "tests/sim/model.h"
#include "tests/sim/rng.h"

namespace walrus::sim {

class Generator {
 public:
  Generator(Rng* rng, std::string metadata) : rng_(rng), metadata_(std::move(metadata)) {}

  // The requests of one step (one to several, queued together), planned
  // against `acked`. `recent` holds the last requests sent, for retries.
  std::vector<Request> Next(const LogState& acked, const std::vector<Request>& recent);

  // The request that creates the log.
  Request CreateRequest(uint64_t epoch) const;
  // Whether Next may fence (not while the disk is full: the epoch file could
  // not be written, and the node would not learn its epoch).
  void set_allow_fence(bool allow) { allow_fence_ = allow; }

 private:
  // Each adds requests to out and plans them into *plan.
  void AppendNew(LogState* plan, std::vector<Request>* out);
  void CommitOnly(LogState* plan, std::vector<Request>* out);
  void Election(LogState* plan, std::vector<Request>* out);
  void LeaderChange(LogState* plan, std::vector<Request>* out);
  void LaggingSnapshot(LogState* plan, std::vector<Request>* out);
  void FollowerSnapshot(LogState* plan, std::vector<Request>* out);
  void Release(LogState* plan, std::vector<Request>* out);
  void Bad(LogState* plan, std::vector<Request>* out);

  Request Entries(const LogState& plan, uint64_t first, int count, uint64_t term);
  Request State(const LogState& plan, const HardState& hs);
  Request Snapshot(const LogState& plan, uint64_t index, uint64_t term);
  void Add(Request r, LogState* plan, std::vector<Request>* out);
  uint64_t Term(const LogState& plan) const;
  // An append of entries a snapshot marker has since replaced.
  static bool Superseded(const Request& r, const LogState& plan);
  EntryRef NewEntry(uint64_t term);

  Rng* const rng_;
  const std::string metadata_;
  bool allow_fence_ = true;
};

}  // namespace walrus::sim

#endif  // WALRUS_TESTS_SIM_GENERATOR_H_
