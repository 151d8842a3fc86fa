// The walrus.v1.WAL gRPC service (callback API). Handlers validate the shape
// of a request, hand it to the WalStore and return; no gRPC thread ever waits
// on the disk. Completions arrive on the committer thread and finish the RPC.
#ifndef WALRUS_SERVER_WAL_SERVICE_H_
#define WALRUS_SERVER_WAL_SERVICE_H_

#include <atomic>
#include <mutex>
#include <set>

#include "server/metrics.h"
#include "server/wal_store.h"
#include "walrus.grpc.pb.h"

namespace walrus {

struct ServiceOptions {
  size_t max_metadata_bytes = 1 << 20;
  // Appends a stream may have queued before the server stops reading from it.
  size_t max_stream_inflight = 4096;
};

class WalService final : public v1::WAL::CallbackService {
 public:
  // `store` and `metrics` (may be null) must outlive the service.
  WalService(WalStore* store, ServerMetrics* metrics, const ServiceOptions& options = {})
      : store_(store), metrics_(metrics), options_(options) {}

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const v1::CreateRequest* request,
                                   v1::CreateResponse* response) override;
  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* context,
                                   const v1::AppendRequest* request,
                                   v1::AppendResponse* response) override;
  grpc::ServerBidiReactor<v1::AppendRequest, v1::AppendResponse>* AppendStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<v1::ReadAllResponse>* ReadAll(
      grpc::CallbackServerContext* context, const v1::ReadAllRequest* request) override;
  grpc::ServerUnaryReactor* SaveSnapshot(grpc::CallbackServerContext* context,
                                         const v1::SaveSnapshotRequest* request,
                                         v1::SaveSnapshotResponse* response) override;
  grpc::ServerUnaryReactor* ReleaseTo(grpc::CallbackServerContext* context,
                                      const v1::ReleaseToRequest* request,
                                      v1::ReleaseToResponse* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const v1::StatusRequest* request,
                                   v1::StatusResponse* response) override;
  grpc::ServerUnaryReactor* Fence(grpc::CallbackServerContext* context,
                                  const v1::FenceRequest* request,
                                  v1::FenceResponse* response) override;
  // Issue 4: streams a point-in-time backup (WalStore::BeginBackup) from a
  // worker thread, one chunk in flight at a time; the pin goes when the
  // stream ends, however it ends.
  grpc::ServerWriteReactor<v1::BackupChunk>* Backup(grpc::CallbackServerContext* context,
                                                    const v1::BackupRequest* request) override;

  // Counts an RPC as started; Observe() counts it as finished.
  void Started() const { in_flight_.fetch_add(1); }
  // Records one finished RPC (method, code, duration) in the metrics.
  void Observe(const char* method, const grpc::Status& status,
               std::chrono::steady_clock::time_point started) const;

  // Ends every open AppendStream (and any opened later): no more appends are
  // read from it; those already taken are committed and acknowledged, then
  // the stream ends UNAVAILABLE, so the client resends the rest to the next
  // instance. Called on SIGTERM before the server stops.
  void BeginShutdown();

  // An open stream that can be drained; streams register themselves.
  class Drainable {
   public:
    virtual ~Drainable() = default;
    virtual void Drain() = 0;
  };
  void Register(Drainable* stream);
  // Waits until no RPC is in flight, or `deadline`. True if idle.
  bool WaitIdle(std::chrono::steady_clock::time_point deadline) const;
  void Unregister(Drainable* stream);

 private:
  WalStore* const store_;
  ServerMetrics* const metrics_;
  const ServiceOptions options_;

  // RPCs started and not yet finished (each finishes through Observe()).
  mutable std::atomic<int64_t> in_flight_{0};
  std::mutex streams_mu_;
  std::set<Drainable*> streams_;  // guarded by streams_mu_
  bool shutting_down_ = false;    // guarded by streams_mu_
};

}  // namespace walrus

#endif  // WALRUS_SERVER_WAL_SERVICE_H_
