// Between walrus.v1 messages and the store's values (server/store_model.h).
// The service converts at its edge, here and nowhere else; the store below it
// never sees a wire type.
#ifndef WALRUS_SERVER_WIRE_CONVERT_H_
#define WALRUS_SERVER_WIRE_CONVERT_H_

#include "server/store_model.h"
#include "walrus.pb.h"

namespace walrus {

// The append `request` carries, weighed by its encoded size. Its entries,
// their CRCs and the hard state are moved out, not copied: `*request` keeps
// only its sequence and epoch.
LogAppend TakeAppend(v1::AppendRequest* request);

void StatusToWire(const StoreStatus& status, v1::StatusResponse* out);
void SnapshotsToWire(const SnapshotCatalogue& catalogue, v1::SnapshotsResponse* out);

}  // namespace walrus

#endif  // WALRUS_SERVER_WIRE_CONVERT_H_
