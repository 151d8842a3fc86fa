// Bearer-token authentication for walrusd (--auth-token-file).
//
// TokenAuthenticator runs as the gRPC AuthMetadataProcessor of every
// listener's credentials, so it decides before any handler runs: a call
// without "authorization: Bearer <token>", or with a token not in the file,
// ends UNAUTHENTICATED and never reaches the service. An accepted token's
// header is consumed (removed from the call's metadata), so handlers and
// their logs never see it; nothing here logs a token either.
//
// The token file holds the accepted tokens, one per line (blank lines and
// surrounding whitespace ignored), so a token can be rotated without a gap:
// add the new one, move clients over, remove the old one. The file is
// re-read when its identity (inode, size, mtime) changes, checked at most
// once per second; a Kubernetes Secret volume's symlink swap counts as a
// change. If the file becomes unreadable or empty the last good tokens stay
// in force (and an error is logged once per change), so a botched update
// cannot lock every client out -- remove a token by rewriting the file
// without it.
//
// Comparison is constant-time in the token's content, so the time a refusal
// takes tells an attacker nothing about how much of a guess was right.
//
// Thread-safety: Process() runs on gRPC's threads concurrently; all state is
// guarded by mu_.
#ifndef WALRUS_SERVER_AUTH_TOKEN_H_
#define WALRUS_SERVER_AUTH_TOKEN_H_

#include <grpcpp/security/auth_metadata_processor.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace walrus {

// The tokens in a token file's content: one per line, trimmed, blanks skipped.
std::vector<std::string> ParseTokens(absl::string_view content);

// True if `a` equals `b`; the time taken depends on the lengths only.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

class TokenAuthenticator final : public grpc::AuthMetadataProcessor {
 public:
  // Reads `path`; INVALID_ARGUMENT if it holds no token, the file's error if
  // it cannot be read (walrusd refuses to start either way).
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<TokenAuthenticator>> Create(
      const std::string& path);

  // Cheap (a stat at most once a second): runs on the transport's thread.
  bool IsBlocking() const override { return false; }
  grpc::Status Process(const InputMetadata& auth_metadata, grpc::AuthContext* context,
                       OutputMetadata* consumed_auth_metadata,
                       OutputMetadata* response_metadata) override;

  // True if `header` (the authorization value) carries an accepted token.
  bool Accepts(absl::string_view header);

 private:
  struct FileId {
    uint64_t inode = 0, size = 0;
    int64_t mtime_ns = 0;
    bool operator==(const FileId& o) const {
      return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
    }
  };
  explicit TokenAuthenticator(std::string path) : path_(std::move(path)) {}
  // Re-reads the file if it changed. REQUIRES: mu_ held.
  void MaybeReloadLocked();
  absl::Status LoadLocked();

  const std::string path_;
  std::mutex mu_;
  std::vector<std::string> tokens_;                // guarded by mu_
  FileId loaded_;                                  // guarded by mu_
  FileId failed_;                                  // last version that failed; guarded by mu_
  std::chrono::steady_clock::time_point checked_;  // guarded by mu_
};

}  // namespace walrus

#endif  // WALRUS_SERVER_AUTH_TOKEN_H_
