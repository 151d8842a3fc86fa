// Progress of a long walrusctl command (backup, verify, dump) on a terminal:
//
//   backup: 41.9 MB of 128.0 MB (32%), 3 of 10 files, 210.3 MB/s, 0:00:01 left
//
// Drawn on one line of stderr, at most ten times a second, and only when
// stderr is a terminal: piped or redirected output stays clean (scripts read
// the --json summary on stdout instead).
//
// Thread-safety: none; one command drives it.
#ifndef WALRUS_CLIENT_WALRUSCTL_PROGRESS_H_
#define WALRUS_CLIENT_WALRUSCTL_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace walrus {

class ProgressMeter {
 public:
  // `what` starts the line; `unit` names what the first count counts
  // ("bytes" are shown as kB/MB/GB, anything else as a plain count); `items`
  // names the second count ("files", "segments"; empty: not shown).
  ProgressMeter(std::string what, std::string unit = "bytes", std::string items = "files",
                FILE* out = stderr);
  // Same, drawing whether or not `out` is a terminal (for tests).
  static ProgressMeter ForceEnabled(std::string what, FILE* out);

  // Redraws if enabled and the last draw is 100 ms old. `total` 0: unknown.
  void Update(uint64_t done, uint64_t total, uint64_t items_done = 0, uint64_t items_total = 0);
  // Draws the final state and ends the line. Idempotent.
  void Finish();

  bool enabled() const { return enabled_; }
  double elapsed_seconds() const;
  // done per second since the start (0 before any time passed).
  double rate() const;

  // The line Update would draw (no carriage return), for tests.
  std::string Line() const;

 private:
  void Draw();

  std::string what_, unit_, items_;
  FILE* out_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
  std::chrono::steady_clock::time_point last_draw_{};
  uint64_t done_ = 0, total_ = 0, items_done_ = 0, items_total_ = 0;
};

// "12.3 MB" (decimal units, as disks are sold).
std::string HumanBytes(uint64_t n);

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_PROGRESS_H_
