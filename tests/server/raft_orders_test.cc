// WalStore driven the way Raft nodes drive it: the orders of writes etcd's
// raft produces, the commit rule, and the limits. Runs in deterministic mode
// (no threads; RunOnce commits one batch), so two ops can be put in one batch
// on purpose.
#include <cerrno>
#include <cstdint>
#include <fstream>
#include <future>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "server/writer_epoch.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::Describe;
using testing::MakeEntries;
using testing::MakeState;

constexpr char kWalDir[] = "/data/wal";
constexpr char kEpochPath[] = "/data/epoch";
constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

class RaftOrdersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(fs_.CreateDir("/data").ok());
    options_.wal_dir = kWalDir;
    options_.epoch_path = kEpochPath;
    options_.fs = &fs_;
    options_.segment_size = 16 * 1024;
    options_.run_threads = false;
  }

  void Open() {
    store_.reset();
    RecoverySummary summary;
    absl::StatusOr<std::unique_ptr<WalStore>> store = WalStore::Open(options_, nullptr, &summary);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }

  void OpenAndCreate() {
    Open();
    std::promise<absl::StatusOr<bool>> done;
    store_->Create("meta", epoch_, [&](absl::StatusOr<bool> r) { done.set_value(r); });
    ASSERT_TRUE(Await(done).ok());
  }

  // Commits what is queued and returns the op's answer.
  template <typename T>
  T Await(std::promise<T>& done) {
    store_->RunOnce();
    return done.get_future().get();
  }

  static LogAppend MakeAppend(uint64_t first, uint64_t last, uint64_t term,
                              const raftpb::HardState& state) {
    LogAppend append;
    if (first <= last) {
      for (raftpb::Entry& e : MakeEntries(first, last, term, 200)) {
        *append.entries.Add() = std::move(e);
      }
    }
    append.hard_state = state;
    return append;
  }

  absl::Status Append(const LogAppend& append) {
    LogAppend copy = append;
    copy.epoch = epoch_;
    std::promise<absl::StatusOr<uint64_t>> done;
    store_->Append(std::move(copy), [&](absl::StatusOr<uint64_t> r) { done.set_value(r); });
    return Await(done).status();
  }
  absl::Status Append(uint64_t first, uint64_t last, uint64_t term,
                      const raftpb::HardState& state) {
    return Append(MakeAppend(first, last, term, state));
  }

  // A hard state alone (a Ready without entries).
  absl::Status AppendState(const raftpb::HardState& state) {
    return Append(MakeAppend(1, 0, 0, state));
  }

  absl::Status Snapshot(uint64_t index, uint64_t term) {
    std::promise<absl::Status> done;
    store_->SaveSnapshot(index, term, epoch_, [&](absl::Status s) { done.set_value(s); });
    return Await(done);
  }

  // "index/term ..." of what ReadAll returns from the marker (index, term),
  // or the error.
  std::string ReadFrom(uint64_t index, uint64_t term) {
    walpb::Snapshot snapshot;
    snapshot.set_index(index);
    snapshot.set_term(term);
    absl::StatusOr<ReadAllResult> read = store_->ReadAll(snapshot);
    if (!read.ok()) return std::string(read.status().ToString());
    return Describe(read->entries);
  }

  MemFileSystem fs_;
  // Crash images a test reopens the store on; declared before store_, so
  // they outlive it even when a test stops at a failed assertion.
  std::vector<std::unique_ptr<MemFileSystem>> images_;
  StoreOptions options_;
  std::unique_ptr<WalStore> store_;
  uint64_t epoch_ = 0;
};

// A follower holds uncommitted entries of an old leader; the new leader's
// snapshot lands inside that tail with another term. Raft discards the
// conflicting log and must persist the marker, as etcd's WAL does.
TEST_F(RaftOrdersTest, SaveSnapshot_OverDivergentUncommittedTail_AcceptedAndTailReplaced) {
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 5, 1, MakeState(1, 1, 5)).ok());
  ASSERT_TRUE(Append(6, 10, 2, MakeState(2, 2, 5)).ok());
  absl::Status saved = Snapshot(7, 3);
  ASSERT_TRUE(saved.ok()) << saved;
  ASSERT_TRUE(Append(8, 9, 3, MakeState(3, 0, 7)).ok());
  EXPECT_EQ(ReadFrom(7, 3), "8/3 9/3");
  EXPECT_EQ(store_->Status().last_index, 9u);
  Open();  // a restart reads the same log
  EXPECT_EQ(ReadFrom(7, 3), "8/3 9/3");
  EXPECT_EQ(store_->Status().last_index, 9u);
  EXPECT_TRUE(Append(10, 10, 3, MakeState(3, 0, 9)).ok());
}

// A follower whose divergent entries the leader's snapshot replaces, saved
// in raftexample's order: the Ready's hard state (whose commit already covers
// the snapshot's index) first, then the snapshot. The marker replaces the
// log: nothing after it is read back, and the leader's entries follow it.
TEST_F(RaftOrdersTest, SaveSnapshot_OverEntryTheSavedCommitCovers_ReplacesTheLog) {
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 5, 1, MakeState(1, 1, 3)).ok());
  ASSERT_TRUE(AppendState(MakeState(2, 0, 4)).ok());
  absl::Status snapshot = Snapshot(4, 2);
  ASSERT_TRUE(snapshot.ok()) << snapshot;
  EXPECT_EQ(ReadFrom(4, 2), "") << "the stale entry 5 (term 1) is not part of the log";
  ASSERT_TRUE(Append(5, 6, 2, MakeState(2, 0, 6)).ok());
  EXPECT_EQ(ReadFrom(4, 2), "5/2 6/2");
  EXPECT_EQ(Snapshot(4, 1).code(), absl::StatusCode::kFailedPrecondition)
      << "another term than the marker already at that index";
}

// A higher term with a lower commit: accepting it let a later append at
// index 2 truncate committed entries.
TEST_F(RaftOrdersTest, HardState_LowerCommitWithHigherTerm_RefusedAndNothingWritten) {
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 5, 1, MakeState(1, 1, 5)).ok());
  const uint64_t offset = store_->Status().durable.offset;
  EXPECT_EQ(AppendState(MakeState(2, 0, 2)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Append(6, 7, 2, MakeState(2, 0, 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Append(2, 3, 2, raftpb::HardState()).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Status().durable.offset, offset) << "a refusal wrote something";
  EXPECT_EQ(ReadFrom(0, 0), "1/1 2/1 3/1 4/1 5/1");
  EXPECT_EQ(store_->Status().hard_state.commit(), 5u);
}

// raftexample saves rd.HardState and rd.Entries, then rd.Snapshot of the same
// Ready: the commit runs ahead of the log until the marker arrives.
TEST_F(RaftOrdersTest, HardState_CommitBeyondLastEntryBeforeSnapshot_RaftexampleOrderAccepted) {
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 3, 1, MakeState(1, 1, 3)).ok());
  absl::Status state = AppendState(MakeState(2, 0, 10));
  ASSERT_TRUE(state.ok()) << state;
  ASSERT_TRUE(Snapshot(10, 2).ok());
  ASSERT_TRUE(Append(11, 12, 2, MakeState(2, 0, 12)).ok());
  // The overwrite-below-commit guard still holds.
  EXPECT_EQ(Append(4, 5, 2, MakeState(2, 0, 12)).code(), absl::StatusCode::kFailedPrecondition);
  Open();
  EXPECT_EQ(ReadFrom(10, 2), "11/2 12/2");
  EXPECT_EQ(store_->Status().hard_state.commit(), 12u);
}

// Entries of the same Ready may come with a commit beyond them, too.
TEST_F(RaftOrdersTest, HardState_CommitBeyondEntriesOfSameAppend_Accepted) {
  OpenAndCreate();
  absl::Status s = Append(1, 3, 1, MakeState(1, 1, 8));
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(Append(4, 8, 1, MakeState(1, 1, 8)).ok()) << "appending up to the commit";
}

// Two identical markers in one batch whose write runs out of space: the
// second rested on the first, which was never written.
TEST_F(RaftOrdersTest, SaveSnapshot_DuplicateInFailedBatch_NotAcknowledged) {
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 5, 1, MakeState(1, 1, 5)).ok());
  fs_.FailNext(FsOp::kAppend, ENOSPC, 1, ".wal");
  std::promise<absl::Status> first, second;
  store_->SaveSnapshot(5, 1, epoch_, [&](absl::Status s) { first.set_value(s); });
  store_->SaveSnapshot(5, 1, epoch_, [&](absl::Status s) { second.set_value(s); });
  EXPECT_EQ(Await(first).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(second.get_future().get().code(), absl::StatusCode::kResourceExhausted)
      << "acknowledged a marker that is not on disk";
  EXPECT_EQ(store_->Status().newest_snapshot().index, 0u);
  EXPECT_TRUE(Snapshot(5, 1).ok()) << "space is back";
  EXPECT_EQ(store_->Status().newest_snapshot().index, 5u);
}

// The file system refusing walrusd a segment (EACCES: the directory's
// permissions) is an operator problem, PERMISSION_DENIED, then fail-stop; and
// walrus.proto, the contract clients code against, lists that code.
TEST_F(RaftOrdersTest, SegmentCutRefusedEacces_IsPermissionDenied_AndTheProtoListsIt) {
  OpenAndCreate();
  fs_.FailNext(FsOp::kRename, EACCES, 1, ".tmp");  // naming the next segment
  absl::Status failed;
  uint64_t next = 1;
  for (; next < 2000 && failed.ok(); next += 10) {
    failed = Append(next, next + 9, 1, MakeState(1, 1, next - 1));
  }
  ASSERT_FALSE(failed.ok()) << "no segment cut met the fault";
  EXPECT_EQ(failed.code(), absl::StatusCode::kPermissionDenied) << failed;
  EXPECT_EQ(Append(next, next, 1, MakeState(1, 1, next - 1)).code(), absl::StatusCode::kUnavailable)
      << "a write that met it makes the WAL fail-stop";

  std::ifstream proto(WALRUS_PROTO_PATH);
  ASSERT_TRUE(proto.good()) << WALRUS_PROTO_PATH;
  const std::string text((std::istreambuf_iterator<char>(proto)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("//   PERMISSION_DENIED "), std::string::npos)
      << "walrus.proto's list of status codes does not name PERMISSION_DENIED";
}

TEST_F(RaftOrdersTest, SaveSnapshot_AtLargestIndex_RefusedInvalidArgument) {
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 2, 1, MakeState(1, 1, 2)).ok());
  EXPECT_EQ(Snapshot(kMax, 1).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Append(3, 3, 1, MakeState(1, 1, 3)).ok()) << "the log must stay usable";
}

TEST_F(RaftOrdersTest, Append_UnknownEntryType_RefusedInvalidArgument) {
  OpenAndCreate();
  LogAppend append = MakeAppend(1, 2, 1, MakeState(1, 1, 0));
  append.entries.Mutable(1)->set_type(static_cast<raftpb::EntryType>(3));
  EXPECT_EQ(Append(append).code(), absl::StatusCode::kInvalidArgument);
  append.entries.Mutable(1)->set_type(raftpb::EntryConfChangeV2);
  EXPECT_TRUE(Append(append).ok());
}

// A release past the newest durable marker would let the purge delete
// entries no snapshot covers.
TEST_F(RaftOrdersTest, ReleaseTo_BeyondNewestDurableMarker_ClampedToItAndSaysSo) {
  OpenAndCreate();
  for (uint64_t i = 1; i <= 300; i += 10) ASSERT_TRUE(Append(i, i + 9, 1, MakeState(1, 1, i)).ok());
  ASSERT_TRUE(Snapshot(60, 1).ok());
  std::promise<absl::StatusOr<ReleaseResult>> done;
  store_->ReleaseTo(250, epoch_, [&](absl::StatusOr<ReleaseResult> r) { done.set_value(r); });
  absl::StatusOr<ReleaseResult> released = Await(done);
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->released_to, 60u);
  EXPECT_TRUE(released->clamped);
  // The segment holding index 60 and every later one stay locked.
  StoreStatus status = store_->Status();
  uint64_t holder = 0;
  for (const SegmentInfo& s : status.segments) {
    if (s.first_index <= 60) holder = s.seq;
  }
  for (const SegmentInfo& s : status.segments) {
    if (s.seq >= holder) {
      EXPECT_TRUE(s.locked) << s.name;
    }
  }
}

TEST_F(RaftOrdersTest, Fence_AtLargestEpoch_RefusedWithoutWrapping) {
  ASSERT_TRUE(StoreWriterEpoch(&fs_, kEpochPath, kMax).ok());
  epoch_ = kMax;
  OpenAndCreate();
  std::promise<absl::StatusOr<uint64_t>> done;
  store_->Fence([&](absl::StatusOr<uint64_t> r) { done.set_value(r); });
  EXPECT_EQ(Await(done).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->Status().writer_epoch, kMax);
  absl::StatusOr<uint64_t> stored = LoadWriterEpoch(&fs_, kEpochPath);
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(*stored, kMax);
  EXPECT_TRUE(Append(1, 1, 1, MakeState(1, 1, 0)).ok()) << "the current writer keeps writing";
}

// A follower's log: entries 1..40 of term 1, then a stale tail 41..150 of
// term 3 that fills more than a segment. The leader's snapshot at 30 (term 3)
// replaces the log from below the tail segment's name; a later one at 120,
// term 3 too, lands past the new end. A reader starting at the tail segment
// used to take the first marker for a compaction (its entry lies in an older
// segment) and the second as matching the stale entry 120: it served 121..150.
TEST_F(RaftOrdersTest, SaveSnapshot_ReplacingFromBelowItsSegmentsName_NoStaleEntriesServed) {
  options_.retain_released_segments = 0;
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 40, 1, MakeState(1, 1, 10)).ok());
  for (uint64_t i = 41; i <= 150; i += 10) {
    ASSERT_TRUE(Append(i, i + 9, 3, MakeState(3, 0, 10)).ok());
  }
  ASSERT_GT(store_->Status().segments.size(), 1u) << "the stale tail must cross a cut";
  ASSERT_TRUE(Snapshot(30, 3).ok());
  ASSERT_TRUE(AppendState(MakeState(3, 0, 30)).ok());
  ASSERT_TRUE(Snapshot(120, 3).ok());
  EXPECT_EQ(store_->Status().last_index, 120u);
  EXPECT_EQ(ReadFrom(120, 3), "");
  EXPECT_EQ(ReadFrom(30, 3).substr(0, 29), "FAILED_PRECONDITION: wal: ent")
      << "entries 31..120 were replaced by the marker at 120";
  ASSERT_TRUE(Append(121, 122, 3, MakeState(3, 0, 121)).ok());
  EXPECT_EQ(ReadFrom(120, 3), "121/3 122/3");
  Open();
  EXPECT_EQ(ReadFrom(120, 3), "121/3 122/3");
  // Released and purged up to the marker: recovery reads from what is left.
  std::promise<absl::StatusOr<ReleaseResult>> done;
  store_->ReleaseTo(120, epoch_, [&](absl::StatusOr<ReleaseResult> r) { done.set_value(r); });
  ASSERT_TRUE(Await(done).ok());
  Open();
  EXPECT_EQ(store_->Status().last_index, 122u);
  EXPECT_EQ(ReadFrom(120, 3), "121/3 122/3");
}

// The same marker, with power lost inside the cut that must follow it: the
// restarted walrusd finds the marker last in its tail and must make that cut
// before it writes anything after the marker.
TEST_F(RaftOrdersTest, SaveSnapshot_ReplacingFromBelowItsSegmentsName_PowerLossInItsCut) {
  ASSERT_TRUE(fs_.SyncDir("/").ok());  // the data directory exists durably
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 40, 1, MakeState(1, 1, 10)).ok());
  for (uint64_t i = 41; i <= 150; i += 10) {
    ASSERT_TRUE(Append(i, i + 9, 3, MakeState(3, 0, 10)).ok());
  }
  std::unique_ptr<MemFileSystem> crashed;
  fs_.SetSyncObserver([&](const SyncPoint& point) {
    // The directory sync that would make the cut after the marker durable.
    if (point.is_dir && point.path == kWalDir && crashed == nullptr) {
      crashed = fs_.CrashClone(CrashOptions());  // power loss, unsynced dropped
    }
  });
  ASSERT_TRUE(Snapshot(30, 3).ok());
  fs_.SetSyncObserver(nullptr);
  ASSERT_NE(crashed, nullptr) << "no cut after the marker";
  store_.reset();
  images_.push_back(std::move(crashed));
  options_.fs = images_.back().get();
  Open();
  ASSERT_EQ(store_->Status().last_index, 30u);
  ASSERT_TRUE(AppendState(MakeState(3, 0, 30)).ok());
  ASSERT_TRUE(Snapshot(120, 3).ok());
  EXPECT_EQ(ReadFrom(120, 3), "") << "entries of the log the marker at 30 replaced";
  ASSERT_TRUE(Append(121, 122, 3, MakeState(3, 0, 121)).ok());
  EXPECT_EQ(ReadFrom(120, 3), "121/3 122/3");
  Open();
  EXPECT_EQ(ReadFrom(120, 3), "121/3 122/3");
  EXPECT_EQ(store_->Status().last_index, 122u);
}

// walrusd killed inside a cut, after the new segment's rename and before the
// directory sync: the restarted process reads that segment and appends to it.
// Its name must be made durable before anything more is acknowledged, or a
// later power loss takes the segment back with everything acknowledged in it.
TEST_F(RaftOrdersTest, Restart_AfterKillInsideCut_LaterPowerLossKeepsWhatWasAcknowledged) {
  ASSERT_TRUE(fs_.SyncDir("/").ok());  // the data directory exists durably
  OpenAndCreate();
  ASSERT_TRUE(Append(1, 10, 1, MakeState(1, 1, 10)).ok());
  std::unique_ptr<MemFileSystem> killed;
  fs_.SetSyncObserver([&](const SyncPoint& point) {
    if (point.is_dir && point.path == kWalDir && killed == nullptr) {
      CrashOptions kill;
      kill.mode = CrashMode::kKeepAll;
      killed = fs_.CrashClone(kill);
    }
  });
  for (uint64_t i = 11; killed == nullptr && i < 1000; i += 10) {
    ASSERT_TRUE(Append(i, i + 9, 1, MakeState(1, 1, i)).ok());
  }
  ASSERT_NE(killed, nullptr) << "no cut happened";
  fs_.SetSyncObserver(nullptr);
  store_.reset();
  images_.push_back(std::move(killed));
  MemFileSystem* killed_fs = images_.back().get();
  options_.fs = killed_fs;
  Open();
  const uint64_t last = store_->Status().last_index;
  ASSERT_TRUE(Append(last + 1, last + 5, 1, MakeState(1, 1, last + 5)).ok());
  const std::string acknowledged = ReadFrom(0, 0);
  store_.reset();
  CrashOptions power_loss;
  power_loss.mode = CrashMode::kDropUnsynced;
  power_loss.drop_unsynced_dir_ops = true;
  images_.push_back(killed_fs->CrashClone(power_loss));
  options_.fs = images_.back().get();
  Open();
  EXPECT_EQ(store_->Status().last_index, last + 5);
  EXPECT_EQ(ReadFrom(0, 0), acknowledged);
}

// Deterministic mode: nothing runs until RunOnce, which commits one batch.
TEST_F(RaftOrdersTest, RunOnce_CommitsOneBatchOnTheCallersThread) {
  OpenAndCreate();
  int completed = 0;
  store_->Append(MakeAppend(1, 2, 1, MakeState(1, 1, 0)),
                 [&](absl::StatusOr<uint64_t> r) { completed += r.ok(); });
  store_->Append(MakeAppend(3, 4, 1, MakeState(1, 1, 2)),
                 [&](absl::StatusOr<uint64_t> r) { completed += r.ok(); });
  EXPECT_EQ(completed, 0);
  EXPECT_EQ(store_->RunOnce(), 2u);
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(store_->RunOnce(), 0u);
  EXPECT_EQ(ReadFrom(0, 0), "1/1 2/1 3/1 4/1");
}

}  // namespace
}  // namespace walrus
