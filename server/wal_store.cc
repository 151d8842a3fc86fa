#include "server/wal_store.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
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
  store->purger_ = std::make_unique<PurgeRunner>(
      options.fs, options.wal_dir, options.retain_released_segments, &store->pins_, metrics);
  if (store->wal_ != nullptr) {
    store->purger_->SetFirstUnreleased(store->wal_->locked_segments().front().seq);
  }
  store->pins_.set_on_unpin([s = store.get()] { s->purger_->Request(); });
  if (options.run_threads) {
    store->committer_ = std::thread([s = store.get()] { s->Run(); });
    store->purger_->StartThread();
  }
  return store;
}

WalStore::~WalStore() { Shutdown(); }

WalOptions WalStore::MakeWalOptions() const {
  WalOptions wal_options;
  wal_options.fs = options_.fs;
  wal_options.segment_size = options_.segment_size;
  wal_options.direct_io = options_.direct_io;
  wal_options.direct_io_min_bytes = options_.direct_io_min_bytes;
  wal_options.metrics = metrics_;
  wal_options.prepare_in_background = options_.run_threads;
  wal_options.track_entry_locations = true;  // for Entries()
  wal_options.return_entries = false;        // reads stream from the files
  return wal_options;
}

absl::Status WalStore::Recover(RecoverySummary* summary) {
  if (!options_.epoch_path.empty()) {
    absl::StatusOr<uint64_t> epoch = LoadWriterEpoch(options_.fs, options_.epoch_path);
    if (!epoch.ok()) return epoch.status();
    epoch_ = *epoch;
  }
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      RecoverWal(options_.wal_dir, MakeWalOptions(), options_.read_only, summary);
  if (!wal.ok()) return wal.status();
  wal_ = std::move(*wal);
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

void WalStore::Append(LogAppend append, std::function<void(absl::StatusOr<uint64_t>)> done,
                      std::shared_ptr<std::atomic<bool>> chain, Commit commit) {
  Op op;
  op.kind = Op::kAppend;
  op.epoch = append.epoch;
  op.bytes = append.bytes;
  op.append = std::move(append);
  op.chain = std::move(chain);
  op.done = std::move(done);
  Enqueue(std::move(op), commit);
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
                         std::function<void(absl::StatusOr<ReleaseResult>)> done) {
  Op op;
  op.kind = Op::kRelease;
  op.epoch = epoch;
  op.index = index;
  op.release_done = std::move(done);
  Enqueue(std::move(op));
}

void WalStore::Fence(std::function<void(absl::StatusOr<uint64_t>)> done) {
  Op op;
  op.kind = Op::kFence;
  op.done = std::move(done);
  Enqueue(std::move(op));
}

void WalStore::Enqueue(Op op, Commit commit) {
  op.enqueued = Clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_) {
    lock.unlock();
    op.done(absl::UnavailableError("walrusd is shutting down"));
    return;
  }
  queue_.push_back(std::move(op));
  const bool commit_here = commit == Commit::kInlineIfIdle && options_.run_threads &&
                           !committing_ && queue_.size() == 1 &&
                           options_.max_batch_delay.count() == 0;
  if (!commit_here) {
    lock.unlock();
    cv_.notify_one();
    return;
  }
  // The committer is idle and the queue held nothing else: this thread
  // commits a batch of this op alone, in the committer's place. committing_
  // keeps the committer, and any other caller, off the Wal meanwhile.
  committing_ = true;
  std::vector<Op> batch = TakeBatch();
  lock.unlock();
  std::vector<absl::StatusOr<uint64_t>> results = CommitBatch(&batch);
  lock.lock();
  committing_ = false;
  const bool more = !queue_.empty() || stopping_;
  lock.unlock();
  if (more) cv_.notify_one();  // what arrived meanwhile is the committer's
  AnswerBatch(&batch, std::move(results));
}

void WalStore::Run() {
  for (;;) {
    std::vector<Op> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return !committing_ && (stopping_ || !queue_.empty()); });
      if (queue_.empty()) break;  // stopping, and everything is done
      if (options_.max_batch_delay.count() > 0 && !stopping_) {
        // Optional: trade latency for larger batches on fast disks.
        cv_.wait_for(lock, options_.max_batch_delay, [this] { return stopping_; });
      }
      batch = TakeBatch();
      committing_ = true;
    }
    std::vector<absl::StatusOr<uint64_t>> results = CommitBatch(&batch);
    {
      // The Wal is free before the answers go out, so the caller an answer
      // wakes finds the committer idle and may commit its next op inline.
      std::lock_guard<std::mutex> lock(mu_);
      committing_ = false;
    }
    AnswerBatch(&batch, std::move(results));
  }
}

std::vector<WalStore::Op> WalStore::TakeBatch() {
  std::vector<Op> batch;
  size_t bytes = 0;
  while (!queue_.empty() &&
         (batch.empty() || bytes + queue_.front().bytes <= options_.max_batch_bytes)) {
    bytes += queue_.front().bytes;
    batch.push_back(std::move(queue_.front()));
    queue_.pop_front();
  }
  return batch;
}

size_t WalStore::RunOnce() {
  std::vector<Op> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    batch = TakeBatch();
  }
  if (!batch.empty()) {
    std::vector<absl::StatusOr<uint64_t>> results = CommitBatch(&batch);
    AnswerBatch(&batch, std::move(results));
  }
  if (purger_ != nullptr) purger_->RunPending();
  return batch.size();
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
  if (epoch_ == std::numeric_limits<uint64_t>::max()) {
    // Wrapping to 0 would let every fenced-out writer back in.
    return absl::FailedPreconditionError(absl::StrCat(
        "writer epoch ", epoch_,
        " is the largest there is and cannot be raised; fencing is "
        "exhausted for this data directory (recreate it to start again from epoch 0)"));
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

void WalStore::Encode(Op& op, absl::StatusOr<uint64_t>* result, bool* awaits_sync) {
  *awaits_sync = false;
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
      absl::StatusOr<std::unique_ptr<Wal>> wal =
          Wal::Create(options_.wal_dir, op.metadata, MakeWalOptions());
      if (!wal.ok()) {
        *result = wal.status();
        return;
      }
      wal_ = std::move(*wal);
      purger_->SetFirstUnreleased(wal_->locked_segments().front().seq);
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
      const LogAppend& append = op.append;
      LogRequest log_request;
      log_request.hard_state = append.hard_state;
      log_request.entries = &append.entries;
      log_request.entry_crc32c =
          absl::MakeConstSpan(append.entry_crc32c.data(), append.entry_crc32c.size());
      absl::StatusOr<Wal::Accepted> accepted = wal_->AppendChecked(log_request);
      if (!accepted.ok()) return fail(accepted.status());
      *result = accepted->last_index;
      *awaits_sync = accepted->awaits_sync;
      return;
    }
    case Op::kSnapshot: {
      if (absl::Status s = WriteError(); !s.ok()) {
        *result = s;
        return;
      }
      absl::StatusOr<Wal::Accepted> accepted = wal_->AppendSnapshotChecked(op.index, op.term);
      if (!accepted.ok()) {
        *result = accepted.status();
        return;
      }
      *result = op.index;
      *awaits_sync = accepted->awaits_sync;
      return;
    }
    case Op::kRelease: {
      if (wal_ == nullptr) {
        *result = WriteError();
        return;
      }
      size_t before = wal_->locked_segments().size();
      absl::StatusOr<uint64_t> released_to = wal_->ReleaseToSnapshot(op.index);
      if (!released_to.ok()) {
        *result = released_to.status();
        return;
      }
      const uint64_t released = before - wal_->locked_segments().size();
      op.release.released_segments = static_cast<uint32_t>(released);
      op.release.released_to = *released_to;
      op.release.clamped = *released_to < op.index;
      *result = *released_to;
      if (released > 0) {
        if (metrics_ != nullptr) metrics_->AddReleasedSegments(released);
        purger_->Request(wal_->locked_segments().front().seq);
      }
      return;
    }
  }
}

void WalStore::Complete(Op& op, absl::StatusOr<uint64_t> result) {
  if (op.kind == Op::kRelease) {
    op.release_done(result.ok() ? absl::StatusOr<ReleaseResult>(op.release)
                                : absl::StatusOr<ReleaseResult>(result.status()));
    return;
  }
  op.done(std::move(result));
}

void WalStore::ReportFailStop() {
  if (wal_->failure().ok() || fail_stop_reported_) return;
  fail_stop_reported_ = true;
  if (metrics_ != nullptr) metrics_->SetFailStop(true);
  std::function<void(const absl::Status&)> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    callback = on_fail_stop_;
  }
  if (callback) callback(wal_->failure());
}

std::vector<absl::StatusOr<uint64_t>> WalStore::CommitBatch(std::vector<Op>* batch) {
  if (wal_ != nullptr && wal_->cut_owed()) {
    // The cut owed after a snapshot marker that replaced the log
    // (core::Wal::AppendSnapshot) comes before anything else is written.
    // If there is still no room for it, this batch's Sync() refuses its
    // writes; a fail-stop shows in the Wal's failure.
    if (!wal_->Sync().ok()) ReportFailStop();
  }
  std::vector<absl::StatusOr<uint64_t>> results(batch->size(), absl::UnknownError("not run"));
  std::vector<bool> waits(batch->size(), false);
  bool any = false;
  size_t appends = 0, entries = 0, bytes = 0;
  for (size_t i = 0; i < batch->size(); ++i) {
    bool awaits_sync = false;
    Encode((*batch)[i], &results[i], &awaits_sync);
    waits[i] = awaits_sync;
    any = any || awaits_sync;
    if (awaits_sync && (*batch)[i].kind == Op::kAppend) {
      ++appends;
      entries += (*batch)[i].append.entries.size();
      bytes += (*batch)[i].bytes;
    }
    if (wal_ != nullptr && wal_->marker_ends_segment() && i + 1 < batch->size()) {
      // A marker that replaced the log ends its segment (Wal::AppendSnapshot):
      // this batch syncs here, and the rest goes back to the queue's front
      // to be the next batch.
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t j = batch->size(); j-- > i + 1;) queue_.push_front(std::move((*batch)[j]));
      batch->erase(batch->begin() + static_cast<ptrdiff_t>(i) + 1, batch->end());
      results.resize(i + 1, absl::UnknownError("not run"));
      waits.resize(i + 1);
      break;
    }
  }
  if (any) {
    // The model commits (or rolls back) with the sync: one place, in core.
    absl::Status synced = wal_->Sync();
    if (synced.ok()) {
      if (metrics_ != nullptr) metrics_->ObserveBatch(appends, entries, bytes);
    } else {
      // Nothing of this batch is durable: none of it is acknowledged, nor is
      // anything decided on the strength of it.
      for (size_t i = 0; i < batch->size(); ++i) {
        if (!waits[i]) continue;
        results[i] = synced;
        if ((*batch)[i].chain != nullptr) (*batch)[i].chain->store(true);
      }
      ReportFailStop();
    }
  }
  PublishStatus();
  WakeWaiters(/*all=*/false);
  if (metrics_ != nullptr) {
    for (size_t i = 0; i < batch->size(); ++i) {
      const Op& op = (*batch)[i];
      if (op.kind == Op::kAppend && results[i].ok()) {
        metrics_->ObserveAppend(SecondsSince(op.enqueued), op.append.entries.size());
      }
    }
  }
  return results;
}

void WalStore::AnswerBatch(std::vector<Op>* batch, std::vector<absl::StatusOr<uint64_t>> results) {
  for (size_t i = 0; i < batch->size(); ++i) Complete((*batch)[i], std::move(results[i]));
}

void WalStore::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !committer_.joinable() && (options_.run_threads || queue_.empty())) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (committer_.joinable()) committer_.join();
  if (!options_.run_threads) {
    while (RunOnce() > 0) {
    }
  }
  if (purger_ != nullptr) purger_->Stop();
  if (wal_ != nullptr) (void)wal_->Close();
  WakeWaiters(/*all=*/true);  // nothing more becomes durable: let them end
}

uint64_t WalStore::publish_generation() const {
  std::lock_guard<std::mutex> lock(waiters_mu_);
  return generation_;
}

uint64_t WalStore::CallAfter(uint64_t generation, std::function<void()> wake) {
  {
    std::lock_guard<std::mutex> lock(waiters_mu_);
    if (generation_ <= generation) {
      const uint64_t token = next_token_++;
      waiters_.emplace(token, std::move(wake));
      return token;
    }
  }
  wake();
  return 0;
}

bool WalStore::CancelCall(uint64_t token) {
  std::lock_guard<std::mutex> lock(waiters_mu_);
  return waiters_.erase(token) > 0;
}

void WalStore::WakeWaiters(bool all) {
  std::lock_guard<std::mutex> lock(waiters_mu_);
  if (!all) ++generation_;
  if (all) generation_ = UINT64_MAX;
  for (auto& [token, wake] : waiters_) wake();
  waiters_.clear();
}

}  // namespace walrus
