#include "client/bench/run_clients.h"

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

namespace walrus {

double RunClientsFor(uint64_t clients, double seconds, std::atomic<bool>* stop,
                     const std::function<void(uint64_t i)>& client) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point began = Clock::now();
  std::vector<std::thread> threads;
  for (uint64_t i = 0; i < clients; ++i) threads.emplace_back([&client, i] { client(i); });
  const auto deadline =
      began + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (!stop->load() && Clock::now() < deadline) {
    std::this_thread::sleep_for(
        std::min<Clock::duration>(std::chrono::milliseconds(50), deadline - Clock::now()));
  }
  *stop = true;
  for (std::thread& t : threads) t.join();
  return std::chrono::duration<double>(Clock::now() - began).count();
}

}  // namespace walrus
