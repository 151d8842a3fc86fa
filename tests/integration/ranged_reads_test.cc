// Ranged reads (Entries, Term) against the real walrusd: every range equals
// the same entries of a full ReadAll, across segment cuts, a new leader's
// rewrite of the tail, a follower's snapshot over a divergent tail, releases
// and kill -9; the bounds answer as etcd raft's Storage expects (compacted,
// unavailable); the byte limit returns at least one entry and never more.
#include <signal.h>

#include <random>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

struct EntriesAnswer {
  grpc::Status status;
  v1::EntriesResponse response;
};

EntriesAnswer Entries(v1::WAL::Stub* stub, uint64_t lo, uint64_t hi, uint64_t max_bytes = 0) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::EntriesRequest request;
  request.set_lo(lo);
  request.set_hi(hi);
  request.set_max_bytes(max_bytes);
  EntriesAnswer answer;
  answer.status = stub->Entries(&context, request, &answer.response);
  return answer;
}

grpc::Status Term(v1::WAL::Stub* stub, uint64_t index, v1::TermResponse* response) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::TermRequest request;
  request.set_index(index);
  return stub->Term(&context, request, response);
}

// Entries first..last of `term`, data of 0 to 3000 bytes.
v1::AppendRequest Varied(uint64_t first, uint64_t last, uint64_t term, uint64_t commit,
                         std::mt19937_64* rng) {
  v1::AppendRequest request = MakeAppend(first, last, term, commit);
  request.clear_entry_crc32c();
  for (raftpb::Entry& e : *request.mutable_entries()) {
    e.set_data(std::string((*rng)() % 3000, static_cast<char>('a' + e.index() % 26)));
  }
  return request;
}

class RangedReadsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"),
                                       std::vector<std::string>{"--segment-size-bytes", "65536",
                                                                "--retain-released-segments", "0"});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
  v1::WAL::Stub* stub() { return daemon_->stub(); }

  // Random ranges of [first, last] read back as `want` (the log from
  // want[0] on), with and without a byte limit.
  void ExpectRangesMatch(const std::vector<raftpb::Entry>& want, const std::string& when) {
    ASSERT_FALSE(want.empty());
    const uint64_t first = want.front().index();
    const uint64_t last = want.back().index();
    for (int probe = 0; probe < 150; ++probe) {
      const uint64_t lo = first + rng_() % (last - first + 1);
      const uint64_t hi = std::min(last + 1, lo + 1 + rng_() % 120);
      const uint64_t max_bytes = probe % 2 == 0 ? 0 : 1 + rng_() % 20000;
      EntriesAnswer got = Entries(stub(), lo, hi, max_bytes);
      ASSERT_TRUE(got.status.ok()) << when << ": " << got.status.error_message();
      ASSERT_GE(got.response.entries_size(), 1) << when;
      EXPECT_EQ(got.response.last_index(), last) << when;
      uint64_t bytes = 0;
      for (int i = 0; i < got.response.entries_size(); ++i) {
        const raftpb::Entry& w = want[static_cast<size_t>(lo - first) + i];
        const raftpb::Entry& g = got.response.entries(i);
        ASSERT_EQ(g.index(), w.index()) << when;
        ASSERT_EQ(g.term(), w.term()) << when << ": entry " << w.index();
        ASSERT_EQ(g.data(), w.data()) << when << ": entry " << w.index();
        bytes += w.ByteSizeLong();
      }
      const uint64_t n = static_cast<uint64_t>(got.response.entries_size());
      if (max_bytes == 0) {
        ASSERT_EQ(n, hi - lo) << when << ": without a limit, the whole range";
      } else {
        if (n > 1) ASSERT_LE(bytes, max_bytes) << when;
        if (lo + n < hi) {
          ASSERT_GT(bytes + want[static_cast<size_t>(lo + n - first)].ByteSizeLong(), max_bytes)
              << when << ": stopped before the limit";
        }
      }
    }
  }

  TempDir tmp_;
  std::unique_ptr<Daemon> daemon_;
  std::mt19937_64 rng_{3};
};

TEST_F(RangedReadsTest, EveryRangeEqualsReadAll_AcrossCutsRewritesAndKill9) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 400; i += 20) {
    ASSERT_TRUE(Append(stub(), Varied(i, i + 19, 1, i - 1, &rng_)).ok());
  }
  ASSERT_GT(GetStatus(stub()).segments_size(), 4) << "the log must span several segments";
  ExpectRangesMatch(ReadAll(stub()).entries, "400 entries");
  // A new leader replaces the uncommitted tail from 390 on.
  ASSERT_TRUE(Append(stub(), Varied(390, 450, 2, 389, &rng_)).ok());
  ExpectRangesMatch(ReadAll(stub()).entries, "tail rewritten");
  daemon_->Kill9();
  ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  ExpectRangesMatch(ReadAll(stub()).entries, "after kill -9");
  ASSERT_TRUE(Append(stub(), Varied(451, 500, 2, 450, &rng_)).ok());
  ExpectRangesMatch(ReadAll(stub()).entries, "appends after the restart");
}

TEST_F(RangedReadsTest, Bounds_CompactedUnavailableAndMalformed_AsEtcdRaftStorage) {
  EXPECT_EQ(Entries(stub(), 1, 2).status.error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "not created";
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 300; i += 30) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 29, 1, i + 29, 1000)).ok());
  }
  ASSERT_TRUE(SaveSnapshot(stub(), 200, 1).ok());
  grpc::ClientContext context;
  v1::ReleaseToRequest release;
  release.set_index(200);
  v1::ReleaseToResponse released;
  ASSERT_TRUE(stub()->ReleaseTo(&context, release, &released).ok());

  // The marker at 200 is a compaction (the log holds entry 200 of term 1):
  // entries it covers stay readable until their segment is released.
  EntriesAnswer ok = Entries(stub(), 200, 301);
  ASSERT_TRUE(ok.status.ok()) << ok.status.error_message();
  const uint64_t first = ok.response.first_index();
  EXPECT_GT(first, 1u) << "the release let the purge delete the oldest segments";
  EXPECT_LE(first, 200u) << "the segment holding the marker's entry is kept";
  EXPECT_EQ(ok.response.entries_size(), 101);
  EXPECT_EQ(ok.response.last_index(), 300u);
  EXPECT_EQ(Entries(stub(), first - 1, first + 5).status.error_code(), grpc::StatusCode::NOT_FOUND)
      << "released and purged: compacted";
  EXPECT_TRUE(Entries(stub(), first, first + 5).status.ok());
  EXPECT_EQ(Entries(stub(), 250, 302).status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_EQ(Entries(stub(), 0, 5).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Entries(stub(), 250, 250).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::TermResponse term;
  ASSERT_TRUE(Term(stub(), 200, &term).ok()) << "the marker's index has the marker's term";
  EXPECT_EQ(term.term(), 1u);
  EXPECT_EQ(term.first_index(), first);
  ASSERT_TRUE(Term(stub(), first, &term).ok()) << "a released term is read from its entry";
  EXPECT_EQ(term.term(), 1u);
  ASSERT_TRUE(Term(stub(), 300, &term).ok());
  EXPECT_EQ(term.term(), 1u);
  EXPECT_EQ(Term(stub(), first - 2, &term).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Term(stub(), 301, &term).error_code(), grpc::StatusCode::OUT_OF_RANGE);
}

TEST_F(RangedReadsTest, SnapshotOverDivergentTail_StaleEntriesNeverServed) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 5, 1, 5)).ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(6, 10, 2, 5)).ok());
  ASSERT_TRUE(SaveSnapshot(stub(), 7, 3).ok());
  EntriesAnswer stale = Entries(stub(), 8, 9);
  EXPECT_EQ(stale.status.error_code(), grpc::StatusCode::OUT_OF_RANGE)
      << "the marker discarded 8..10 of term 2; got " << stale.response.entries_size();
  ASSERT_TRUE(Append(stub(), MakeAppend(8, 9, 3, 7)).ok());
  for (int round = 0; round < 2; ++round) {
    EntriesAnswer got = Entries(stub(), 8, 10);
    ASSERT_TRUE(got.status.ok()) << got.status.error_message();
    ASSERT_EQ(got.response.entries_size(), 2);
    EXPECT_EQ(got.response.entries(0).term(), 3u);
    EXPECT_EQ(got.response.entries(1).term(), 3u);
    v1::TermResponse term;
    ASSERT_TRUE(Term(stub(), 7, &term).ok());
    EXPECT_EQ(term.term(), 3u) << "the marker's term, not the stale entry's";
    daemon_->Kill9();
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }
}

// A Follow stream, read message by message with a deadline per read.
class Follower {
 public:
  Follower(v1::WAL::Stub* stub, uint64_t from, uint32_t chunk = 0) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    v1::FollowRequest request;
    request.set_from_index(from);
    request.set_max_chunk_bytes(chunk);
    reader_ = stub->Follow(&context_, request);
  }
  ~Follower() {
    if (ended_) return;
    context_.TryCancel();
    (void)End();
  }
  // Reads until the entries received reach `index` (applying truncations);
  // false if the stream ended first.
  bool ReadThrough(uint64_t index) {
    v1::FollowResponse m;
    while (log_.empty() || log_.back().index() < index) {
      if (!reader_->Read(&m)) return false;
      ++messages_;
      if (m.truncated_from() != 0) {
        truncations_.push_back(m.truncated_from());
        while (!log_.empty() && log_.back().index() >= m.truncated_from()) log_.pop_back();
      }
      for (const raftpb::Entry& e : m.entries()) {
        if (!log_.empty() && e.index() != log_.back().index() + 1) return false;
        log_.push_back(e);
      }
    }
    return true;
  }
  grpc::Status End() {
    v1::FollowResponse m;
    while (reader_->Read(&m)) {
    }
    ended_ = true;
    return reader_->Finish();
  }
  const std::vector<raftpb::Entry>& log() const { return log_; }
  const std::vector<uint64_t>& truncations() const { return truncations_; }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::FollowResponse>> reader_;
  std::vector<raftpb::Entry> log_;
  std::vector<uint64_t> truncations_;
  int messages_ = 0;
  bool ended_ = false;
};

TEST_F(RangedReadsTest, Follow_BacklogThenEntriesAsTheyBecomeDurable) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 200; i += 20) {
    ASSERT_TRUE(Append(stub(), Varied(i, i + 19, 1, i - 1, &rng_)).ok());
  }
  auto own = daemon_->NewStub();
  Follower follower(own.get(), 1, 16 * 1024);
  ASSERT_TRUE(follower.ReadThrough(200));
  // Caught up: the stream waits for what becomes durable next.
  for (uint64_t i = 201; i <= 300; i += 20) {
    ASSERT_TRUE(Append(stub(), Varied(i, i + 19, 1, i - 1, &rng_)).ok());
  }
  ASSERT_TRUE(follower.ReadThrough(300));
  std::vector<raftpb::Entry> want = ReadAll(stub()).entries;
  ASSERT_EQ(follower.log().size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(follower.log()[i].index(), want[i].index());
    ASSERT_EQ(follower.log()[i].data(), want[i].data()) << "entry " << want[i].index();
  }
  EXPECT_TRUE(follower.truncations().empty());
}

TEST_F(RangedReadsTest, Follow_TailRewrittenByNewLeader_TruncatesThenSendsReplacements) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 5)).ok());
  auto own = daemon_->NewStub();
  Follower follower(own.get(), 3);
  ASSERT_TRUE(follower.ReadThrough(10));
  EXPECT_EQ(follower.log().front().index(), 3u);
  ASSERT_TRUE(Append(stub(), MakeAppend(8, 12, 2, 5)).ok());
  ASSERT_TRUE(follower.ReadThrough(12));
  ASSERT_EQ(follower.truncations(), std::vector<uint64_t>{8});
  EXPECT_EQ(Describe(follower.log()), "3/1 4/1 5/1 6/1 7/1 8/2 9/2 10/2 11/2 12/2");
}

TEST_F(RangedReadsTest, Follow_Bounds_PastTheEndOutOfRange_ReleasedNotFound_ReplacedByMarker) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  for (uint64_t i = 1; i <= 300; i += 30) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 29, 1, i + 29, 1000)).ok());
  }
  {
    Follower past(stub(), 302);
    EXPECT_EQ(past.End().error_code(), grpc::StatusCode::OUT_OF_RANGE);
  }
  ASSERT_TRUE(SaveSnapshot(stub(), 250, 1).ok());
  grpc::ClientContext context;
  v1::ReleaseToRequest release;
  release.set_index(250);
  v1::ReleaseToResponse released;
  ASSERT_TRUE(stub()->ReleaseTo(&context, release, &released).ok());
  {
    Follower behind(stub(), 1);
    EXPECT_EQ(behind.End().error_code(), grpc::StatusCode::NOT_FOUND);
  }
  // A follower installing a leader's snapshot past the end: the entries
  // sent after 260 are gone with no replacement to send.
  auto own = daemon_->NewStub();
  Follower follower(own.get(), 260);
  ASSERT_TRUE(follower.ReadThrough(300));
  ASSERT_TRUE(SaveSnapshot(stub(), 400, 2).ok());
  EXPECT_EQ(follower.End().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(RangedReadsTest, Follow_ReaderThatNeverReads_AppendsGoOn_SigtermEndsItUnavailable) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  auto own = daemon_->NewStub();
  grpc::ClientContext context;
  v1::FollowRequest request;
  request.set_from_index(1);
  std::unique_ptr<grpc::ClientReader<v1::FollowResponse>> idle = own->Follow(&context, request);
  // Nothing is read from `idle` while 20 MB become durable: the stream
  // holds one message, and the appends are not held back.
  for (uint64_t i = 1; i <= 20000; i += 1000) {
    ASSERT_TRUE(Append(stub(), MakeAppend(i, i + 999, 1, 0, 1000)).ok());
  }
  EXPECT_EQ(daemon_->Signal(SIGTERM, 20), 0) << daemon_->log();
  v1::FollowResponse m;
  while (idle->Read(&m)) {
  }
  grpc::Status ended = idle->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
}

TEST_F(RangedReadsTest, CppClient_EntriesTermAndFollow) {
  ASSERT_TRUE(CreateWal(stub(), "meta").ok());
  ASSERT_TRUE(Append(stub(), MakeAppend(1, 10, 1, 5)).ok());
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(daemon_->target(), {});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<v1::EntriesResponse> entries = (*client)->Entries(3, 6);
  ASSERT_TRUE(entries.ok()) << entries.status();
  EXPECT_EQ(entries->entries_size(), 3);
  EXPECT_EQ(entries->last_index(), 10u);
  absl::StatusOr<v1::TermResponse> term = (*client)->Term(10);
  ASSERT_TRUE(term.ok()) << term.status();
  EXPECT_EQ(term->term(), 1u);
  EXPECT_EQ((*client)->Entries(5, 12).status().code(), absl::StatusCode::kOutOfRange);

  std::vector<uint64_t> followed;
  absl::Status ended = (*client)->Follow(4, 0, [&](const v1::FollowResponse& m) {
    for (const raftpb::Entry& e : m.entries()) followed.push_back(e.index());
    return followed.size() >= 7 ? absl::CancelledError("enough") : absl::OkStatus();
  });
  EXPECT_EQ(ended.code(), absl::StatusCode::kCancelled) << ended;
  EXPECT_EQ(ended.message(), "enough");
  ASSERT_EQ(followed.size(), 7u);
  EXPECT_EQ(followed.front(), 4u);
  EXPECT_EQ(followed.back(), 10u);
}

}  // namespace
}  // namespace walrus::testing
