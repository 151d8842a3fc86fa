#include "client/client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <thread>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/errors.h"
#include "core/fs.h"

namespace walrus {
namespace {

// Uniform in [1 - jitter, 1 + jitter] times `backoff`.
std::chrono::milliseconds Jittered(std::chrono::milliseconds backoff, double jitter) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  jitter = std::clamp(jitter, 0.0, 1.0);
  std::uniform_real_distribution<double> factor(1.0 - jitter, 1.0 + jitter);
  return std::chrono::milliseconds(
      static_cast<int64_t>(std::llround(static_cast<double>(backoff.count()) * factor(rng))));
}

}  // namespace

absl::Status StatusFromGrpc(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  int code = static_cast<int>(status.error_code());
  // grpc::StatusCode and absl::StatusCode both number the canonical codes
  // 0 (OK) to 16 (UNAUTHENTICATED) identically.
  absl::StatusCode absl_code =
      code > 0 && code <= static_cast<int>(absl::StatusCode::kUnauthenticated)
          ? static_cast<absl::StatusCode>(code)
          : absl::StatusCode::kUnknown;
  // gRPC refuses a message over either side's limit with RESOURCE_EXHAUSTED,
  // the code walrus.v1 uses for a full disk ("retry when space returns"); an
  // oversized request never succeeds, so it is reported as what it is.
  if (absl_code == absl::StatusCode::kResourceExhausted &&
      absl::StrContains(status.error_message(), "message larger than max")) {
    return RequestTooLargeError(absl::StrCat(
        "the request is larger than walrusd accepts (its --max-message-bytes, 16 MiB by "
        "default; one entry must fit in one request): ",
        status.error_message()));
  }
  return absl::Status(absl_code, status.error_message());
}

void FillEntryCrc32c(v1::AppendRequest* request) {
  request->clear_entry_crc32c();
  request->mutable_entry_crc32c()->Reserve(request->entries_size());
  for (const raftpb::Entry& entry : request->entries()) {
    request->add_entry_crc32c(crc32c::Value(entry.data()));
  }
}

std::chrono::milliseconds BackoffBeforeRetry(const RetryPolicy& policy, int retry) {
  double backoff = static_cast<double>(policy.initial_backoff.count());
  for (int i = 1; i < retry && backoff < static_cast<double>(policy.max_backoff.count()); ++i) {
    backoff *= std::max(1.0, policy.multiplier);
  }
  backoff = std::min(backoff, static_cast<double>(policy.max_backoff.count()));
  return std::chrono::milliseconds(static_cast<int64_t>(backoff));
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  absl::StatusOr<std::string> content = ReadFileToString(PosixFs(), path);
  if (!content.ok()) {
    return absl::Status(content.status().code(),
                        absl::StrCat("token file: ", content.status().message()));
  }
  absl::string_view token = *content;
  token = token.substr(0, token.find('\n'));
  token = absl::StripAsciiWhitespace(token);
  if (token.empty())
    return absl::InvalidArgumentError(absl::StrCat("token file ", path, " is empty"));
  return std::string(token);
}

namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  absl::StatusOr<std::string> pem = ReadFileToString(PosixFs(), path);
  if (!pem.ok()) {
    return absl::Status(pem.status().code(), absl::StrCat(what, ": ", pem.status().message()));
  }
  return pem;
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const ClientOptions& options) {
  const bool has_cert = !options.tls_cert_file.empty(), has_key = !options.tls_key_file.empty();
  if (has_cert != has_key) {
    return absl::InvalidArgumentError("--tls-cert-file and --tls-key-file go together");
  }
  if (options.tls_ca_file.empty()) {
    if (has_cert) {
      return absl::InvalidArgumentError(
          "a client certificate needs --tls-ca-file (the CA of the daemon's certificate)");
    }
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPem(options.tls_ca_file, "TLS CA file");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = std::move(*ca);
  if (has_cert) {
    absl::StatusOr<std::string> cert = ReadPem(options.tls_cert_file, "TLS certificate file");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(options.tls_key_file, "TLS key file");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = std::move(*cert);
    ssl.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<WalClient>> WalClient::Connect(const std::string& target,
                                                              const ClientOptions& options) {
  if (target.empty()) {
    return absl::InvalidArgumentError("no daemon address: want host:port or unix:PATH");
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      ChannelCredentialsFor(options);
  if (!credentials.ok()) return credentials.status();
  std::string token;
  if (!options.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadTokenFile(options.token_file);
    if (!read.ok()) return read.status();
    token = std::move(*read);
  }
  return std::unique_ptr<WalClient>(
      new WalClient(target, options, std::move(*credentials), std::move(token)));
}

WalClient::WalClient(std::string target, const ClientOptions& options,
                     std::shared_ptr<grpc::ChannelCredentials> credentials, std::string token)
    : target_(std::move(target)),
      options_(options),
      token_(std::move(token)),
      epoch_(options.epoch) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  args.SetMaxSendMessageSize(-1);
  // Without a local pool, channels with equal arguments share one connection
  // process-wide; a benchmark's N clients must be N connections.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  // gRPC's own reconnect backoff starts at 1 s and grows to 2 min; while it
  // waits, calls fail UNAVAILABLE at once. Keep it within our retry schedule
  // so a daemon that just came up is found by the next retry. (Not
  // GRPC_ARG_MIN_RECONNECT_BACKOFF_MS: that is also the connect timeout, and
  // a small one fails connections to a daemon that is still starting.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(std::max<int64_t>(100, options_.retry.max_backoff.count())));
  if (!options_.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(options_.tls_server_name);
  }
  channel_ = grpc::CreateCustomChannel(target_, credentials, args);
  stub_ = v1::WAL::NewStub(channel_);
}

void WalClient::PauseBeforeRetry(std::chrono::milliseconds pause) {
  const auto until = std::chrono::system_clock::now() + pause;
  if (channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY) {
    // Connected, and the daemon itself said UNAVAILABLE: just wait.
    std::this_thread::sleep_for(pause);
    return;
  }
  // Not connected. A synchronous client reads its sockets only while some
  // call waits, so merely sleeping would leave a daemon that came up unseen
  // (its handshake unread) and every fail-fast retry failing. Waiting for the
  // connection does the reading, and retries as soon as it is up.
  channel_->WaitForConnected(until);
}

template <typename Attempt>
absl::Status WalClient::CallWithRetry(std::chrono::milliseconds timeout, const Attempt& attempt) {
  const auto deadline = std::chrono::system_clock::now() + timeout;
  const int max_attempts = std::max(1, options_.retry.max_attempts);
  absl::Status status;
  int attempts = 0;
  while (true) {
    grpc::ClientContext context;
    context.set_deadline(deadline);
    if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
    status = StatusFromGrpc(attempt(&context));
    ++attempts;
    if (status.code() != absl::StatusCode::kUnavailable || attempts >= max_attempts) break;
    std::chrono::milliseconds pause =
        Jittered(BackoffBeforeRetry(options_.retry, attempts), options_.retry.jitter);
    if (std::chrono::system_clock::now() + pause >= deadline) break;
    PauseBeforeRetry(pause);
  }
  if (status.code() == absl::StatusCode::kUnavailable && attempts > 1) {
    return absl::UnavailableError(absl::StrCat(status.message(), " (walrusd at ", target_,
                                               "; gave up after ", attempts, " attempts)"));
  }
  return status;
}

absl::StatusOr<bool> WalClient::Create(absl::string_view metadata) {
  v1::CreateRequest request;
  request.set_metadata(metadata.data(), metadata.size());
  request.set_epoch(epoch());
  v1::CreateResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->Create(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.created();
}

absl::StatusOr<uint64_t> WalClient::Append(const raftpb::HardState& state,
                                           absl::Span<const raftpb::Entry> entries) {
  v1::AppendRequest request;
  *request.mutable_hard_state() = state;
  request.mutable_entries()->Reserve(static_cast<int>(entries.size()));
  for (const raftpb::Entry& entry : entries) *request.add_entries() = entry;
  return Append(std::move(request));
}

absl::StatusOr<uint64_t> WalClient::Append(v1::AppendRequest request) {
  if (options_.entry_crc32c && request.entry_crc32c_size() == 0 && request.entries_size() > 0) {
    FillEntryCrc32c(&request);
  }
  if (request.epoch() == 0) request.set_epoch(epoch());
  v1::AppendResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->Append(context, request, &response);
  });
  if (!status.ok()) return status;
  return response.last_index();
}

absl::StatusOr<ReadAllReply> WalClient::ReadAll(uint64_t snapshot_index, uint64_t snapshot_term) {
  v1::ReadAllRequest request;
  request.set_snapshot_index(snapshot_index);
  request.set_snapshot_term(snapshot_term);
  return ReadAllFrom(std::move(request));
}

absl::StatusOr<ReadAllReply> WalClient::ReadAllFromCommittedSnapshot() {
  v1::ReadAllRequest request;
  request.set_from_committed_snapshot(true);
  return ReadAllFrom(std::move(request));
}

absl::StatusOr<v1::SnapshotsResponse> WalClient::Snapshots() {
  v1::SnapshotsRequest request;
  v1::SnapshotsResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->Snapshots(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::EntriesResponse> WalClient::Entries(uint64_t lo, uint64_t hi,
                                                       uint64_t max_bytes) {
  v1::EntriesRequest request;
  request.set_lo(lo);
  request.set_hi(hi);
  request.set_max_bytes(max_bytes);
  v1::EntriesResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    response.Clear();
    return stub_->Entries(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<v1::TermResponse> WalClient::Term(uint64_t index) {
  v1::TermRequest request;
  request.set_index(index);
  v1::TermResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->Term(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<ReadAllReply> WalClient::ReadAllFrom(v1::ReadAllRequest request) {
  request.set_max_chunk_bytes(options_.read_chunk_bytes);
  ReadAllReply reply;
  absl::Status status = CallWithRetry(options_.read_timeout, [&](grpc::ClientContext* context) {
    reply = ReadAllReply();  // a retry starts over
    std::unique_ptr<grpc::ClientReader<v1::ReadAllResponse>> reader =
        stub_->ReadAll(context, request);
    v1::ReadAllResponse chunk;
    bool have_header = false;
    grpc::Status broken;  // the daemon broke the chunk protocol
    while (reader->Read(&chunk)) {
      if (!broken.ok()) continue;  // cancelled; drain until the stream ends
      if (chunk.has_header() == have_header) {
        broken = grpc::Status(grpc::StatusCode::INTERNAL,
                              have_header ? "ReadAll sent a second header"
                                          : "ReadAll's first message carries no header");
        context->TryCancel();
        continue;
      }
      if (chunk.has_header()) {
        have_header = true;
        reply.metadata = std::move(*chunk.mutable_metadata());
        reply.state = chunk.hard_state();
        reply.snapshot = chunk.snapshot();
      }
      for (raftpb::Entry& entry : *chunk.mutable_entries()) {
        reply.entries.push_back(std::move(entry));
      }
    }
    grpc::Status finished = reader->Finish();
    if (!broken.ok()) return broken;
    if (finished.ok() && !have_header) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "ReadAll ended without its header");
    }
    return finished;
  });
  if (!status.ok()) return status;
  return reply;
}

absl::StatusOr<BackupReply> WalClient::Backup(const std::string& dest, const BackupOptions& options,
                                              BackupSide* failed_side) {
  BackupSide side_if_not_asked;
  if (failed_side == nullptr) failed_side = &side_if_not_asked;
  *failed_side = BackupSide::kLocal;
  absl::StatusOr<std::unique_ptr<BackupReceiver>> receiver =
      BackupReceiver::Begin(options.fs, dest, options.progress);
  if (!receiver.ok()) return receiver.status();
  absl::Status streamed = StreamBackup(options.max_chunk_bytes, [&](const v1::BackupChunk& chunk) {
    return (*receiver)->Take(chunk);
  });
  absl::StatusOr<BackupReply> reply =
      streamed.ok() ? (*receiver)->Finish() : absl::StatusOr<BackupReply>(streamed);
  // A call that broke is the daemon's side; the receiver knows which side
  // whatever it refused came from.
  *failed_side = (*receiver)->failed_side();
  return reply;
}

absl::Status WalClient::StreamBackup(
    uint32_t max_chunk_bytes, const std::function<absl::Status(const v1::BackupChunk&)>& on_chunk) {
  v1::BackupRequest request;
  request.set_max_chunk_bytes(max_chunk_bytes);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.read_timeout);
  context.set_wait_for_ready(true);
  if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
  std::unique_ptr<grpc::ClientReader<v1::BackupChunk>> reader = stub_->Backup(&context, request);
  v1::BackupChunk chunk;
  absl::Status refused;  // the first error of on_chunk
  while (reader->Read(&chunk)) {
    if (!refused.ok()) continue;  // cancelled; drain until the stream ends
    refused = on_chunk(chunk);
    if (!refused.ok()) context.TryCancel();
  }
  absl::Status finished = StatusFromGrpc(reader->Finish());
  return refused.ok() ? finished : refused;
}

absl::Status WalClient::Follow(
    uint64_t from_index, uint32_t max_chunk_bytes,
    const std::function<absl::Status(const v1::FollowResponse&)>& on_message) {
  v1::FollowRequest request;
  request.set_from_index(from_index);
  request.set_max_chunk_bytes(max_chunk_bytes);
  grpc::ClientContext context;
  if (!token_.empty()) context.AddMetadata("authorization", "Bearer " + token_);
  std::unique_ptr<grpc::ClientReader<v1::FollowResponse>> reader = stub_->Follow(&context, request);
  v1::FollowResponse message;
  absl::Status refused;
  while (reader->Read(&message)) {
    if (!refused.ok()) continue;  // cancelled; drain until the stream ends
    refused = on_message(message);
    if (!refused.ok()) context.TryCancel();
  }
  absl::Status finished = StatusFromGrpc(reader->Finish());
  return refused.ok() ? finished : refused;
}

absl::Status WalClient::SaveSnapshot(uint64_t index, uint64_t term) {
  v1::SaveSnapshotRequest request;
  request.set_index(index);
  request.set_term(term);
  request.set_epoch(epoch());
  v1::SaveSnapshotResponse response;
  return CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->SaveSnapshot(context, request, &response);
  });
}

absl::StatusOr<WalClient::Released> WalClient::ReleaseTo(uint64_t index) {
  v1::ReleaseToRequest request;
  request.set_index(index);
  request.set_epoch(epoch());
  v1::ReleaseToResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->ReleaseTo(context, request, &response);
  });
  if (!status.ok()) return status;
  return Released{response.released_segments(), response.released_to(), response.clamped()};
}

absl::StatusOr<v1::StatusResponse> WalClient::Status() {
  v1::StatusRequest request;
  v1::StatusResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->Status(context, request, &response);
  });
  if (!status.ok()) return status;
  return response;
}

absl::StatusOr<uint64_t> WalClient::Fence() {
  v1::FenceRequest request;
  v1::FenceResponse response;
  absl::Status status = CallWithRetry(options_.call_timeout, [&](grpc::ClientContext* context) {
    return stub_->Fence(context, request, &response);
  });
  if (!status.ok()) return status;
  epoch_.store(response.epoch());
  return response.epoch();
}

std::unique_ptr<AppendStream> WalClient::OpenAppendStream(const AppendStreamOptions& options) {
  AppendStreamOptions effective = options;
  effective.entry_crc32c = options.entry_crc32c && options_.entry_crc32c;
  if (effective.epoch == 0) effective.epoch = epoch();
  if (effective.token.empty()) effective.token = token_;
  return std::make_unique<AppendStream>(stub_.get(), effective);
}

}  // namespace walrus
