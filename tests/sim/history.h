// The state and steps of one simulated history (simulator.h): shared by
// simulator.cc (the steps, the requests and their answers, restarts and
// crashes) and checks.cc (recovery, the steady-state reads, backups, media
// damage). Internal to the simulator.
#ifndef WALRUS_TESTS_SIM_HISTORY_H_
#define WALRUS_TESTS_SIM_HISTORY_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "server/wal_store.h"
#include "tests/sim/generator.h"
#include "tests/sim/model.h"
#include "tests/sim/rng.h"
#include "tests/sim/simulator.h"
#include "tests/support/mem_fs.h"

namespace walrus::sim {

inline constexpr char kWalDir[] = "/data/wal";
inline constexpr char kEpochPath[] = "/data/epoch";

// "OK" or the status with its code.
std::string Text(const absl::Status& s);

struct PendingBackup {
  BackupPlan plan;
  LogState at_start;
  int steps_left = 0;
};

class History {
 public:
  History(uint64_t seed, bool verbose)
      : seed_(seed), verbose_(verbose), rng_(seed), gen_(&rng_, absl::StrCat("sim-", seed)) {}

  Result Run();

 private:
  void Trace(std::string line) {
    if (verbose_) std::fprintf(stderr, "%s\n", line.c_str());
    result_.trace.push_back(std::move(line));
  }
  void Fail(std::string what) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.failure = absl::StrCat("step ", step_, ": ", what);
    Trace("FAILED: " + result_.failure);
  }
  bool failed() const { return !result_.ok; }

  void NewFileSystem(std::unique_ptr<MemFileSystem> fs);
  void RequestStep();
  void Submit(const Request& r, size_t i);
  void ProcessAnswers(const std::vector<Request>& reqs);
  void Restart();
  void Crash(bool now);
  CrashOptions RandomCrash(std::string* what);
  void CloseStore();
  // Opens the store after a restart or crash and checks it serves one of
  // `candidates`; `max_fences` fences may have been in flight.
  void OpenStore(const std::vector<LogState>& candidates, uint64_t max_fences);
  std::string Mismatch(const LogState& want);
  // Ranged reads (Entries, Term) of the log after `marker` (the newest)
  // against `want`; "" if they agree.
  std::string RangedMismatch(const LogState& want, const Marker& marker);
  void CheckSteady(bool all_markers);
  void StartBackup();
  void FinishBackup();
  void CheckBackup(const std::string& dest, const LogState& want);
  void Damage();
  void EndEnospc();

  const uint64_t seed_;
  const bool verbose_;
  Rng rng_;
  Generator gen_;
  Result result_;
  int step_ = 0;

  std::unique_ptr<MemFileSystem> fs_;
  StoreOptions options_;
  std::unique_ptr<WalStore> store_;

  LogState acked_;
  bool fail_stopped_ = false;
  std::vector<Record> in_flight_;  // valid, not acknowledged, maybe durable
  std::vector<Request> recent_;

  // Crash at the crash_at_-th sync (file or directory) from now.
  uint64_t syncs_ = 0;
  uint64_t crash_at_ = 0;
  CrashOptions crash_options_;
  std::unique_ptr<MemFileSystem> image_;
  std::string crash_point_;

  // Answers of the current step.
  std::vector<std::optional<absl::StatusOr<uint64_t>>> answers_;
  std::vector<int> batch_of_;
  std::vector<bool> after_crash_;
  int run_ = 0;
  std::vector<bool> stopped_before_run_;  // [run]: fail-stopped before it

  int enospc_steps_ = 0;
  bool io_error_armed_ = false;
  std::optional<PendingBackup> backup_;
  int backups_ = 0;
};

}  // namespace walrus::sim

#endif  // WALRUS_TESTS_SIM_HISTORY_H_
