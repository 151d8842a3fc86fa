// How `walrusctl append` cuts entries into Append requests.
#include "client/walrusctl/append_batcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

namespace walrus {
namespace {

raftpb::Entry Entry(uint64_t index, size_t data_bytes = 10) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(1);
  e.set_data(std::string(data_bytes, 'x'));
  return e;
}

// "first..last" of each batch, e.g. "1..3 4..6 7..7".
std::string Describe(const std::vector<std::vector<raftpb::Entry>>& batches) {
  std::string out;
  for (const auto& b : batches) {
    absl::StrAppend(&out, out.empty() ? "" : " ", b.empty() ? 0 : b.front().index(), "..",
                    b.empty() ? 0 : b.back().index());
  }
  return out;
}

// Feeds `entries` through a batcher and returns every batch, the last included.
std::vector<std::vector<raftpb::Entry>> Batches(BatchLimits limits,
                                                const std::vector<raftpb::Entry>& entries) {
  AppendBatcher batcher(limits);
  std::vector<std::vector<raftpb::Entry>> out;
  for (const raftpb::Entry& e : entries) {
    if (auto full = batcher.Add(e)) out.push_back(std::move(*full));
  }
  std::vector<raftpb::Entry> rest = batcher.TakePending();
  if (!rest.empty()) out.push_back(std::move(rest));
  return out;
}

std::vector<raftpb::Entry> Indexes(uint64_t first, uint64_t last, size_t data_bytes = 10) {
  std::vector<raftpb::Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(Entry(i, data_bytes));
  return out;
}

TEST(AppendBatcher, CountLimit_CutsEveryMaxEntries) {
  EXPECT_EQ(Describe(Batches({3, 1 << 20}, Indexes(1, 7))), "1..3 4..6 7..7");
}

TEST(AppendBatcher, ExactMultipleOfCount_LeavesNoEmptyBatch) {
  EXPECT_EQ(Describe(Batches({3, 1 << 20}, Indexes(1, 6))), "1..3 4..6");
}

TEST(AppendBatcher, ByteLimit_CutsBeforeTheEntryThatWouldExceedIt) {
  const size_t one = EntryWireBytes(Entry(1, 100));
  // Room for two entries and a bit, not three.
  EXPECT_EQ(Describe(Batches({1000, 2 * one + one / 2}, Indexes(1, 5, 100))), "1..2 3..4 5..5");
}

TEST(AppendBatcher, ByteLimitExactlyReached_StillFits) {
  const size_t one = EntryWireBytes(Entry(1, 100));
  EXPECT_EQ(Describe(Batches({1000, 2 * one}, Indexes(1, 4, 100))), "1..2 3..4");
}

TEST(AppendBatcher, EntryLargerThanTheByteLimit_TravelsAlone) {
  std::vector<raftpb::Entry> entries = {Entry(1, 10), Entry(2, 5000), Entry(3, 10)};
  EXPECT_EQ(Describe(Batches({1000, 1000}, entries)), "1..1 2..2 3..3");
}

TEST(AppendBatcher, IndexGoingBack_StartsANewBatch) {
  // A Raft truncation in the input: 1 2 3 then 2 3 again (a new term).
  std::vector<raftpb::Entry> entries = Indexes(1, 3);
  for (raftpb::Entry& e : Indexes(2, 3)) entries.push_back(e);
  EXPECT_EQ(Describe(Batches({1000, 1 << 20}, entries)), "1..3 2..3");
}

TEST(AppendBatcher, IndexSkippingAhead_StartsANewBatch) {
  std::vector<raftpb::Entry> entries = {Entry(1), Entry(2), Entry(9)};
  EXPECT_EQ(Describe(Batches({1000, 1 << 20}, entries)), "1..2 9..9");
}

TEST(AppendBatcher, TakePending_EmptiesTheBatcher) {
  AppendBatcher batcher({10, 1 << 20});
  EXPECT_FALSE(batcher.Add(Entry(1)).has_value());
  EXPECT_EQ(batcher.pending_entries(), 1u);
  EXPECT_EQ(batcher.pending_bytes(), EntryWireBytes(Entry(1)));
  EXPECT_EQ(batcher.TakePending().size(), 1u);
  EXPECT_EQ(batcher.pending_entries(), 0u);
  EXPECT_EQ(batcher.pending_bytes(), 0u);
  EXPECT_TRUE(batcher.TakePending().empty());
}

TEST(AppendBatcher, EntryWireBytes_CoversTheEncodedRequestField) {
  raftpb::Entry e = Entry(123456789, 300);
  // Tag (1) + length varint (2 for 300-odd bytes) + fixed32 CRC (4) at least.
  EXPECT_GE(EntryWireBytes(e), e.ByteSizeLong() + 7);
}

}  // namespace
}  // namespace walrus
