#include "server/auth_token.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/errors.h"
#include "core/fs.h"

namespace walrus {
namespace {

constexpr char kHeader[] = "authorization";
constexpr absl::string_view kScheme = "Bearer ";
constexpr auto kRecheck = std::chrono::seconds(1);

}  // namespace

std::vector<std::string> ParseTokens(absl::string_view content) {
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(content, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (!line.empty()) tokens.emplace_back(line);
  }
  return tokens;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Every byte of the longer one is visited whatever the content; a length
  // mismatch is folded into the result instead of returning early.
  size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

absl::StatusOr<std::shared_ptr<TokenAuthenticator>> TokenAuthenticator::Create(
    const std::string& path) {
  std::shared_ptr<TokenAuthenticator> auth(new TokenAuthenticator(path));
  std::lock_guard<std::mutex> lock(auth->mu_);
  if (absl::Status s = auth->LoadLocked(); !s.ok()) return s;
  auth->checked_ = std::chrono::steady_clock::now();
  return auth;
}

absl::Status TokenAuthenticator::LoadLocked() {
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    return ErrnoToStatus(errno, absl::StrCat("auth token file ", path_));
  }
  FileId id{static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  absl::StatusOr<std::string> content = ReadFileToString(PosixFs(), path_);
  if (!content.ok()) {
    failed_ = id;
    return absl::Status(content.status().code(),
                        absl::StrCat("auth token file: ", content.status().message()));
  }
  std::vector<std::string> tokens = ParseTokens(*content);
  if (tokens.empty()) {
    failed_ = id;
    return absl::InvalidArgumentError(absl::StrCat("auth token file ", path_, " holds no token"));
  }
  tokens_ = std::move(tokens);
  loaded_ = id;
  return absl::OkStatus();
}

void TokenAuthenticator::MaybeReloadLocked() {
  auto now = std::chrono::steady_clock::now();
  if (now - checked_ < kRecheck) return;
  checked_ = now;
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    FileId gone;
    if (!(failed_ == gone)) {
      spdlog::error("auth token file {} is gone; the last tokens read stay in force", path_);
      failed_ = gone;
    }
    return;
  }
  FileId id{static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_size),
            static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  if (id == loaded_ || id == failed_) return;
  if (absl::Status s = LoadLocked(); !s.ok()) {
    spdlog::error("{}; the last tokens read stay in force", std::string(s.message()));
    return;
  }
  spdlog::info("auth token file {} reloaded: {} token(s)", path_, tokens_.size());
}

bool TokenAuthenticator::Accepts(absl::string_view header) {
  if (!absl::StartsWith(header, kScheme)) return false;
  absl::string_view token = absl::StripAsciiWhitespace(header.substr(kScheme.size()));
  if (token.empty()) return false;
  std::lock_guard<std::mutex> lock(mu_);
  MaybeReloadLocked();
  bool accepted = false;
  // All tokens are compared, so which one matched does not show in the time.
  for (const std::string& t : tokens_) accepted |= ConstantTimeEquals(token, t);
  return accepted;
}

grpc::Status TokenAuthenticator::Process(const InputMetadata& auth_metadata, grpc::AuthContext*,
                                         OutputMetadata* consumed_auth_metadata, OutputMetadata*) {
  auto it = auth_metadata.find(kHeader);
  if (it == auth_metadata.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "walrusd requires a bearer token (authorization: Bearer TOKEN)");
  }
  absl::string_view header(it->second.data(), it->second.size());
  if (!Accepts(header)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "bearer token not accepted");
  }
  consumed_auth_metadata->insert(std::make_pair(std::string(kHeader), std::string(header)));
  return grpc::Status::OK;
}

}  // namespace walrus
