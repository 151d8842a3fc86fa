// walrus_sim: runs seeded simulated histories (simulator.h) and reports the
// first failing seed with a one-line reproduction.
//
//   walrus_sim [--seeds N] [--start S] [--seconds T] [--keep-going]
//   walrus_sim --seed S [--verbose]
//
// --seeds N runs seeds S..S+N-1 (default 2000 from 1); --seconds T stops
// starting new histories after T seconds (a long run: --seeds 1000000000
// --seconds 3600). --keep-going runs every seed and lists each distinct
// failure (its message with the numbers masked) with its first seed and count.
#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "tests/sim/simulator.h"

namespace {

// The failure with its numbers masked, so one bug counts once.
std::string Signature(const std::string& failure) {
  std::string out;
  for (char c : failure) {
    if (c >= '0' && c <= '9') {
      if (out.empty() || out.back() != '#') out += '#';
    } else {
      out += c;
    }
    if (out.size() >= 150) break;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t start = 1, count = 2000;
  bool single = false, verbose = false, keep_going = false;
  double seconds = 0;
  for (int i = 1; i < argc; ++i) {
    auto value = [&](const char* flag) -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", flag);
        std::exit(2);
      }
      return argv[++i];
    };
    if (!std::strcmp(argv[i], "--seed")) {
      start = std::strtoull(value("--seed"), nullptr, 10);
      count = 1;
      single = true;
    } else if (!std::strcmp(argv[i], "--seeds")) {
      count = std::strtoull(value("--seeds"), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--start")) {
      start = std::strtoull(value("--start"), nullptr, 10);
    } else if (!std::strcmp(argv[i], "--seconds")) {
      seconds = std::strtod(value("--seconds"), nullptr);
    } else if (!std::strcmp(argv[i], "--verbose")) {
      verbose = true;
    } else if (!std::strcmp(argv[i], "--keep-going")) {
      keep_going = true;
    } else {
      std::fprintf(stderr,
                   "usage: %s [--seeds N] [--start S] [--seconds T] [--keep-going] | --seed S "
                   "[--verbose]\n",
                   argv[0]);
      return 2;
    }
  }
  // The store's own log lines (purges, repairs) would drown the report.
  spdlog::set_level(spdlog::level::off);
  const auto began = std::chrono::steady_clock::now();
  uint64_t ran = 0, failed = 0, steps = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> signatures;  // first seed, count
  for (uint64_t seed = start; seed < start + count; ++seed) {
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    if (seconds > 0 && elapsed >= seconds) break;
    walrus::sim::Result result = walrus::sim::RunHistory(seed, verbose && single);
    ++ran;
    steps += static_cast<uint64_t>(result.steps);
    if (result.ok) continue;
    ++failed;
    if (keep_going) {
      auto [it, added] = signatures.try_emplace(Signature(result.failure), seed, 0);
      ++it->second.second;
      if (added)
        std::printf("seed %llu: %s\n", static_cast<unsigned long long>(seed),
                    result.failure.c_str());
      continue;
    }
    if (!verbose) {
      const size_t from = result.trace.size() > 60 ? result.trace.size() - 60 : 0;
      if (from > 0) std::printf("... (%zu earlier trace lines)\n", from);
      for (size_t i = from; i < result.trace.size(); ++i) {
        std::printf("%s\n", result.trace[i].c_str());
      }
    }
    std::printf("walrus_sim: FAILED seed %llu after %llu histories: %s\n",
                static_cast<unsigned long long>(seed), static_cast<unsigned long long>(ran),
                result.failure.c_str());
    std::printf("reproduce: %s --seed %llu --verbose\n", argv[0],
                static_cast<unsigned long long>(seed));
    return 1;
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  if (keep_going && failed > 0) {
    std::printf("distinct failures (first seed, histories):\n");
    for (const auto& [sig, where] : signatures) {
      std::printf("  %llu x%llu  %s\n", static_cast<unsigned long long>(where.first),
                  static_cast<unsigned long long>(where.second), sig.c_str());
    }
  }
  std::printf("walrus_sim: %llu histories (seeds %llu..%llu), %llu steps, %llu failed, %.1f s\n",
              static_cast<unsigned long long>(ran), static_cast<unsigned long long>(start),
              static_cast<unsigned long long>(start + ran - 1),
              static_cast<unsigned long long>(steps), static_cast<unsigned long long>(failed),
              elapsed);
  return failed == 0 ? 0 : 1;
}
