// EntryIndex: where each entry of the durable log lies on disk, so a ranged
// read (Raft's Storage.Entries) can fetch any run of entries with one read
// of one segment and check their CRCs, without the entries in memory.
//
// For every entry of the resolved log (later overwrites win: an entry
// recorded at index i drops every entry at or after i first) it keeps the
// segment, the frame's offset and length, and the running CRC just before the
// frame, which the etcd format chains from record to record: a reader that
// starts at that frame can verify it and every frame after it without the
// bytes before. Entries of one segment are stored together, so a range costs
// one read per segment it spans.
//
// Memory: 16 bytes per entry (kBytesPerEntry) plus a few words per segment,
// and while the tail segment grows, its vector's spare capacity (given back
// when the next segment starts); releasing segments trims it
// (DropSegmentsBefore). memory_bytes() says what it holds.
//
// Thread-safety: none; walrusd guards its index with a mutex.
#ifndef WALRUS_CORE_ENTRY_INDEX_H_
#define WALRUS_CORE_ENTRY_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

namespace walrus {

// One entry's frame.
struct EntryLocation {
  uint64_t index = 0;
  uint64_t seq = 0;        // the segment's sequence number
  uint64_t offset = 0;     // of the frame's length field
  uint32_t length = 0;     // of the frame, padding included
  uint32_t prev_crc = 0;   // the running CRC before the frame's record
  uint64_t seg_index = 0;  // the index in the segment's name (with seq, its name)
};

// A change to the durable log's entry positions, in the order it happened.
struct EntryIndexEvent {
  enum Kind {
    kEntry,    // `location` holds entry location.index (dropping any at or after it)
    kRestart,  // the log starts over after location.index (a marker replaced
               // it, or recovery reads it anew): every entry is dropped
  };
  Kind kind = kEntry;
  EntryLocation location;
};

class EntryIndex {
 public:
  static constexpr size_t kBytesPerEntry = 16;

  void Apply(const EntryIndexEvent& event);
  // Records entry `location.index`; entries at or after it are dropped first.
  // An index that would leave a gap starts the index over from it.
  void Add(const EntryLocation& location);
  // Drops the entries after `index`.
  void TruncateAfter(uint64_t index);
  // Drops the entries held in segments before `seq` (they were purged).
  void DropSegmentsBefore(uint64_t seq);
  void Clear();

  bool empty() const { return segments_.empty(); }
  // The first and last index held; 0 and 0 when empty.
  uint64_t first_index() const;
  uint64_t last_index() const;
  size_t size() const { return size_; }
  // What the index holds in memory (the frames' storage and the segments).
  size_t memory_bytes() const;

  // What a frame adds to its entry at most: the length field, padding, and
  // the record's type, CRC and data length. An entry is at least its frame
  // length minus this.
  static constexpr uint64_t kFrameOverhead = 8 + 7 + 11 + 5 + 11;

  // The locations of entries [lo, hi), in index order, as the index holds
  // them now (one consistent view of the log: frames are never rewritten in
  // place, so reading them later still gives this log's entries, unless the
  // segment was purged). With `byte_budget` > 0, only as many as entries of
  // that many bytes can need: it stops before the entries' smallest possible
  // sizes would pass the budget (always at least one).
  // REQUIRES: first_index() <= lo < hi <= last_index() + 1.
  std::vector<EntryLocation> Locate(uint64_t lo, uint64_t hi, uint64_t byte_budget = 0) const;

 private:
  struct Frame {
    uint64_t offset;
    uint32_t length;
    uint32_t prev_crc;
  };
  static_assert(sizeof(Frame) == kBytesPerEntry);
  struct Segment {
    uint64_t seq = 0;
    uint64_t seg_index = 0;    // the index in its name
    uint64_t first_index = 0;  // of frames[0]
    std::vector<Frame> frames;
    uint64_t last_index() const { return first_index + frames.size() - 1; }
  };
  // The segment holding `index` (which must be held).
  size_t SegmentOf(uint64_t index) const;

  std::deque<Segment> segments_;  // in index order, none empty
  size_t size_ = 0;
};

}  // namespace walrus

#endif  // WALRUS_CORE_ENTRY_INDEX_H_
