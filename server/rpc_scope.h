// RpcScope: the bookkeeping of one RPC, held by its handler for the whole
// call. While it lives the call counts as in flight (WalService::WaitIdle
// waits for none to be left); when it goes it records the call's method, the
// code it ended with and its duration (walrus_rpc_requests_total,
// walrus_rpc_duration_seconds), then stops counting it. A reactor declares
// it as its first member, so everything else the call owns is gone before
// the call stops counting as in flight.
//
// Not thread-safe: set_status() and the destructor run on whichever thread
// ends the call, which gRPC orders after every other reaction.
#ifndef WALRUS_SERVER_RPC_SCOPE_H_
#define WALRUS_SERVER_RPC_SCOPE_H_

#include <grpcpp/support/status.h>

#include <chrono>

namespace walrus {

class WalService;

class RpcScope {
 public:
  // `service` must outlive this; `method` is a string literal.
  RpcScope(const WalService* service, const char* method);
  ~RpcScope();
  RpcScope(const RpcScope&) = delete;
  RpcScope& operator=(const RpcScope&) = delete;

  // The status the call ends with (OK unless set; the last one set counts).
  void set_status(const grpc::Status& status) { status_ = status; }

 private:
  const WalService* const service_;
  const char* const method_;
  const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  grpc::Status status_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_RPC_SCOPE_H_
