// The bounded pool of threads that run the calls which read the disk for a
// long time or wait on a slow client: ReadAll, Backup and Status. gRPC's
// threads never do (they serve every other call), and the number of such
// threads does not grow with the number of callers: a call that finds every
// worker busy waits in a queue for at most the queue timeout, then is refused
// RESOURCE_EXHAUSTED, so a client can retry later or elsewhere.
//
// Thread-safety: every method may be called from any thread.
#ifndef WALRUS_SERVER_READ_POOL_H_
#define WALRUS_SERVER_READ_POOL_H_

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "server/metrics.h"

namespace walrus {

class ReadPool {
 public:
  using Clock = std::chrono::steady_clock;
  // Calls that may wait for a worker at once; more are refused at once. The
  // queue holds a closure per call, so this only keeps a flood from growing
  // it without end (gRPC's stream limits bound callers long before).
  static constexpr size_t kMaxQueued = 1024;

  // Starts `workers` (> 0) threads and the one that expires queued calls.
  // `metrics` may be null and must outlive this.
  ReadPool(size_t workers, Clock::duration queue_timeout, ServerMetrics* metrics);
  // Refuses what is queued and waits for the running tasks to return.
  ~ReadPool();

  // Runs `task` on a worker. If no worker takes it within the queue timeout,
  // or the queue is full, or the pool is shutting down, runs `refuse` instead
  // (RESOURCE_EXHAUSTED, or UNAVAILABLE when shutting down) on some thread of
  // the pool's or on the caller's. Exactly one of the two runs, once; neither
  // may block for long (`task` may, within reason: it holds a worker).
  // `what` names the call in the refusal ("ReadAll").
  void Submit(const char* what, std::function<void()> task,
              std::function<void(absl::Status)> refuse);

  // Refuses every queued call and every later one UNAVAILABLE; running tasks
  // go on. Called when the daemon begins to shut down.
  void BeginShutdown();

 private:
  struct Queued {
    const char* what;
    Clock::time_point deadline;
    std::function<void()> task;
    std::function<void(absl::Status)> refuse;
  };

  void Work();
  void ExpireQueued();
  absl::Status Busy(const char* what) const;
  void PublishLocked();

  const size_t workers_;
  const Clock::duration queue_timeout_;
  ServerMetrics* const metrics_;
  std::mutex mu_;
  std::condition_variable work_cv_;    // a call was queued, or stopping
  std::condition_variable expire_cv_;  // the queue's front changed, or stopping
  std::deque<Queued> queue_;           // guarded by mu_; deadlines in order
  size_t busy_ = 0;                    // guarded by mu_
  bool stopping_ = false;              // guarded by mu_
  std::vector<std::thread> threads_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_READ_POOL_H_
