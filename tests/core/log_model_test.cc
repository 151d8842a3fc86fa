// The log model on its own: the append and snapshot rules, the synced and
// encoded views, and memory that grows with term changes, not entries.
#include "core/log_model.h"

#include <limits>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;
using testing::MakeState;

// A request over entries it owns.
struct Request {
  google::protobuf::RepeatedPtrField<raftpb::Entry> entries;
  raftpb::HardState state;
  LogRequest view() const { return LogRequest{state, &entries, {}}; }
};

Request Make(uint64_t first, uint64_t last, uint64_t term, const raftpb::HardState& state) {
  Request r;
  if (first <= last) {
    for (raftpb::Entry& e : MakeEntries(first, last, term)) *r.entries.Add() = std::move(e);
  }
  r.state = state;
  return r;
}

class LogModelTest : public ::testing::Test {
 protected:
  // Plans and records an append as Wal::AppendChecked does, then syncs.
  absl::Status Apply(const Request& r, bool sync = true) {
    absl::StatusOr<AppendPlan> plan = model_.PlanAppend(r.view());
    if (!plan.ok()) return plan.status();
    for (int i = static_cast<int>(plan->skip); i < r.entries.size(); ++i) {
      model_.RecordEntry(r.entries[i].index(), r.entries[i].term());
    }
    if (plan->write_state) model_.RecordState(r.state);
    if (sync) model_.Commit();
    return absl::OkStatus();
  }
  absl::Status Snapshot(uint64_t index, uint64_t term, bool sync = true) {
    absl::StatusOr<SnapshotPlan> plan = model_.PlanSnapshot(index, term);
    if (!plan.ok()) return plan.status();
    if (plan->write) model_.RecordSnapshot(index, term, 0);
    if (sync) model_.Commit();
    return absl::OkStatus();
  }
  absl::StatusCode Code(const Request& r) { return model_.PlanAppend(r.view()).status().code(); }

  LogModel model_;
};

TEST_F(LogModelTest, EachAppendRule_RefusedWithItsCode) {
  ASSERT_TRUE(Apply(Make(1, 10, 2, MakeState(2, 1, 5))).ok());
  Request gap = Make(12, 13, 2, MakeState(2, 1, 5));
  EXPECT_EQ(Code(gap), absl::StatusCode::kInvalidArgument);
  Request noncontiguous = Make(11, 12, 2, MakeState(2, 1, 5));
  noncontiguous.entries[1].set_index(20);
  EXPECT_EQ(Code(noncontiguous), absl::StatusCode::kInvalidArgument);
  Request decreasing = Make(11, 12, 2, MakeState(2, 1, 5));
  decreasing.entries[1].set_term(1);
  EXPECT_EQ(Code(decreasing), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Code(Make(11, 12, 1, MakeState(2, 1, 5))), absl::StatusCode::kInvalidArgument)
      << "term below the entry before it";
  EXPECT_EQ(Code(Make(5, 6, 3, MakeState(3, 0, 5))), absl::StatusCode::kFailedPrecondition)
      << "overwrite at the commit";
  EXPECT_EQ(Code(Make(11, 12, 2, MakeState(2, 9, 5))), absl::StatusCode::kFailedPrecondition)
      << "second vote in a term";
  EXPECT_EQ(Code(Make(11, 12, 3, MakeState(3, 0, 4))), absl::StatusCode::kInvalidArgument)
      << "commit lowered with a higher term";
  Request crc = Make(11, 11, 2, MakeState(2, 1, 5));
  uint32_t wrong = 7;
  LogRequest view = crc.view();
  view.entry_crc32c = absl::MakeConstSpan(&wrong, 1);
  EXPECT_EQ(model_.PlanAppend(view).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(model_.encoded().last_index(), 10u);
}

// An enum value proto2 does not know arrives as an unknown field, and type()
// reads as normal: the parsed bytes would still be written with type 7.
TEST_F(LogModelTest, UnknownEntryTypeFromTheWire_RefusedInvalidArgument) {
  Request r;
  ASSERT_TRUE(r.entries.Add()->ParseFromString(std::string("\x08\x07\x10\x01\x18\x01", 6)));
  ASSERT_EQ(r.entries[0].index(), 1u);
  ASSERT_EQ(r.entries[0].type(), raftpb::EntryNormal);
  absl::StatusOr<AppendPlan> plan = model_.PlanAppend(r.view());
  EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << plan.status();
}

TEST_F(LogModelTest, Retry_SkipsPresentEntriesAndStaleState) {
  ASSERT_TRUE(Apply(Make(1, 5, 1, MakeState(1, 1, 5))).ok());
  ASSERT_TRUE(Apply(Make(6, 9, 1, MakeState(1, 1, 7))).ok());
  absl::StatusOr<AppendPlan> retry = model_.PlanAppend(Make(1, 5, 1, MakeState(1, 1, 5)).view());
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_EQ(retry->skip, 5u);
  EXPECT_FALSE(retry->write_state);
  EXPECT_FALSE(retry->awaits_sync) << "everything it rests on is synced";
}

TEST_F(LogModelTest, DuplicateOfUnsyncedMarker_AwaitsTheSync) {
  ASSERT_TRUE(Apply(Make(1, 5, 1, MakeState(1, 1, 5))).ok());
  ASSERT_TRUE(Snapshot(5, 1, /*sync=*/false).ok());
  absl::StatusOr<SnapshotPlan> again = model_.PlanSnapshot(5, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->write);
  EXPECT_TRUE(again->awaits_sync);
  model_.Rollback();
  EXPECT_EQ(model_.encoded().newest_marker().index, 0u);
  again = model_.PlanSnapshot(5, 1);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->write) << "after the rollback the marker is not there";
}

TEST_F(LogModelTest, AppendAfterMarkerOverDivergentTail_TermCheckedAgainstMarker) {
  ASSERT_TRUE(Apply(Make(1, 5, 1, MakeState(1, 1, 5))).ok());
  ASSERT_TRUE(Apply(Make(6, 10, 5, MakeState(5, 0, 5))).ok());  // a stale tail of term 5
  ASSERT_TRUE(Snapshot(7, 3).ok());
  absl::Status s = Apply(Make(8, 8, 4, MakeState(5, 0, 7)));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(model_.encoded().terms.TermAt(8), 4u);
  EXPECT_EQ(model_.encoded().last_index(), 8u) << "the stale entries after 8 are gone";
}

TEST_F(LogModelTest, Snapshot_LimitsAndContradictions) {
  ASSERT_TRUE(Apply(Make(1, 5, 1, MakeState(1, 1, 3))).ok());
  EXPECT_EQ(model_.PlanSnapshot(std::numeric_limits<uint64_t>::max(), 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(model_.PlanSnapshot(3, 2).ok())
      << "a leader's snapshot over a divergent entry the saved commit covers (raftexample "
         "saves the Ready's commit before its snapshot)";
  EXPECT_TRUE(model_.PlanSnapshot(4, 2).ok()) << "an uncommitted entry may be divergent";
  ASSERT_TRUE(Snapshot(4, 1).ok());
  EXPECT_EQ(model_.PlanSnapshot(4, 2).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Code(Make(4, 6, 1, MakeState(1, 1, 3))), absl::StatusCode::kFailedPrecondition)
      << "an append reaching below the marker is a stale duplicate, even where the log holds "
         "the same entries";
  EXPECT_EQ(Code(Make(5, 6, 1, MakeState(1, 1, 3))), absl::StatusCode::kOk)
      << "a retry of what follows the marker is skipped";
  EXPECT_EQ(Code(Make(4, 6, 2, MakeState(2, 0, 3))), absl::StatusCode::kFailedPrecondition)
      << "nothing is written at or below a marker";
  ASSERT_TRUE(Apply(Make(6, 6, 2, MakeState(2, 0, 3))).ok());
  ASSERT_TRUE(Snapshot(5, 2).ok()) << "over the uncommitted entry (5, 1)";
  EXPECT_EQ(model_.PlanSnapshot(6, 1).status().code(), absl::StatusCode::kFailedPrecondition)
      << "a term below the newest marker's";
}

TEST_F(LogModelTest, SnapshotReplacingTheLog_RefusedWhenItWouldDiscardCommittedEntries) {
  ASSERT_TRUE(Apply(Make(1, 9, 3, MakeState(3, 1, 8))).ok());
  // Entry 5 has term 3 and 6..8 are committed: a term-4 snapshot at 5 would
  // throw away committed entries (a stale request from a lost history).
  EXPECT_EQ(model_.PlanSnapshot(5, 4).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(model_.PlanSnapshot(8, 4).ok()) << "nothing committed lies after 8";
  EXPECT_TRUE(model_.PlanSnapshot(5, 3).ok()) << "a compaction discards nothing";
  EXPECT_TRUE(model_.PlanSnapshot(12, 4).ok()) << "past the end: nothing held is discarded";
}

TEST_F(LogModelTest, ReleaseLimit_IsTheNewestDurableMarker) {
  ASSERT_TRUE(Apply(Make(1, 100, 1, MakeState(1, 1, 100))).ok());
  EXPECT_EQ(model_.ReleaseLimit(50), 0u) << "no snapshot covers anything yet";
  ASSERT_TRUE(Snapshot(60, 1, /*sync=*/false).ok());
  EXPECT_EQ(model_.ReleaseLimit(80), 0u) << "an unsynced marker covers nothing";
  model_.Commit();
  EXPECT_EQ(model_.ReleaseLimit(80), 60u);
  EXPECT_EQ(model_.ReleaseLimit(40), 40u);
}

TEST_F(LogModelTest, Terms_GrowWithTermChangesNotEntries_AndTrimOnRelease) {
  for (uint64_t term = 1; term <= 3; ++term) {
    for (uint64_t i = 0; i < 100; ++i) {
      const uint64_t first = (term - 1) * 100000 + i * 1000 + 1;
      ASSERT_TRUE(Apply(Make(first, first + 999, term, MakeState(term, 1, 0))).ok());
    }
  }
  EXPECT_EQ(model_.encoded().last_index(), 300000u);
  EXPECT_EQ(model_.encoded().terms.run_count(), 3u);
  EXPECT_EQ(model_.encoded().terms.TermAt(100000), 1u);
  EXPECT_EQ(model_.encoded().terms.TermAt(100001), 2u);
  ASSERT_TRUE(Snapshot(250000, 3).ok());
  model_.Release(250000, 0);
  EXPECT_EQ(model_.synced().terms.first_index(), 250000u);
  EXPECT_EQ(model_.synced().terms.run_count(), 1u);
  EXPECT_FALSE(model_.synced().terms.TermAt(249999).has_value());
}

}  // namespace
}  // namespace walrus
