#include "server/byte_budget.h"

#include <algorithm>
#include <vector>

namespace walrus {

void ByteBudget::Charge(uint64_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  held_ += bytes;
  if (metrics_ != nullptr) metrics_->SetAppendHeldBytes(held_);
}

void ByteBudget::Release(uint64_t bytes) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> wake(wake_mu_);
  std::vector<Waiter*> ready;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held_ -= std::min(bytes, held_);
    if (metrics_ != nullptr) metrics_->SetAppendHeldBytes(held_);
    if (held_ < limit_) {
      ready.assign(waiters_.begin(), waiters_.end());
      waiters_.clear();
    }
  }
  // Outside mu_: a waiter that reads again calls WaitOrAdmit.
  for (Waiter* waiter : ready) waiter->BudgetAvailable();
}

bool ByteBudget::WaitOrAdmit(Waiter* waiter) {
  std::lock_guard<std::mutex> lock(mu_);
  if (held_ < limit_) return true;
  if (std::find(waiters_.begin(), waiters_.end(), waiter) == waiters_.end()) {
    waiters_.push_back(waiter);
  }
  return false;
}

void ByteBudget::Forget(Waiter* waiter) {
  std::lock_guard<std::mutex> wake(wake_mu_);
  std::lock_guard<std::mutex> lock(mu_);
  waiters_.remove(waiter);
}

uint64_t ByteBudget::held() const {
  std::lock_guard<std::mutex> lock(mu_);
  return held_;
}

}  // namespace walrus
