#include "client/bench/metrics_scrape.h"

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace walrus {
namespace {

// A connected TCP socket to `host`:`port`, closed on destruction.
class Socket {
 public:
  ~Socket() {
    if (fd_ >= 0) close(fd_);
  }
  absl::Status Connect(const std::string& host, const std::string& port,
                       std::chrono::milliseconds timeout) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return absl::UnavailableError(absl::StrCat("resolving ", host, ": ", gai_strerror(rc)));
    }
    std::string error = "no address";
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
      if (fd < 0) continue;
      // Linux applies SO_SNDTIMEO to connect() too.
      timeval tv{static_cast<time_t>(timeout.count() / 1000),
                 static_cast<suseconds_t>(timeout.count() % 1000 * 1000)};
      setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
        fd_ = fd;
        break;
      }
      error = std::strerror(errno);
      close(fd);
    }
    freeaddrinfo(found);
    if (fd_ < 0)
      return absl::UnavailableError(absl::StrCat("connecting to ", host, ":", port, ": ", error));
    return absl::OkStatus();
  }
  absl::Status SendAll(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return absl::UnavailableError(absl::StrCat("sending: ", std::strerror(errno)));
      data.remove_prefix(static_cast<size_t>(n));
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::string> ReceiveAll() {
    std::string out;
    char buf[16384];
    while (true) {
      ssize_t n = recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return absl::UnavailableError(absl::StrCat("receiving: ", std::strerror(errno)));
      if (n == 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
};

}  // namespace

absl::StatusOr<std::string> FetchMetrics(const std::string& address,
                                         std::chrono::milliseconds timeout) {
  size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics address '", address, "' is not host:port"));
  }
  std::string host = address.substr(0, colon), port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  Socket socket;
  if (absl::Status s = socket.Connect(host, port, timeout); !s.ok()) return s;
  std::string request = absl::StrCat("GET /metrics HTTP/1.0\r\nHost: ", address,
                                     "\r\nAccept: text/plain\r\nConnection: close\r\n\r\n");
  if (absl::Status s = socket.SendAll(request); !s.ok()) return s;
  absl::StatusOr<std::string> response = socket.ReceiveAll();
  if (!response.ok()) return response.status();
  return HttpResponseBody(*response);
}

absl::StatusOr<std::string> HttpResponseBody(absl::string_view response) {
  size_t header_end = response.find("\r\n\r\n");
  if (header_end == absl::string_view::npos) {
    return absl::UnavailableError("truncated HTTP response (no end of headers)");
  }
  absl::string_view head = response.substr(0, header_end);
  absl::string_view body = response.substr(header_end + 4);
  std::vector<absl::string_view> lines = absl::StrSplit(head, "\r\n");
  std::vector<absl::string_view> status_line = absl::StrSplit(lines[0], ' ');
  if (status_line.size() < 2 || !absl::StartsWith(status_line[0], "HTTP/") ||
      status_line[1] != "200") {
    return absl::UnavailableError(absl::StrCat("metrics endpoint answered '", lines[0], "'"));
  }
  bool chunked = false;
  for (size_t i = 1; i < lines.size(); ++i) {
    std::string lower = absl::AsciiStrToLower(lines[i]);
    if (absl::StartsWith(lower, "transfer-encoding:") && absl::StrContains(lower, "chunked")) {
      chunked = true;
    }
  }
  if (!chunked) return std::string(body);
  std::string out;
  while (true) {
    size_t line_end = body.find("\r\n");
    if (line_end == absl::string_view::npos) return absl::UnavailableError("truncated chunk");
    absl::string_view size_text = body.substr(0, line_end);
    size_text = size_text.substr(0, size_text.find(';'));  // chunk extensions
    uint64_t size = 0;
    if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_text), &size)) {
      return absl::UnavailableError("bad chunk size in HTTP response");
    }
    body.remove_prefix(line_end + 2);
    if (size == 0) return out;
    if (body.size() < size + 2) return absl::UnavailableError("truncated chunk");
    out.append(body.data(), size);
    body.remove_prefix(size + 2);
  }
}

absl::StatusOr<double> SumMetricSamples(absl::string_view exposition, absl::string_view name) {
  double sum = 0;
  bool found = false;
  for (absl::string_view line : absl::StrSplit(exposition, '\n')) {
    if (line.empty() || line[0] == '#' || !absl::StartsWith(line, name)) continue;
    absl::string_view rest = line.substr(name.size());
    if (!rest.empty() && rest[0] == '{') {
      // Skip the label set; label values are quoted and may hold '}'.
      bool quoted = false;
      size_t i = 1;
      for (; i < rest.size(); ++i) {
        if (quoted && rest[i] == '\\') {
          ++i;
        } else if (rest[i] == '"') {
          quoted = !quoted;
        } else if (!quoted && rest[i] == '}') {
          break;
        }
      }
      if (i >= rest.size()) continue;  // malformed; not ours to judge
      rest.remove_prefix(i + 1);
    }
    if (rest.empty() || (rest[0] != ' ' && rest[0] != '\t')) continue;  // a longer name
    rest = absl::StripLeadingAsciiWhitespace(rest);
    absl::string_view value = rest.substr(0, rest.find_first_of(" \t"));
    double v;
    if (!absl::SimpleAtod(value, &v)) continue;
    sum += v;
    found = true;
  }
  if (!found) return absl::NotFoundError(absl::StrCat("no sample of ", name));
  return sum;
}

}  // namespace walrus
