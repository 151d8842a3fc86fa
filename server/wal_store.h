// WalStore: the WAL of one walrusd, its committer thread and group commit.
//
// RPC handlers never touch the disk: they call one of the submit methods,
// which validates nothing, enqueues, and returns at once; the completion runs
// later on the committer thread. The committer loop:
//
//   1. takes everything pending, up to max_batch_bytes (optionally waiting
//      max_batch_delay for more to arrive);
//   2. validates each request in order against the log as the batch so far
//      leaves it (server/append_plan.h) and encodes the valid ones;
//   3. issues one write and one fdatasync for the whole batch;
//   4. completes every request of the batch, in order.
//
// Requests that arrive during an fsync form the next batch, so many in-flight
// appends share one fsync. Nothing is acknowledged before the fsync covering
// it returned. After a failed write or fsync the core Wal is fail-stop: every
// later write fails UNAVAILABLE and on_fail_stop runs once; reads of the
// durable prefix keep working. A full disk fails the batch with
// RESOURCE_EXHAUSTED and the log stays usable.
//
// Writer fencing: every mutating op carries the caller's writer epoch, checked
// by the committer in queue order, right before the op is encoded: an op whose
// epoch differs from the current one fails FAILED_PRECONDITION and writes
// nothing. Fence() is an op in the same queue, so everything queued before it
// is judged by the old epoch and everything after it by the new one; no append
// can slip past a fence. The epoch is stored durably (server/writer_epoch.h)
// before Fence completes, and loaded again by Open.
//
// Thread-safety: all public methods are thread-safe. Completions run on the
// committer thread and must not block.
#ifndef WALRUS_SERVER_WAL_STORE_H_
#define WALRUS_SERVER_WAL_STORE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/purge.h"
#include "core/segment_pins.h"
#include "core/wal.h"
#include "server/append_plan.h"
#include "server/metrics.h"
#include "walrus.pb.h"

namespace walrus {

struct StoreOptions {
  std::string wal_dir;
  uint64_t segment_size = kDefaultSegmentSize;
  size_t max_batch_bytes = 16 << 20;
  std::chrono::microseconds max_batch_delay{0};
  // Start without a writer: every write fails FAILED_PRECONDITION.
  bool read_only = false;
  // Where the writer epoch is kept (a file beside the WAL directory, never in
  // it). Empty: Fence fails FAILED_PRECONDITION and only epoch 0 is accepted.
  std::string epoch_path;
  FileSystem* fs = PosixFs();
  // Issue 4: the purge policy (core/purge.h). Released segments kept.
  uint64_t retain_released_segments = 5;
  // false: deterministic mode for simulation. No committer or purge thread,
  // and the next segment is prepared on the committing thread; the caller
  // drives everything with RunOnce(), so a seed always makes the same calls
  // in the same order.
  bool run_threads = true;
};

// Issue 4: what a point-in-time backup copies, fixed when it starts.
struct BackupPlan {
  // Keeps purge away from every file below until destroyed.
  std::unique_ptr<SegmentPins::Pin> pin;
  std::vector<v1::BackupFile> files;  // in log order, with the bytes to copy
  LogPosition durable;                // the durable end at the start
  uint64_t last_entry_index = 0;      // last entry acknowledged at the start
  uint64_t total_bytes = 0;
};

// What recovery found, for the start-up log line.
struct RecoverySummary {
  bool existed = false;
  bool repaired = false;
  std::string repair_detail;
  size_t segments = 0;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  raftpb::HardState state;
  double seconds = 0;
};

class WalStore {
 public:
  using Clock = std::chrono::steady_clock;

  // Recovers the WAL in options.wal_dir if there is one (a torn tail is
  // repaired, keeping a .broken copy; corruption is refused with DATA_LOSS),
  // then starts the committer. `metrics` may be null and must outlive this.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WalStore>> Open(const StoreOptions& options,
                                                                      ServerMetrics* metrics,
                                                                      RecoverySummary* summary);
  // Shutdown().
  ~WalStore();

  // Each mutating op takes the caller's writer `epoch` (request->epoch() for
  // Append); FAILED_PRECONDITION, nothing written, unless it is the current one.
  void Create(std::string metadata, uint64_t epoch, std::function<void(absl::StatusOr<bool>)> done);
  // `request` must stay valid until `done` runs. `done` gets the last index.
  // With `chain`, appends sharing it form a chain (one AppendStream): once one
  // fails, the committer sets *chain and fails the later ones with ABORTED
  // without writing them.
  void Append(const v1::AppendRequest* request, std::function<void(absl::StatusOr<uint64_t>)> done,
              std::shared_ptr<std::atomic<bool>> chain = nullptr);
  void SaveSnapshot(uint64_t index, uint64_t term, uint64_t epoch,
                    std::function<void(absl::Status)> done);
  void ReleaseTo(uint64_t index, uint64_t epoch,
                 std::function<void(absl::StatusOr<uint32_t>)> done);
  // Raises the writer epoch by one and stores it durably; `done` gets the new
  // epoch. Works before Create and on a fail-stopped WAL (the epoch file is
  // not part of the WAL); FAILED_PRECONDITION when read-only or without an
  // epoch_path. If storing fails, the new epoch is in force anyway (refusing
  // the old writer is the safe side) but nobody was given it: the caller
  // retries and gets the next one.
  void Fence(std::function<void(absl::StatusOr<uint64_t>)> done);

  // The durable log from `snapshot` on; runs on the caller's thread, reading
  // the files independently of the committer.
  [[nodiscard]] absl::StatusOr<ReadAllResult> ReadAll(const walpb::Snapshot& snapshot) const;
  [[nodiscard]] v1::StatusResponse Status() const;

  // Issue 4: starts a backup: pins every segment up to the durable end (so
  // the purge leaves them alone), fixes that end, and lists the files with
  // the bytes to copy of each: sealed segments whole, the durable segment up
  // to the durable offset (a record boundary: the copy ends cleanly). Every
  // entry acknowledged before the call lies below that end. `holder` names
  // the pin in logs and status. FAILED_PRECONDITION: WAL not created, or no
  // writer (read-only). Thread-safe; does not wait for the committer.
  [[nodiscard]] absl::StatusOr<BackupPlan> BeginBackup(const std::string& holder);
  const StoreOptions& options() const { return options_; }
  SegmentPins& pins() { return pins_; }

  // Runs once, on the committer thread, when the WAL goes fail-stop.
  void set_on_fail_stop(std::function<void(const absl::Status&)> callback);

  // Stops taking requests (later ones fail UNAVAILABLE), commits and
  // completes everything already queued, closes the WAL. Idempotent.
  void Shutdown();

  // Deterministic mode only (run_threads false): commits one batch of what
  // is queued on the caller's thread (completions run inside), then runs a
  // requested purge. Returns false if nothing was queued.
  // REQUIRES: !options().run_threads; not called concurrently.
  bool RunOnce();

 private:
  struct Op {
    enum Kind { kCreate, kAppend, kSnapshot, kRelease, kFence } kind = kAppend;
    const v1::AppendRequest* request = nullptr;
    std::shared_ptr<std::atomic<bool>> chain;
    std::string metadata;
    uint64_t index = 0;
    uint64_t term = 0;
    uint64_t epoch = 0;  // the caller's writer epoch (mutating ops)
    size_t bytes = 0;
    Clock::time_point enqueued;
    std::function<void(absl::StatusOr<uint64_t>)> done;  // value: kind-specific
  };

  explicit WalStore(const StoreOptions& options, ServerMetrics* metrics);

  [[nodiscard]] absl::Status Recover(RecoverySummary* summary);
  void Enqueue(Op op);
  // Moves the next batch (up to max_batch_bytes) from the queue.
  // REQUIRES: mu_ held.
  void TakeBatch(std::vector<Op>* batch);
  void Run();
  void CommitBatch(std::vector<Op>* batch);
  // Validates and encodes one op; sets *result for ops that are decided now.
  void Encode(Op& op, absl::StatusOr<uint64_t>* result, bool* encoded);
  absl::Status WriteError() const;
  // OK if `epoch` is the current writer epoch.
  absl::Status CheckEpoch(uint64_t epoch) const;
  absl::StatusOr<uint64_t> RaiseEpoch();
  void PublishStatus();
  // Issue 4: the purge thread. Purges run there, never on the committer, so
  // unlinks and the directory fsync never delay an append.
  void RequestPurge();
  void PurgeLoop();
  void RunPurge(uint64_t first_unreleased_seq);

  const StoreOptions options_;
  ServerMetrics* const metrics_;

  // Committer-owned.
  std::unique_ptr<Wal> wal_;
  LogTip tip_;
  uint64_t epoch_ = 0;  // current writer epoch
  std::function<void(const absl::Status&)> on_fail_stop_;
  bool fail_stop_reported_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;   // guarded by mu_
  bool stopping_ = false;  // guarded by mu_
  std::thread committer_;

  // What readers see; published by the committer after each batch.
  mutable std::mutex status_mu_;
  v1::StatusResponse status_;           // guarded by status_mu_
  std::optional<LogPosition> durable_;  // guarded by status_mu_
  uint64_t last_entry_index_ = 0;       // guarded by status_mu_
  std::string purge_blocked_by_;        // guarded by status_mu_

  // Issue 4: garbage collection.
  SegmentPins pins_;
  std::atomic<uint64_t> next_backup_id_{1};
  // The writer's oldest locked segment (0: no writer yet); set by the
  // committer after each release, read by the purge thread.
  std::atomic<uint64_t> first_unreleased_seq_{0};
  std::mutex purge_mu_;
  std::condition_variable purge_cv_;
  bool purge_requested_ = false;  // guarded by purge_mu_
  bool purge_stopping_ = false;   // guarded by purge_mu_
  std::string last_blocked_;      // purge thread only
  std::thread purger_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_WAL_STORE_H_
