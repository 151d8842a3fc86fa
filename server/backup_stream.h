// The server side of the Backup RPC (see proto/walrus.proto): a point-in-time
// backup streamed while appends continue.
#ifndef WALRUS_SERVER_BACKUP_STREAM_H_
#define WALRUS_SERVER_BACKUP_STREAM_H_

#include <grpcpp/grpcpp.h>

#include <string>

#include "server/metrics.h"
#include "server/wal_service.h"
#include "server/wal_store.h"

namespace walrus {

// A reactor that pins and plans the backup (WalStore::BeginBackup) on one of
// the service's read workers and streams it, one chunk in flight at a time;
// the pin goes when the stream ends, however it ends. A chunk the client has
// not taken within the service's backup stall timeout cancels the call (the
// pin goes; logged, and counted in walrus_backups_stalled_total). Owns
// itself; `service`, `store`, `metrics` (may be null) and `context` must
// outlive it; the client's address names the pin's holder.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewBackupStream(WalService* service, WalStore* store,
                                                            ServerMetrics* metrics,
                                                            const v1::BackupRequest& request,
                                                            grpc::CallbackServerContext* context);

}  // namespace walrus

#endif  // WALRUS_SERVER_BACKUP_STREAM_H_
