// The values a WalStore takes and gives: an append as the committer takes
// it, and the status and snapshot catalogue readers see. They are the
// store's own; the service turns walrus.v1 messages into them and back
// (server/wire_convert.h), so the store knows nothing of the wire.
#ifndef WALRUS_SERVER_STORE_MODEL_H_
#define WALRUS_SERVER_STORE_MODEL_H_

#include <google/protobuf/repeated_field.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/log_model.h"
#include "core/log_reader.h"
#include "raft.pb.h"

namespace walrus {

// One append (a Raft Ready's entries and hard state). The entries are held in
// protobuf's container so that an append parsed from the wire hands its
// entries over by a swap, and core's LogRequest reads them where they are:
// no entry is copied between the socket and the encoder.
struct LogAppend {
  raftpb::HardState hard_state;                               // empty: unchanged
  google::protobuf::RepeatedPtrField<raftpb::Entry> entries;  // contiguous indexes
  // Empty, or the CRC-32C of each entry's data, in order (a mismatch is
  // INVALID_ARGUMENT).
  google::protobuf::RepeatedField<uint32_t> entry_crc32c;
  uint64_t epoch = 0;  // the caller's writer epoch
  // What the append weighs against max_batch_bytes and in the batch
  // metrics: the size of the request it arrived in (0 weighs nothing).
  size_t bytes = 0;
};

// One segment file, as Status lists it.
struct SegmentInfo {
  std::string name;
  uint64_t seq = 0;
  uint64_t first_index = 0;  // from the name: the first index it may hold
  uint64_t size_bytes = 0;
  bool locked = false;                   // held by the writer (not released)
  std::optional<std::string> pinned_by;  // the holder of an in-process pin (a backup)
};

// What a running walrusd's log looks like (WalStore::Status).
struct StoreStatus {
  bool created = false;
  bool read_only = false;
  std::string data_dir;
  std::string version;
  uint64_t writer_epoch = 0;  // 0: never fenced
  // The durable log: what a restart would find.
  uint64_t first_index = 0;  // the first index the log still holds
  uint64_t last_index = 0;
  raftpb::HardState hard_state;
  // The durable markers in segments not released, oldest first; the last is
  // the newest marker saved.
  std::vector<SnapshotMarker> snapshots;
  LogPosition durable;  // the durable end
  bool fail_stop = false;
  std::string fail_stop_reason;
  std::vector<SegmentInfo> segments;  // every segment file, oldest first
  uint64_t total_bytes = 0;           // of the segment files
  uint64_t retain_released_segments = 0;
  std::string purge_blocked_by;  // why the last purge stopped early; empty: it did not
  uint32_t backups_in_progress = 0;

  // The newest marker saved ({0, 0} before there is a log).
  SnapshotMarker newest_snapshot() const {
    return snapshots.empty() ? SnapshotMarker() : snapshots.back();
  }
};

// The snapshot catalogue (WalStore::Snapshots).
struct SnapshotCatalogue {
  std::vector<SnapshotMarker> snapshots;  // oldest first
  uint64_t commit = 0;                    // of the durable hard state
};

}  // namespace walrus

#endif  // WALRUS_SERVER_STORE_MODEL_H_
