// The local append socket (walrusd --local-socket PATH): appends in
// length-prefixed frames on a Unix socket, for a Raft node on the same host.
// The frames and their order are in walrus.proto (LocalHello and after) and
// proto/local_frames.h.
//
// Why it exists: a durable append through gRPC pays HTTP/2 framing and
// several thread hand-offs on each side, about as much time again as the
// fdatasync itself. Here a connection is served by one thread that reads
// whatever frames have arrived, hands them to the WalStore together (so they
// share an fsync), and writes their acknowledgements back in one write. A
// single append with the committer idle is committed on the connection's own
// thread (WalStore::Commit::kInlineIfIdle): read, write, fdatasync, answer,
// with no hand-off at all.
//
// Semantics are AppendStream's: appends are acknowledged in the order they
// were read, each once it is durable; the first failure is sent (LocalError)
// after the acknowledgements of the appends before it, the appends after it
// are not written (the store checks the connection's chain flag), and the
// connection closes. A frame that is not an append, or not a valid one, ends
// the reading the same way, but the appends before it are committed and
// acknowledged. Everything else (reads, snapshots, release, fencing) stays on
// gRPC.
//
// Security: the socket file is created with --unix-socket-mode. With
// --auth-token-file the hello must carry an accepted token, or the
// connection gets UNAUTHENTICATED and is closed before anything is read.
//
// Bounds: at most `max_connections` at once (more are told
// RESOURCE_EXHAUSTED); a connection that has not said hello within
// `hello_timeout` is closed; a frame over `max_frame_bytes` ends the
// connection (RESOURCE_EXHAUSTED) without its body being read. A connection
// holds bytes from reading an append until it is durable and its
// acknowledgement written; over its own budget or the daemon's (shared with
// AppendStream, server/byte_budget.h) it stops reading, so the socket's
// buffer pushes back on the client.
//
// Shutdown: BeginShutdown stops accepting and reading; appends already read
// are committed and acknowledged, then each connection gets UNAVAILABLE
// ("resend the rest"). Stop closes whatever is left.
#ifndef WALRUS_SERVER_LOCAL_SOCKET_H_
#define WALRUS_SERVER_LOCAL_SOCKET_H_

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/auth_token.h"
#include "server/byte_budget.h"
#include "server/metrics.h"
#include "server/wal_store.h"

namespace walrus {

struct LocalSocketOptions {
  std::string path;
  mode_t mode = 0600;
  size_t max_frame_bytes = 64 << 20;
  size_t max_connections = 16;
  // Appends one connection may have unacknowledged before it stops reading.
  size_t max_inflight = 4096;
  uint64_t connection_budget_bytes = 64 << 20;
  std::chrono::milliseconds hello_timeout{10000};
  std::shared_ptr<TokenAuthenticator> authenticator;  // null: no token needed
};

class LocalConnection;

class LocalSocketServer {
 public:
  // Binds `options.path` (a stale socket file left by a dead process is
  // replaced; one a live process answers on, or any other file, is refused)
  // and starts accepting. `store`, `budget` and `metrics` (may be null) must
  // outlive the server.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<LocalSocketServer>> Start(
      WalStore* store, ByteBudget* budget, ServerMetrics* metrics, LocalSocketOptions options);
  // Stop(), and removes the socket file.
  ~LocalSocketServer();
  LocalSocketServer(const LocalSocketServer&) = delete;
  LocalSocketServer& operator=(const LocalSocketServer&) = delete;

  // Stops accepting; every connection stops reading and ends once what it
  // read is acknowledged.
  void BeginShutdown();
  // True once no connection has an append in flight (false at the deadline).
  bool WaitIdle(std::chrono::steady_clock::time_point deadline);
  // Closes every connection and joins every thread. Idempotent.
  void Stop();

  // Connections being served now.
  size_t connections() const;

 private:
  LocalSocketServer(WalStore* store, ByteBudget* budget, ServerMetrics* metrics,
                    LocalSocketOptions options, int listen_fd, int wake_fd);
  void AcceptLoop();
  // Joins the threads of connections that have ended. Requires mu_.
  void ReapLocked();

  WalStore* const store_;
  ByteBudget* const budget_;
  ServerMetrics* const metrics_;
  const LocalSocketOptions options_;
  int listen_fd_;      // the acceptor's; closed when it stops accepting
  const int wake_fd_;  // eventfd: BeginShutdown/Stop wake the accept loop
  std::thread acceptor_;

  mutable std::mutex mu_;
  struct Served {
    std::shared_ptr<LocalConnection> connection;
    std::thread thread;
  };
  std::list<Served> served_;    // guarded by mu_
  bool shutting_down_ = false;  // guarded by mu_
  bool stopped_ = false;        // guarded by mu_
};

}  // namespace walrus

#endif  // WALRUS_SERVER_LOCAL_SOCKET_H_
