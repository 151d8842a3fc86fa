// absl::Status to grpc::Status, for everything walrusd answers. The canonical
// codes are numerically identical; only the types differ. (The client
// library's StatusFromGrpc is the other direction.)
#ifndef WALRUS_SERVER_STATUS_CODES_H_
#define WALRUS_SERVER_STATUS_CODES_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"

namespace walrus {

inline grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

// The canonical name of `code` ("OK", "UNAVAILABLE", ...); "UNKNOWN" for a
// code outside the canonical range.
inline std::string StatusCodeName(grpc::StatusCode code) {
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

}  // namespace walrus

#endif  // WALRUS_SERVER_STATUS_CODES_H_
