// The read pool and the AppendStream byte budget, in-process: who runs, who
// is refused with what, who is woken.
#include "server/read_pool.h"

#include <future>

#include "gtest/gtest.h"
#include "server/byte_budget.h"

namespace walrus {
namespace {

using std::chrono::milliseconds;

TEST(ReadPool, AllWorkersBusy_QueuedCallRefusedResourceExhaustedNamingTheWorkers) {
  // Declared before the pool: its worker uses them until the pool joins it.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::promise<void> running;
  ReadPool pool(1, milliseconds(50), nullptr);
  pool.Submit(
      "Backup",
      [&] {
        running.set_value();
        released.wait();
      },
      [](absl::Status) { ADD_FAILURE() << "the first call must run"; });
  running.get_future().wait();
  std::promise<absl::Status> refused;
  pool.Submit(
      "Status", [] { ADD_FAILURE() << "no worker was free"; },
      [&](absl::Status s) { refused.set_value(s); });
  absl::Status status = refused.get_future().get();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(status.message().find("Status refused: all 1 read workers are busy"),
            absl::string_view::npos)
      << status;
  release.set_value();
}

TEST(ReadPool, WorkerFreedBeforeTheTimeout_QueuedCallRuns) {
  // Declared before the pool: its worker uses them until the pool joins it.
  std::promise<void> release;
  std::promise<void> ran;
  ReadPool pool(1, std::chrono::hours(1), nullptr);
  pool.Submit(
      "ReadAll", [&] { release.get_future().wait(); }, [](absl::Status) {});
  pool.Submit(
      "ReadAll", [&] { ran.set_value(); },
      [](absl::Status s) { ADD_FAILURE() << "refused: " << s; });
  release.set_value();
  ran.get_future().wait();
}

TEST(ReadPool, BeginShutdown_QueuedAndLaterCallsRefusedUnavailable) {
  // Declared before the pool: its worker uses them until the pool joins it.
  std::promise<void> release;
  std::promise<void> running;
  ReadPool pool(1, std::chrono::hours(1), nullptr);
  pool.Submit(
      "Backup",
      [&] {
        running.set_value();
        release.get_future().wait();
      },
      [](absl::Status) {});
  running.get_future().wait();
  std::promise<absl::Status> queued;
  pool.Submit(
      "ReadAll", [] {}, [&](absl::Status s) { queued.set_value(s); });
  pool.BeginShutdown();
  EXPECT_EQ(queued.get_future().get().code(), absl::StatusCode::kUnavailable);
  absl::Status later;
  pool.Submit(
      "Status", [] {}, [&](absl::Status s) { later = s; });
  EXPECT_EQ(later.code(), absl::StatusCode::kUnavailable);
  release.set_value();
}

class CountingWaiter : public ByteBudget::Waiter {
 public:
  void BudgetAvailable() override { ++woken; }
  int woken = 0;
};

TEST(ByteBudget, Spent_WaiterWokenOnceWhenReleasedBelowTheLimit) {
  ByteBudget budget(100, nullptr);
  CountingWaiter a, b;
  EXPECT_TRUE(budget.WaitOrAdmit(&a));
  budget.Charge(150);  // one request over the limit is taken whole
  EXPECT_FALSE(budget.WaitOrAdmit(&a));
  EXPECT_FALSE(budget.WaitOrAdmit(&a));  // registered once
  EXPECT_FALSE(budget.WaitOrAdmit(&b));
  budget.Release(40);  // 110: still spent
  EXPECT_EQ(a.woken + b.woken, 0);
  budget.Release(20);  // 90
  EXPECT_EQ(a.woken, 1);
  EXPECT_EQ(b.woken, 1);
  budget.Release(90);
  EXPECT_EQ(a.woken, 1) << "woken only for a wait";
  EXPECT_EQ(budget.held(), 0u);
}

TEST(ByteBudget, ForgottenWaiter_IsNotWoken) {
  ByteBudget budget(10, nullptr);
  CountingWaiter a;
  budget.Charge(10);
  EXPECT_FALSE(budget.WaitOrAdmit(&a));
  budget.Forget(&a);
  budget.Release(10);
  EXPECT_EQ(a.woken, 0);
}

}  // namespace
}  // namespace walrus
