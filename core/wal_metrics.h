// Hooks through which the WAL reports what it does, so core/ needs no metrics
// library; walrusd implements them with prometheus-cpp.
#ifndef WALRUS_CORE_WAL_METRICS_H_
#define WALRUS_CORE_WAL_METRICS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "core/segment_preparer.h"

namespace walrus {

// Called from the thread that drives the Wal (Sync/Save/cut). Implementations
// must be cheap and must not call back into the Wal.
class WalMetrics {
 public:
  virtual ~WalMetrics() = default;
  virtual void ObserveFsync(double seconds) { (void)seconds; }
  virtual void AddBytesWritten(uint64_t bytes) { (void)bytes; }
  // The index of the last entry made durable.
  virtual void SetLastIndexSaved(uint64_t index) { (void)index; }
  virtual void SegmentCut(uint64_t new_seq) { (void)new_seq; }
  // A cut took a prepared segment whose space is `blocks`: kFallocated with
  // WalOptions::segment_blocks = kWritten means the background zero-fill had
  // not finished and the segment was handed out fallocated only.
  virtual void SegmentPrepared(SegmentBlocks blocks) { (void)blocks; }
  // A cut was due but no new segment could be had for lack of space (`why`):
  // appends go on into the tail, now `tail_bytes` long, and the next sync
  // tries again.
  virtual void SegmentCutDeferred(const absl::Status& why, uint64_t tail_bytes) {
    (void)why;
    (void)tail_bytes;
  }
  // Segments the writer holds (from the oldest unreleased one to the tail).
  virtual void SetLockedSegments(uint64_t count) { (void)count; }
  // Whether the tail segment's appends go around the page cache
  // (WalOptions::direct_io and what its file system takes).
  virtual void SetDirectIo(bool on) { (void)on; }
};

}  // namespace walrus

#endif  // WALRUS_CORE_WAL_METRICS_H_
