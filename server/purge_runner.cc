#include "server/purge_runner.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/purge.h"

namespace walrus {

PurgeRunner::PurgeRunner(FileSystem* fs, std::string wal_dir, uint64_t retain_released_segments,
                         SegmentPins* pins, ServerMetrics* metrics)
    : fs_(fs),
      wal_dir_(std::move(wal_dir)),
      retain_(retain_released_segments),
      pins_(pins),
      metrics_(metrics) {}

PurgeRunner::~PurgeRunner() { Stop(); }

void PurgeRunner::StartThread() {
  thread_ = std::thread([this] { Loop(); });
}

void PurgeRunner::Request(uint64_t first_unreleased_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (first_unreleased_seq != 0) first_unreleased_seq_ = first_unreleased_seq;
  requested_ = true;
  cv_.notify_one();
}

void PurgeRunner::SetFirstUnreleased(uint64_t first_unreleased_seq) {
  std::lock_guard<std::mutex> lock(mu_);
  first_unreleased_seq_ = first_unreleased_seq;
}

bool PurgeRunner::RunPending() {
  uint64_t first = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!requested_) return false;
    requested_ = false;
    first = first_unreleased_seq_;
  }
  if (first == 0) return false;
  Run(first);
  return true;
}

void PurgeRunner::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::string PurgeRunner::blocked_by() const {
  std::lock_guard<std::mutex> lock(mu_);
  return blocked_;
}

void PurgeRunner::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    auto wait = blocked_.empty() ? std::chrono::seconds(30) : std::chrono::seconds(1);
    cv_.wait_for(lock, wait, [this] { return stopping_ || requested_; });
    if (stopping_) break;
    requested_ = false;
    const uint64_t first = first_unreleased_seq_;
    if (first == 0) continue;
    lock.unlock();
    Run(first);
    lock.lock();
  }
}

void PurgeRunner::Run(uint64_t first_unreleased_seq) {
  std::lock_guard<std::mutex> running(run_mu_);
  PurgeReport report;
  absl::StatusOr<PurgeReport> done =
      PurgeReleased(fs_, wal_dir_, PurgePolicy{first_unreleased_seq, retain_}, pins_, &report);
  if (!report.purged.empty()) spdlog::info("purge: {}", report.Describe());
  if (!done.ok()) {
    spdlog::error("purge of {} failed (the log stays contiguous; retrying later): {}", wal_dir_,
                  std::string(done.status().message()));
  }
  std::string blocked;
  if (report.blocked.has_value()) {
    blocked = absl::StrCat(report.blocked->file, ": ", report.blocked->holder);
  }
  std::string last_blocked = blocked_by();
  const bool newly_blocked = !blocked.empty() && blocked != last_blocked;
  if (newly_blocked) {
    spdlog::warn(
        "purge blocked: {} and every later segment stay until it goes ({} released segments "
        "on disk, policy keeps {})",
        blocked, report.released, retain_);
  } else if (blocked.empty() && !last_blocked.empty()) {
    spdlog::info("purge unblocked: {}", report.Describe());
  }
  if (metrics_ != nullptr) {
    metrics_->ObservePurge(report.purged.size(), report.purged_bytes, !blocked.empty(),
                           newly_blocked);
  }
  std::lock_guard<std::mutex> lock(mu_);
  blocked_ = blocked;
}

}  // namespace walrus
