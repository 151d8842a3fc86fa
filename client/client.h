// WalClient: the C++ client of walrusd's walrus.v1.WAL service.
//
// One WalClient owns one gRPC channel with a connection of its own (channels
// of different WalClients never share a TCP connection, so N clients really
// are N connections). The connection is made lazily by the first call; a
// daemon that is not up yet shows as UNAVAILABLE, which is retried.
//
// Deadlines: every call has a deadline of ClientOptions::call_timeout
// (read_timeout for ReadAll) from the moment it starts; it covers all retry
// attempts and the backoff between them.
//
// Retries: a call that fails UNAVAILABLE (daemon unreachable, restarting or
// shutting down) is retried with exponential backoff and jitter, up to
// max_attempts, within the deadline. Every unary method here is idempotent,
// which is what makes that safe:
//   Create       the same metadata again succeeds (created = false).
//   Append       re-sending entries the log already holds is harmless: the
//                daemon skips entries it holds with the same index and term
//                (Raft's Log Matching property makes them identical) and does
//                not rewrite a hard state it already has. So an Append whose
//                answer was lost (UNAVAILABLE after the request left) may have
//                been written or not, and retrying it is correct either way.
//                This assumes one writer per log, as Raft has.
//   ReadAll      restarts from the beginning; partial chunks are discarded.
//   SaveSnapshot a marker saved twice is the same marker.
//   ReleaseTo    releasing what is released already releases nothing more.
//   Status       reads only.
//   Fence        not idempotent, but a retried Fence only fences once more:
//                the answer is the newest epoch, which is the one to hold.
// Other codes are returned at once. UNAVAILABLE is also how a fail-stopped
// daemon answers writes; those retries are wasted but bounded.
//
// Errors: grpc::Status codes map 1:1 onto absl::StatusCode (StatusFromGrpc,
// the one place that converts); the message is the daemon's. See
// proto/walrus.proto for what each code means.
//
// Security: with tls_ca_file set the channel is TLS, verifying the daemon's
// certificate against that CA (and presenting tls_cert_file/tls_key_file for
// mutual TLS); otherwise plaintext (loopback or a Unix socket). With
// token_file set, every call carries "authorization: Bearer <token>".
//
// Writer fencing: mutating calls carry epoch() (see Fence in
// proto/walrus.proto); Fence() makes this client the writer by raising the
// daemon's epoch and adopting the new one.
//
// Thread-safety: all methods are thread-safe; calls from several threads run
// concurrently on the one connection. An AppendStream is not (see its header).
#ifndef WALRUS_CLIENT_CLIENT_H_
#define WALRUS_CLIENT_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "client/append_stream.h"
#include "client/backup_receiver.h"
#include "raft.pb.h"
#include "walrus.grpc.pb.h"

namespace walrus {

struct RetryPolicy {
  // Attempts in all, the first included; 1 disables retries.
  int max_attempts = 6;
  std::chrono::milliseconds initial_backoff{100};
  std::chrono::milliseconds max_backoff{2000};
  double multiplier = 2.0;
  // Each backoff is scaled by a uniform factor in [1 - jitter, 1 + jitter],
  // so clients that failed together do not all come back together.
  double jitter = 0.2;
};

struct ClientOptions {
  std::chrono::milliseconds call_timeout{10'000};
  std::chrono::milliseconds read_timeout{300'000};
  RetryPolicy retry;
  // Fill AppendRequest.entry_crc32c (CRC-32C of each entry's data) when the
  // caller left it empty, so the daemon rejects data corrupted between here
  // and its disk (INVALID_ARGUMENT, nothing written).
  bool entry_crc32c = true;
  // Upper bound for one ReadAll chunk (0: the daemon's default, 1 MiB).
  uint32_t read_chunk_bytes = 0;
  // Largest message accepted from the daemon. ReadAll chunks are at most
  // 4 MiB, except that a single larger entry travels alone.
  int max_receive_message_bytes = 64 << 20;

  // TLS: the CA bundle that signed the daemon's certificate (PEM). Empty:
  // plaintext. tls_cert_file and tls_key_file (both or neither) add a client
  // certificate for mutual TLS; they need tls_ca_file.
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  // Checks the daemon's certificate for this name instead of the target's
  // host (for a certificate issued to a DNS name, reached by IP).
  std::string tls_server_name;
  // File holding the bearer token (its first line, surrounding whitespace
  // dropped). Read once, by Connect.
  std::string token_file;
  // The writer epoch mutating calls start with (0: never fenced).
  uint64_t epoch = 0;
};

// What ReadAll returns, reassembled from the streamed chunks: the fields of
// core's ReadAllResult that travel over the wire.
struct ReadAllReply {
  std::string metadata;
  raftpb::HardState state;
  std::vector<raftpb::Entry> entries;  // after the snapshot, in index order
  v1::SnapshotMarker snapshot;         // the marker the read started from
};

class WalClient {
 public:
  // `target` is "host:port" or "unix:PATH" (any gRPC target works). Makes no
  // network call; reads the TLS and token files of `options`.
  // INVALID_ARGUMENT for an empty target or inconsistent TLS options; the
  // file's error (NOT_FOUND, PERMISSION_DENIED, ...) if one cannot be read.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<WalClient>> Connect(
      const std::string& target, const ClientOptions& options = {});

  const std::string& target() const { return target_; }
  const ClientOptions& options() const { return options_; }

  // Creates the WAL. Returns true if this call created it, false if it
  // existed with the same metadata. FAILED_PRECONDITION: other metadata.
  [[nodiscard]] absl::StatusOr<bool> Create(absl::string_view metadata);

  // Appends a hard state (empty: unchanged) and contiguous entries; returns
  // once they are durable, with the log's last index. Retried on
  // UNAVAILABLE (see the file comment for why that is safe).
  [[nodiscard]] absl::StatusOr<uint64_t> Append(const raftpb::HardState& state,
                                                absl::Span<const raftpb::Entry> entries);
  // The same with a ready-made request (its sequence is echoed, nothing more).
  [[nodiscard]] absl::StatusOr<uint64_t> Append(v1::AppendRequest request);

  // The durable log after the snapshot marker (index, term); (0, 0) reads
  // everything. NOT_FOUND: no such marker; FAILED_PRECONDITION: its term
  // differs; DATA_LOSS: corruption on the daemon's disk.
  [[nodiscard]] absl::StatusOr<ReadAllReply> ReadAll(uint64_t snapshot_index = 0,
                                                     uint64_t snapshot_term = 0);
  // The durable log after the newest marker at or below the durable commit
  // (reply.snapshot says which): how a node restarts without keeping its
  // own list of markers. FAILED_PRECONDITION: no such marker.
  [[nodiscard]] absl::StatusOr<ReadAllReply> ReadAllFromCommittedSnapshot();
  // The snapshot catalogue: the durable markers the daemon holds, oldest
  // first, and the durable commit.
  [[nodiscard]] absl::StatusOr<v1::SnapshotsResponse> Snapshots();
  // Ranged reads (etcd raft's Storage.Entries and Storage.Term): entries
  // [lo, hi) up to `max_bytes` (0: no limit; at least one), and the term of
  // one index. NOT_FOUND: compacted; OUT_OF_RANGE: not durable yet. Both
  // answers carry the first and last index walrusd serves.
  [[nodiscard]] absl::StatusOr<v1::EntriesResponse> Entries(uint64_t lo, uint64_t hi,
                                                            uint64_t max_bytes = 0);
  [[nodiscard]] absl::StatusOr<v1::TermResponse> Term(uint64_t index);

  // Records a snapshot marker; durable on return.
  [[nodiscard]] absl::Status SaveSnapshot(uint64_t index, uint64_t term);

  // Releases segments wholly before the one holding `index`, but never past
  // the newest durable snapshot marker (the daemon clamps `index` to it).
  struct Released {
    uint32_t segments = 0;
    uint64_t released_to = 0;  // the index actually released to
    bool clamped = false;      // released_to is below the requested index
  };
  [[nodiscard]] absl::StatusOr<Released> ReleaseTo(uint64_t index);

  [[nodiscard]] absl::StatusOr<v1::StatusResponse> Status();

  // Raises the daemon's writer epoch; from then on this client's mutating
  // calls carry the new epoch and every older writer's are refused
  // (FAILED_PRECONDITION). Returns the new epoch, durable on the daemon.
  [[nodiscard]] absl::StatusOr<uint64_t> Fence();

  // The writer epoch mutating calls carry.
  uint64_t epoch() const { return epoch_.load(); }
  void set_epoch(uint64_t epoch) { epoch_.store(epoch); }
  // Copies a point-in-time backup of the daemon's WAL into the new
  // directory `dest` (proto/walrus.proto, Backup; client/backup_receiver.h
  // checks what arrives). The copy appears at `dest` only complete,
  // verified clean and holding every entry acknowledged before the backup
  // started; on any error nothing is there. ALREADY_EXISTS if `dest`
  // exists; the daemon's error; INTERNAL, DATA_LOSS or INVALID_ARGUMENT if
  // what it sent does not fit together (BackupReceiver::Take); DATA_LOSS if
  // the copy does not verify. *failed_side (may be null) says which side an
  // error came from. Not retried: a stream broken half-way has to start over
  // into a fresh destination. Waits for the daemon to come up within
  // read_timeout, which bounds the whole backup.
  [[nodiscard]] absl::StatusOr<BackupReply> Backup(const std::string& dest,
                                                   const BackupOptions& options = {},
                                                   BackupSide* failed_side = nullptr);

  // Follows the durable log from `from_index` (proto/walrus.proto, Follow):
  // `on_message` gets every message in order, entries as they become
  // durable and truncations (truncated_from) when a new leader replaced
  // entries already received. Returns when `on_message` returns an error
  // (the call is cancelled and that error returned) or the stream ends
  // (its status: NOT_FOUND when the follower fell behind a release,
  // FAILED_PRECONDITION when a marker replaced what was received,
  // UNAVAILABLE when walrusd shut down). No deadline: it runs until then.
  [[nodiscard]] absl::Status Follow(
      uint64_t from_index, uint32_t max_chunk_bytes,
      const std::function<absl::Status(const v1::FollowResponse&)>& on_message);

  // Opens a pipelined AppendStream RPC (see client/append_stream.h). Not
  // retried: a broken stream reports its status and the caller reopens.
  // Entry CRCs are filled only if both this client's options and `options`
  // ask for them. The stream must not outlive this client.
  [[nodiscard]] std::unique_ptr<AppendStream> OpenAppendStream(
      const AppendStreamOptions& options = {});

 private:
  [[nodiscard]] absl::StatusOr<ReadAllReply> ReadAllFrom(v1::ReadAllRequest request);
  // Runs the Backup call: `on_chunk` gets every message in order, the header
  // first; an error it returns cancels the call and is returned.
  [[nodiscard]] absl::Status StreamBackup(
      uint32_t max_chunk_bytes,
      const std::function<absl::Status(const v1::BackupChunk&)>& on_chunk);

  WalClient(std::string target, const ClientOptions& options,
            std::shared_ptr<grpc::ChannelCredentials> credentials, std::string token);

  // Runs `attempt` (one RPC on a fresh context, returning its grpc::Status)
  // under the retry policy, with a deadline of `timeout` for all attempts.
  template <typename Attempt>
  absl::Status CallWithRetry(std::chrono::milliseconds timeout, const Attempt& attempt);

  // Waits `pause` before a retry, or less if the connection comes up.
  void PauseBeforeRetry(std::chrono::milliseconds pause);

  const std::string target_;
  const ClientOptions options_;
  const std::string token_;  // empty: none
  std::atomic<uint64_t> epoch_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WAL::Stub> stub_;
};

// The one conversion from grpc::Status to absl::Status: same code (the
// canonical codes are numerically identical), same message. A code outside
// the canonical range becomes UNKNOWN.
[[nodiscard]] absl::Status StatusFromGrpc(const grpc::Status& status);

// The bearer token in `path`: its first line without surrounding whitespace.
// INVALID_ARGUMENT if that is empty.
[[nodiscard]] absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Sets request->entry_crc32c to the CRC-32C of each entry's data, replacing
// whatever it held.
void FillEntryCrc32c(v1::AppendRequest* request);

// The backoff before retry number `retry` (1 for the first retry), before
// jitter: initial_backoff * multiplier^(retry-1), capped at max_backoff.
std::chrono::milliseconds BackoffBeforeRetry(const RetryPolicy& policy, int retry);

}  // namespace walrus

#endif  // WALRUS_CLIENT_CLIENT_H_
