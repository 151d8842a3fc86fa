// walrusctl's exit codes: what each status, from the daemon or from an
// offline command, becomes.
#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include "client/cli/cli.h"
#include "client/client.h"
#include "core/errors.h"

namespace walrus {
namespace {

TEST(RemoteExitCode, DaemonCodes_MapToTheDocumentedExitCodes) {
  EXPECT_EQ(cli::RemoteExitCode(absl::OkStatus()), 0);
  EXPECT_EQ(cli::RemoteExitCode(absl::DataLossError("")), 3);
  EXPECT_EQ(cli::RemoteExitCode(absl::UnavailableError("")), 5);
  EXPECT_EQ(cli::RemoteExitCode(absl::DeadlineExceededError("")), 5);
  EXPECT_EQ(cli::RemoteExitCode(absl::FailedPreconditionError("")), 6);
  EXPECT_EQ(cli::RemoteExitCode(absl::InvalidArgumentError("")), 6);
  EXPECT_EQ(cli::RemoteExitCode(absl::NotFoundError("")), 7);
  EXPECT_EQ(cli::RemoteExitCode(absl::ResourceExhaustedError("")), 8);
  EXPECT_EQ(cli::RemoteExitCode(absl::InternalError("")), 1);
}

TEST(RemoteExitCode, MessageOverTheSizeLimit_IsTooLargeNotDiskFull) {
  absl::Status too_large = StatusFromGrpc(grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (120022 vs. 65536)"));
  EXPECT_EQ(cli::RemoteExitCode(too_large), cli::kExitTooLarge);
  absl::Status full = StatusFromGrpc(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "write: No space left on device"));
  EXPECT_EQ(cli::RemoteExitCode(full), cli::kExitNoSpace);
}

TEST(OfflineExitCode, IsUnchanged_DataLoss3_Else1) {
  EXPECT_EQ(cli::OfflineExitCode(absl::DataLossError("crc mismatch")), 3);
  EXPECT_EQ(cli::OfflineExitCode(absl::NotFoundError("no segments")), 1);
  EXPECT_EQ(cli::OfflineExitCode(absl::UnavailableError("")), 1);
}

}  // namespace
}  // namespace walrus
