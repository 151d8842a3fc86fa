// One simulated history: a Raft node driving walrus's WalStore (in its
// deterministic mode: no threads, the simulator calls RunOnce) over the
// in-memory file system, through restarts, crashes at a chosen sync or
// directory fsync (unsynced data dropped or torn), full disks, I/O errors,
// backups and media damage, checked against the reference model (model.h).
//
// What is checked
//  - every answer: a request the model refuses must be refused with the
//    model's code and change nothing; a request the model accepts must
//    succeed (RESOURCE_EXHAUSTED only while the disk is full, UNAVAILABLE
//    only after an injected I/O error), with the model's value; an
//    acknowledged request must hold in the acknowledged state;
//  - after every step: the store's hard state and newest snapshot marker are
//    the acknowledged ones, and ReadAll from every retained marker returns
//    exactly the acknowledged entries after it;
//  - after every restart and crash: recovery succeeds, its verdict agrees
//    with Verify's (clean: starts as is; torn tail: repairs; corrupt:
//    refuses), and the log it serves is the acknowledged state plus some
//    prefix of what was in flight; the epoch never goes back;
//  - after media damage (a zeroed or emptied segment, a damaged header):
//    Verify reports corruption and recovery refuses to start;
//  - a finished backup reads back as the acknowledged state at its start.
//
// The first failed check ends the history; Result says which and how to
// reproduce it.
#ifndef WALRUS_TESTS_SIM_SIMULATOR_H_
#define WALRUS_TESTS_SIM_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <vector>

namespace walrus::sim {

struct Result {
  bool ok = true;
  std::string failure;             // the first failed check
  std::vector<std::string> trace;  // the steps, in order
  int steps = 0;
};

// Runs the history of `seed`. With `verbose`, the trace is printed as it
// goes (to stderr).
Result RunHistory(uint64_t seed, bool verbose);

}  // namespace walrus::sim

#endif  // WALRUS_TESTS_SIM_SIMULATOR_H_
