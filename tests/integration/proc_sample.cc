#include "tests/integration/proc_sample.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/integration/rpc_util.h"

namespace walrus::testing {

ProcSample SampleProcess(pid_t pid) {
  ProcSample sample;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipWhitespace());
    if (parts.size() < 2) continue;
    if (parts[0] == "VmRSS:") {
      uint64_t kib = 0;
      if (absl::SimpleAtoi(parts[1], &kib)) sample.rss_bytes = kib * 1024;
    } else if (parts[0] == "Threads:") {
      (void)absl::SimpleAtoi(parts[1], &sample.threads);
    }
  }
  if (DIR* dir = opendir(absl::StrCat("/proc/", pid, "/fd").c_str()); dir != nullptr) {
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.') ++sample.fds;
    }
    closedir(dir);
  }
  return sample;
}

double ScrapeMetric(int port, const std::string& name) {
  std::istringstream body(HttpGet(port, "/metrics"));
  for (std::string line; std::getline(body, line);) {
    if (line.size() > name.size() && line.compare(0, name.size(), name) == 0 &&
        line[name.size()] == ' ') {
      double value = 0;
      if (absl::SimpleAtod(line.substr(name.size() + 1), &value)) return value;
    }
  }
  return -1;
}

}  // namespace walrus::testing
