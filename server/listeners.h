// How walrusd listens: which transport and credentials each --listen address
// gets, the policy that refuses unsafe ones, and the gRPC limits.
//
//   unix:PATH       Unix domain socket; the file is created with
//                   --unix-socket-mode (0600 or 0660). Abstract sockets
//                   (unix-abstract:, or a path starting with '@' or NUL) are
//                   refused: no file permissions apply to them, so any local
//                   process could connect.
//   HOST:PORT       TCP. With --tls-cert-file: TLS (mutual TLS with
//                   --tls-ca-file/--tls-require-client-cert), certificates
//                   re-read from disk every --tls-refresh-interval and served
//                   only once validated (server/tls_files.h). Without: plaintext, allowed
//                   only on loopback (127.0.0.0/8, ::1, localhost) unless
//                   --insecure, which logs a warning.
//
// With --auth-token-file every listener authenticates calls with a
// TokenAuthenticator (server/auth_token.h). gRPC runs such a processor only
// on secure credentials, so plaintext listeners then use gRPC's local
// credentials (UDS / LOCAL_TCP): the same bytes on the wire as plaintext, but
// they accept only Unix-socket or loopback peers. A token over plaintext on a
// non-loopback address would travel in the clear, so that combination is
// refused.
//
// Everything here is decided before anything binds: a refused configuration
// never opens a port.
#ifndef WALRUS_SERVER_LISTENERS_H_
#define WALRUS_SERVER_LISTENERS_H_

#include <grpcpp/grpcpp.h>
#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/auth_token.h"
#include "server/config.h"
#include "server/tls_files.h"

namespace walrus {

struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string address;  // as given; what gRPC binds
  std::string host;     // kTcp, brackets removed
  std::string path;     // kUnix: the socket file
  bool loopback = false;
};

// Parses one --listen value. INVALID_ARGUMENT for an abstract socket, an
// empty path or a TCP address without a port.
[[nodiscard]] absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& spec);

// 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) and "localhost". Names are not
// resolved: anything else counts as reachable from the network.
bool IsLoopbackHost(absl::string_view host);

// One listener with its credentials.
struct PlannedListener {
  ListenAddress address;
  std::shared_ptr<grpc::ServerCredentials> credentials;
  bool plaintext_on_network = false;  // allowed by --insecure; warn
};

// The listeners of a Config, with credentials made and the policy applied;
// holds the token authenticator and certificate provider they share.
struct ListenerPlan {
  std::vector<PlannedListener> listeners;
  std::shared_ptr<TokenAuthenticator> authenticator;  // null without a token file
  // The files gRPC's certificate provider reads (null without TLS); outlives
  // the servers built from this plan.
  std::shared_ptr<ValidatedTlsFiles> tls_files;
  bool tls = false;
};

// INVALID_ARGUMENT (naming the address and the flag that would allow it)
// for plaintext on a non-loopback address without --insecure, --metrics-listen
// on a non-loopback address without --insecure-metrics (or --insecure), a token over
// such a listener, an abstract socket, a bad address, or TLS files that are
// not a matching certificate and key (or a CA bundle without a certificate);
// the file's error if a TLS or token file cannot be read.
[[nodiscard]] absl::StatusOr<ListenerPlan> PlanListeners(const Config& config);

// Message size, concurrent streams, connection idle/age, handshake timeout
// and the memory quota of `config` onto `builder`.
void ApplyLimits(const Config& config, grpc::ServerBuilder* builder);

// Sets the process umask so that sockets bound while it lives get at most
// `mode`, and restores the old one. Creating the socket with the right mode
// leaves no window in which it is more open; walrusd's other file creations
// pass explicit modes that the stricter umask does not change.
class ScopedSocketUmask {
 public:
  explicit ScopedSocketUmask(mode_t mode);
  ~ScopedSocketUmask();
  ScopedSocketUmask(const ScopedSocketUmask&) = delete;
  ScopedSocketUmask& operator=(const ScopedSocketUmask&) = delete;

 private:
  mode_t old_;
};

// After binding: `path` must be a socket; sets its mode to exactly `mode`
// and checks it. FAILED_PRECONDITION otherwise.
[[nodiscard]] absl::Status FinishUnixSocket(const std::string& path, mode_t mode);

}  // namespace walrus

#endif  // WALRUS_SERVER_LISTENERS_H_
