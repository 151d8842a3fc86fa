// EntryIndex against a plain map from index to location, over seeded random
// histories of what the WAL records: appends, overwrites of a tail (also
// from a later segment), truncations by a snapshot marker, purges of whole
// segments, and gaps that start the index over.
#include "core/entry_index.h"

#include <cstdint>
#include <map>
#include <random>

#include "gtest/gtest.h"

namespace walrus {
namespace {

TEST(EntryIndexTest, RandomHistories_LocateEqualsAPlainMap) {
  std::mt19937_64 rng(20261203);
  for (int history = 0; history < 300; ++history) {
    EntryIndex index;
    std::map<uint64_t, EntryLocation> plain;
    uint64_t seq = 0;
    uint64_t offset = 0;
    for (int step = 0; step < 400; ++step) {
      const int op = static_cast<int>(rng() % 100);
      const uint64_t last = plain.empty() ? 0 : plain.rbegin()->first;
      if (op < 70 || plain.empty()) {
        // An entry after the last one, or an overwrite of a tail entry.
        uint64_t at = last + 1;
        if (op < 10 && last > 0)
          at = plain.begin()->first + rng() % (last - plain.begin()->first + 1);
        if (op >= 95 || plain.empty()) at = last + 2 + rng() % 5;  // a gap: starts over
        if (rng() % 20 == 0) ++seq;                                // a segment cut
        EntryLocation l{at, seq, offset, static_cast<uint32_t>(16 + rng() % 100),
                        static_cast<uint32_t>(rng())};
        offset += l.length;
        index.Add(l);
        if (!plain.empty() && at > last + 1) plain.clear();
        plain.erase(plain.lower_bound(at), plain.end());
        plain[at] = l;
      } else if (op < 80) {
        const uint64_t keep = plain.begin()->first - 1 + rng() % (plain.size() + 1);
        index.TruncateAfter(keep);
        plain.erase(plain.upper_bound(keep), plain.end());
      } else if (op < 85) {
        const uint64_t below = plain.begin()->second.seq + rng() % 3;
        index.DropSegmentsBefore(below);
        for (auto it = plain.begin(); it != plain.end();) {
          it = it->second.seq < below ? plain.erase(it) : std::next(it);
        }
      } else {
        if (plain.empty()) continue;
        const uint64_t first = plain.begin()->first;
        const uint64_t lo = first + rng() % plain.size();
        const uint64_t hi = lo + 1 + rng() % 30;
        std::vector<EntryLocation> got = index.Locate(lo, std::min(hi, last + 1));
        ASSERT_FALSE(got.empty()) << "history " << history << " step " << step;
        for (size_t i = 0; i < got.size(); ++i) {
          const EntryLocation& want = plain.at(lo + i);
          ASSERT_EQ(got[i].index, lo + i);
          ASSERT_EQ(got[i].seq, want.seq);
          ASSERT_EQ(got[i].offset, want.offset);
          ASSERT_EQ(got[i].length, want.length);
          ASSERT_EQ(got[i].prev_crc, want.prev_crc);
        }
        ASSERT_EQ(lo + got.size(), std::min(hi, last + 1)) << "the whole range";
        // With a budget: as many as entries of that size can need.
        const uint64_t budget = 1 + rng() % 300;
        std::vector<EntryLocation> some = index.Locate(lo, std::min(hi, last + 1), budget);
        ASSERT_FALSE(some.empty());
        uint64_t least = 0;
        for (const EntryLocation& l : some) {
          least +=
              l.length > EntryIndex::kFrameOverhead ? l.length - EntryIndex::kFrameOverhead : 0;
        }
        if (some.size() > 1) ASSERT_LE(least, budget);
      }
      ASSERT_EQ(index.size(), plain.size());
      ASSERT_EQ(index.first_index(), plain.empty() ? 0 : plain.begin()->first);
      ASSERT_EQ(index.last_index(), plain.empty() ? 0 : plain.rbegin()->first);
    }
  }
}

TEST(EntryIndexTest, Locate_SpansSegments_OneEntryAtLeastWithinABudget) {
  EntryIndex index;
  for (uint64_t i = 1; i <= 1000; ++i) index.Add({i, i / 100, i * 64, 64, 0, 0});
  std::vector<EntryLocation> at = index.Locate(250, 400);
  ASSERT_EQ(at.size(), 150u);
  EXPECT_EQ(at.front().seq, 2u);
  EXPECT_EQ(at.back().seq, 3u);
  // 64-byte frames hold entries of at least 64 - kFrameOverhead bytes.
  const uint64_t least = 64 - EntryIndex::kFrameOverhead;
  EXPECT_EQ(index.Locate(250, 400, 10 * least).size(), 10u);
  EXPECT_EQ(index.Locate(250, 400, 1).size(), 1u) << "at least one";
}

}  // namespace
}  // namespace walrus
