// health_probe ADDR [SERVICE]: one grpc.health.v1 Check, as a kubelet's gRPC
// probe makes it. Prints the status (SERVING, NOT_SERVING, ...) or the RPC
// error and exits 0 only for SERVING. The container test runs it inside the
// container's network namespace, so the image needs no probe of its own.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "health.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::fprintf(stderr, "usage: health_probe ADDR [SERVICE]\n");
    return 2;
  }
  auto stub = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  // Bounded, so a probe of a wedged listener fails instead of hanging the test.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(argc == 3 ? argv[2] : "");
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    std::printf("RPC_ERROR %d %s\n", static_cast<int>(status.error_code()),
                status.error_message().c_str());
    return 1;
  }
  std::printf("%s\n",
              grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status()).c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? 0 : 1;
}
