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

// A reactor that pins and plans the backup (WalStore::BeginBackup) on a
// worker thread and streams it, one chunk in flight at a time; the pin goes
// when the stream ends, however it ends. Owns itself; `service`, `store` and
// `metrics` (may be null) must outlive it. `peer` names the pin's holder.
grpc::ServerWriteReactor<grpc::ByteBuffer>* NewBackupStream(const WalService* service,
                                                            WalStore* store, ServerMetrics* metrics,
                                                            const v1::BackupRequest& request,
                                                            std::string peer);

}  // namespace walrus

#endif  // WALRUS_SERVER_BACKUP_STREAM_H_
