// walrusd's Prometheus metrics (prometheus-cpp), served on --metrics-listen.
// Names follow Prometheus's conventions (walrus_ prefix, base units, _total on
// counters); docs/operations.md lists them.
//
// Thread-safety: every method may be called from any thread.
#ifndef WALRUS_SERVER_METRICS_H_
#define WALRUS_SERVER_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/wal_metrics.h"

namespace walrus {

class ServerMetrics : public WalMetrics {
 public:
  ServerMetrics();

  // Starts serving /metrics on `address` (host:port). UNAVAILABLE if it
  // cannot bind.
  [[nodiscard]] absl::Status Serve(const std::string& address);

  // WalMetrics (called by the committer).
  void ObserveFsync(double seconds) override { fsync_seconds_->Observe(seconds); }
  void AddBytesWritten(uint64_t bytes) override { write_bytes_->Increment(double(bytes)); }
  void SetLastIndexSaved(uint64_t index) override { last_index_->Set(double(index)); }
  void SegmentCut(uint64_t) override { cuts_->Increment(); }
  void SegmentCutDeferred(const absl::Status&, uint64_t) override { cuts_deferred_->Increment(); }
  void SegmentPrepared(SegmentBlocks blocks) override {
    (blocks == SegmentBlocks::kWritten ? prepared_written_ : prepared_fallocated_)->Increment();
  }
  void SetLockedSegments(uint64_t count) override { segments_->Set(double(count)); }
  void SetDirectIo(bool on) override { direct_io_->Set(on ? 1 : 0); }
  // The entry index behind ranged reads: entries it locates and its memory.
  void SetEntryIndex(uint64_t entries, uint64_t bytes) {
    index_entries_->Set(double(entries));
    index_bytes_->Set(double(bytes));
  }

  // One group commit: how many requests, entries and bytes shared an fsync.
  void ObserveBatch(size_t requests, size_t entries, size_t bytes);
  // Enqueue to durable acknowledgement of one append.
  void ObserveAppend(double seconds, size_t entries);
  void ObserveRpc(const std::string& method, const std::string& code, double seconds);
  void SetFailStop(bool failed) { fail_stop_->Set(failed ? 1 : 0); }
  void SetServing(bool serving) { serving_->Set(serving ? 1 : 0); }

  // Garbage collection and backups.
  void AddReleasedSegments(uint64_t count) { released_->Increment(double(count)); }
  // One purge run: segments and bytes deleted, and whether a pin or another
  // process's lock stopped it (`newly_blocked`: it was not blocked there before).
  void ObservePurge(uint64_t segments, uint64_t bytes, bool blocked, bool newly_blocked);
  void BackupStarted(uint64_t target_bytes);
  void AddBackupBytes(uint64_t bytes) { backup_bytes_->Increment(double(bytes)); }
  void BackupFinished(bool ok);
  // A backup cancelled because its client took no data for the stall timeout.
  void BackupStalled() { backups_stalled_->Increment(); }

  // AppendStream byte budgets (server/byte_budget.h): bytes held by every
  // stream (requests in the store plus unsent acknowledgements), and streams
  // not reading because they or the daemon are over budget.
  void SetAppendHeldBytes(uint64_t bytes) { append_held_bytes_->Set(double(bytes)); }
  void AddStreamsWaitingForBudget(int delta) { streams_waiting_->Increment(double(delta)); }

  // The read pool (server/read_pool.h): busy workers, calls queued for one,
  // and calls refused because none became free in time.
  void SetReadWorkersBusy(size_t busy) { read_workers_busy_->Set(double(busy)); }
  void SetReadQueueLength(size_t queued) { read_queued_->Set(double(queued)); }
  void ReadCallRefused() { read_refused_->Increment(); }

  // Disk usage: walrus_data_dir_free_bytes and
  // walrus_data_dir_capacity_bytes, from statvfs(`dir`) at each scrape, so
  // the disk-filling alert sees the file system the WAL lives on. REQUIRES:
  // called before Serve().
  void WatchDataDir(const std::string& dir);

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  prometheus::Histogram* fsync_seconds_;
  prometheus::Counter* write_bytes_;
  prometheus::Gauge* last_index_;
  prometheus::Counter* cuts_;
  prometheus::Counter* cuts_deferred_;
  prometheus::Counter* prepared_written_;
  prometheus::Counter* prepared_fallocated_;
  prometheus::Gauge* index_entries_;
  prometheus::Gauge* index_bytes_;
  prometheus::Gauge* segments_;
  prometheus::Gauge* direct_io_;
  prometheus::Histogram* batch_requests_;
  prometheus::Histogram* batch_entries_;
  prometheus::Histogram* batch_bytes_;
  prometheus::Histogram* append_seconds_;
  prometheus::Counter* appended_entries_;
  prometheus::Gauge* fail_stop_;
  prometheus::Gauge* serving_;
  prometheus::Family<prometheus::Counter>* rpc_requests_;
  prometheus::Family<prometheus::Histogram>* rpc_seconds_;
  std::shared_ptr<prometheus::Collectable> data_dir_usage_;
  // Backups.
  prometheus::Counter* released_;
  prometheus::Counter* purged_;
  prometheus::Counter* purged_bytes_;
  prometheus::Gauge* purge_blocked_;
  prometheus::Counter* purge_blocked_total_;
  prometheus::Gauge* backup_in_progress_;
  prometheus::Counter* backup_bytes_;
  prometheus::Gauge* backup_target_;
  prometheus::Counter* backups_ok_;
  prometheus::Counter* backups_error_;
  prometheus::Counter* backups_stalled_;
  prometheus::Gauge* append_held_bytes_;
  prometheus::Gauge* streams_waiting_;
  prometheus::Gauge* read_workers_busy_;
  prometheus::Gauge* read_queued_;
  prometheus::Counter* read_refused_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_METRICS_H_
