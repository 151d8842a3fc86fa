// The one grpc -> absl status conversion, walrusctl's exit codes, the retry
// backoff schedule, and `walrusctl status --json`.
#include <grpcpp/support/status.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include "client/cli.h"
#include "client/client.h"
#include "client/status_format.h"
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

TEST(StatusFromGrpc, MessageOverTheSizeLimit_IsTooLargeNotDiskFull) {
  absl::Status too_large = StatusFromGrpc(grpc::Status(
      grpc::StatusCode::RESOURCE_EXHAUSTED, "Received message larger than max (120022 vs. 65536)"));
  EXPECT_EQ(too_large.code(), absl::StatusCode::kInvalidArgument) << too_large;
  EXPECT_TRUE(IsRequestTooLarge(too_large));
  EXPECT_NE(too_large.message().find("--max-message-bytes"), std::string::npos) << too_large;
  EXPECT_EQ(cli::RemoteExitCode(too_large), cli::kExitTooLarge);
  absl::Status full = StatusFromGrpc(
      grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "write: No space left on device"));
  EXPECT_EQ(full.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(cli::RemoteExitCode(full), cli::kExitNoSpace);
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

TEST(OfflineExitCode, IsUnchanged_DataLoss3_Else1) {
  EXPECT_EQ(cli::OfflineExitCode(absl::DataLossError("crc mismatch")), 3);
  EXPECT_EQ(cli::OfflineExitCode(absl::NotFoundError("no segments")), 1);
  EXPECT_EQ(cli::OfflineExitCode(absl::UnavailableError("")), 1);
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

TEST(StatusJson, EveryFieldPresent_NumbersAsNumbers_StringsEscaped) {
  v1::StatusResponse s;
  s.set_created(true);
  s.set_first_index(1);
  s.set_last_index(18446744073709551615ull);
  s.mutable_hard_state()->set_term(2);
  s.mutable_hard_state()->set_vote(1);
  s.mutable_hard_state()->set_commit(9);
  v1::SegmentStatus* seg = s.add_segments();
  seg->set_name("0000000000000000-0000000000000000.wal");
  seg->set_size_bytes(64);
  seg->set_locked(true);
  s.set_fail_stop_reason("disk \"sdb\"\n");
  s.set_data_dir("/d");
  EXPECT_EQ(StatusJson(DaemonStatusView(s)),
            "{\"created\":true,\"first_index\":1,\"last_index\":18446744073709551615,"
            "\"hard_state\":{\"term\":2,\"vote\":1,\"commit\":9},\"snapshot_index\":0,"
            "\"snapshot_term\":0,\"segments\":[{\"name\":\"0000000000000000-0000000000000000.wal\","
            "\"seq\":0,\"first_index\":0,\"size_bytes\":64,\"locked\":true,\"pinned\":false,"
            "\"pinned_by\":\"\"}],\"total_bytes\":0,"
            "\"durable_segment\":0,\"durable_offset\":0,\"fail_stop\":false,"
            "\"fail_stop_reason\":\"disk \\\"sdb\\\"\\n\",\"read_only\":false,\"data_dir\":\"/d\","
            "\"version\":\"\",\"retain_released_segments\":0,\"purge_blocked_by\":\"\","
            "\"backups_in_progress\":0,\"snapshots\":[],\"damage\":\"\",\"offline\":false,"
            "\"writer_epoch\":0}\n");
}

TEST(StatusText, NotCreated_SaysItWaitsForCreate) {
  std::string text = StatusText(DaemonStatusView(v1::StatusResponse()));
  EXPECT_NE(text.find("waiting for Create"), std::string::npos) << text;
}

// Every member of the daemon's answer reaches the view; the offline-only
// ones stay empty.
TEST(DaemonStatusView, CopiesEveryWireField) {
  v1::StatusResponse s;
  s.set_created(true);
  s.set_first_index(3);
  s.set_last_index(9);
  s.mutable_hard_state()->set_commit(8);
  s.set_snapshot_index(2);
  s.set_snapshot_term(1);
  v1::SnapshotMarker* marker = s.add_snapshots();
  marker->set_index(2);
  marker->set_term(1);
  v1::SegmentStatus* seg = s.add_segments();
  seg->set_name("n");
  seg->set_seq(4);
  seg->set_first_index(3);
  seg->set_size_bytes(64);
  seg->set_locked(true);
  seg->set_pinned(true);
  seg->set_pinned_by("backup #1");
  s.set_total_bytes(128);
  s.set_durable_segment(4);
  s.set_durable_offset(60);
  s.set_fail_stop(true);
  s.set_fail_stop_reason("EIO");
  s.set_read_only(true);
  s.set_data_dir("/d");
  s.set_version("1.2");
  s.set_writer_epoch(7);
  s.set_retain_released_segments(5);
  s.set_purge_blocked_by("pinned");
  s.set_backups_in_progress(1);
  StatusView view = DaemonStatusView(s);
  EXPECT_FALSE(view.offline);
  EXPECT_TRUE(view.damage.empty());
  EXPECT_EQ(StatusJson(view),
            "{\"created\":true,\"first_index\":3,\"last_index\":9,"
            "\"hard_state\":{\"term\":0,\"vote\":0,\"commit\":8},\"snapshot_index\":2,"
            "\"snapshot_term\":1,\"segments\":[{\"name\":\"n\",\"seq\":4,\"first_index\":3,"
            "\"size_bytes\":64,\"locked\":true,\"pinned\":true,\"pinned_by\":\"backup #1\"}],"
            "\"total_bytes\":128,\"durable_segment\":4,\"durable_offset\":60,"
            "\"fail_stop\":true,\"fail_stop_reason\":\"EIO\",\"read_only\":true,"
            "\"data_dir\":\"/d\",\"version\":\"1.2\",\"retain_released_segments\":5,"
            "\"purge_blocked_by\":\"pinned\",\"backups_in_progress\":1,"
            "\"snapshots\":[{\"index\":2,\"term\":1}],\"damage\":\"\",\"offline\":false,"
            "\"writer_epoch\":7}\n");
}

}  // namespace
}  // namespace walrus
