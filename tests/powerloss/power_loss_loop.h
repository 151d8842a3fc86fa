// The power-loss loop: the real walrusd with its data directory on
// walrus-lossy-fs, under load, with the power cut at random moments.
//
// Each round: a new writer epoch (Fence) and a new Raft term; three
// pipelined AppendStreams append entries while a fourth client saves
// snapshot markers at acknowledged indexes and releases the segments below
// them (walrusd purges released segments at once; 64 KiB segments, so cuts,
// releases and purges happen every round), and a fifth fences now and then
// (the writers reopen with the new epoch), so a cut can land in the middle
// of the epoch file's tmp/fsync/rename/fsync. Once the round has acknowledged
// something, after a random further delay: kill -9, power loss on the file
// system (the last unsynced write torn at a
// 512 or 4096 byte sector boundary, or not at all), unmount,
// remount, restart walrusd on what was persisted, and check:
//  - walrusd recovers (it starts and serves);
//  - the writer epoch is at least the last one Fence returned;
//  - the last acknowledged snapshot marker is there (ReadAll from it works);
//  - every acknowledged entry after it reads back, byte for byte, with its
//    term, indexes contiguous (unacknowledged entries may have survived);
//  - the hard state has the round's term and vote and a commit at least the
//    highest acknowledged one.
//
// How several streams share one log: every append carries the entries from
// just after the highest acknowledged index up to new ones, so whichever
// stream's append arrives first extends the log and the others' overlap is
// skipped (same index and term, see core/log_model.h). No append can
// leave a gap, whatever order the streams' appends arrive in.
#ifndef WALRUS_TESTS_POWERLOSS_POWER_LOSS_LOOP_H_
#define WALRUS_TESTS_POWERLOSS_POWER_LOSS_LOOP_H_

#include <cstdint>
#include <string>
#include <vector>

namespace walrus::testing {

struct PowerLossOptions {
  int cuts = 30;
  uint64_t seed = 1;
  std::string work_dir;  // must exist; backing image, mount point, logs
  // Each cut tears the last unsynced write at one of these sector sizes,
  // chosen at random (0: no tear, everything unsynced is dropped).
  std::vector<uint64_t> tear_sectors = {0, 512, 4096};
  // Runs walrusd as `prefix... walrusd flags...` (e.g. /usr/bin/env
  // LD_PRELOAD=...), see Daemon::set_command_prefix.
  std::vector<std::string> daemon_prefix;
  // On a violation, copy the backing image to a directory named in the
  // message (for a real bug; the negative control does not want it).
  bool keep_failed_image = true;
};

struct PowerLossReport {
  int cuts = 0;
  int recoveries = 0;                 // restarts that served
  uint64_t entries_acknowledged = 0;  // new entries acknowledged, summed over rounds
  uint64_t acked_checked = 0;         // acknowledged entries compared, summed over cuts
  uint64_t fewest_acked_in_a_round = 0;
  int snapshots = 0;            // acknowledged SaveSnapshot calls
  int fences = 0;               // acknowledged Fence calls (new writer epochs)
  uint64_t released = 0;        // segments released (then purged)
  int torn_writes = 0;          // cuts that kept a torn prefix of a write
  uint64_t files_reverted = 0;  // files that lost unsynced data, summed
  double seconds = 0;
  // walrusd's appends went around the page cache (walrus_wal_direct_io 1 on
  // the first start): the cuts then tested direct writes, durable only at
  // fdatasync like buffered ones.
  bool direct_io = false;
  // A broken promise: recovery failed or something acknowledged is missing
  // or wrong. Empty if none. The loop stops at the first one.
  std::string violation;
  // The loop itself could not run (mount failed, a round made no progress).
  std::string error;
};

PowerLossReport RunPowerLossLoop(const PowerLossOptions& options);

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_POWERLOSS_POWER_LOSS_LOOP_H_
