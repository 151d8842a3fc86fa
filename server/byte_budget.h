// The daemon-wide byte budget of AppendStreams. A stream holds bytes from the
// moment it reads a request until the request is durable (the request) and
// its acknowledgement has been written to the client (the acknowledgement).
// Each stream also has a budget of its own (in the stream); this one bounds
// the sum across streams, so many streams cannot together take the memory
// that no single one may.
//
// Over budget means backpressure, never dropping: a stream that finds the
// budget spent stops calling StartRead and waits (WaitOrAdmit) until bytes
// are released, so gRPC's flow control pushes back on the client. A request
// already read is always taken, so the budget can be exceeded by at most one
// request per stream (--max-message-bytes); that is what lets a request
// larger than the budget through instead of deadlocking.
//
// Thread-safety: every method may be called from any thread, but Charge,
// Release and Forget must not be called with a waiter's own lock held
// (Release and Forget call or wait for Waiter::BudgetAvailable, which takes
// it). WaitOrAdmit may be.
#ifndef WALRUS_SERVER_BYTE_BUDGET_H_
#define WALRUS_SERVER_BYTE_BUDGET_H_

#include <cstdint>
#include <list>
#include <mutex>

#include "server/metrics.h"

namespace walrus {

class ByteBudget {
 public:
  // A stream waiting for bytes to be released.
  class Waiter {
   public:
    virtual ~Waiter() = default;
    // Called once per WaitOrAdmit that returned false, when the budget is no
    // longer spent (it may be spent again by the time the waiter looks).
    virtual void BudgetAvailable() = 0;
  };

  // `limit` > 0; `metrics` may be null and must outlive this.
  ByteBudget(uint64_t limit, ServerMetrics* metrics) : limit_(limit), metrics_(metrics) {}

  uint64_t limit() const { return limit_; }
  // Adds bytes a stream now holds. Never refuses: whether to read more is
  // decided before reading, by WaitOrAdmit.
  void Charge(uint64_t bytes);
  // Returns bytes; wakes the waiters if the budget is no longer spent.
  void Release(uint64_t bytes);
  // True if the budget is not spent (the caller may read one more request).
  // Otherwise registers `waiter`, which is called once it is not.
  [[nodiscard]] bool WaitOrAdmit(Waiter* waiter);
  // Unregisters `waiter` and waits until no BudgetAvailable call on it is
  // running. REQUIRES: before the waiter is destroyed.
  void Forget(Waiter* waiter);
  uint64_t held() const;

 private:
  const uint64_t limit_;
  ServerMetrics* const metrics_;
  // Held while waiters are called (taken before mu_), so Forget can wait out
  // a call in progress.
  std::mutex wake_mu_;
  mutable std::mutex mu_;
  uint64_t held_ = 0;           // guarded by mu_
  std::list<Waiter*> waiters_;  // guarded by mu_
};

}  // namespace walrus

#endif  // WALRUS_SERVER_BYTE_BUDGET_H_
