// Follow: durable entries from an index on, streamed as they become durable
// (walrus.proto, rpc Follow).
//
// The stream is driven by events and never holds a thread while it waits:
// a read worker reads the next chunk through the store's ranged reads and
// hands gRPC one message; the next read starts when gRPC has taken it (so a
// follower that reads slowly holds back only its own stream, with one
// message in memory); when the stream has caught up it registers with the
// store (WalStore::CallAfter) and is woken by the next published batch.
// Before each read it checks that the last entry it sent is still in the
// log with the term it sent; if a new leader replaced it, it finds where
// the log diverges from what was sent and tells the client to drop the
// entries from there (truncated_from) before sending their replacements.
#ifndef WALRUS_SERVER_FOLLOW_STREAM_H_
#define WALRUS_SERVER_FOLLOW_STREAM_H_

#include <grpcpp/grpcpp.h>

#include "server/wal_service.h"
#include "server/wal_store.h"
#include "walrus.pb.h"

namespace walrus {

// A reactor that owns itself until gRPC is done with it.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewFollowStream(WalService* service, WalStore* store,
                                                            const v1::FollowRequest& request);

}  // namespace walrus

#endif  // WALRUS_SERVER_FOLLOW_STREAM_H_
