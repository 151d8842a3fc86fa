#include "server/metrics.h"

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <sys/statvfs.h>

#include <exception>

#include "absl/strings/str_cat.h"

#ifndef WALRUS_VERSION
#define WALRUS_VERSION "dev"
#endif

namespace walrus {
namespace {

using prometheus::Histogram;

// 50 us to 8 s, doubling: fsyncs range from NVMe with a write cache to a
// congested network disk.
Histogram::BucketBoundaries LatencyBuckets() {
  Histogram::BucketBoundaries buckets;
  for (double b = 50e-6; b < 8; b *= 2) buckets.push_back(b);
  buckets.push_back(8);
  return buckets;
}

Histogram::BucketBoundaries PowersOfTwo(double max) {
  Histogram::BucketBoundaries buckets;
  for (double b = 1; b <= max; b *= 2) buckets.push_back(b);
  return buckets;
}

// statvfs of the data directory at scrape time: a syscall per scrape is
// cheaper than a thread, and the value is never stale. Bytes available to an
// unprivileged writer (f_bavail): walrusd does not run as root, so the
// reserved blocks are not space it can use.
class DataDirUsage : public prometheus::Collectable {
 public:
  explicit DataDirUsage(std::string dir) : dir_(std::move(dir)) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    struct statvfs st {};
    if (statvfs(dir_.c_str(), &st) != 0) return {};  // absent, not a wrong zero
    return {
        Gauge("walrus_data_dir_free_bytes",
              "Bytes available to walrusd on the data directory's file system",
              double(st.f_bavail) * double(st.f_frsize)),
        Gauge("walrus_data_dir_capacity_bytes", "Size of the data directory's file system in bytes",
              double(st.f_blocks) * double(st.f_frsize))};
  }

 private:
  static prometheus::MetricFamily Gauge(const char* name, const char* help, double value) {
    prometheus::MetricFamily family;
    family.name = name;
    family.help = help;
    family.type = prometheus::MetricType::Gauge;
    prometheus::ClientMetric metric;
    metric.gauge.value = value;
    family.metric.push_back(std::move(metric));
    return family;
  }

  std::string dir_;
};

}  // namespace

ServerMetrics::ServerMetrics() : registry_(std::make_shared<prometheus::Registry>()) {
  auto& r = *registry_;
  fsync_seconds_ = &prometheus::BuildHistogram()
                        .Name("walrus_wal_fsync_duration_seconds")
                        .Help("Duration of each fdatasync of a WAL segment")
                        .Register(r)
                        .Add({}, LatencyBuckets());
  write_bytes_ = &prometheus::BuildCounter()
                      .Name("walrus_wal_write_bytes_total")
                      .Help("Bytes written to WAL segments")
                      .Register(r)
                      .Add({});
  last_index_ = &prometheus::BuildGauge()
                     .Name("walrus_wal_last_index_saved")
                     .Help("Index of the last entry made durable")
                     .Register(r)
                     .Add({});
  cuts_ = &prometheus::BuildCounter()
               .Name("walrus_wal_segment_cuts_total")
               .Help("New segments cut because the tail segment was full")
               .Register(r)
               .Add({});
  cuts_deferred_ = &prometheus::BuildCounter()
                        .Name("walrus_wal_segment_cuts_deferred_total")
                        .Help(
                            "Segment cuts put off because no new segment could be preallocated "
                            "(disk full); the tail grows past the segment size until one succeeds")
                        .Register(r)
                        .Add({});
  auto& prepared = prometheus::BuildCounter()
                       .Name("walrus_wal_segments_prepared_total")
                       .Help(
                           "Segments taken by a cut, by their blocks on disk: written (zero-filled "
                           "ahead of time) or fallocated (the zero-fill had not finished, or "
                           "segment blocks are set to fallocated)")
                       .Register(r);
  prepared_written_ = &prepared.Add({{"blocks", "written"}});
  prepared_fallocated_ = &prepared.Add({{"blocks", "fallocated"}});
  index_entries_ = &prometheus::BuildGauge()
                        .Name("walrus_entry_index_entries")
                        .Help(
                            "Entries the ranged-read index locates (durable, in segments not "
                            "released)")
                        .Register(r)
                        .Add({});
  index_bytes_ = &prometheus::BuildGauge()
                      .Name("walrus_entry_index_bytes")
                      .Help(
                          "Memory held by the ranged-read index (16 bytes per entry, plus the "
                          "tail segment's spare capacity)")
                      .Register(r)
                      .Add({});
  segments_ = &prometheus::BuildGauge()
                   .Name("walrus_wal_segments")
                   .Help("Segments held by the writer (not yet released)")
                   .Register(r)
                   .Add({});
  direct_io_ = &prometheus::BuildGauge()
                    .Name("walrus_wal_direct_io")
                    .Help(
                        "1 if appends to the tail segment go around the page cache (O_DIRECT), 0 "
                        "if they are buffered (the file system does not take direct I/O)")
                    .Register(r)
                    .Add({});
  batch_requests_ = &prometheus::BuildHistogram()
                         .Name("walrus_commit_batch_requests")
                         .Help("Requests made durable by one group-commit fsync")
                         .Register(r)
                         .Add({}, PowersOfTwo(4096));
  batch_entries_ = &prometheus::BuildHistogram()
                        .Name("walrus_commit_batch_entries")
                        .Help("Entries made durable by one group-commit fsync")
                        .Register(r)
                        .Add({}, PowersOfTwo(65536));
  batch_bytes_ = &prometheus::BuildHistogram()
                      .Name("walrus_commit_batch_bytes")
                      .Help("Bytes written by one group-commit batch")
                      .Register(r)
                      .Add({}, PowersOfTwo(64 << 20));
  append_seconds_ = &prometheus::BuildHistogram()
                         .Name("walrus_append_duration_seconds")
                         .Help("Append latency from enqueue to durable acknowledgement")
                         .Register(r)
                         .Add({}, LatencyBuckets());
  appended_entries_ = &prometheus::BuildCounter()
                           .Name("walrus_appended_entries_total")
                           .Help("Entries acknowledged as durable")
                           .Register(r)
                           .Add({});
  fail_stop_ = &prometheus::BuildGauge()
                    .Name("walrus_wal_fail_stop")
                    .Help("1 if the WAL stopped accepting writes after an I/O error")
                    .Register(r)
                    .Add({});
  serving_ = &prometheus::BuildGauge()
                  .Name("walrus_serving")
                  .Help("1 once recovery finished and the WAL serves requests")
                  .Register(r)
                  .Add({});
  rpc_requests_ = &prometheus::BuildCounter()
                       .Name("walrus_rpc_requests_total")
                       .Help("RPCs handled, by method and status code")
                       .Register(r);
  rpc_seconds_ = &prometheus::BuildHistogram()
                      .Name("walrus_rpc_duration_seconds")
                      .Help("RPC duration, by method and status code")
                      .Register(r);
  prometheus::BuildGauge()
      .Name("walrus_build_info")
      .Help("Build information; always 1")
      .Register(r)
      .Add({{"version", WALRUS_VERSION}})
      .Set(1);
  // Garbage collection and backups.
  released_ = &prometheus::BuildCounter()
                   .Name("walrus_wal_released_segments_total")
                   .Help("Segments released by ReleaseTo (eligible for purge)")
                   .Register(r)
                   .Add({});
  purged_ = &prometheus::BuildCounter()
                 .Name("walrus_wal_purged_segments_total")
                 .Help("Released segments deleted by the purge policy")
                 .Register(r)
                 .Add({});
  purged_bytes_ = &prometheus::BuildCounter()
                       .Name("walrus_wal_purged_bytes_total")
                       .Help("Bytes of disk reclaimed by the purge policy")
                       .Register(r)
                       .Add({});
  purge_blocked_ = &prometheus::BuildGauge()
                        .Name("walrus_wal_purge_blocked")
                        .Help(
                            "1 while the oldest purgeable segment is kept by a backup's pin or "
                            "another process's lock")
                        .Register(r)
                        .Add({});
  purge_blocked_total_ = &prometheus::BuildCounter()
                              .Name("walrus_wal_purge_blocked_total")
                              .Help("Times the purge became blocked by a pin or a lock")
                              .Register(r)
                              .Add({});
  backup_in_progress_ = &prometheus::BuildGauge()
                             .Name("walrus_backup_in_progress")
                             .Help("Backups being streamed now")
                             .Register(r)
                             .Add({});
  backup_bytes_ = &prometheus::BuildCounter()
                       .Name("walrus_backup_bytes_copied_total")
                       .Help("Bytes streamed by Backup RPCs")
                       .Register(r)
                       .Add({});
  backup_target_ = &prometheus::BuildGauge()
                        .Name("walrus_backup_bytes_target")
                        .Help("Bytes the running (or last) backup must copy")
                        .Register(r)
                        .Add({});
  auto& backups = prometheus::BuildCounter()
                      .Name("walrus_backups_total")
                      .Help("Backup RPCs finished, by result")
                      .Register(r);
  backups_ok_ = &backups.Add({{"result", "ok"}});
  backups_error_ = &backups.Add({{"result", "error"}});
  backups_stalled_ = &prometheus::BuildCounter()
                          .Name("walrus_backups_stalled_total")
                          .Help(
                              "Backups cancelled (and their pin released) because the client "
                              "took no data for --backup-stall-timeout")
                          .Register(r)
                          .Add({});
  append_held_bytes_ = &prometheus::BuildGauge()
                            .Name("walrus_append_held_bytes")
                            .Help(
                                "Bytes held by AppendStreams: requests not yet durable plus "
                                "acknowledgements not yet sent")
                            .Register(r)
                            .Add({});
  streams_waiting_ = &prometheus::BuildGauge()
                          .Name("walrus_append_streams_waiting_for_budget")
                          .Help(
                              "AppendStreams not reading requests because they or the daemon "
                              "hold their byte budget")
                          .Register(r)
                          .Add({});
  read_workers_busy_ = &prometheus::BuildGauge()
                            .Name("walrus_read_workers_busy")
                            .Help("Read workers running a ReadAll, Backup or Status")
                            .Register(r)
                            .Add({});
  read_queued_ = &prometheus::BuildGauge()
                      .Name("walrus_read_queue_length")
                      .Help("ReadAll, Backup and Status calls waiting for a read worker")
                      .Register(r)
                      .Add({});
  read_refused_ = &prometheus::BuildCounter()
                       .Name("walrus_read_calls_refused_total")
                       .Help(
                           "ReadAll, Backup and Status calls refused RESOURCE_EXHAUSTED: no "
                           "read worker became free within --read-queue-timeout")
                       .Register(r)
                       .Add({});
}

void ServerMetrics::ObservePurge(uint64_t segments, uint64_t bytes, bool blocked,
                                 bool newly_blocked) {
  purged_->Increment(double(segments));
  purged_bytes_->Increment(double(bytes));
  purge_blocked_->Set(blocked ? 1 : 0);
  if (newly_blocked) purge_blocked_total_->Increment();
}

void ServerMetrics::BackupStarted(uint64_t target_bytes) {
  backup_in_progress_->Increment();
  backup_target_->Set(double(target_bytes));
}

void ServerMetrics::BackupFinished(bool ok) {
  backup_in_progress_->Decrement();
  (ok ? backups_ok_ : backups_error_)->Increment();
}

absl::Status ServerMetrics::Serve(const std::string& address) {
  try {
    exposer_ = std::make_unique<prometheus::Exposer>(address);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", address, ": ", e.what()));
  }
  exposer_->RegisterCollectable(registry_);
  if (data_dir_usage_ != nullptr) exposer_->RegisterCollectable(data_dir_usage_);
  return absl::OkStatus();
}

void ServerMetrics::ObserveBatch(size_t requests, size_t entries, size_t bytes) {
  batch_requests_->Observe(double(requests));
  batch_entries_->Observe(double(entries));
  batch_bytes_->Observe(double(bytes));
}

void ServerMetrics::ObserveAppend(double seconds, size_t entries) {
  append_seconds_->Observe(seconds);
  appended_entries_->Increment(double(entries));
}

void ServerMetrics::ObserveRpc(const std::string& method, const std::string& code, double seconds) {
  rpc_requests_->Add({{"method", method}, {"code", code}}).Increment();
  rpc_seconds_->Add({{"method", method}, {"code", code}}, LatencyBuckets()).Observe(seconds);
}

void ServerMetrics::WatchDataDir(const std::string& dir) {
  data_dir_usage_ = std::make_shared<DataDirUsage>(dir);
}

}  // namespace walrus
