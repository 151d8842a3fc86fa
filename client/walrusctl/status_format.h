// What `walrusctl status` shows, and how: one view, filled either from a
// daemon's answer (`--server ADDR status`) or from a WAL directory walrusctl
// read itself (`status DIR`, core/inspect.h), printed as a few aligned lines
// for people or as one JSON object (snake_case members, numbers as numbers,
// every member present) for scripts.
#ifndef WALRUS_CLIENT_WALRUSCTL_STATUS_FORMAT_H_
#define WALRUS_CLIENT_WALRUSCTL_STATUS_FORMAT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/inspect.h"
#include "core/log_model.h"
#include "raft.pb.h"

namespace walrus {

namespace v1 {
class StatusResponse;
}  // namespace v1

struct StatusView {
  struct Segment {
    std::string name;
    uint64_t seq = 0;
    uint64_t first_index = 0;  // from the name: the first index it may hold
    uint64_t size_bytes = 0;
    // Daemon: held by the writer (not released). Offline: another process
    // holds its lock.
    bool locked = false;
    bool pinned = false;  // daemon only: a running backup needs it
    std::string pinned_by;
    // Offline only: the entry records read from it (core/inspect.h).
    uint64_t entries = 0;
    uint64_t first_entry = 0;
    uint64_t last_entry = 0;
  };

  // True: read from a directory by walrusctl. The daemon-only members
  // (health, epoch, purge, backups, version) are then left empty.
  bool offline = false;
  bool created = false;
  std::string data_dir;
  uint64_t first_index = 0;
  uint64_t last_index = 0;
  raftpb::HardState hard_state;
  uint64_t snapshot_index = 0;  // the newest snapshot marker
  uint64_t snapshot_term = 0;
  std::vector<SnapshotMarker> snapshots;  // the catalogue (`seq` is not shown)
  std::vector<Segment> segments;
  uint64_t total_bytes = 0;
  // Daemon: the durable end. Offline: the valid end.
  uint64_t durable_segment = 0;
  uint64_t durable_offset = 0;
  std::string damage;  // offline only; "" if the log reads cleanly
  // Daemon only.
  std::string version;
  bool fail_stop = false;
  std::string fail_stop_reason;
  bool read_only = false;
  uint64_t writer_epoch = 0;
  uint64_t retain_released_segments = 0;
  std::string purge_blocked_by;
  uint64_t backups_in_progress = 0;
};

StatusView DaemonStatusView(const v1::StatusResponse& status);
StatusView DirStatusView(const DirInspection& inspection);

// Several lines, each ending in '\n'.
std::string StatusText(const StatusView& status);
// One line of JSON, ending in '\n'.
std::string StatusJson(const StatusView& status);

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_STATUS_FORMAT_H_
