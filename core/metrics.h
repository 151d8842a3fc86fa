// Hooks through which the WAL reports what it does, so core/ needs no metrics
// library; walrusd implements them with prometheus-cpp.
#ifndef WALRUS_CORE_METRICS_H_
#define WALRUS_CORE_METRICS_H_

#include <cstdint>

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
  // Segments the writer holds (from the oldest unreleased one to the tail).
  virtual void SetLockedSegments(uint64_t count) { (void)count; }
};

}  // namespace walrus

#endif  // WALRUS_CORE_METRICS_H_
