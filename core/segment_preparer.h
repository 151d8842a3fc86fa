// Prepares the next segment file ahead of time, so a cut does not wait for a
// file to be created and allocated (etcd's filePipeline).
//
// Files are named "<n>.tmp" in the WAL directory. A crash at any point of
// preparation leaves at most a stray .tmp file, which readers ignore and the
// writer removes on open; only Wal::Cut gives a prepared file a .wal name.
//
// Why the blocks are written, not just allocated: fallocate reserves
// "unwritten" extents. On ext4 the first write into such a block converts the
// extent, and the fdatasync after it must commit that conversion to the
// journal too: up to twice the cost of the same write and fdatasync into
// blocks already written. So with SegmentBlocks::kWritten (the default) a
// prepared file is fallocated (reserving its space at once, in as few extents
// as the file system can), then overwritten with zeros and fdatasync'd, and
// the writer's later syncs into it pay for its own bytes only.
//
// Zeroing a whole segment at once would compete with the writer: a 64 MB
// write at the cut stalls it, and zeroing flat out floods the device queue
// under its fdatasyncs. The background thread therefore zero-fills gently:
//  - in small chunks, each pushed to the device (StartWriteback) before the
//    next, so dirty pages never pile up for a later fsync to flush;
//  - at idle I/O priority (ioprio_set, where the kernel honours it);
//  - paced by the writer: the Wal reports how far the current segment is
//    written (SetTailWritten), and the zeroed part of the next segment is kept
//    just ahead of twice that, so the next file is ready when the current one
//    is about half full; otherwise the thread sleeps. After each chunk it
//    also pauses as long as the chunk took, backing off when the device is
//    busy.
// Take() never waits for zeroing: a file not fully zeroed yet is handed out
// as it is (already fallocated to the full size, fdatasync'd first), and so is
// a fresh fallocated one if the thread is in the middle of a chunk. Either is
// marked SegmentBlocks::kFallocated, so the fallback can be counted.
//
// A writer that outruns the zero-fill is writing near the device's
// bandwidth, where zeroing costs as much bandwidth as it saves. So after a
// fallback the next file is prepared fallocated only, without zeroing (the
// file the thread was already working on, if the fallback handed out a fresh
// one meanwhile); after each further fallback in a row, twice as many (up to
// kMaxSkippedFills); once a fully zeroed file is taken again, the count
// starts over.
//
// Without the background thread (deterministic, for the simulator and the
// crash-point tests), Take() does all of it inline on the caller's thread:
// create, fallocate, zero-fill in chunks, fdatasync.
//
// Every file Take() hands out has its full size and is fdatasync'd (its data
// and size durable), so the writer needs only to write its header, sync and
// rename it into place.
#ifndef WALRUS_CORE_SEGMENT_PREPARER_H_
#define WALRUS_CORE_SEGMENT_PREPARER_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "core/fs.h"

namespace walrus {

// What a segment's reserved space is on disk.
enum class SegmentBlocks {
  kFallocated,  // fallocate only: unwritten extents, converted on first write
  kWritten,     // fallocated, then zero-filled and fdatasync'd: written extents
};

// Writes zeros over [0, size) of `file` in chunks of `chunk` bytes, pushing
// each to the device as it goes and waiting for the one before, so at most two
// chunks are dirty or in flight at a time. Offset() does not move. Makes
// nothing durable: the caller syncs.
[[nodiscard]] absl::Status FillWithZeros(WritableFile* file, uint64_t size, uint64_t chunk);

struct PreparedSegment {
  std::string path;
  std::unique_ptr<WritableFile> file;
  // kWritten only if the whole file was zero-filled before it was handed out.
  SegmentBlocks blocks = SegmentBlocks::kFallocated;
};

class SegmentPreparer {
 public:
  // Chunk sizes of the zero-fill: small in the background, so each takes a
  // short turn at the device and a foreground fdatasync queued behind a
  // chunk, or flushing it with its own, waits for little (the measurements
  // are in docs/benchmarks.md); larger inline, where only throughput counts.
  static constexpr uint64_t kBackgroundChunk = uint64_t{64} << 10;
  static constexpr uint64_t kInlineChunk = uint64_t{1} << 20;
  // The most files prepared without zeroing after fallbacks in a row.
  static constexpr int kMaxSkippedFills = 16;

  // With `background`, one thread keeps a file ready; without, Take() prepares
  // one on the caller's thread (deterministic, for crash tests). `blocks`
  // says what the prepared files should be (see the file comment).
  SegmentPreparer(FileSystem* fs, std::string dir, uint64_t segment_size, SegmentBlocks blocks,
                  bool background);
  // Stops the thread (after the chunk it is writing) and removes every
  // prepared file that was never taken.
  ~SegmentPreparer();

  SegmentPreparer(const SegmentPreparer&) = delete;
  SegmentPreparer& operator=(const SegmentPreparer&) = delete;

  // A fresh file of the segment size, fdatasync'd, at offset 0; or the error
  // of preparing it (the next Take() tries again). Never waits for the
  // background zero-fill. Thread-safe.
  [[nodiscard]] absl::StatusOr<PreparedSegment> Take();

  // True while a complete file (or the error of preparing one) waits, so
  // that Take() returns it without any I/O. Thread-safe.
  bool HasReady();

  // How many bytes of the current segment are written: paces the background
  // zero-fill. Cheap (one atomic store) and thread-safe.
  void SetTailWritten(uint64_t bytes) { tail_written_.store(bytes, std::memory_order_relaxed); }

 private:
  // A background file being zero-filled: [0, zeroed) is done.
  struct Filling {
    PreparedSegment segment;
    uint64_t zeroed = 0;
    bool zero = true;  // false: prepared fallocated only (the writer outran the last)
  };

  // A fresh "<n>.tmp" path in the directory (NextPathLocked: mu_ held).
  std::string NextPath();
  std::string NextPathLocked();
  // Creates the file and fallocates it to the segment size (not synced).
  absl::StatusOr<PreparedSegment> Create(const std::string& path);
  // Create, zero-fill if kWritten, fdatasync: Take() without the thread.
  absl::StatusOr<PreparedSegment> PrepareInline();
  // Hands out a file that is fallocated but not (fully) zeroed: fdatasyncs it.
  absl::StatusOr<PreparedSegment> Fallback(PreparedSegment segment);
  // How far the background may zero-fill now (see the file comment).
  uint64_t ZeroAllowance() const;
  void Discard(PreparedSegment& segment);
  void Run();
  // One background step on `filling` (without mu_): zeroes the next chunk or,
  // once there is none left, fdatasyncs the file and sets `*done`. Sets
  // `*pause` to how long to rest before the next step.
  absl::Status Step(Filling& filling, bool* done, std::chrono::nanoseconds* pause);

  FileSystem* const fs_;
  const std::string dir_;
  const uint64_t segment_size_;
  const SegmentBlocks blocks_;
  std::atomic<uint64_t> tail_written_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t counter_ = 0;  // guarded by mu_: names files so none collide
  // A complete file (or the error of preparing one), waiting for Take().
  std::optional<absl::StatusOr<PreparedSegment>> ready_;  // guarded by mu_
  // A file being zero-filled, while the thread is not working on it.
  std::optional<Filling> filling_;  // guarded by mu_
  bool stopping_ = false;           // guarded by mu_
  // After fallbacks: files still to prepare without zeroing, and how many the
  // next fallback skips (1, 2, 4 ... kMaxSkippedFills).
  int skip_fills_ = 0;  // guarded by mu_
  int next_skip_ = 1;   // guarded by mu_
  std::thread thread_;
};

}  // namespace walrus

#endif  // WALRUS_CORE_SEGMENT_PREPARER_H_
