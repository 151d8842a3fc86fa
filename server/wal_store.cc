#include "server/wal_store.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/segment.h"
#include "core/verify.h"
#include "server/writer_epoch.h"

namespace walrus {
namespace {

double SecondsSince(WalStore::Clock::time_point start) {
  return std::chrono::duration<double>(WalStore::Clock::now() - start).count();
}

}  // namespace

WalStore::WalStore(const StoreOptions& options, ServerMetrics* metrics)
    : options_(options), metrics_(metrics) {}

absl::StatusOr<std::unique_ptr<WalStore>> WalStore::Open(const StoreOptions& options,
                                                         ServerMetrics* metrics,
                                                         RecoverySummary* summary) {
  auto store = std::unique_ptr<WalStore>(new WalStore(options, metrics));
  if (absl::Status s = store->Recover(summary); !s.ok()) return s;
  store->PublishStatus();
  store->pins_.set_on_unpin([s = store.get()] { s->RequestPurge(); });
  if (options.run_threads) {
    store->committer_ = std::thread([s = store.get()] { s->Run(); });
    store->purger_ = std::thread([s = store.get()] { s->PurgeLoop(); });
  }
  return store;
}

WalStore::~WalStore() { Shutdown(); }

absl::Status WalStore::Recover(RecoverySummary* summary) {
  const Clock::time_point started = Clock::now();
  FileSystem* fs = options_.fs;
  *summary = RecoverySummary();
  if (!options_.epoch_path.empty()) {
    absl::StatusOr<uint64_t> epoch = LoadWriterEpoch(fs, options_.epoch_path);
    if (!epoch.ok()) return epoch.status();
    epoch_ = *epoch;
  }
  if (!WalExists(fs, options_.wal_dir)) return absl::OkStatus();  // waits for Create
  summary->existed = true;

  if (options_.read_only) {
    // No writer: only say what state the log is in.
    absl::StatusOr<VerifyReport> report = Verify(fs, options_.wal_dir);
    if (!report.ok()) return report.status();
    summary->segments = report->segments;
    if (report->outcome != VerifyReport::kClean) summary->repair_detail = report->Describe();
    summary->seconds = SecondsSince(started);
    return absl::OkStatus();
  }

  // One read of the log: the writer's own ReadAll tells a torn tail (repair,
  // then read again) from corruption (refuse); Verify runs only on the rare
  // damaged path.
  WalOptions wal_options;
  wal_options.fs = fs;
  wal_options.segment_size = options_.segment_size;
  wal_options.metrics = metrics_;
  wal_options.prepare_in_background = options_.run_threads;
  std::unique_ptr<Wal> wal;
  absl::StatusOr<ReadAllResult> read;
  for (int attempt = 0;; ++attempt) {
    absl::StatusOr<std::unique_ptr<Wal>> opened =
        Wal::OpenForRecovery(options_.wal_dir, wal_options);
    if (!opened.ok()) return opened.status();
    wal = std::move(*opened);
    read = wal->ReadAll();
    if (read.ok() || attempt > 0 || !IsTornTail(read.status())) break;
    wal.reset();  // Repair takes the segment locks itself
    absl::StatusOr<RepairReport> repaired = Repair(fs, options_.wal_dir);
    if (!repaired.ok()) return repaired.status();
    summary->repaired = true;
    summary->repair_detail =
        absl::StrCat(repaired->file, " cut at offset ", repaired->truncated_at, " (",
                     repaired->before.reason, "), original kept as ", repaired->broken_copy);
  }
  if (!read.ok()) {
    if (read.status().code() != absl::StatusCode::kDataLoss) return read.status();
    return absl::DataLossError(absl::StrCat(
        "refusing to start: ", read.status().message(),
        ". Inspect with `walrusctl verify`, restore from a backup, or start with --read-only "
        "to serve what can be read"));
  }
  summary->segments = wal->locked_segments().size();
  tip_ = LogTip();
  tip_.terms = TermLog(read->last_snapshot.index() + 1);
  for (const raftpb::Entry& entry : read->entries) tip_.terms.Put(entry.index(), entry.term());
  tip_.terms.Checkpoint();
  tip_.snapshot_index = read->last_snapshot.index();
  tip_.snapshot_term = read->last_snapshot.term();
  tip_.state = read->state;
  wal_ = std::move(wal);
  first_unreleased_seq_ = wal_->locked_segments().front().seq;
  status_.set_snapshot_index(read->last_snapshot.index());
  status_.set_snapshot_term(read->last_snapshot.term());

  summary->first_index = tip_.terms.empty() ? tip_.snapshot_index + 1 : tip_.terms.first_index();
  summary->last_index = tip_.last_index();
  summary->state = tip_.state;
  summary->seconds = SecondsSince(started);
  return absl::OkStatus();
}

void WalStore::set_on_fail_stop(std::function<void(const absl::Status&)> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_fail_stop_ = std::move(callback);
}

void WalStore::Create(std::string metadata, uint64_t epoch,
                      std::function<void(absl::StatusOr<bool>)> done) {
  Op op;
  op.kind = Op::kCreate;
  op.epoch = epoch;
  op.bytes = metadata.size();
  op.metadata = std::move(metadata);
  op.done = [done = std::move(done)](absl::StatusOr<uint64_t> r) {
    done(r.ok() ? absl::StatusOr<bool>(*r == 1) : absl::StatusOr<bool>(r.status()));
  };
  Enqueue(std::move(op));
}

void WalStore::Append(const v1::AppendRequest* request,
                      std::function<void(absl::StatusOr<uint64_t>)> done,
                      std::shared_ptr<std::atomic<bool>> chain) {
  Op op;
  op.kind = Op::kAppend;
  op.request = request;
  op.epoch = request->epoch();
  op.chain = std::move(chain);
  op.bytes = request->ByteSizeLong();
  op.done = std::move(done);
  Enqueue(std::move(op));
}

void WalStore::SaveSnapshot(uint64_t index, uint64_t term, uint64_t epoch,
                            std::function<void(absl::Status)> done) {
  Op op;
  op.kind = Op::kSnapshot;
  op.epoch = epoch;
  op.index = index;
  op.term = term;
  op.bytes = 32;
  op.done = [done = std::move(done)](absl::StatusOr<uint64_t> r) { done(r.status()); };
  Enqueue(std::move(op));
}

void WalStore::ReleaseTo(uint64_t index, uint64_t epoch,
                         std::function<void(absl::StatusOr<uint32_t>)> done) {
  Op op;
  op.kind = Op::kRelease;
  op.epoch = epoch;
  op.index = index;
  op.done = [done = std::move(done)](absl::StatusOr<uint64_t> r) {
    done(r.ok() ? absl::StatusOr<uint32_t>(static_cast<uint32_t>(*r))
                : absl::StatusOr<uint32_t>(r.status()));
  };
  Enqueue(std::move(op));
}

void WalStore::Fence(std::function<void(absl::StatusOr<uint64_t>)> done) {
  Op op;
  op.kind = Op::kFence;
  op.done = std::move(done);
  Enqueue(std::move(op));
}

void WalStore::Enqueue(Op op) {
  op.enqueued = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.push_back(std::move(op));
      cv_.notify_one();
      return;
    }
  }
  op.done(absl::UnavailableError("walrusd is shutting down"));
}

void WalStore::Run() {
  for (;;) {
    std::vector<Op> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything is done
      if (options_.max_batch_delay.count() > 0 && !stopping_) {
        // Optional: trade latency for larger batches on fast disks.
        cv_.wait_for(lock, options_.max_batch_delay, [this] { return stopping_; });
      }
      TakeBatch(&batch);
    }
    CommitBatch(&batch);
  }
}

void WalStore::TakeBatch(std::vector<Op>* batch) {
  size_t bytes = 0;
  while (!queue_.empty() &&
         (batch->empty() || bytes + queue_.front().bytes <= options_.max_batch_bytes)) {
    bytes += queue_.front().bytes;
    batch->push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
}

bool WalStore::RunOnce() {
  std::vector<Op> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    TakeBatch(&batch);
  }
  if (!batch.empty()) CommitBatch(&batch);
  bool purge = false;
  {
    std::lock_guard<std::mutex> lock(purge_mu_);
    purge = purge_requested_;
    purge_requested_ = false;
  }
  const uint64_t first = first_unreleased_seq_.load();
  if (purge && first != 0) RunPurge(first);
  return !batch.empty();
}

absl::Status WalStore::WriteError() const {
  if (options_.read_only) {
    return absl::FailedPreconditionError("walrusd is read-only (started with --read-only)");
  }
  if (wal_ == nullptr) {
    return absl::FailedPreconditionError("WAL not created: call Create with the metadata first");
  }
  if (!wal_->failure().ok()) {
    return absl::UnavailableError(absl::StrCat(
        "WAL is fail-stopped after an I/O error and takes no more writes (restart walrusd after "
        "fixing the disk): ",
        wal_->failure().message()));
  }
  return absl::OkStatus();
}

absl::Status WalStore::CheckEpoch(uint64_t epoch) const {
  if (epoch == epoch_) return absl::OkStatus();
  if (epoch < epoch_) {
    return absl::FailedPreconditionError(
        absl::StrCat("stale writer epoch ", epoch, ": the current epoch is ", epoch_,
                     " (a newer writer fenced this one out); nothing was written"));
  }
  return absl::FailedPreconditionError(absl::StrCat("writer epoch ", epoch,
                                                    " was never issued (the current epoch is ",
                                                    epoch_, "); nothing was written"));
}

absl::StatusOr<uint64_t> WalStore::RaiseEpoch() {
  if (options_.read_only) return WriteError();
  if (options_.epoch_path.empty()) {
    return absl::FailedPreconditionError("fencing is not configured (no epoch file)");
  }
  const uint64_t next = epoch_ + 1;
  // In force from here on, even if storing fails: the file may already hold
  // it, and refusing the old writer is the safe side. Nobody learns `next`
  // unless it is durable.
  epoch_ = next;
  if (absl::Status s = StoreWriterEpoch(options_.fs, options_.epoch_path, next); !s.ok()) {
    return s;
  }
  return next;
}

void WalStore::Encode(Op& op, absl::StatusOr<uint64_t>* result, bool* encoded) {
  *encoded = false;
  if (op.kind != Op::kFence) {
    if (absl::Status s = CheckEpoch(op.epoch); !s.ok()) {
      if (op.chain != nullptr) op.chain->store(true);
      *result = std::move(s);
      return;
    }
  }
  switch (op.kind) {
    case Op::kFence:
      *result = RaiseEpoch();
      return;
    case Op::kCreate: {
      if (wal_ != nullptr) {
        if (wal_->metadata() == op.metadata) {
          *result = 0;
        } else {
          *result = absl::FailedPreconditionError(
              "WAL already exists with different metadata; refusing to create it again");
        }
        return;
      }
      if (options_.read_only) {
        *result = WriteError();
        return;
      }
      WalOptions wal_options;
      wal_options.fs = options_.fs;
      wal_options.segment_size = options_.segment_size;
      wal_options.metrics = metrics_;
      wal_options.prepare_in_background = options_.run_threads;
      absl::StatusOr<std::unique_ptr<Wal>> wal =
          Wal::Create(options_.wal_dir, op.metadata, wal_options);
      if (!wal.ok()) {
        *result = wal.status();
        return;
      }
      wal_ = std::move(*wal);
      first_unreleased_seq_ = wal_->locked_segments().front().seq;
      tip_ = LogTip();
      *result = 1;
      return;
    }
    case Op::kAppend: {
      if (op.chain != nullptr && op.chain->load()) {
        *result = absl::AbortedError("an earlier append on this stream failed; not written");
        return;
      }
      auto fail = [&](absl::Status s) {
        if (op.chain != nullptr) op.chain->store(true);
        *result = std::move(s);
      };
      if (absl::Status s = WriteError(); !s.ok()) return fail(s);
      absl::StatusOr<AppendPlan> plan = PlanAppend(tip_, *op.request);
      if (!plan.ok()) return fail(plan.status());
      raftpb::HardState state = plan->write_state ? op.request->hard_state() : raftpb::HardState();
      bool must_sync = false;
      absl::Status s =
          wal_->Append(state, op.request->entries(), static_cast<int>(plan->skip), &must_sync);
      if (!s.ok()) return fail(s);
      ApplyPlan(*plan, *op.request, &tip_);
      *result = tip_.last_index();
      *encoded = true;
      return;
    }
    case Op::kSnapshot: {
      if (absl::Status s = WriteError(); !s.ok()) {
        *result = s;
        return;
      }
      absl::StatusOr<bool> write = PlanSnapshot(tip_, op.index, op.term);
      if (!write.ok() || !*write) {
        *result = write.ok() ? absl::StatusOr<uint64_t>(op.index) : write.status();
        return;
      }
      walpb::Snapshot snapshot;
      snapshot.set_index(op.index);
      snapshot.set_term(op.term);
      if (absl::Status s = wal_->AppendSnapshot(snapshot); !s.ok()) {
        *result = s;
        return;
      }
      tip_.snapshot_index = op.index;
      tip_.snapshot_term = op.term;
      *result = op.index;
      *encoded = true;
      return;
    }
    case Op::kRelease: {
      if (wal_ == nullptr) {
        *result = WriteError();
        return;
      }
      size_t before = wal_->locked_segments().size();
      if (absl::Status s = wal_->ReleaseTo(op.index); !s.ok()) {
        *result = s;
        return;
      }
      const uint64_t released = before - wal_->locked_segments().size();
      *result = released;
      if (released > 0) {
        if (metrics_ != nullptr) metrics_->AddReleasedSegments(released);
        first_unreleased_seq_ = wal_->locked_segments().front().seq;
        RequestPurge();
      }
      return;
    }
  }
}

void WalStore::CommitBatch(std::vector<Op>* batch) {
  std::vector<absl::StatusOr<uint64_t>> results(batch->size(), absl::UnknownError("not run"));
  std::vector<bool> waits(batch->size(), false);
  const uint64_t saved_snapshot_index = tip_.snapshot_index;
  const uint64_t saved_snapshot_term = tip_.snapshot_term;
  const raftpb::HardState saved_state = tip_.state;
  bool any = false;
  size_t appends = 0, entries = 0, bytes = 0;
  for (size_t i = 0; i < batch->size(); ++i) {
    bool encoded = false;
    Encode((*batch)[i], &results[i], &encoded);
    waits[i] = encoded;
    any = any || encoded;
    if (encoded && (*batch)[i].kind == Op::kAppend) {
      ++appends;
      entries += (*batch)[i].request->entries_size();
      bytes += (*batch)[i].bytes;
    }
  }
  if (any) {
    absl::Status synced = wal_->Sync();
    if (synced.ok()) {
      tip_.terms.Checkpoint();
      if (metrics_ != nullptr) metrics_->ObserveBatch(appends, entries, bytes);
    } else {
      // Nothing of this batch is durable: none of it is acknowledged, and the
      // validation state goes back to what the disk holds.
      tip_.terms.Rollback();
      tip_.snapshot_index = saved_snapshot_index;
      tip_.snapshot_term = saved_snapshot_term;
      tip_.state = saved_state;
      for (size_t i = 0; i < batch->size(); ++i) {
        if (!waits[i]) continue;
        results[i] = synced;
        if ((*batch)[i].chain != nullptr) (*batch)[i].chain->store(true);
      }
      if (!wal_->failure().ok() && !fail_stop_reported_) {
        fail_stop_reported_ = true;
        if (metrics_ != nullptr) metrics_->SetFailStop(true);
        std::function<void(const absl::Status&)> callback;
        {
          std::lock_guard<std::mutex> lock(mu_);
          callback = on_fail_stop_;
        }
        if (callback) callback(wal_->failure());
      }
    }
  }
  PublishStatus();
  for (size_t i = 0; i < batch->size(); ++i) {
    Op& op = (*batch)[i];
    if (op.kind == Op::kSnapshot && results[i].ok() && waits[i]) {
      std::lock_guard<std::mutex> lock(status_mu_);
      status_.set_snapshot_index(op.index);
      status_.set_snapshot_term(op.term);
    }
    if (op.kind == Op::kAppend && results[i].ok() && metrics_ != nullptr) {
      metrics_->ObserveAppend(SecondsSince(op.enqueued), op.request->entries_size());
    }
    op.done(std::move(results[i]));
  }
}

void WalStore::PublishStatus() {
  std::lock_guard<std::mutex> lock(status_mu_);
  status_.set_created(wal_ != nullptr);
  status_.set_read_only(options_.read_only);
  status_.set_data_dir(options_.wal_dir);
  status_.set_version(WALRUS_VERSION);
  status_.set_writer_epoch(epoch_);
  if (wal_ == nullptr) return;
  status_.set_first_index(tip_.terms.empty() ? tip_.snapshot_index + 1 : tip_.terms.first_index());
  status_.set_last_index(tip_.last_index());
  *status_.mutable_hard_state() = tip_.state;
  LogPosition durable = wal_->durable_position();
  durable_ = durable;
  last_entry_index_ = tip_.terms.empty() ? 0 : tip_.terms.last_index();
  status_.set_durable_segment(durable.seq);
  status_.set_durable_offset(durable.offset);
  status_.set_fail_stop(!wal_->failure().ok());
  status_.set_fail_stop_reason(std::string(wal_->failure().message()));
  status_.clear_segments();
  for (const SegmentId& id : wal_->locked_segments()) {
    v1::SegmentStatus* segment = status_.add_segments();
    segment->set_seq(id.seq);
    segment->set_first_index(id.index);
    segment->set_locked(true);
  }
}

v1::StatusResponse WalStore::Status() const {
  v1::StatusResponse status;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status = status_;
  }
  // Segments from the directory, marked with what the writer holds.
  std::vector<uint64_t> locked;
  for (const v1::SegmentStatus& s : status.segments()) locked.push_back(s.seq());
  status.clear_segments();
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(options_.fs, options_.wal_dir);
  uint64_t total = 0;
  if (files.ok()) {
    for (const SegmentFile& file : *files) {
      v1::SegmentStatus* segment = status.add_segments();
      segment->set_name(file.name);
      segment->set_seq(file.id.seq);
      segment->set_first_index(file.id.index);
      segment->set_locked(std::find(locked.begin(), locked.end(), file.id.seq) != locked.end());
      if (std::optional<std::string> holder = pins_.HolderOf(file.id.seq)) {
        segment->set_pinned(true);
        segment->set_pinned_by(*holder);
      }
      absl::StatusOr<uint64_t> size = options_.fs->FileSize(JoinPath(options_.wal_dir, file.name));
      if (size.ok()) {
        segment->set_size_bytes(*size);
        total += *size;
      }
    }
  }
  status.set_total_bytes(total);
  // After a purge the oldest segment left bounds what the log still holds
  // (a segment's name carries the first index it holds).
  if (status.created() && files.ok() && !files->empty() &&
      files->front().id.index > status.first_index() &&
      files->front().id.index <= status.last_index()) {
    status.set_first_index(files->front().id.index);
  }
  status.set_retain_released_segments(options_.retain_released_segments);
  status.set_backups_in_progress(static_cast<uint32_t>(pins_.List().size()));
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status.set_purge_blocked_by(purge_blocked_by_);
  }
  return status;
}

absl::StatusOr<BackupPlan> WalStore::BeginBackup(const std::string& holder) {
  std::optional<LogPosition> durable;
  uint64_t last_entry = 0;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (!status_.created()) {
      return absl::FailedPreconditionError("WAL not created: nothing to back up");
    }
    durable = durable_;
    last_entry = last_entry_index_;
  }
  if (!durable.has_value()) {
    return absl::FailedPreconditionError(
        "this walrusd has no writer (read-only), so it has no durable end to back up to; "
        "back the directory up offline: walrusctl backup DIR DEST");
  }
  BackupPlan plan;
  // Pin first, list second: a segment the listing shows stays until the pin
  // goes (purge checks the pins and deletes under one mutex).
  plan.pin = pins_.PinRange(0, durable->seq, holder);
  plan.durable = *durable;
  plan.last_entry_index = last_entry;
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(options_.fs, options_.wal_dir);
  if (!files.ok()) return files.status();
  while (!files->empty() && files->back().id.seq > durable->seq) files->pop_back();
  if (files->empty() || files->back().id.seq != durable->seq || !IsContiguous(*files, 0)) {
    return absl::InternalError(absl::StrCat("backup: the segments of ", options_.wal_dir,
                                            " do not reach the durable segment ", durable->seq,
                                            " without a gap"));
  }
  for (const SegmentFile& file : *files) {
    uint64_t bytes = durable->offset;
    if (file.id.seq != durable->seq) {
      // Sealed segments were cut to their data when the next one started.
      absl::StatusOr<uint64_t> size = options_.fs->FileSize(JoinPath(options_.wal_dir, file.name));
      if (!size.ok()) return size.status();
      bytes = *size;
    }
    v1::BackupFile* out = &plan.files.emplace_back();
    out->set_name(file.name);
    out->set_size_bytes(bytes);
    plan.total_bytes += bytes;
  }
  return plan;
}

void WalStore::RequestPurge() {
  std::lock_guard<std::mutex> lock(purge_mu_);
  purge_requested_ = true;
  purge_cv_.notify_one();
}

void WalStore::PurgeLoop() {
  std::unique_lock<std::mutex> lock(purge_mu_);
  while (!purge_stopping_) {
    // A pin of our own says when it goes (on_unpin); another process's lock
    // does not, so a blocked purge looks again every second.
    auto wait = last_blocked_.empty() ? std::chrono::seconds(30) : std::chrono::seconds(1);
    purge_cv_.wait_for(lock, wait, [this] { return purge_stopping_ || purge_requested_; });
    if (purge_stopping_) break;
    purge_requested_ = false;
    const uint64_t first = first_unreleased_seq_.load();
    if (first == 0) continue;
    lock.unlock();
    RunPurge(first);
    lock.lock();
  }
}

void WalStore::RunPurge(uint64_t first_unreleased_seq) {
  PurgeReport report;
  absl::StatusOr<PurgeReport> done = PurgeReleased(
      options_.fs, options_.wal_dir,
      PurgePolicy{first_unreleased_seq, options_.retain_released_segments}, &pins_, &report);
  if (!report.purged.empty()) spdlog::info("purge: {}", report.Describe());
  if (!done.ok()) {
    spdlog::error("purge of {} failed (the log stays contiguous; retrying later): {}",
                  options_.wal_dir, std::string(done.status().message()));
  }
  std::string blocked;
  if (report.blocked.has_value()) {
    blocked = absl::StrCat(report.blocked->file, ": ", report.blocked->holder);
  }
  const bool newly_blocked = !blocked.empty() && blocked != last_blocked_;
  if (newly_blocked) {
    spdlog::warn(
        "purge blocked: {} and every later segment stay until it goes ({} released segments "
        "on disk, policy keeps {})",
        blocked, report.released, options_.retain_released_segments);
  } else if (blocked.empty() && !last_blocked_.empty()) {
    spdlog::info("purge unblocked: {}", report.Describe());
  }
  if (metrics_ != nullptr) {
    metrics_->ObservePurge(report.purged.size(), report.purged_bytes, !blocked.empty(),
                           newly_blocked);
  }
  last_blocked_ = blocked;
  std::lock_guard<std::mutex> lock(status_mu_);
  purge_blocked_by_ = blocked;
}

absl::StatusOr<ReadAllResult> WalStore::ReadAll(const walpb::Snapshot& snapshot) const {
  std::optional<LogPosition> durable;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (!status_.created() && !options_.read_only) {
      return absl::FailedPreconditionError("WAL not created: call Create with the metadata first");
    }
    durable = durable_;
  }
  WalOptions wal_options;
  wal_options.fs = options_.fs;
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::OpenForRead(options_.wal_dir, snapshot, wal_options, durable);
  if (!wal.ok()) return wal.status();
  return (*wal)->ReadAll();
}

void WalStore::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !committer_.joinable() && queue_.empty()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  if (!options_.run_threads) {
    while (RunOnce()) {
    }
  }
  {
    std::lock_guard<std::mutex> lock(purge_mu_);
    purge_stopping_ = true;
  }
  purge_cv_.notify_all();
  if (purger_.joinable()) purger_.join();
  if (wal_ != nullptr) (void)wal_->Close();
}

}  // namespace walrus
