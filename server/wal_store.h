// WalStore: the WAL of one walrusd, its committer thread and group commit.
//
// RPC handlers call one of the submit methods, which validates nothing,
// enqueues, and returns at once; the completion runs later on the committer
// thread. (One exception: a unary Append that finds the committer idle and
// the queue empty is committed on its caller's thread, Commit::kInlineIfIdle;
// the same loop body, one batch, with committing_ keeping every other thread
// off the Wal.) The committer loop:
//
//   1. takes everything pending, up to max_batch_bytes (optionally waiting
//      max_batch_delay for more to arrive);
//   2. validates each request in order against the log as the batch so far
//      leaves it and encodes the valid ones (Wal's checked methods; the rules
//      and the log's state live in core/log_model.h);
//   3. issues one write and one fdatasync for the whole batch;
//   4. completes every request of the batch, in order. A request whose answer
//      rests on anything this batch encoded shares the fate of its sync.
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
// ReleaseTo releases no further than the newest durable snapshot marker (so
// a purge never deletes entries no snapshot covers) and says how far it went.
//
// This file holds queueing, batching and dispatch. Recovery is in
// server/recovery.h, the purge thread in server/purge_runner.h, and what
// readers see (Status, ReadAll, BeginBackup) in server/store_status.cc.
//
// Deterministic mode (StoreOptions::run_threads = false), for simulators and
// tests: no committer thread, no purge thread, and the next segment is
// prepared inline. Ops are queued with the usual methods (Create, Append,
// SaveSnapshot, ReleaseTo, Fence) and nothing happens until the caller calls
// RunOnce(), which commits one batch of what is queued and completes it on the
// caller's thread, then runs any requested purge inline. The same inputs give
// the same file-system calls in the same order.
//
// Thread-safety: all public methods are thread-safe. Completions run on the
// thread that committed the batch: the committer (the caller of RunOnce in
// deterministic mode, the caller of an inline Append) and must not block.
#ifndef WALRUS_SERVER_WAL_STORE_H_
#define WALRUS_SERVER_WAL_STORE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/backup_source.h"
#include "core/purge.h"
#include "core/segment_pins.h"
#include "core/wal.h"
#include "server/defaults.h"
#include "server/metrics.h"
#include "server/purge_runner.h"
#include "server/recovery.h"
#include "server/store_model.h"

namespace walrus {

struct StoreOptions {
  std::string wal_dir;
  uint64_t segment_size = kDefaultSegmentSize;
  // Writes of at least direct_io_min_bytes around the page cache where the
  // file system takes it (WalOptions::direct_io).
  bool direct_io = true;
  uint64_t direct_io_min_bytes = kDefaultDirectIoMinBytes;
  size_t max_batch_bytes = kDefaultMaxBatchBytes;
  std::chrono::microseconds max_batch_delay{0};
  // Start without a writer: every write fails FAILED_PRECONDITION.
  bool read_only = false;
  // Where the writer epoch is kept (a file beside the WAL directory, never in
  // it). Empty: Fence fails FAILED_PRECONDITION and only epoch 0 is accepted.
  std::string epoch_path;
  FileSystem* fs = PosixFs();
  // The purge policy (core/purge.h): released segments kept.
  uint64_t retain_released_segments = kDefaultRetainReleasedSegments;
  // false: deterministic mode (see the class comment): no threads, the caller
  // drives commits with RunOnce().
  bool run_threads = true;
};

// What a release did.
struct ReleaseResult {
  uint32_t released_segments = 0;
  // The index released to: the request's, or the newest durable snapshot
  // marker if that is lower (clamped).
  uint64_t released_to = 0;
  bool clamped = false;
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

  // Each mutating op takes the caller's writer `epoch` (append.epoch for
  // Append); FAILED_PRECONDITION, nothing written, unless it is the current one.
  void Create(std::string metadata, uint64_t epoch, std::function<void(absl::StatusOr<bool>)> done);
  // The store owns `append` until `done` runs; `done` gets the last index.
  // With `chain`, appends sharing it form a chain (one AppendStream): once one
  // fails, the committer sets *chain and fails the later ones with ABORTED
  // without writing them.
  // With kInlineIfIdle, a caller that finds the committer idle and the queue
  // empty commits its append as a batch of one on its own thread, and `done`
  // runs before Append returns: one thread hand-off less each way for a
  // lone writer. Callers whose thread must not wait for the disk pass
  // kQueued (an AppendStream, whose next message would wait behind it).
  // An inline commit is answered at once, possibly before the committer has
  // answered an earlier batch it already made durable: a caller that needs
  // its answers in order commits inline only with none of its ops in flight.
  enum class Commit { kQueued, kInlineIfIdle };
  void Append(LogAppend append, std::function<void(absl::StatusOr<uint64_t>)> done,
              std::shared_ptr<std::atomic<bool>> chain = nullptr, Commit commit = Commit::kQueued);
  void SaveSnapshot(uint64_t index, uint64_t term, uint64_t epoch,
                    std::function<void(absl::Status)> done);
  void ReleaseTo(uint64_t index, uint64_t epoch,
                 std::function<void(absl::StatusOr<ReleaseResult>)> done);
  // Raises the writer epoch by one and stores it durably; `done` gets the new
  // epoch. Works before Create and on a fail-stopped WAL (the epoch file is
  // not part of the WAL); FAILED_PRECONDITION when read-only, without an
  // epoch_path, or when the epoch is 2^64-1 (it never wraps). If storing fails, the new epoch is in
  // force anyway (refusing the old writer is the safe side) but nobody was given it: the caller
  // retries and gets the next one.
  void Fence(std::function<void(absl::StatusOr<uint64_t>)> done);

  // The durable log from `snapshot` on, streamed (core/log_stream.h):
  // `header` gets the result without entries, then `entry` each entry in
  // order; an error from either stops the read and is returned. Runs on the
  // caller's thread, reading the files independently of the committer, and
  // keeps the segments it reads pinned against purge until it returns (the
  // pin's holder is kReadAllHolder). Memory does not grow with the log.
  [[nodiscard]] absl::Status StreamAll(
      const walpb::Snapshot& snapshot, const std::function<absl::Status(ReadAllResult&&)>& header,
      const std::function<absl::Status(raftpb::Entry&&)>& entry) const;
  static constexpr char kReadAllHolder[] = "ReadAll";
  // StreamAll() with the entries collected.
  [[nodiscard]] absl::StatusOr<ReadAllResult> ReadAll(const walpb::Snapshot& snapshot) const;
  // The status published after the last batch, with the segment files as
  // they are now (listed and sized on the caller's thread).
  [[nodiscard]] StoreStatus Status() const;
  // The snapshot catalogue: the durable markers of the log model (those in
  // segments not released, and the newest) and the durable commit. From
  // memory: never waits for the disk or the committer.
  [[nodiscard]] SnapshotCatalogue Snapshots() const;
  // The newest durable marker at or below the durable commit: where a
  // restarting node reads from (etcd picks its snapshot the same way).
  // FAILED_PRECONDITION: WAL not created, read-only (no log model: give the
  // marker), or no marker at or below the commit.
  [[nodiscard]] absl::StatusOr<walpb::Snapshot> CommittedSnapshot() const;

  // Ranged reads of the durable log (walrus.proto, Entries and Term), from
  // the entry index and the page cache, on the caller's thread. `first` and
  // `last` are the indexes served: from the first entry of the resolved log
  // in segments not released (after a marker that replaced the log, the one
  // after it) to the last durable entry (or the newest marker, if later). Errors: INVALID_ARGUMENT
  // lo == 0 or lo >= hi; NOT_FOUND below first (compacted); OUT_OF_RANGE past last;
  // FAILED_PRECONDITION not created or read-only; DATA_LOSS if the bytes on
  // disk are not what the index says.
  struct Range {
    std::vector<raftpb::Entry> entries;
    uint64_t first = 0;
    uint64_t last = 0;
  };
  // Entries [lo, hi) while their sizes add up to at most `max_bytes` (0: no
  // limit), and at least one; never more than kMaxEntriesBytes of entries.
  [[nodiscard]] absl::StatusOr<Range> Entries(uint64_t lo, uint64_t hi, uint64_t max_bytes) const;
  static constexpr uint64_t kMaxEntriesBytes = 4 << 20;
  // The term of entry `index` in [first - 1, last] (at the newest marker's
  // index, the marker's term). `entries` of the answer stays empty.
  [[nodiscard]] absl::StatusOr<Range> Term(uint64_t index, uint64_t* term) const;

  // The first and last index ranged reads serve now (errors as Entries).
  [[nodiscard]] absl::StatusOr<std::pair<uint64_t, uint64_t>> ServedRange() const;

  // Waiting for the durable log to change (Follow). The generation counts
  // the batches published since Open. CallAfter(generation, wake) runs
  // `wake` once the generation has passed `generation`: at once on the
  // caller's thread if it already has, else on the committing thread after
  // the next batch (or at Shutdown). It returns a token for CancelCall,
  // which removes a `wake` not yet run and returns true, or returns false
  // once it has run (never while it runs: CancelCall waits for it). `wake`
  // must be quick and must not call CallAfter or CancelCall.
  uint64_t publish_generation() const;
  uint64_t CallAfter(uint64_t generation, std::function<void()> wake);
  bool CancelCall(uint64_t token);

  // Starts a backup at the durable end as it is now (core/backup_source.h,
  // PlanBackup): the segments up to it are pinned in pins() until the plan
  // goes, and every entry acknowledged before the call lies below it.
  // `holder` names the pin in logs and status. FAILED_PRECONDITION: WAL not
  // created, or no writer (read-only). Thread-safe; does not wait for the
  // committer. The planned bytes are read with a BackupChunkReader on
  // options().fs and options().wal_dir.
  [[nodiscard]] absl::StatusOr<BackupPlan> BeginBackup(const std::string& holder);
  const StoreOptions& options() const { return options_; }
  SegmentPins& pins() { return pins_; }

  // Runs once, on the committing thread, when the WAL goes fail-stop.
  void set_on_fail_stop(std::function<void(const absl::Status&)> callback);

  // Stops taking requests (later ones fail UNAVAILABLE), commits and
  // completes everything already queued, closes the WAL. Idempotent.
  void Shutdown();

  // Deterministic mode only: commits one batch of what is queued (up to
  // max_batch_bytes), runs its completions, then runs a requested purge.
  // Returns the number of ops completed (0: the queue was empty).
  // REQUIRES: options().run_threads is false; one caller at a time.
  size_t RunOnce();

 private:
  struct Op {
    enum Kind { kCreate, kAppend, kSnapshot, kRelease, kFence } kind = kAppend;
    LogAppend append;  // kAppend
    std::shared_ptr<std::atomic<bool>> chain;
    std::string metadata;
    uint64_t index = 0;
    uint64_t term = 0;
    uint64_t epoch = 0;  // the caller's writer epoch (mutating ops)
    size_t bytes = 0;
    Clock::time_point enqueued;
    std::function<void(absl::StatusOr<uint64_t>)> done;               // value: kind-specific
    std::function<void(absl::StatusOr<ReleaseResult>)> release_done;  // kRelease
    ReleaseResult release;                                            // kRelease
  };

  explicit WalStore(const StoreOptions& options, ServerMetrics* metrics);

  [[nodiscard]] absl::Status Recover(RecoverySummary* summary);
  WalOptions MakeWalOptions() const;
  void Enqueue(Op op, Commit commit = Commit::kQueued);
  void Run();
  // Takes the next batch off the queue (mu_ held).
  std::vector<Op> TakeBatch();
  // Writes and syncs a batch and publishes the new status; returns each op's
  // result. The Wal is free for the next batch once it returns: the answers
  // (AnswerBatch) need only the ops.
  std::vector<absl::StatusOr<uint64_t>> CommitBatch(std::vector<Op>* batch);
  // Gives each op of a committed batch its result, in the batch's order.
  void AnswerBatch(std::vector<Op>* batch, std::vector<absl::StatusOr<uint64_t>> results);
  // Once, when the Wal has fail-stopped: the metric and the callback.
  void ReportFailStop();
  // Validates and encodes one op; sets *result, and *awaits_sync if the
  // result holds only once the batch is synced.
  void Encode(Op& op, absl::StatusOr<uint64_t>* result, bool* awaits_sync);
  void Complete(Op& op, absl::StatusOr<uint64_t> result);
  absl::Status WriteError() const;
  // OK if `epoch` is the current writer epoch.
  absl::Status CheckEpoch(uint64_t epoch) const;
  absl::StatusOr<uint64_t> RaiseEpoch();
  void PublishStatus();
  // The durable end of the log; nullopt without a writer (not created, or
  // read-only). status_mu_ held.
  std::optional<LogPosition> DurableLocked() const {
    return status_.created ? std::optional<LogPosition>(status_.durable) : std::nullopt;
  }
  // The first and last index ranged reads serve (status_mu_ held).
  absl::StatusOr<std::pair<uint64_t, uint64_t>> ServedRangeLocked() const;

  const StoreOptions options_;
  ServerMetrics* const metrics_;

  // Committer-owned.
  std::unique_ptr<Wal> wal_;
  uint64_t epoch_ = 0;  // current writer epoch
  std::function<void(const absl::Status&)> on_fail_stop_;
  bool fail_stop_reported_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> queue_;     // guarded by mu_
  bool stopping_ = false;    // guarded by mu_
  bool committing_ = false;  // a batch is being committed (on any thread); guarded by mu_
  std::thread committer_;

  // What readers see; published by the committer after each batch.
  mutable std::mutex status_mu_;
  StoreStatus status_;             // guarded by status_mu_
  uint64_t last_entry_index_ = 0;  // guarded by status_mu_
  EntryIndex entry_index_;         // guarded by status_mu_
  TermRuns terms_;                 // guarded by status_mu_ (the durable terms)

  // Follow's waiters (CallAfter). `wake`s run with waiters_mu_ held, so
  // CancelCall never returns while one runs.
  void WakeWaiters(bool all);
  mutable std::mutex waiters_mu_;
  uint64_t generation_ = 0;                            // guarded by waiters_mu_
  uint64_t next_token_ = 1;                            // guarded by waiters_mu_
  std::map<uint64_t, std::function<void()>> waiters_;  // guarded by waiters_mu_

  // Garbage collection; the runner is declared after pins_ so it stops first.
  // Mutable: a const read pins what it reads (the registry is not log state).
  mutable SegmentPins pins_;
  std::unique_ptr<PurgeRunner> purger_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_WAL_STORE_H_
