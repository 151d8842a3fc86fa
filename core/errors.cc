#include "core/errors.h"

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace walrus {
namespace {

constexpr char kErrnoPayload[] = "walrus/errno";
constexpr char kTornTailPayload[] = "walrus/torn-tail";
constexpr char kTooLargePayload[] = "walrus/request-too-large";
constexpr char kInUsePayload[] = "walrus/in-use";

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case ENOSPC:
    case EDQUOT:
      return absl::StatusCode::kResourceExhausted;
    case ENOENT:
    case ENOTDIR:
      return absl::StatusCode::kNotFound;
    case EEXIST:
    case ENOTEMPTY:
      return absl::StatusCode::kAlreadyExists;
    case EACCES:
    case EPERM:
    case EROFS:
      return absl::StatusCode::kPermissionDenied;
    case EWOULDBLOCK:
      return absl::StatusCode::kFailedPrecondition;
    case EINVAL:
    case ENAMETOOLONG:
      return absl::StatusCode::kInvalidArgument;
    default:
      // EIO and the rest: the device or kernel failed us; the WAL goes
      // fail-stop on these, which is UNAVAILABLE on the wire.
      return absl::StatusCode::kUnavailable;
  }
}

}  // namespace

absl::Status ErrnoToStatus(int err, absl::string_view what) {
  absl::Status status(CodeForErrno(err), absl::StrCat(what, ": ", std::strerror(err)));
  status.SetPayload(kErrnoPayload, absl::Cord(std::to_string(err)));
  return status;
}

std::optional<int> ErrnoOf(const absl::Status& status) {
  absl::optional<absl::Cord> payload = status.GetPayload(kErrnoPayload);
  int err = 0;
  if (!payload.has_value() || !absl::SimpleAtoi(std::string(*payload), &err)) {
    return std::nullopt;
  }
  return err;
}

absl::Status TornTailError(absl::string_view message) {
  absl::Status status = absl::DataLossError(message);
  status.SetPayload(kTornTailPayload, absl::Cord("1"));
  return status;
}

bool IsTornTail(const absl::Status& status) {
  return status.GetPayload(kTornTailPayload).has_value();
}

absl::Status InUseError(absl::string_view message) {
  absl::Status status = absl::FailedPreconditionError(message);
  status.SetPayload(kInUsePayload, absl::Cord("1"));
  return status;
}

bool IsInUse(const absl::Status& status) { return status.GetPayload(kInUsePayload).has_value(); }

absl::Status RequestTooLargeError(absl::string_view message) {
  absl::Status status = absl::InvalidArgumentError(message);
  status.SetPayload(kTooLargePayload, absl::Cord("1"));
  return status;
}

bool IsRequestTooLarge(const absl::Status& status) {
  return status.GetPayload(kTooLargePayload).has_value();
}

}  // namespace walrus
