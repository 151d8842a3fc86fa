#include "server/rpc_scope.h"

#include "server/status_codes.h"
#include "server/wal_service.h"

namespace walrus {

RpcScope::RpcScope(const WalService* service, const char* method)
    : service_(service), method_(method) {
  service_->in_flight_.fetch_add(1);
}

RpcScope::~RpcScope() {
  if (service_->metrics_ != nullptr) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    service_->metrics_->ObserveRpc(method_, StatusCodeName(status_.error_code()), seconds);
  }
  service_->in_flight_.fetch_sub(1);
}

}  // namespace walrus
