// Reads racing the purge: ReadAll from a snapshot marker while the writer
// keeps appending, saving markers, releasing and purging with nothing
// retained. A read either returns exactly the log after its marker, or fails
// saying the marker's segments are gone; it never reports the purge as
// damage (a gap, DATA_LOSS) and never returns a wrong or shortened log.
#include <atomic>
#include <future>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"
#include "server/wal_store.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::MakeEntries;

constexpr char kWalDir[] = "/data/wal";
constexpr size_t kDataBytes = 200;

template <typename T>
T Wait(std::function<void(std::function<void(T)>)> submit) {
  std::promise<T> done;
  submit([&](T r) { done.set_value(std::move(r)); });
  return done.get_future().get();
}

TEST(StorePurgeTest, ReadAllRacingReleaseAndPurge_ExactLogOrMarkerGone_NeverDataLoss) {
  MemFileSystem fs;
  ASSERT_TRUE(fs.CreateDir("/data").ok());
  StoreOptions options;
  options.wal_dir = kWalDir;
  options.fs = &fs;
  options.segment_size = 16 * 1024;
  options.retain_released_segments = 0;
  RecoverySummary summary;
  absl::StatusOr<std::unique_ptr<WalStore>> opened = WalStore::Open(options, nullptr, &summary);
  ASSERT_TRUE(opened.ok()) << opened.status();
  WalStore* store = opened->get();
  ASSERT_TRUE(Wait<absl::StatusOr<bool>>([&](auto done) { store->Create("meta", 0, done); }).ok());

  // The newest marker the writer saved (index; term is always 1).
  std::atomic<uint64_t> newest_marker{0};
  std::atomic<bool> stop{false};
  std::atomic<int> exact{0}, gone{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      while (!stop) {
        // One reader reads from the newest marker, the other from one that
        // is about to be purged.
        uint64_t marker = newest_marker.load();
        if (marker == 0) continue;
        if (r == 1 && marker > 200) marker -= 200;
        marker -= marker % 100;  // markers are saved every 100 entries
        if (marker == 0) continue;
        walpb::Snapshot snapshot;
        snapshot.set_index(marker);
        snapshot.set_term(1);
        absl::StatusOr<ReadAllResult> read = store->ReadAll(snapshot);
        if (!read.ok()) {
          ASSERT_NE(read.status().code(), absl::StatusCode::kDataLoss)
              << "a purge was reported as damage: " << read.status();
          ASSERT_TRUE(read.status().code() == absl::StatusCode::kNotFound ||
                      read.status().code() == absl::StatusCode::kFailedPrecondition)
              << read.status();
          gone.fetch_add(1);
          continue;
        }
        // (Empty when the read came right after the marker was saved.)
        for (size_t i = 0; i < read->entries.size(); ++i) {
          const uint64_t index = marker + 1 + i;
          ASSERT_EQ(read->entries[i].index(), index) << "read from marker " << marker;
          ASSERT_EQ(read->entries[i].data(), MakeEntries(index, index, 1, kDataBytes)[0].data())
              << "entry " << index << " read from marker " << marker;
        }
        exact.fetch_add(1);
      }
    });
  }

  for (uint64_t first = 1; first <= 6000; first += 10) {
    LogAppend append;
    for (raftpb::Entry& e : MakeEntries(first, first + 9, 1, kDataBytes)) {
      *append.entries.Add() = std::move(e);
    }
    append.hard_state.set_term(1);
    append.hard_state.set_commit(first + 9);
    absl::StatusOr<uint64_t> appended =
        Wait<absl::StatusOr<uint64_t>>([&](auto done) { store->Append(std::move(append), done); });
    ASSERT_TRUE(appended.ok()) << appended.status();
    const uint64_t last = first + 9;
    if (last % 100 == 0) {
      ASSERT_TRUE(
          Wait<absl::Status>([&](auto done) { store->SaveSnapshot(last, 1, 0, done); }).ok());
      newest_marker = last;
      ASSERT_TRUE(Wait<absl::StatusOr<ReleaseResult>>([&](auto done) {
                    store->ReleaseTo(last, 0, done);
                  }).ok());
    }
  }
  // Until both kinds of answer were seen (a fixed amount of reading could
  // see only one on a slow machine).
  while (exact.load() == 0) std::this_thread::yield();
  stop = true;
  for (std::thread& t : readers) t.join();
  std::printf("reads from a marker racing purges: %d exact, %d refused (marker purged)\n",
              exact.load(), gone.load());
  EXPECT_GT(exact.load(), 0);
  // The purge runs on its own thread: wait for it to have deleted something.
  while (store->Status().segments[0].first_index == 1) std::this_thread::yield();
  store->Shutdown();
}

}  // namespace
}  // namespace walrus
