#include "client/walrusctl/progress.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace walrus {

std::string HumanBytes(uint64_t n) {
  if (n < 10'000) return absl::StrCat(n, " B");
  if (n < 10'000'000) return absl::StrFormat("%.1f kB", n / 1e3);
  if (n < 10'000'000'000) return absl::StrFormat("%.1f MB", n / 1e6);
  return absl::StrFormat("%.1f GB", n / 1e9);
}

ProgressMeter::ProgressMeter(std::string what, std::string unit, std::string items, FILE* out)
    : what_(std::move(what)),
      unit_(std::move(unit)),
      items_(std::move(items)),
      out_(out),
      enabled_(isatty(fileno(out)) == 1) {}

ProgressMeter ProgressMeter::ForceEnabled(std::string what, FILE* out) {
  ProgressMeter meter(std::move(what), "bytes", "files", out);
  meter.enabled_ = true;
  return meter;
}

double ProgressMeter::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double ProgressMeter::rate() const {
  double seconds = elapsed_seconds();
  return seconds > 0 ? done_ / seconds : 0;
}

void ProgressMeter::Update(uint64_t done, uint64_t total, uint64_t items_done,
                           uint64_t items_total) {
  done_ = done;
  total_ = total;
  items_done_ = items_done;
  items_total_ = items_total;
  if (!enabled_ || finished_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw();
}

void ProgressMeter::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!enabled_) return;
  Draw();
  std::fputc('\n', out_);
  std::fflush(out_);
}

std::string ProgressMeter::Line() const {
  auto count = [&](uint64_t n) {
    return unit_ == "bytes" ? HumanBytes(n) : absl::StrCat(n, " ", unit_);
  };
  std::string line = absl::StrCat(what_, ": ", count(done_));
  if (total_ > 0) {
    absl::StrAppend(&line, " of ", count(total_), " (",
                    static_cast<int>(100.0 * std::min(done_, total_) / total_), "%)");
  }
  if (!items_.empty() && items_total_ > 0) {
    absl::StrAppend(&line, ", ", items_done_, " of ", items_total_, " ", items_);
  }
  const double r = rate();
  if (r > 0) {
    absl::StrAppend(&line, ", ",
                    unit_ == "bytes" ? absl::StrCat(HumanBytes(static_cast<uint64_t>(r)), "/s")
                                     : absl::StrFormat("%.0f %s/s", r, unit_));
    if (total_ > done_) {
      const uint64_t left = static_cast<uint64_t>((total_ - done_) / r);
      absl::StrAppendFormat(&line, ", %d:%02d:%02d left", left / 3600, left / 60 % 60, left % 60);
    }
  }
  return line;
}

void ProgressMeter::Draw() {
  // \r and clear-to-end-of-line: the line shrinks as well as grows.
  std::fprintf(out_, "\r%s\033[K", Line().c_str());
  std::fflush(out_);
}

}  // namespace walrus
