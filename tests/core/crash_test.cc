// Crash states: a long seeded workload (appends, truncations, hard states,
// snapshots, segment cuts) runs on the fault-injecting file system; at every
// sync point we take the disk image a power failure would leave (unsynced
// data dropped, or the last write torn at a sector, with or without the
// unsynced directory operations) and recover it. Every image must recover to
// exactly the acknowledged state, plus possibly a prefix of the operation
// whose sync was in progress: nothing acknowledged lost, no garbage, no false
// corruption report.
//
// Each sync point yields five images: unsynced data dropped, torn twice (two
// seeds), torn with the unsynced directory operations kept, and a process
// crash (everything kept). Directory entries that were never fsynced vanish
// in the first three, as after a power failure. Every ten steps the workload
// does what Raft does after it applied a snapshot: a snapshot marker at the
// commit index, ReleaseTo there, and a purge of every released segment
// (retain 0), so crash states fall during and after purges too. Images are
// recovered as walrusd recovers them, from the oldest segment left: entries
// below the last release may be gone (purged), everything from it on must be
// there.
//
// WALRUS_CRASH_SEEDS (default 8, ~17,000 states) runs more workloads; each
// gives ~2,000 crash states.
#include <cstdlib>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/errors.h"
#include "core/purge.h"
#include "core/segment.h"
#include "core/verify.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"
#include "tests/support/workload.h"

namespace walrus {
namespace {

constexpr char kDir[] = "/data/wal";

// The log as ReadAll must return it.
struct Model {
  bool created = false;
  std::string metadata;
  raftpb::HardState state;
  std::vector<raftpb::Entry> entries;  // from index 1
  // Entries from this index on must survive; older ones may have been purged.
  uint64_t retained_from = 1;

  void Apply(const raftpb::Entry& e) {
    entries.resize(e.index() - 1 < entries.size() ? e.index() - 1 : entries.size());
    entries.push_back(e);
  }
};

// The operation whose sync may be in progress when the power fails.
struct InFlight {
  bool create = false;
  std::vector<raftpb::Entry> entries;
  std::optional<raftpb::HardState> state;
};

std::string Mismatch(const ReadAllResult& got, const Model& want) {
  return absl::StrCat("got ", testing::Describe(got.entries), " commit ", got.state.commit(),
                      "; acknowledged ", testing::Describe(want.entries), " commit ",
                      want.state.commit());
}

bool SameEntries(const std::vector<raftpb::Entry>& a, const std::vector<raftpb::Entry>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].SerializeAsString() != b[i].SerializeAsString()) return false;
  }
  return true;
}

// `entries` (from index 1) from `first` on.
std::vector<raftpb::Entry> From(const std::vector<raftpb::Entry>& entries, uint64_t first) {
  if (first == 0 || first > entries.size() + 1) return {};
  return std::vector<raftpb::Entry>(entries.begin() + static_cast<ptrdiff_t>(first - 1),
                                    entries.end());
}

// OK if `got` is the acknowledged model plus a prefix of the in-flight op,
// from some index at or below the model's retained_from on (older segments
// may have been purged).
::testing::AssertionResult Acceptable(const ReadAllResult& got, const Model& acked,
                                      const InFlight& flight) {
  if (got.metadata != acked.metadata) return ::testing::AssertionFailure() << "metadata differs";
  const uint64_t first = got.entries.empty() ? acked.retained_from : got.entries.front().index();
  if (first > acked.retained_from) {
    return ::testing::AssertionFailure()
           << "the log starts at " << first << " but everything from " << acked.retained_from
           << " on must be kept; " << Mismatch(got, acked);
  }
  Model candidate = acked;
  for (size_t j = 0;; ++j) {
    bool all = j == flight.entries.size();
    bool state_ok = got.state.SerializeAsString() == candidate.state.SerializeAsString() ||
                    (all && flight.state.has_value() &&
                     got.state.SerializeAsString() == flight.state->SerializeAsString());
    if (SameEntries(got.entries, From(candidate.entries, first)) && state_ok) {
      return ::testing::AssertionSuccess();
    }
    if (all) break;
    candidate.Apply(flight.entries[j]);
  }
  return ::testing::AssertionFailure() << Mismatch(got, acked);
}

struct Stats {
  int states = 0;
  int repaired = 0;
  int releases = 0;
  int purged = 0;  // segments deleted by the workloads' purges
};

// Recovers one crash image and checks it against the model.
void CheckImage(MemFileSystem* image, const Model& acked, const InFlight& flight,
                const std::string& label, Stats* stats) {
  ++stats->states;
  if (!WalExists(image, kDir)) {
    // Only before Create returned may there be no WAL at all.
    EXPECT_FALSE(acked.created) << label << ": the created WAL vanished";
    return;
  }
  absl::StatusOr<VerifyReport> report = Verify(image, kDir);
  ASSERT_TRUE(report.ok()) << label << ": " << report.status();
  ASSERT_NE(report->outcome, VerifyReport::kCorrupt) << label << ": " << report->Describe();
  if (report->outcome == VerifyReport::kTornTail) {
    absl::StatusOr<RepairReport> repaired = Repair(image, kDir);
    ASSERT_TRUE(repaired.ok()) << label << ": " << repaired.status();
    ++stats->repaired;
  }
  WalOptions options;
  options.fs = image;
  options.prepare_in_background = false;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(kDir, options);
  ASSERT_TRUE(wal.ok()) << label << ": " << wal.status();
  absl::StatusOr<ReadAllResult> got = (*wal)->ReadAll();
  ASSERT_TRUE(got.ok()) << label << ": " << got.status();
  if (!acked.created) {
    // Create in flight: an empty WAL with its metadata, if anything.
    EXPECT_TRUE(got->entries.empty()) << label;
    return;
  }
  EXPECT_TRUE(Acceptable(*got, acked, flight)) << label;
  // The recovered log takes appends again, continuing the CRC chain.
  raftpb::Entry next = testing::MakeEntry((*wal)->last_index() + 1, got->state.term() + 1, "after");
  bool must_sync = false;
  ASSERT_TRUE((*wal)->Append(raftpb::HardState(), {next}, &must_sync).ok()) << label;
  ASSERT_TRUE((*wal)->Sync().ok()) << label;
}

int SeedCount() {
  const char* env = std::getenv("WALRUS_CRASH_SEEDS");
  return env != nullptr ? std::max(1, std::atoi(env)) : 8;
}

TEST(CrashStates, EverySyncPointOfSeededWorkloads_RecoversAcknowledgedPrefix) {
  Stats stats;
  for (int seed = 1; seed <= SeedCount(); ++seed) {
    MemFileSystem fs;
    ASSERT_TRUE(fs.CreateDir("/data").ok());
    ASSERT_TRUE(fs.SyncDir("/").ok());
    Model acked;
    InFlight flight;
    testing::Workload workload(seed, /*max_entry_bytes=*/700);
    fs.SetSyncObserver([&](const SyncPoint& point) {
      const std::string where =
          absl::StrCat("seed ", seed, " sync point ", point.number, " (", point.path, ")");
      // Mode, tear seed: a drop, two different tears, and both again with
      // unsynced directory operations kept.
      for (int variant = 0; variant < 5; ++variant) {
        CrashOptions crash;
        crash.mode = variant == 0   ? CrashMode::kDropUnsynced
                     : variant == 4 ? CrashMode::kKeepAll
                                    : CrashMode::kTearUnsynced;
        crash.seed = static_cast<uint64_t>(seed) * 1000003 + point.number * 7 + variant;
        crash.drop_unsynced_dir_ops = variant != 3;
        std::unique_ptr<MemFileSystem> image = fs.CrashClone(crash);
        CheckImage(image.get(), acked, flight, absl::StrCat(where, " variant ", variant), &stats);
        if (::testing::Test::HasFatalFailure()) return;
      }
    });

    WalOptions options;
    options.fs = &fs;
    options.segment_size = 8 * 1024;  // a cut every few batches
    options.prepare_in_background = false;
    std::string metadata = workload.Metadata();
    flight = InFlight{true, {}, std::nullopt};
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, metadata, options);
    ASSERT_TRUE(wal.ok()) << wal.status();
    acked.created = true;
    acked.metadata = metadata;
    for (int step = 0; step < 250 && !::testing::Test::HasFailure(); ++step) {
      testing::WorkloadStep next = workload.Next();
      flight = InFlight();
      if (next.kind == testing::WorkloadStep::kSnapshot) {
        ASSERT_TRUE((*wal)->SaveSnapshot(next.snapshot).ok());
        continue;
      }
      flight.entries = next.entries;
      if (!IsEmptyHardState(next.state)) flight.state = next.state;
      bool must_sync = false;
      ASSERT_TRUE((*wal)->Append(next.state, next.entries, &must_sync).ok());
      ASSERT_TRUE((*wal)->Sync().ok());
      for (const raftpb::Entry& e : next.entries) acked.Apply(e);
      if (flight.state.has_value()) acked.state = *flight.state;
      if (step % 10 == 9 && acked.state.commit() > 0) {
        // Raft snapshots at its applied (here: committed) index, releases
        // what the snapshot covers, and the purge deletes it.
        const uint64_t commit = acked.state.commit();
        walpb::Snapshot snapshot;
        snapshot.set_index(commit);
        snapshot.set_term(acked.entries[commit - 1].term());
        flight = InFlight();
        ASSERT_TRUE((*wal)->SaveSnapshot(snapshot).ok());
        ASSERT_TRUE((*wal)->ReleaseTo(commit).ok());
        acked.retained_from = std::max(acked.retained_from, commit);
        ++stats.releases;
        PurgePolicy policy;
        policy.first_unreleased_seq = (*wal)->locked_segments().front().seq;
        policy.retain_released = 0;
        absl::StatusOr<PurgeReport> purged = PurgeReleased(&fs, kDir, policy, nullptr);
        ASSERT_TRUE(purged.ok()) << purged.status();
        stats.purged += static_cast<int>(purged->purged.size());
      }
    }
    fs.SetSyncObserver(nullptr);
    ASSERT_TRUE((*wal)->Close().ok());
  }
  std::printf(
      "crash states checked: %d from %d seeded workloads (torn tails repaired: %d, releases in "
      "the workloads: %d, segments purged: %d)\n",
      stats.states, SeedCount(), stats.repaired, stats.releases, stats.purged);
  EXPECT_GT(stats.purged, 0) << "the workloads purged nothing: no crash fell during a purge";
  // The floor for `make test` (default seed count).
  if (SeedCount() >= 8) {
    EXPECT_GE(stats.states, 10000);
  }
}

}  // namespace
}  // namespace walrus
