// The one grpc -> absl status conversion, errno -> status against what
// walrus.proto lists, and the retry backoff schedule.
#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "client/client.h"
#include "core/errors.h"
#include "walrus.pb.h"

namespace walrus {
namespace {

TEST(StatusFromGrpc, EveryCanonicalCode_MapsToTheSameNamedAbslCode) {
  const std::pair<grpc::StatusCode, absl::StatusCode> kPairs[] = {
      {grpc::StatusCode::CANCELLED, absl::StatusCode::kCancelled},
      {grpc::StatusCode::UNKNOWN, absl::StatusCode::kUnknown},
      {grpc::StatusCode::INVALID_ARGUMENT, absl::StatusCode::kInvalidArgument},
      {grpc::StatusCode::DEADLINE_EXCEEDED, absl::StatusCode::kDeadlineExceeded},
      {grpc::StatusCode::NOT_FOUND, absl::StatusCode::kNotFound},
      {grpc::StatusCode::ALREADY_EXISTS, absl::StatusCode::kAlreadyExists},
      {grpc::StatusCode::PERMISSION_DENIED, absl::StatusCode::kPermissionDenied},
      {grpc::StatusCode::RESOURCE_EXHAUSTED, absl::StatusCode::kResourceExhausted},
      {grpc::StatusCode::FAILED_PRECONDITION, absl::StatusCode::kFailedPrecondition},
      {grpc::StatusCode::ABORTED, absl::StatusCode::kAborted},
      {grpc::StatusCode::OUT_OF_RANGE, absl::StatusCode::kOutOfRange},
      {grpc::StatusCode::UNIMPLEMENTED, absl::StatusCode::kUnimplemented},
      {grpc::StatusCode::INTERNAL, absl::StatusCode::kInternal},
      {grpc::StatusCode::UNAVAILABLE, absl::StatusCode::kUnavailable},
      {grpc::StatusCode::DATA_LOSS, absl::StatusCode::kDataLoss},
      {grpc::StatusCode::UNAUTHENTICATED, absl::StatusCode::kUnauthenticated},
  };
  for (const auto& [grpc_code, absl_code] : kPairs) {
    absl::Status s = StatusFromGrpc(grpc::Status(grpc_code, "why"));
    EXPECT_EQ(s.code(), absl_code) << static_cast<int>(grpc_code);
    EXPECT_EQ(s.message(), "why");
  }
}

TEST(StatusFromGrpc, Ok_IsOkWithoutMessage) { EXPECT_TRUE(StatusFromGrpc(grpc::Status::OK).ok()); }

TEST(StatusFromGrpc, CodeOutsideTheCanonicalRange_IsUnknown) {
  absl::Status s = StatusFromGrpc(grpc::Status(static_cast<grpc::StatusCode>(17), "odd"));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "odd");
}

TEST(StatusFromGrpc, MessageOverTheSizeLimit_IsTooLargeNotDiskFull) {
  absl::Status too_large = StatusFromGrpc(grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (120022 vs. 65536)"));
  EXPECT_EQ(too_large.code(), absl::StatusCode::kInvalidArgument) << too_large;
  EXPECT_TRUE(IsRequestTooLarge(too_large));
  EXPECT_NE(too_large.message().find("--max-message-bytes"), std::string::npos) << too_large;
  absl::Status full = StatusFromGrpc(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "write: No space left on device"));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
}

// The codes walrus.proto's header lists ("//   CODE   meaning").
std::vector<std::string> ProtoListedCodes() {
  std::ifstream in(WALRUS_PROTO_PATH);
  std::string line;
  std::vector<std::string> codes;
  while (std::getline(in, line)) {
    if (line.rfind("//   ", 0) != 0 || line.size() < 6 || !std::isupper(line[5])) continue;
    std::istringstream words(line.substr(5));
    std::string code;
    words >> code;
    codes.push_back(code);
  }
  return codes;
}

TEST(ErrnoToStatus, ErrorsAWriteCanMeet_MapToCodesWalrusProtoLists) {
  std::vector<std::string> listed = ProtoListedCodes();
  ASSERT_FALSE(listed.empty()) << WALRUS_PROTO_PATH;
  for (int err : {EIO, ENOSPC, EDQUOT, EACCES, EPERM, EROFS, ENOENT}) {
    absl::Status status = ErrnoToStatus(err, "rename segment");
    std::string code = absl::StatusCodeToString(status.code());
    EXPECT_NE(std::find(listed.begin(), listed.end(), code), listed.end())
        << "errno " << err << " becomes " << code << ", which walrus.proto does not list";
  }
}

TEST(BackoffBeforeRetry, DoublesFromTheInitialBackoff_UpToTheCap) {
  RetryPolicy policy;
  policy.initial_backoff = std::chrono::milliseconds(50);
  policy.max_backoff = std::chrono::milliseconds(300);
  policy.multiplier = 2;
  EXPECT_EQ(BackoffBeforeRetry(policy, 1).count(), 50);
  EXPECT_EQ(BackoffBeforeRetry(policy, 2).count(), 100);
  EXPECT_EQ(BackoffBeforeRetry(policy, 3).count(), 200);
  EXPECT_EQ(BackoffBeforeRetry(policy, 4).count(), 300);
  EXPECT_EQ(BackoffBeforeRetry(policy, 60).count(), 300);  // no overflow on many retries
}

}  // namespace
}  // namespace walrus
