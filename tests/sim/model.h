// The simulator's reference model: what a Raft node was told is durable, and
// the rules a correct WAL applies to each request, written down once and
// independently of the server's code.
//
// State
//   A LogState is the log as the API describes it: created or not, the
//   metadata, the entries after `base` (base is 0, or the index of the
//   snapshot marker that last replaced the log), the hard state, every
//   snapshot marker saved (in order; the first is the (0, 0) marker Create
//   writes) and the writer epoch. Entries are EntryRefs: their data is a pure
//   function of (index, term, salt, size), so states copy cheaply.
//
// Rules (Check)
//   The order of the checks is the server's: epoch, WAL created, fail-stop,
//   then the request itself. Raft orders the model accepts and the server must
//   too: a hard state whose commit is beyond the last entry (the snapshot of
//   the same Ready follows it); a snapshot marker at an index whose entry has
//   another term, or beyond the last entry (a follower installing the leader's
//   snapshot): it replaces the whole log, and appends continue after it. Refused,
//   with nothing written: a gap, an entry index of 0, indexes that are not
//   contiguous, terms that decrease, a first new entry whose term is below
//   the entry before it (the newest marker's term right after the marker), an
//   entry whose CRC does not match, a hard state that lowers the commit
//   (INVALID_ARGUMENT); a new entry that replaces an entry at or below the
//   saved commit, any entry at or below the newest marker (Raft sends nothing
//   a snapshot covers), a second vote in a term, a marker at the newest
//   marker's index with another term or at a higher index with a lower term,
//   a marker that replaces the log while it holds committed entries after the
//   marker's index, a stale epoch (FAILED_PRECONDITION). A retried request is
//   harmless: entries already held with the same term are skipped, an older
//   hard state (lower term, or same term, no higher commit, same vote or
//   none) is not written, a marker already saved or older than the newest is
//   a no-op.
//
// Records
//   Check also returns what a valid request writes, record by record, in the
//   order the WAL encodes them (entries, then the hard state). After a crash,
//   the recovered log must equal the acknowledged state plus some prefix of
//   the records of the requests that were in flight (Candidates).
#ifndef WALRUS_TESTS_SIM_MODEL_H_
#define WALRUS_TESTS_SIM_MODEL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "raft.pb.h"
#include "walrus.pb.h"

namespace walrus::sim {

struct HardState {
  uint64_t term = 0;
  uint64_t vote = 0;
  uint64_t commit = 0;
  bool empty() const { return term == 0 && vote == 0 && commit == 0; }
  bool operator==(const HardState&) const = default;
  std::string ToString() const;
};

struct EntryRef {
  uint64_t term = 0;
  uint32_t type = 0;  // raftpb::EntryType
  uint32_t size = 0;
  uint64_t salt = 0;
  bool operator==(const EntryRef&) const = default;
};

// The data bytes of the entry at `index` described by `ref`.
std::string EntryData(uint64_t index, const EntryRef& ref);
raftpb::Entry MakeEntry(uint64_t index, const EntryRef& ref);

struct Marker {
  uint64_t index = 0;
  uint64_t term = 0;
  bool operator==(const Marker&) const = default;
};

struct LogState {
  bool created = false;
  std::string metadata;
  uint64_t base = 0;
  std::vector<EntryRef> entries;  // indexes base+1 .. base+entries.size()
  HardState hs;
  std::vector<Marker> markers;
  uint64_t epoch = 0;

  uint64_t last_index() const { return base + entries.size(); }
  // The term of the entry at `index`, 0 if the log holds none there.
  uint64_t TermAt(uint64_t index) const;
  const EntryRef* At(uint64_t index) const;
  Marker newest_marker() const { return markers.empty() ? Marker{} : markers.back(); }
  // "created base=.. last=.. hs=.. marker=.. epoch=.." for traces.
  std::string Summary() const;
};

// A request as the simulated Raft node sends it.
struct Request {
  enum Kind { kCreate, kAppend, kSnapshot, kRelease, kFence };
  Kind kind = kAppend;
  std::string metadata;                    // kCreate
  std::shared_ptr<v1::AppendRequest> app;  // kAppend
  std::vector<EntryRef> refs;              // kAppend: what each entry is
  uint64_t index = 0;                      // kSnapshot, kRelease
  uint64_t term = 0;                       // kSnapshot
  uint64_t epoch = 0;
  std::string label;  // why the generator made it, for traces
  std::string ToString() const;
};

// One record a valid request writes.
struct Record {
  enum Kind { kEntry, kState, kMarker, kCreate, kEpoch };
  Kind kind = kEntry;
  uint64_t index = 0;
  EntryRef entry;
  HardState hs;
  uint64_t term = 0;
  std::string metadata;
};

struct Verdict {
  absl::StatusCode code = absl::StatusCode::kOk;
  std::string why;              // for a refusal
  uint64_t value = 0;           // append: last index; fence: new epoch; create: 1/0
  bool writes = false;          // false: valid, nothing to write (retry)
  std::vector<Record> records;  // what it writes, in order
};

// Judges `request` against `*state` and applies it there if valid.
// `fail_stopped`: the WAL takes no more writes.
Verdict Check(const Request& request, bool fail_stopped, LogState* state);
void Apply(const Record& record, LogState* state);

// The states a crash may leave: `acked` plus each prefix of the records of
// `in_flight` (the first is `acked` itself).
std::vector<LogState> Candidates(const LogState& acked, const std::vector<Record>& in_flight);

// Hard state, newest marker and the entries after it agree.
bool SameRecoverableState(const LogState& a, const LogState& b);

}  // namespace walrus::sim

#endif  // WALRUS_TESTS_SIM_MODEL_H_
