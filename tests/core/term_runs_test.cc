// TermRuns against a plain vector of terms, one per entry, over seeded random
// histories of the operations the log model and the log reader use.
#include "core/term_runs.h"

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace walrus {
namespace {

// The obvious representation: entry first + i has terms[i].
struct PlainTerms {
  uint64_t first = 1;
  std::vector<uint64_t> terms;

  uint64_t last() const { return first + terms.size() - 1; }
  std::optional<uint64_t> TermAt(uint64_t index) const {
    if (index < first || index > last() || terms.empty()) return std::nullopt;
    return terms[index - first];
  }
  void Put(uint64_t index, uint64_t term) {
    if (terms.empty() || index < first || index > last() + 1) {
      terms.clear();
      first = index;
    } else {
      terms.resize(index - first);
    }
    terms.push_back(term);
  }
  void TrimBefore(uint64_t index) {
    index = std::min(index, last() + 1);
    if (index <= first) return;
    terms.erase(terms.begin(), terms.begin() + static_cast<ptrdiff_t>(index - first));
    first = index;
  }
  void TruncateAfter(uint64_t index) {
    if (terms.empty() || index >= last()) return;
    terms.resize(index < first ? 0 : index - first + 1);
  }
};

TEST(TermRunsTest, RandomHistories_AgreeWithOneTermPerEntry) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    TermRuns runs(5);
    PlainTerms plain{5, {}};
    uint64_t term = 1;
    for (int step = 0; step < 400; ++step) {
      const uint64_t last = plain.terms.empty() ? plain.first - 1 : plain.last();
      const uint64_t around = last + 1 - std::min<uint64_t>(last, rng() % 20);
      switch (rng() % 8) {
        case 0:  // a new term overwrites from somewhere near the tail
          term += 1 + rng() % 2;
          [[fallthrough]];
        case 1:
        case 2:
        case 3: {
          const uint64_t index = std::max<uint64_t>(around, 1);
          runs.Put(index, term);
          plain.Put(index, term);
          break;
        }
        case 4:  // the log restarts past its end (a snapshot installed)
          if (rng() % 4 == 0) {
            const uint64_t index = last + 2 + rng() % 10;
            runs.Put(index, term);
            plain.Put(index, term);
          }
          break;
        case 5:
          runs.TrimBefore(around);
          plain.TrimBefore(around);
          break;
        case 6:
          runs.TruncateAfter(around);
          plain.TruncateAfter(around);
          break;
        default:
          break;
      }
      ASSERT_EQ(runs.empty(), plain.terms.empty()) << "seed " << seed << " step " << step;
      if (!plain.terms.empty()) {
        ASSERT_EQ(runs.first_index(), plain.first) << "seed " << seed << " step " << step;
        ASSERT_EQ(runs.last_index(), plain.last()) << "seed " << seed << " step " << step;
      }
      const uint64_t lo = plain.first > 3 ? plain.first - 3 : 0;
      for (uint64_t i = lo; i <= plain.first + plain.terms.size() + 3; ++i) {
        ASSERT_EQ(runs.TermAt(i), plain.TermAt(i))
            << "seed " << seed << " step " << step << " index " << i;
      }
    }
  }
}

TEST(TermRunsTest, TruncateAfter_DropsTheRunsPastTheIndex) {
  TermRuns runs(1);
  for (uint64_t i = 1; i <= 30; ++i) runs.Put(i, (i - 1) / 10 + 1);  // terms 1, 2, 3
  ASSERT_EQ(runs.run_count(), 3u);
  runs.TruncateAfter(15);
  EXPECT_EQ(runs.last_index(), 15u);
  EXPECT_EQ(runs.run_count(), 2u);
  EXPECT_EQ(runs.TermAt(15), 2u);
  EXPECT_FALSE(runs.TermAt(16).has_value());
  runs.TruncateAfter(10);
  EXPECT_EQ(runs.run_count(), 1u);
  runs.TruncateAfter(0);
  EXPECT_TRUE(runs.empty());
  EXPECT_FALSE(runs.TermAt(1).has_value());
  runs.Put(1, 7);  // starts again at the index given
  EXPECT_EQ(runs.first_index(), 1u);
  EXPECT_EQ(runs.TermAt(1), 7u);
}

TEST(TermRunsTest, Memory_GrowsWithTermChangesNotEntries) {
  TermRuns runs(1);
  for (uint64_t i = 1; i <= 1'000'000; ++i) runs.Put(i, i <= 500'000 ? 1 : 2);
  EXPECT_EQ(runs.run_count(), 2u);
  EXPECT_EQ(runs.TermAt(500'000), 1u);
  EXPECT_EQ(runs.TermAt(500'001), 2u);
}

}  // namespace
}  // namespace walrus
