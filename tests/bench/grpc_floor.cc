// walrus-grpc-floor: what one durable append costs through gRPC with nothing
// of walrus in the way, beside the same over a plain Unix socket. Answers
// "could any gRPC server reach X?" for the unary latency goals.
//
//   walrus-grpc-floor DIR [N]
//
// In DIR it writes a 1-MiB file of zeros (synced), then measures N (5000)
// one-at-a-time round trips, each a 128-byte pwrite + fdatasync at the next
// offset of that file, then the answer:
//   grpc-callback  walrus.v1.WAL/Append served raw by the callback API (as
//                  walrusd serves it), called with a blocking stub;
//   grpc-cq        the same method served by the completion-queue API, one
//                  thread polling its own queue;
//   unix-socket    a thread reading 128 bytes from a Unix stream socket and
//                  writing 16 back;
// and the same three with no disk work ("+ nothing"). Prints p50/p90/p99 in
// microseconds. A round trip's server work is the same in all of them.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "walrus.grpc.pb.h"

namespace walrus {
namespace {

using Clock = std::chrono::steady_clock;

// The server's work per round trip: the next 128 bytes of the file, synced.
class Disk {
 public:
  explicit Disk(int fd) : fd_(fd) {}
  void Work() {
    if (fd_ < 0) return;
    char block[128] = {1};
    if (::pwrite(fd_, block, sizeof block, offset_) != sizeof block || ::fdatasync(fd_) != 0) {
      std::perror("pwrite/fdatasync");
      std::exit(1);
    }
    offset_ = (offset_ + sizeof block) % (1 << 20);
  }

 private:
  const int fd_;
  off_t offset_ = 0;
};

grpc::ByteBuffer Answer() {
  v1::AppendResponse response;
  response.set_last_index(1);
  const std::string bytes = response.SerializeAsString();
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

class CallbackService final : public v1::WAL::WithRawCallbackMethod_Append<v1::WAL::Service> {
 public:
  explicit CallbackService(Disk* disk) : disk_(disk) {}
  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* context, const grpc::ByteBuffer*,
                                   grpc::ByteBuffer* response) override {
    disk_->Work();
    *response = Answer();
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Disk* disk_;
};

using AsyncService = v1::WAL::WithRawMethod_Append<v1::WAL::Service>;

struct AsyncCall {
  grpc::ServerContext context;
  grpc::ByteBuffer request;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> writer{&context};
  bool finishing = false;
};

std::vector<double> Client(const std::string& target, int n) {
  auto stub = v1::WAL::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  std::vector<double> micros;
  v1::AppendRequest request;
  request.add_entries()->set_data(std::string(100, 'x'));
  for (int i = 0; i < n + 100; ++i) {  // the first 100 warm the connection
    grpc::ClientContext context;
    v1::AppendResponse response;
    const Clock::time_point start = Clock::now();
    grpc::Status status = stub->Append(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "Append: %s\n", status.error_message().c_str());
      std::exit(1);
    }
    if (i >= 100) {
      micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    }
  }
  return micros;
}

std::vector<double> GrpcCallback(const std::string& dir, Disk* disk, int n) {
  CallbackService service(disk);
  grpc::ServerBuilder builder;
  const std::string target = "unix:" + dir + "/callback.sock";
  builder.AddListeningPort(target, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  std::vector<double> micros = Client(target, n);
  server->Shutdown();
  return micros;
}

std::vector<double> GrpcCompletionQueue(const std::string& dir, Disk* disk, int n) {
  AsyncService service;
  grpc::ServerBuilder builder;
  const std::string target = "unix:" + dir + "/cq.sock";
  builder.AddListeningPort(target, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  std::thread poller([&] {
    auto request = [&] {
      auto* call = new AsyncCall;
      service.RequestAppend(&call->context, &call->request, &call->writer, cq.get(), cq.get(),
                            call);
    };
    request();
    void* tag;
    bool ok;
    while (cq->Next(&tag, &ok)) {
      auto* call = static_cast<AsyncCall*>(tag);
      if (call->finishing || !ok) {
        delete call;
        continue;
      }
      request();
      disk->Work();
      call->finishing = true;
      call->writer.Finish(Answer(), grpc::Status::OK, call);
    }
  });
  std::vector<double> micros = Client(target, n);
  server->Shutdown();
  cq->Shutdown();
  poller.join();
  return micros;
}

std::vector<double> UnixSocket(Disk* disk, int n) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) std::exit(1);
  std::thread server([&] {
    char buf[256];
    while (::read(fds[1], buf, sizeof buf) > 0) {
      disk->Work();
      if (::write(fds[1], buf, 16) != 16) break;
    }
  });
  std::vector<double> micros;
  char buf[256] = {0};
  for (int i = 0; i < n; ++i) {
    const Clock::time_point start = Clock::now();
    if (::write(fds[0], buf, 128) != 128 || ::read(fds[0], buf, sizeof buf) <= 0) std::exit(1);
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
  }
  ::shutdown(fds[0], SHUT_RDWR);
  server.join();
  ::close(fds[0]);
  ::close(fds[1]);
  return micros;
}

void Print(const char* name, std::vector<double> micros) {
  std::sort(micros.begin(), micros.end());
  const size_t n = micros.size();
  std::printf("%-28s p50 %7.1f us  p90 %7.1f us  p99 %7.1f us\n", name, micros[n / 2],
              micros[n * 9 / 10], micros[n * 99 / 100]);
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: walrus-grpc-floor DIR [N]\n");
    return 64;
  }
  const std::string dir = argv[1];
  const int n = argc > 2 ? std::max(100, std::atoi(argv[2])) : 5000;
  const std::string path = dir + "/floor.dat";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  const std::string zeros(1 << 20, '\0');
  if (fd < 0 || ::write(fd, zeros.data(), zeros.size()) != static_cast<ssize_t>(zeros.size()) ||
      ::fsync(fd) != 0) {
    std::perror(path.c_str());
    return 1;
  }
  Disk synced(fd), nothing(-1);
  Print("grpc-callback + fdatasync", GrpcCallback(dir, &synced, n));
  Print("grpc-cq + fdatasync", GrpcCompletionQueue(dir, &synced, n));
  Print("unix-socket + fdatasync", UnixSocket(&synced, n));
  Print("grpc-callback + nothing", GrpcCallback(dir, &nothing, n));
  Print("grpc-cq + nothing", GrpcCompletionQueue(dir, &nothing, n));
  Print("unix-socket + nothing", UnixSocket(&nothing, n));
  ::close(fd);
  ::unlink(path.c_str());
  return 0;
}

}  // namespace
}  // namespace walrus

int main(int argc, char** argv) { return walrus::Main(argc, argv); }
