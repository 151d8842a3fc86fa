#include "server/read_pool.h"

#include <spdlog/spdlog.h>

#include "absl/strings/str_cat.h"

namespace walrus {

ReadPool::ReadPool(size_t workers, Clock::duration queue_timeout, ServerMetrics* metrics)
    : workers_(workers), queue_timeout_(queue_timeout), metrics_(metrics) {
  for (size_t i = 0; i < workers_; ++i) threads_.emplace_back([this] { Work(); });
  threads_.emplace_back([this] { ExpireQueued(); });
}

ReadPool::~ReadPool() {
  BeginShutdown();
  for (std::thread& t : threads_) t.join();
}

absl::Status ReadPool::Busy(const char* what) const {
  const double seconds = std::chrono::duration<double>(queue_timeout_).count();
  return absl::ResourceExhaustedError(
      absl::StrCat(what, " refused: all ", workers_,
                   " read workers are busy (ReadAll, Backup and Status share them) and none "
                   "became free within ",
                   seconds, " s (--read-workers, --read-queue-timeout); retry later"));
}

void ReadPool::PublishLocked() {
  if (metrics_ == nullptr) return;
  metrics_->SetReadWorkersBusy(busy_);
  metrics_->SetReadQueueLength(queue_.size());
}

void ReadPool::Submit(const char* what, std::function<void()> task,
                      std::function<void(absl::Status)> refuse) {
  absl::Status refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      refused = absl::UnavailableError(
          absl::StrCat(what, " refused: walrusd is shutting down; retry on the next instance"));
    } else if (queue_.size() >= kMaxQueued) {
      refused = Busy(what);
    } else {
      queue_.push_back({what, Clock::now() + queue_timeout_, std::move(task), refuse});
      PublishLocked();
      work_cv_.notify_one();
      if (queue_.size() == 1) expire_cv_.notify_one();
      return;
    }
  }
  if (refused.code() == absl::StatusCode::kResourceExhausted && metrics_ != nullptr) {
    metrics_->ReadCallRefused();
  }
  refuse(refused);
}

void ReadPool::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and nothing left
    Queued call = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    PublishLocked();
    expire_cv_.notify_one();
    lock.unlock();
    call.task();
    call = {};  // the task's captures go before the worker counts as free
    lock.lock();
    --busy_;
    PublishLocked();
  }
}

// Refuses queued calls whose deadline passed. Its own thread, because the
// workers may all be stuck in slow tasks exactly when calls expire.
void ReadPool::ExpireQueued() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (stopping_ && queue_.empty()) return;
    if (queue_.empty()) {
      expire_cv_.wait(lock);
      continue;
    }
    const Clock::time_point deadline = queue_.front().deadline;
    if (Clock::now() < deadline) {
      expire_cv_.wait_until(lock, deadline);
      continue;
    }
    std::vector<Queued> expired;
    while (!queue_.empty() && (stopping_ || queue_.front().deadline <= Clock::now())) {
      expired.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    PublishLocked();
    const bool stopping = stopping_;
    lock.unlock();
    for (Queued& call : expired) {
      absl::Status status =
          stopping
              ? absl::UnavailableError(absl::StrCat(
                    call.what, " refused: walrusd is shutting down; retry on the next instance"))
              : Busy(call.what);
      if (!stopping) {
        if (metrics_ != nullptr) metrics_->ReadCallRefused();
        spdlog::warn("{}", std::string(status.message()));
      }
      call.refuse(status);
    }
    lock.lock();
  }
}

void ReadPool::BeginShutdown() {
  std::deque<Queued> refused;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    refused.swap(queue_);
    PublishLocked();
    work_cv_.notify_all();
    expire_cv_.notify_all();
  }
  for (Queued& call : refused) {
    call.refuse(absl::UnavailableError(
        absl::StrCat(call.what, " refused: walrusd is shutting down; retry on the next instance")));
  }
}

}  // namespace walrus
