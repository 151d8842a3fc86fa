// The one place that maps absl::Status to grpc::Status and back. The canonical
// codes are numerically identical; only the types differ.
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

inline absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace walrus

#endif  // WALRUS_SERVER_STATUS_CODES_H_
