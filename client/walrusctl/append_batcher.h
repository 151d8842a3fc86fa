// Groups a run of entries into Append requests for `walrusctl append`: a
// batch holds at most max_entries entries and about max_bytes (see
// EntryWireBytes), and only contiguous indexes, since the daemon takes one
// contiguous run per append. An entry that alone exceeds max_bytes travels
// alone. A break in the indexes (the log went back, as a Raft truncation
// does, or skipped ahead) ends the batch, so the daemon judges each run by
// itself.
#ifndef WALRUS_CLIENT_WALRUSCTL_APPEND_BATCHER_H_
#define WALRUS_CLIENT_WALRUSCTL_APPEND_BATCHER_H_

#include <cstddef>
#include <optional>
#include <vector>

#include "raft.pb.h"

namespace walrus {

struct BatchLimits {
  size_t max_entries = 1000;
  size_t max_bytes = 4 << 20;
};

// The bytes `entry` adds to an AppendRequest: the encoded entry plus a
// conservative allowance for its field tag, length prefix and entry_crc32c.
size_t EntryWireBytes(const raftpb::Entry& entry);

// Not thread-safe.
class AppendBatcher {
 public:
  explicit AppendBatcher(BatchLimits limits = {}) : limits_(limits) {}

  // Adds `entry`. If it does not fit the pending batch, returns that batch
  // (complete, to be sent now) and starts the next one with `entry`.
  [[nodiscard]] std::optional<std::vector<raftpb::Entry>> Add(raftpb::Entry entry);

  // Returns the pending batch (possibly empty) and empties the batcher.
  [[nodiscard]] std::vector<raftpb::Entry> TakePending();

  size_t pending_entries() const { return pending_.size(); }
  size_t pending_bytes() const { return pending_bytes_; }

 private:
  const BatchLimits limits_;
  std::vector<raftpb::Entry> pending_;
  size_t pending_bytes_ = 0;
};

}  // namespace walrus

#endif  // WALRUS_CLIENT_WALRUSCTL_APPEND_BATCHER_H_
