// Streaming a log (core/log_stream.h) must give exactly what a read that
// collects the log gives, whatever the window: across cuts, rewrites of the
// tail, compactions, a marker that replaces the log, and records larger than
// the window. And a log that changes between the two reads is DATA_LOSS,
// never a different answer.
#include "core/log_stream.h"

#include <random>

#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/mem_fs.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

using testing::Describe;
using testing::MakeSnapshot;
using testing::MakeState;

constexpr char kDir[] = "/data/wal";

raftpb::Entry Entry(uint64_t index, uint64_t term, size_t size, std::mt19937_64* rng) {
  raftpb::Entry e;
  e.set_index(index);
  e.set_term(term);
  std::string data(size, '\0');
  for (char& c : data) c = static_cast<char>((*rng)() & 0xff);
  e.set_data(std::move(data));
  return e;
}

class LogStreamTest : public ::testing::Test {
 protected:
  LogStreamTest() {
    EXPECT_TRUE(fs_.CreateDir("/data").ok());
    options_.fs = &fs_;
    options_.segment_size = 8 * 1024;
    options_.prepare_in_background = false;
  }

  // A log with every shape the reader resolves: entries of 0 to 3000 bytes
  // and one of 20 KiB, a rewritten tail, a compaction marker, a marker past
  // the end that replaces the log and a tail rewritten after it, over many
  // small segments.
  void Build() {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(kDir, "meta", options_);
    ASSERT_TRUE(wal.ok()) << wal.status();
    std::mt19937_64 rng(7);
    auto save = [&](uint64_t first, uint64_t last, uint64_t term, uint64_t commit) {
      std::vector<raftpb::Entry> entries;
      for (uint64_t i = first; i <= last; ++i) {
        entries.push_back(Entry(i, term, i == 150 ? 20 * 1024 : rng() % 3000, &rng));
      }
      ASSERT_TRUE((*wal)->Save(MakeState(term, 1, commit), entries).ok());
    };
    for (uint64_t i = 1; i <= 300; i += 10) save(i, i + 9, 1, i);
    ASSERT_TRUE((*wal)->SaveSnapshot(MakeSnapshot(100, 1)).ok());
    save(250, 280, 2, 240);  // a new leader rewrites the uncommitted tail
    ASSERT_TRUE((*wal)->SaveSnapshot(MakeSnapshot(200, 1)).ok());
    ASSERT_TRUE((*wal)->SaveSnapshot(MakeSnapshot(320, 3)).ok());  // past the end
    save(321, 400, 3, 320);
    save(390, 395, 4, 380);  // and its tail is rewritten again
    ASSERT_TRUE((*wal)->Close().ok());
  }

  // The collected read, from `snapshot` (or from the oldest segment).
  std::string Collected(const std::optional<walpb::Snapshot>& snapshot) {
    LogReadOptions options;
    options.snapshot = snapshot;
    absl::StatusOr<ReplayedLog> log = ReadLog(&fs_, kDir, options);
    if (!log.ok()) return std::string(log.status().ToString());
    return Describe(log->entries);
  }

  // The streamed read with `window`-byte windows in both passes.
  std::string Streamed(const std::optional<walpb::Snapshot>& snapshot, size_t window) {
    absl::StatusOr<LogSegments> segments = SelectSegments(&fs_, kDir, snapshot);
    if (!segments.ok()) return std::string(segments.status().ToString());
    LogReadOptions options;
    options.snapshot = snapshot;
    options.keep_entries = false;
    options.window_bytes = window;
    absl::StatusOr<ReplayedLog> log = Replay(&fs_, *segments, options);
    if (!log.ok()) return std::string(log.status().ToString());
    std::vector<raftpb::Entry> entries;
    absl::Status s = StreamEntries(&fs_, *segments, *log, window, [&](raftpb::Entry&& e) {
      entries.push_back(std::move(e));
      return absl::OkStatus();
    });
    if (!s.ok()) return std::string(s.ToString());
    return Describe(entries);
  }

  MemFileSystem fs_;
  WalOptions options_;
};

TEST_F(LogStreamTest, StreamedRead_EqualsCollectedRead_FromEveryMarkerWithAnyWindow) {
  Build();
  ASSERT_GT(ListSegments(&fs_, kDir)->size(), 20u);
  std::vector<std::optional<walpb::Snapshot>> starts = {std::nullopt};
  for (auto [index, term] : std::vector<std::pair<uint64_t, uint64_t>>{
           {0, 0}, {100, 1}, {200, 1}, {320, 3}, {100, 2}, {150, 1}}) {
    starts.push_back(MakeSnapshot(index, term));
  }
  for (const auto& start : starts) {
    const std::string want = Collected(start);
    for (size_t window : {16, 100, 4096, 1 << 20}) {
      EXPECT_EQ(Streamed(start, window), want)
          << "from " << (start ? absl::StrCat(start->index(), "/", start->term()) : "oldest")
          << ", window " << window;
    }
  }
  const std::string from_marker = Collected(MakeSnapshot(320, 3));
  EXPECT_EQ(from_marker.substr(0, 12), "321/3 322/3 ");
  EXPECT_EQ(from_marker.substr(from_marker.size() - 11), "394/4 395/4");
}

TEST_F(LogStreamTest, ReadAllStreamed_HeaderThenEntries_AsWalReadAll) {
  Build();
  absl::StatusOr<std::unique_ptr<Wal>> wal =
      Wal::OpenForRead(kDir, MakeSnapshot(320, 3), options_, std::nullopt);
  ASSERT_TRUE(wal.ok()) << wal.status();
  absl::StatusOr<ReadAllResult> want = (*wal)->ReadAll();
  ASSERT_TRUE(want.ok()) << want.status();
  ReadAllResult header;
  std::vector<raftpb::Entry> entries;
  ASSERT_TRUE(StreamReadAll(
                  &fs_, kDir, MakeSnapshot(320, 3), std::nullopt,
                  [&](ReadAllResult&& h) {
                    EXPECT_TRUE(entries.empty()) << "the header comes first";
                    header = std::move(h);
                    return absl::OkStatus();
                  },
                  [&](raftpb::Entry&& e) {
                    entries.push_back(std::move(e));
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(header.metadata, want->metadata);
  EXPECT_EQ(header.state.SerializeAsString(), want->state.SerializeAsString());
  EXPECT_EQ(header.base_index, want->base_index);
  EXPECT_EQ(Describe(entries), Describe(want->entries));
  EXPECT_EQ(StreamReadAll(
                &fs_, kDir, MakeSnapshot(320, 2), std::nullopt,
                [](ReadAllResult&&) { return absl::OkStatus(); },
                [](raftpb::Entry&&) { return absl::OkStatus(); })
                .code(),
            absl::StatusCode::kFailedPrecondition)
      << "a marker with another term";
}

TEST_F(LogStreamTest, LogChangedBetweenTheTwoReads_DataLossNotADifferentLog) {
  Build();
  const std::optional<walpb::Snapshot> start = MakeSnapshot(320, 3);
  absl::StatusOr<LogSegments> segments = SelectSegments(&fs_, kDir, start);
  ASSERT_TRUE(segments.ok());
  LogReadOptions options;
  options.snapshot = start;
  options.keep_entries = false;
  absl::StatusOr<ReplayedLog> log = Replay(&fs_, *segments, options);
  ASSERT_TRUE(log.ok()) << log.status();
  // A bit of entry data in a later segment flips between the reads.
  std::string path;  // the largest segment read: entries 321..400
  uint64_t largest = 0;
  for (size_t i = segments->first; i < segments->listed.size(); ++i) {
    const uint64_t size = *fs_.FileSize(segments->PathOf(i));
    if (size > largest) {
      largest = size;
      path = segments->PathOf(i);
    }
  }
  ASSERT_GT(largest, 64 * 1024u);
  ASSERT_TRUE(fs_.FlipBit(path, *fs_.FileSize(path) - 100, 2).ok());
  uint64_t streamed = 0;
  absl::Status s = StreamEntries(&fs_, *segments, *log, 4096, [&](raftpb::Entry&&) {
    ++streamed;
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("changed while it was read"), std::string::npos) << s;
  EXPECT_LT(streamed, log->entry_count());
}

}  // namespace
}  // namespace walrus
