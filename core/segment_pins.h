// SegmentPins: the in-process registry of segments that a backup or reader is
// using, so the purge policy (core/purge.h) never deletes them.
//
// Two kinds of pin protect a segment file from purge:
//  - an in-process pin, taken here (walrusd's own Backup RPC): a range of
//    sequence numbers held by a named holder until the Pin is destroyed;
//  - another process's OFD lock on the file (an offline `walrusctl backup`,
//    etcd's own tools): purge deletes a file only while it holds the file's
//    lock itself, so such a lock stops it too (see core/purge.h).
//
// The check and the deletion happen under the registry's mutex
// (RemoveUnlessPinned), so a pin taken before a segment is deleted protects
// it, and a caller that lists the directory after taking its pin sees only
// files that stay until the pin goes.
//
// Thread-safety: all methods are thread-safe. A Pin may be destroyed on any
// thread; it must not outlive its registry.
#ifndef WALRUS_CORE_SEGMENT_PINS_H_
#define WALRUS_CORE_SEGMENT_PINS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace walrus {

struct PinInfo {
  uint64_t id = 0;
  uint64_t first_seq = 0;  // inclusive
  uint64_t last_seq = 0;   // inclusive
  std::string holder;      // who pinned, for log lines and status ("backup #3")
};

class SegmentPins {
 public:
  // Unpins on destruction.
  class Pin {
   public:
    ~Pin();
    Pin(const Pin&) = delete;
    Pin& operator=(const Pin&) = delete;
    const PinInfo& info() const { return info_; }

   private:
    friend class SegmentPins;
    Pin(SegmentPins* pins, PinInfo info) : pins_(pins), info_(std::move(info)) {}
    SegmentPins* pins_;
    PinInfo info_;
  };

  SegmentPins() = default;
  SegmentPins(const SegmentPins&) = delete;
  SegmentPins& operator=(const SegmentPins&) = delete;

  // Pins every segment with first_seq <= seq <= last_seq. From the moment
  // this returns, RemoveUnlessPinned deletes none of them.
  [[nodiscard]] std::unique_ptr<Pin> PinRange(uint64_t first_seq, uint64_t last_seq,
                                              std::string holder);

  // Under the registry's mutex: if a pin covers `seq`, returns its holder and
  // does not call `remove`; otherwise calls `remove` (which deletes the file)
  // and returns nullopt with its status in *status.
  std::optional<std::string> RemoveUnlessPinned(uint64_t seq,
                                                absl::FunctionRef<absl::Status()> remove,
                                                absl::Status* status);

  // The holder of the oldest pin covering `seq`, if any.
  std::optional<std::string> HolderOf(uint64_t seq) const;
  std::vector<PinInfo> List() const;

  // Runs (on the unpinning thread, outside the mutex) after each unpin, so a
  // blocked purge can try again at once.
  void set_on_unpin(std::function<void()> callback);

 private:
  void Unpin(uint64_t id);

  mutable std::mutex mu_;
  uint64_t next_id_ = 1;              // guarded by mu_
  std::map<uint64_t, PinInfo> pins_;  // guarded by mu_
  std::function<void()> on_unpin_;    // guarded by mu_
};

}  // namespace walrus

#endif  // WALRUS_CORE_SEGMENT_PINS_H_
