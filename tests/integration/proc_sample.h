// What a process holds, read from /proc, and walrusd's /metrics: the figures
// the resource-bound tests and the soak test compare.
#ifndef WALRUS_TESTS_INTEGRATION_PROC_SAMPLE_H_
#define WALRUS_TESTS_INTEGRATION_PROC_SAMPLE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace walrus::testing {

struct ProcSample {
  uint64_t rss_bytes = 0;  // VmRSS
  int threads = 0;         // Threads
  int fds = 0;             // entries of /proc/PID/fd
};

// The process's figures now; all zero if it is gone.
ProcSample SampleProcess(pid_t pid);

// The value of the sample `name` (the whole text before the value, labels
// included) in the /metrics page served on 127.0.0.1:`port`; -1 if the page
// or the sample is missing.
double ScrapeMetric(int port, const std::string& name);

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_INTEGRATION_PROC_SAMPLE_H_
