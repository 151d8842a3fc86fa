// PurgeRunner: deletes released segments (core/purge.h) off the committer.
//
// The committer calls Request() after a release; the purge then runs on the
// runner's own thread, so unlinks and the directory fsync never delay an
// append. Without a thread (deterministic mode, for a simulator) a request is
// only recorded, and RunPending() runs it on the caller's thread.
//
// A pin of our own says when it goes (SegmentPins' on_unpin calls Request);
// another process's lock does not, so a blocked purge looks again every
// second (every 30 seconds when nothing is blocked).
//
// Thread-safety: all methods are thread-safe.
#ifndef WALRUS_SERVER_PURGE_RUNNER_H_
#define WALRUS_SERVER_PURGE_RUNNER_H_

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "core/fs.h"
#include "core/segment_pins.h"
#include "server/metrics.h"

namespace walrus {

class PurgeRunner {
 public:
  // `pins` and `metrics` (may be null) must outlive the runner.
  PurgeRunner(FileSystem* fs, std::string wal_dir, uint64_t retain_released_segments,
              SegmentPins* pins, ServerMetrics* metrics);
  // Stop().
  ~PurgeRunner();
  PurgeRunner(const PurgeRunner&) = delete;
  PurgeRunner& operator=(const PurgeRunner&) = delete;

  // Starts the purge thread. Without it, requests wait for RunPending().
  void StartThread();
  // Asks for a purge of segments before `first_unreleased_seq` (0: keep the
  // last value; there is no writer until it is set once).
  void Request(uint64_t first_unreleased_seq = 0);
  // Sets the writer's oldest locked segment without asking for a purge.
  void SetFirstUnreleased(uint64_t first_unreleased_seq);
  // Runs a requested purge now, on the caller's thread. Returns whether one ran.
  bool RunPending();
  // Stops and joins the thread. Idempotent.
  void Stop();
  // The file and holder that blocked the last purge, "" if none.
  std::string blocked_by() const;

 private:
  void Loop();
  void Run(uint64_t first_unreleased_seq);

  FileSystem* const fs_;
  const std::string wal_dir_;
  const uint64_t retain_;
  SegmentPins* const pins_;
  ServerMetrics* const metrics_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t first_unreleased_seq_ = 0;  // guarded by mu_
  bool requested_ = false;             // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::string blocked_;                // guarded by mu_
  std::mutex run_mu_;                  // one purge at a time
  std::thread thread_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_PURGE_RUNNER_H_
