// Ranged reads through the entry index: the locations a Wal reports for what
// it made durable (and, after a restart, for what it recovered) must read
// back, range by range, exactly the entries a full ReadAll returns: across
// cuts, tails rewritten by a new leader, a marker that replaces the log, a
// batch that failed for lack of space, and restarts.
#include <random>

#include "core/entry_index.h"
#include "core/log_stream.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeSnapshot;
using testing::MakeState;

constexpr char kDir[] = "/data/wal";

class EntryLocationsTest : public ::testing::Test {
 protected:
  EntryLocationsTest() {
    EXPECT_TRUE(fs_.CreateDir("/data").ok());
    options_.fs = &fs_;
    options_.segment_size = 8 * 1024;
    options_.prepare_in_background = false;
    options_.track_entry_locations = true;
  }

  std::vector<raftpb::Entry> Entries(uint64_t first, uint64_t last, uint64_t term) {
    std::vector<raftpb::Entry> out;
    for (uint64_t i = first; i <= last; ++i) {
      raftpb::Entry e;
      e.set_index(i);
      e.set_term(term);
      e.set_data(std::string(rng_() % 1500, static_cast<char>('a' + i % 26)));
      out.push_back(std::move(e));
    }
    return out;
  }

  void Absorb(Wal* wal) {
    for (const EntryIndexEvent& e : wal->TakeDurableLocations()) index_.Apply(e);
  }

  // Every range of the index reads back as `want` (the log after `base`).
  void ExpectRangesRead(const std::vector<raftpb::Entry>& want, const std::string& when) {
    ASSERT_FALSE(want.empty()) << when;
    const uint64_t lo_bound = want.front().index();
    const uint64_t hi_bound = want.back().index() + 1;
    ASSERT_LE(index_.first_index(), lo_bound) << when;
    ASSERT_EQ(index_.last_index(), hi_bound - 1) << when;
    for (int probe = 0; probe < 200; ++probe) {
      const uint64_t lo = lo_bound + rng_() % (hi_bound - lo_bound);
      const uint64_t hi = std::min(hi_bound, lo + 1 + rng_() % 40);
      const uint64_t max_bytes = probe % 3 == 0 ? 4000 : 0;
      std::vector<EntryLocation> at = index_.Locate(lo, hi, max_bytes);
      ASSERT_FALSE(at.empty()) << when;
      absl::StatusOr<std::vector<raftpb::Entry>> got =
          ReadLocatedEntries(&fs_, kDir, at, max_bytes);
      ASSERT_TRUE(got.ok()) << when << ": " << got.status();
      ASSERT_FALSE(got->empty()) << when << ": at least one entry";
      uint64_t bytes = 0;
      for (size_t i = 0; i < got->size(); ++i) {
        const raftpb::Entry& w = want[static_cast<size_t>(lo - lo_bound) + i];
        ASSERT_EQ((*got)[i].index(), w.index()) << when;
        ASSERT_EQ((*got)[i].term(), w.term()) << when << " entry " << w.index();
        ASSERT_EQ((*got)[i].data(), w.data()) << when << " entry " << w.index();
        bytes += w.ByteSizeLong();
      }
      if (max_bytes != 0 && got->size() > 1) ASSERT_LE(bytes, max_bytes) << when;
      ASSERT_TRUE(max_bytes != 0 || got->size() == hi - lo) << when << ": the whole range";
      if (lo + got->size() < hi && max_bytes != 0) {
        const raftpb::Entry& next = want[static_cast<size_t>(lo - lo_bound) + got->size()];
        ASSERT_GT(bytes + next.ByteSizeLong(), max_bytes) << when << ": stopped early";
      }
    }
  }

  std::vector<raftpb::Entry> ReadAllFrom(uint64_t index, uint64_t term) {
    auto wal = Wal::OpenForRead(kDir, MakeSnapshot(index, term), options_);
    EXPECT_TRUE(wal.ok()) << wal.status();
    absl::StatusOr<ReadAllResult> read = (*wal)->ReadAll();
    EXPECT_TRUE(read.ok()) << read.status();
    return read.ok() ? read->entries : std::vector<raftpb::Entry>{};
  }

  MemFileSystem fs_;
  WalOptions options_;
  EntryIndex index_;
  std::mt19937_64 rng_{11};
};

TEST_F(EntryLocationsTest, RangesReadBackAsReadAll_AcrossRewritesMarkersFailuresAndRestarts) {
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    for (uint64_t i = 1; i <= 200; i += 10) {
      ASSERT_TRUE((*wal)->Save(MakeState(1, 1, i), Entries(i, i + 9, 1)).ok());
    }
    Absorb(wal->get());
    ExpectRangesRead(ReadAllFrom(0, 0), "200 entries over many segments");

    // A new leader rewrites the uncommitted tail 195..200 from 195 on.
    ASSERT_TRUE((*wal)->Save(MakeState(2, 1, 194), Entries(195, 230, 2)).ok());
    Absorb(wal->get());
    ExpectRangesRead(ReadAllFrom(0, 0), "tail rewritten");

    // A batch that finds no space is not durable and never indexed.
    fs_.FailNext(FsOp::kAppend, ENOSPC);
    EXPECT_FALSE((*wal)->Save(MakeState(2, 1, 194), Entries(231, 240, 2)).ok());
    Absorb(wal->get());
    ExpectRangesRead(ReadAllFrom(0, 0), "after a batch refused for lack of space");

    // A follower installs a leader's snapshot past its end: the log restarts
    // after the marker.
    ASSERT_TRUE((*wal)->SaveSnapshot(MakeSnapshot(300, 3)).ok());
    Absorb(wal->get());
    EXPECT_TRUE(index_.empty()) << "the marker replaced the log: no entry of it remains";
    ASSERT_TRUE((*wal)->Save(MakeState(3, 1, 300), Entries(301, 340, 3)).ok());
    Absorb(wal->get());
    ExpectRangesRead(ReadAllFrom(300, 3), "after a marker that replaced the log");
    ASSERT_TRUE((*wal)->Close().ok());
  }
  // A restart: the index starts over from what recovery read.
  index_.Apply({EntryIndexEvent::kEntry, {7, 0, 0, 0, 0, 0}});  // stale, must be dropped
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(kDir, options_);
  ASSERT_TRUE(wal.ok()) << wal.status();
  ASSERT_TRUE((*wal)->ReadAll().ok());
  Absorb(wal->get());
  ExpectRangesRead(ReadAllFrom(300, 3), "after a restart");
  ASSERT_TRUE((*wal)->Save(MakeState(3, 1, 300), Entries(341, 400, 3)).ok());
  Absorb(wal->get());
  ExpectRangesRead(ReadAllFrom(300, 3), "appends after the restart");
}

TEST_F(EntryLocationsTest, DamagedFrame_IsDataLossNotAnotherEntry) {
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
  ASSERT_TRUE(wal.ok()) << wal.status();
  ASSERT_TRUE((*wal)->Save(MakeState(1, 1, 0), Entries(1, 5, 1)).ok());
  Absorb(wal->get());
  std::vector<EntryLocation> at = index_.Locate(3, 4);
  ASSERT_EQ(at.size(), 1u);
  const std::string path = JoinPath(kDir, SegmentName(at[0].seq, at[0].seg_index));
  // A bit of the entry's data (the frame ends with it and up to 7 bytes of padding).
  ASSERT_TRUE(fs_.FlipBit(path, at[0].offset + at[0].length - 9, 0).ok());
  absl::StatusOr<std::vector<raftpb::Entry>> got = ReadLocatedEntries(&fs_, kDir, at, 0);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kDataLoss) << got.status();
}

}  // namespace
}  // namespace walrus
