#include "server/listeners.h"

#include <arpa/inet.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <netinet/in.h>
#include <sys/stat.h>

#include <cerrno>
#include <climits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/errors.h"
#include "core/fs.h"
#include "server/tls_files.h"

namespace walrus {
namespace {

int ClampMs(std::chrono::microseconds d) {
  int64_t ms = d.count() / 1000;
  return static_cast<int>(std::min<int64_t>(ms, INT_MAX));
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TlsCredentials(
    const Config& c, std::shared_ptr<ValidatedTlsFiles>* files_out) {
  // gRPC reads validated copies (server/tls_files.h): a mismatched or broken
  // pair stops walrusd here, and after start it is logged and never served.
  absl::StatusOr<std::unique_ptr<ValidatedTlsFiles>> files =
      ValidatedTlsFiles::Create({c.tls_cert_file, c.tls_key_file, c.tls_ca_file});
  if (!files.ok()) return files.status();
  std::shared_ptr<ValidatedTlsFiles> validated = std::move(*files);
  // The provider re-reads the copies every refresh interval and hands new
  // ones to new handshakes; connections already up keep theirs.
  auto refresh = static_cast<unsigned int>(std::max<int64_t>(
      1, std::chrono::duration_cast<std::chrono::seconds>(c.tls_refresh_interval).count()));
  auto provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
      validated->key_path(), validated->cert_path(), validated->ca_path(), refresh);
  validated->StartWatching(c.tls_refresh_interval);
  *files_out = validated;
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!c.tls_ca_file.empty()) options.watch_root_certs();
  options.set_cert_request_type(
      c.tls_require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
      : c.tls_ca_file.empty()   ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::experimental::TlsServerCredentials(options);
  if (credentials == nullptr) {
    return absl::InvalidArgumentError("gRPC refused the TLS configuration");
  }
  return credentials;
}

}  // namespace

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost")) return true;
  std::string h(host);
  in_addr v4;
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  if (inet_pton(AF_INET6, h.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_LOOPBACK(&v6)) return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
  }
  return false;
}

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& spec) {
  ListenAddress out;
  out.address = spec;
  if (absl::StartsWith(spec, "unix-abstract:")) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen ", spec,
                     ": abstract Unix sockets are refused (no file permissions protect them; any "
                     "local process could connect); use unix:PATH"));
  }
  if (absl::StartsWith(spec, "unix:")) {
    out.kind = ListenAddress::Kind::kUnix;
    absl::string_view path = absl::string_view(spec).substr(5);
    if (absl::StartsWith(path, "//")) path.remove_prefix(2);  // unix:///abs/path
    if (path.empty()) return absl::InvalidArgumentError("--listen unix: needs a PATH");
    if (path[0] == '@' || path[0] == '\0') {
      return absl::InvalidArgumentError(
          absl::StrCat("--listen ", spec,
                       ": abstract Unix sockets are refused (no file permissions "
                       "protect them); use unix:PATH with a file path"));
    }
    out.path = std::string(path);
    return out;
  }
  size_t colon = spec.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(spec.substr(colon + 1), &port) ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--listen ", spec, ": want HOST:PORT, [IPv6]:PORT or unix:PATH"));
  }
  absl::string_view host = absl::string_view(spec).substr(0, colon);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]")) {
    host = host.substr(1, host.size() - 2);
  }
  out.host = std::string(host);
  out.loopback = IsLoopbackHost(host);
  return out;
}

absl::StatusOr<ListenerPlan> PlanListeners(const Config& config) {
  ListenerPlan plan;
  std::vector<ListenAddress> addresses;
  for (const std::string& spec : config.listen) {
    absl::StatusOr<ListenAddress> address = ParseListenAddress(spec);
    if (!address.ok()) return address.status();
    addresses.push_back(*address);
  }
  if (!config.local_socket.empty()) {
    // The local socket is a file path like unix:PATH, with the same rules; a
    // gRPC listener on the same path would replace its file.
    absl::StatusOr<ListenAddress> local = ParseListenAddress("unix:" + config.local_socket);
    if (!local.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--local-socket ", config.local_socket, ": ", local.status().message()));
    }
    for (const ListenAddress& a : addresses) {
      if (a.kind == ListenAddress::Kind::kUnix && a.path == local->path) {
        return absl::InvalidArgumentError(absl::StrCat("--local-socket ", config.local_socket,
                                                       " is also a --listen address; give each "
                                                       "its own path"));
      }
    }
  }
  const bool token = !config.auth_token_file.empty();
  plan.tls = !config.tls_cert_file.empty();
  // Policy first: nothing is read or bound for a refused configuration.
  for (const ListenAddress& a : addresses) {
    if (a.kind != ListenAddress::Kind::kTcp || plan.tls || a.loopback) continue;
    if (!config.insecure) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen ", a.address,
          ": refusing plaintext on a non-loopback address (anyone who can reach it could write "
          "the log). Use TLS (--tls-cert-file, --tls-key-file), a unix:PATH socket, or a "
          "loopback address; --insecure allows it anyway"));
    }
    if (token) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--listen ", a.address,
          ": --auth-token-file over plaintext on a non-loopback address would send the token in "
          "the clear; use TLS"));
    }
  }
  // /metrics is plaintext HTTP without authentication, and what it shows
  // (sizes, indexes, the data directory) maps the deployment: the same
  // loopback-only rule as plaintext gRPC, with its own opt-in so that
  // exposing metrics to a scraper does not also allow plaintext gRPC.
  if (!config.metrics_listen.empty()) {
    absl::StatusOr<ListenAddress> metrics = ParseListenAddress(config.metrics_listen);
    if (!metrics.ok() || metrics->kind != ListenAddress::Kind::kTcp) {
      return absl::InvalidArgumentError(
          absl::StrCat("--metrics-listen ", config.metrics_listen, ": want HOST:PORT"));
    }
    if (!metrics->loopback && !config.insecure_metrics && !config.insecure) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--metrics-listen ", config.metrics_listen,
          ": refusing /metrics on a non-loopback address (plaintext HTTP without "
          "authentication; it shows the WAL's sizes, indexes and data directory to anyone who "
          "can reach it). Use a loopback address, or --insecure-metrics to allow it"));
    }
  }
  if (token) {
    absl::StatusOr<std::shared_ptr<TokenAuthenticator>> auth =
        TokenAuthenticator::Create(config.auth_token_file);
    if (!auth.ok()) return auth.status();
    plan.authenticator = *auth;
  }
  std::shared_ptr<grpc::ServerCredentials> tcp_credentials, unix_credentials;
  if (plan.tls) {
    absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> tls =
        TlsCredentials(config, &plan.tls_files);
    if (!tls.ok()) return tls.status();
    tcp_credentials = *tls;
  }
  for (const ListenAddress& a : addresses) {
    PlannedListener listener;
    listener.address = a;
    const bool is_unix = a.kind == ListenAddress::Kind::kUnix;
    std::shared_ptr<grpc::ServerCredentials>& slot = is_unix ? unix_credentials : tcp_credentials;
    if (slot == nullptr) {
      if (!token) {
        slot = grpc::InsecureServerCredentials();
      } else {
        // Token processors run on secure credentials only; local ones are
        // plaintext on the wire and refuse peers that are not local.
        slot = grpc::experimental::LocalServerCredentials(is_unix ? UDS : LOCAL_TCP);
      }
      if (token) slot->SetAuthMetadataProcessor(plan.authenticator);
    }
    listener.credentials = slot;
    listener.plaintext_on_network = !is_unix && !plan.tls && !a.loopback;
    plan.listeners.push_back(std::move(listener));
  }
  if (plan.tls && token) tcp_credentials->SetAuthMetadataProcessor(plan.authenticator);
  return plan;
}

void ApplyLimits(const Config& config, grpc::ServerBuilder* builder) {
  builder->SetMaxReceiveMessageSize(static_cast<int>(config.max_message_bytes));
  builder->SetMaxSendMessageSize(static_cast<int>(config.max_message_bytes));
  builder->AddChannelArgument(
      GRPC_ARG_MAX_CONCURRENT_STREAMS,
      static_cast<int>(std::min<uint32_t>(config.max_concurrent_streams, INT_MAX)));
  if (config.max_connection_idle.count() > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                                ClampMs(config.max_connection_idle));
  }
  if (config.max_connection_age.count() > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ClampMs(config.max_connection_age));
  }
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                              ClampMs(config.handshake_timeout));
  grpc::ResourceQuota quota("walrusd");
  quota.Resize(static_cast<size_t>(config.memory_quota_bytes));
  builder->SetResourceQuota(quota);
}

ScopedSocketUmask::ScopedSocketUmask(mode_t mode) : old_(::umask(~mode & 0777)) {}
ScopedSocketUmask::~ScopedSocketUmask() { ::umask(old_); }

absl::Status FinishUnixSocket(const std::string& path, mode_t mode) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ErrnoToStatus(errno, absl::StrCat("socket ", path));
  if (!S_ISSOCK(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a socket"));
  }
  if ((st.st_mode & 07777) != mode && ::chmod(path.c_str(), mode) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("chmod socket ", path));
  }
  if (::lstat(path.c_str(), &st) != 0 || (st.st_mode & 07777) != mode) {
    return absl::FailedPreconditionError(
        absl::StrFormat("socket %s has mode %04o, want %04o", path, st.st_mode & 07777, mode));
  }
  return absl::OkStatus();
}

}  // namespace walrus
