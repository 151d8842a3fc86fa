// The walrus.v1.WAL gRPC service (callback API). Handlers parse and validate
// the shape of a request, hand it to the WalStore and return; no gRPC thread
// ever waits on the disk. Completions arrive on the committer thread and
// finish the RPC.
#ifndef WALRUS_SERVER_WAL_SERVICE_H_
#define WALRUS_SERVER_WAL_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>

#include "server/byte_budget.h"
#include "server/metrics.h"
#include "server/read_pool.h"
#include "server/wal_store.h"
#include "walrus.grpc.pb.h"

namespace walrus {

// Bounds of the payload of one streamed message (ReadAll, Backup): the
// default, and the most a client may ask for.
inline constexpr uint32_t kDefaultChunkBytes = 1 << 20;
inline constexpr uint32_t kMaxChunkBytes = 4 << 20;

struct ServiceOptions {
  size_t max_metadata_bytes = 1 << 20;
  // Appends a stream may have queued before the server stops reading from it.
  // Kept beside the byte budgets: it bounds the store's queue for streams of
  // tiny appends, which the byte budgets alone would let grow to ~200,000.
  size_t max_stream_inflight = 4096;
  // Bytes one AppendStream may hold (requests not yet durable, plus
  // acknowledgements not yet written) before it stops reading requests; and
  // the same across every stream (server/byte_budget.h).
  uint64_t stream_budget_bytes = 64 << 20;
  uint64_t append_budget_bytes = 512 << 20;
  // Threads that run ReadAll, Backup and Status, and how long a call waits
  // for one before it is refused RESOURCE_EXHAUSTED (server/read_pool.h).
  size_t read_workers = 4;
  std::chrono::milliseconds read_queue_timeout{5000};
  // A backup whose client takes no data for this long is cancelled and its
  // pin released.
  std::chrono::milliseconds backup_stall_timeout{60000};
};

// Every method is registered raw (grpc::ByteBuffer in and out) and parsed by
// the service (server/wire_messages.h): a request that is not a valid message
// fails INVALID_ARGUMENT saying so, and in an AppendStream it ends the stream
// with that status after the appends read before it are acknowledged.
using RawWalService = v1::WAL::WithRawCallbackMethod_Create<v1::WAL::WithRawCallbackMethod_Append<
    v1::WAL::WithRawCallbackMethod_AppendStream<v1::WAL::WithRawCallbackMethod_ReadAll<
        v1::WAL::WithRawCallbackMethod_Snapshots<v1::WAL::WithRawCallbackMethod_Entries<
            v1::WAL::WithRawCallbackMethod_Term<v1::WAL::WithRawCallbackMethod_SaveSnapshot<
                v1::WAL::WithRawCallbackMethod_ReleaseTo<v1::WAL::WithRawCallbackMethod_Status<
                    v1::WAL::WithRawCallbackMethod_Fence<v1::WAL::WithRawCallbackMethod_Backup<
                        v1::WAL::WithRawCallbackMethod_Follow<v1::WAL::Service>>>>>>>>>>>>>;

class WalService final : public RawWalService {
 public:
  // `store` and `metrics` (may be null) must outlive the service.
  WalService(WalStore* store, ServerMetrics* metrics, const ServiceOptions& options = {})
      : store_(store),
        metrics_(metrics),
        options_(options),
        append_budget_(options.append_budget_bytes, metrics),
        read_pool_(
            options.read_workers,
            std::chrono::duration_cast<ReadPool::Clock::duration>(options.read_queue_timeout),
            metrics) {}
  // Waits for the read workers' running tasks. REQUIRES: no RPC in flight
  // (the server has been shut down and waited for).
  ~WalService() = default;

  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Append(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* AppendStream(
      grpc::CallbackServerContext* context) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* ReadAll(grpc::CallbackServerContext* context,
                                                      const grpc::ByteBuffer* request) override;
  // From memory, on the gRPC thread (WalStore::Snapshots).
  grpc::ServerUnaryReactor* Snapshots(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  // On a read worker: reads segment files (WalStore::Entries).
  grpc::ServerUnaryReactor* Entries(grpc::CallbackServerContext* context,
                                    const grpc::ByteBuffer* request,
                                    grpc::ByteBuffer* response) override;
  // From memory, on the gRPC thread (WalStore::Term).
  grpc::ServerUnaryReactor* Term(grpc::CallbackServerContext* context,
                                 const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  // Durable entries as they become durable (server/follow_stream.h).
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Follow(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* SaveSnapshot(grpc::CallbackServerContext* context,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ReleaseTo(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* Fence(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;
  // Streams a point-in-time backup (WalStore::BeginBackup) from a read
  // worker, one chunk in flight at a time; the pin goes when the stream ends,
  // however it ends (a client that takes nothing for the stall timeout ends
  // it). ReadAll and Status run on the read workers too.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Backup(grpc::CallbackServerContext* context,
                                                     const grpc::ByteBuffer* request) override;

  // Ends every open AppendStream (and any opened later): no more appends are
  // read from it; those already taken are committed and acknowledged, then
  // the stream ends UNAVAILABLE, so the client resends the rest to the next
  // instance. Calls waiting for a read worker are refused UNAVAILABLE.
  // Called on SIGTERM before the server stops.
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

  const ServiceOptions& options() const { return options_; }
  ReadPool& read_pool() { return read_pool_; }
  // The daemon-wide budget of append streams; the local socket shares it.
  ByteBudget& append_budget() { return append_budget_; }

 private:
  friend class RpcScope;  // counts the RPCs in flight and records them in metrics_

  // Parses a unary request into a call object and runs `handle` on it, or
  // finishes INVALID_ARGUMENT if it does not parse.
  template <typename Request, typename Response, typename Handler>
  grpc::ServerUnaryReactor* Unary(const char* method, grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request, grpc::ByteBuffer* response,
                                  Handler handle);

  WalStore* const store_;
  ServerMetrics* const metrics_;
  const ServiceOptions options_;
  ByteBudget append_budget_;

  // RPCs started and not yet finished (server/rpc_scope.h).
  mutable std::atomic<int64_t> in_flight_{0};
  std::mutex streams_mu_;
  std::set<Drainable*> streams_;  // guarded by streams_mu_
  bool shutting_down_ = false;    // guarded by streams_mu_
  // Last: destroyed first, so its workers are gone before anything they use.
  ReadPool read_pool_;
};

}  // namespace walrus

#endif  // WALRUS_SERVER_WAL_SERVICE_H_
