// How walrus-bench runs a measurement: one thread per client, until the
// duration is over or a client sets *stop (it failed).
#ifndef WALRUS_CLIENT_BENCH_RUN_CLIENTS_H_
#define WALRUS_CLIENT_BENCH_RUN_CLIENTS_H_

#include <atomic>
#include <cstdint>
#include <functional>

namespace walrus {

// Runs `client(i)` for i in [0, clients) on its own thread; sets *stop when
// `seconds` have passed (or at once when a client set it) and waits for every
// thread. Returns the seconds from the start to the last thread's end.
double RunClientsFor(uint64_t clients, double seconds, std::atomic<bool>* stop,
                     const std::function<void(uint64_t i)>& client);

}  // namespace walrus

#endif  // WALRUS_CLIENT_BENCH_RUN_CLIENTS_H_
