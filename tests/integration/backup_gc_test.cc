// Backup and garbage collection against real walrusd processes: backups under load (online through
// the daemon and offline on its directory) while the log grows, is released
// and purged; purge never deletes a pinned or locked segment and resumes when
// the pin goes; a backup restored into a new data directory serves the log.
//
// Knobs: WALRUS_BACKUP_LOAD_ROUNDS (backups of each kind, default 3).
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "core/fs.h"
#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

constexpr size_t kEntryBytes = 200;
constexpr uint64_t kPerAppend = 20;

// Runs walrusctl with `args`; returns its exit code, stdout in *out.
int RunCtl(const std::string& args, std::string* out = nullptr) {
  std::string command = absl::StrCat(WALRUS_CTL_PATH, " ", args, " 2>&1");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return -1;
  std::string text;
  char buffer[4096];
  while (size_t n = fread(buffer, 1, sizeof(buffer), pipe)) text.append(buffer, n);
  int status = pclose(pipe);
  if (out != nullptr) *out = text;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int Rounds() {
  const char* env = std::getenv("WALRUS_BACKUP_LOAD_ROUNDS");
  return env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 3;
}

// Everything a recovering writer reads from a backup, on a scratch copy (so
// the backup itself stays as it was written).
absl::StatusOr<ReadAllResult> ReadBackup(const std::string& dir, const std::string& scratch) {
  std::filesystem::copy(dir, scratch, std::filesystem::copy_options::recursive);
  WalOptions options;
  options.prepare_in_background = false;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRecovery(scratch, options);
  if (!wal.ok()) return wal.status();
  return (*wal)->ReadAll();
}

// Checks that `read` holds every entry up to `acknowledged`, contiguous, with
// the data the appender sent.
void ExpectHoldsAcknowledged(const ReadAllResult& read, uint64_t acknowledged,
                             const std::string& what) {
  ASSERT_FALSE(read.entries.empty()) << what;
  EXPECT_GE(read.entries.back().index(), acknowledged) << what;
  for (size_t i = 1; i < read.entries.size(); ++i) {
    ASSERT_EQ(read.entries[i].index(), read.entries[i - 1].index() + 1) << what;
  }
  for (const raftpb::Entry& entry : read.entries) {
    ASSERT_EQ(entry.data(), MakeEntries(entry.index(), entry.index(), 1, kEntryBytes)[0].data())
        << what << ": entry " << entry.index() << " changed";
  }
}

uint64_t SegmentCount(const std::string& dir) {
  absl::StatusOr<std::vector<SegmentFile>> s = ListSegments(PosixFs(), dir);
  return s.ok() ? s->size() : 0;
}

class BackupGcTest : public ::testing::Test {
 protected:
  void StartDaemon(std::vector<std::string> flags = {}) {
    std::vector<std::string> all = {"--segment-size-bytes", "65536", "--retain-released-segments",
                                    "0"};
    all.insert(all.end(), flags.begin(), flags.end());
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"), all);
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    ASSERT_TRUE(CreateWal(daemon_->stub(), "meta").ok());
  }
  // Appends entries next_..next_+n-1; returns the last acknowledged index.
  uint64_t AppendEntries(v1::WAL::Stub* stub, uint64_t n, size_t entry_bytes = kEntryBytes) {
    uint64_t last = 0;
    for (uint64_t done = 0; done < n; done += kPerAppend) {
      grpc::Status s = Append(
          stub, MakeAppend(next_, next_ + kPerAppend - 1, 1, next_ + kPerAppend - 1, entry_bytes),
          &last);
      EXPECT_TRUE(s.ok()) << s.error_message();
      next_ += kPerAppend;
    }
    return last;
  }
  // Snapshots at the last entry appended, then releases up to `index`: a
  // release never goes past the newest durable marker.
  grpc::Status Release(v1::WAL::Stub* stub, uint64_t index) {
    {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::SaveSnapshotRequest request;
      request.set_index(next_ - 1);
      request.set_term(1);
      v1::SaveSnapshotResponse response;
      grpc::Status saved = stub->SaveSnapshot(&context, request, &response);
      if (!saved.ok()) return saved;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ReleaseToRequest request;
    request.set_index(index);
    v1::ReleaseToResponse response;
    grpc::Status status = stub->ReleaseTo(&context, request, &response);
    EXPECT_EQ(response.released_to(), index);
    return status;
  }
  std::string Ctl() { return absl::StrCat("--server ", daemon_->target()); }
  // Polls Status until `done` holds (the purge runs on its own thread).
  template <typename Pred>
  bool WaitForStatus(Pred done) {
    for (int i = 0; i < 1000; ++i) {
      if (done(GetStatus(daemon_->stub()))) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  TempDir tmp_;
  std::unique_ptr<Daemon> daemon_;
  uint64_t next_ = 1;
};

TEST_F(BackupGcTest, BackupUnderLoad_OnlineAndOffline_EveryBackupIsCleanAndHoldsAcknowledged) {
  StartDaemon();
  std::atomic<uint64_t> acknowledged{AppendEntries(daemon_->stub(), 400)};
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> released_upto{0};
  std::thread appender([&] {
    std::unique_ptr<v1::WAL::Stub> stub = daemon_->NewStub();
    while (!stop.load()) {
      acknowledged = AppendEntries(stub.get(), kPerAppend * 5);
      // Raft releases what a snapshot covers: keep the last ~300 entries.
      if (acknowledged > 300) {
        ASSERT_TRUE(Release(stub.get(), acknowledged - 300).ok());
        released_upto = acknowledged - 300;
      }
    }
  });
  for (int round = 0; round < Rounds(); ++round) {
    for (bool online : {true, false}) {
      const std::string dest = tmp_.Sub(absl::StrCat(online ? "online-" : "offline-", round));
      const uint64_t before = acknowledged.load();
      std::string out;
      int code =
          online ? RunCtl(absl::StrCat(Ctl(), " backup ", dest, " --json"), &out)
                 : RunCtl(absl::StrCat("backup ", daemon_->data_dir(), " ", dest, " --json"), &out);
      ASSERT_EQ(code, 0) << out;
      EXPECT_NE(out.find("\"verified\":\"clean\""), std::string::npos) << out;
      ASSERT_EQ(RunCtl(absl::StrCat("verify ", dest), &out), 0) << out;
      absl::StatusOr<ReadAllResult> read = ReadBackup(dest, dest + "-scratch");
      ASSERT_TRUE(read.ok()) << read.status();
      ExpectHoldsAcknowledged(*read, before, dest);
    }
  }
  stop = true;
  appender.join();
  // The purge really ran meanwhile: released segments are gone.
  v1::StatusResponse status = GetStatus(daemon_->stub());
  EXPECT_GT(released_upto.load(), 0u);
  EXPECT_NE(status.segments(0).first_index(), 0u) << "segment 0 was never purged";
}

TEST_F(BackupGcTest, Purge_WhileOnlineBackupStreams_PinnedSegmentsStayThenPurgeResumes) {
  // Bigger segments, and more data than gRPC buffers (its flow-control
  // window), so the daemon is still streaming, and pinning, while we look.
  StartDaemon({"--segment-size-bytes", "1048576"});
  AppendEntries(daemon_->stub(), 4000, 4096);
  // Open a backup and take only its header: the daemon pins the files.
  grpc::ClientContext context;
  v1::BackupRequest request;
  request.set_max_chunk_bytes(4096);
  std::unique_ptr<grpc::ClientReader<v1::BackupChunk>> reader =
      daemon_->stub()->Backup(&context, request);
  v1::BackupChunk header;
  ASSERT_TRUE(reader->Read(&header));
  ASSERT_TRUE(header.has_header());
  ASSERT_GE(header.files_size(), 4);
  ASSERT_EQ(GetStatus(daemon_->stub()).backups_in_progress(), 1u);
  // Everything is released now, and the purge may delete everything released.
  const uint64_t last = AppendEntries(daemon_->stub(), 600);
  ASSERT_TRUE(Release(daemon_->stub(), last).ok());
  ASSERT_TRUE(WaitForStatus([](const v1::StatusResponse& s) {
    return s.purge_blocked_by().find("pinned by backup") != std::string::npos;
  })) << GetStatus(daemon_->stub()).DebugString()
      << daemon_->log();
  for (const v1::BackupFile& file : header.files()) {
    EXPECT_TRUE(std::filesystem::exists(daemon_->wal_dir() + "/" + file.name())) << file.name();
  }
  v1::StatusResponse pinned = GetStatus(daemon_->stub());
  EXPECT_TRUE(pinned.segments(0).pinned());
  EXPECT_EQ(pinned.backups_in_progress(), 1u);
  // The rest of the stream arrives intact.
  v1::BackupChunk chunk;
  uint64_t bytes = 0;
  while (reader->Read(&chunk)) bytes += chunk.data().size();
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(bytes, header.total_bytes());
  // Pin gone: the purge goes on (retain 0 keeps only the writer's segments).
  ASSERT_TRUE(WaitForStatus([](const v1::StatusResponse& s) {
    return s.purge_blocked_by().empty() && s.segments_size() > 0 && s.segments(0).locked();
  })) << daemon_->log();
  EXPECT_FALSE(std::filesystem::exists(daemon_->wal_dir() + "/" + header.files(0).name()));
  EXPECT_NE(daemon_->log().find("purge blocked"), std::string::npos) << daemon_->log();
}

TEST_F(BackupGcTest, Purge_FileLockedByAnotherProcess_IsKeptAndNamed_ThenResumes) {
  // Keep one released segment, so the test can lock it before purge would go.
  StartDaemon({"--retain-released-segments", "1"});
  AppendEntries(daemon_->stub(), 1000);
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(PosixFs(), daemon_->wal_dir());
  ASSERT_TRUE(segments.ok() && segments->size() >= 4);
  const std::string oldest = daemon_->wal_dir() + "/" + (*segments)[0].name;
  // ReleaseTo(first index of segment 2) releases segment 0 only: retained.
  ASSERT_TRUE(Release(daemon_->stub(), (*segments)[2].id.index).ok());
  // What an offline backup does: hold the OFD lock of the released file.
  absl::StatusOr<std::unique_ptr<FileLock>> held = PosixFs()->TryLockFile(oldest);
  ASSERT_TRUE(held.ok()) << held.status();
  // Release everything: the purge must stop at the locked file.
  const uint64_t last = AppendEntries(daemon_->stub(), 20);
  ASSERT_TRUE(Release(daemon_->stub(), last).ok());
  ASSERT_TRUE(WaitForStatus([](const v1::StatusResponse& s) {
    return s.purge_blocked_by().find("locked by another process") != std::string::npos;
  })) << daemon_->log();
  EXPECT_TRUE(std::filesystem::exists(oldest));
  EXPECT_GE(SegmentCount(daemon_->wal_dir()), segments->size());  // nothing purged
  held->reset();
  // No in-process pin tells the purge the lock went: it looks again each second.
  ASSERT_TRUE(WaitForStatus([](const v1::StatusResponse& s) {
    return s.purge_blocked_by().empty() && s.segments_size() == 2 && s.segments(1).locked();
  })) << daemon_->log();
  EXPECT_FALSE(std::filesystem::exists(oldest));
}

TEST_F(BackupGcTest, Restore_BackupIntoNewDataDir_WalrusdServesEveryEntryAndAppends) {
  StartDaemon();
  const uint64_t last = AppendEntries(daemon_->stub(), 800);
  // A snapshot and a release that really frees segments: the backup must
  // restore a log whose oldest segments were purged.
  ASSERT_TRUE(SaveSnapshot(daemon_->stub(), 600, 1).ok());
  ASSERT_TRUE(Release(daemon_->stub(), 600).ok());
  ASSERT_TRUE(WaitForStatus([](const v1::StatusResponse& s) {
    return s.segments_size() > 0 && s.segments(0).first_index() > 1;
  })) << "the release purged nothing:\n"
      << daemon_->log();
  ReadBack original = ReadAll(daemon_->stub(), 600, 1);
  ASSERT_TRUE(original.status.ok()) << original.status.error_message();
  ASSERT_EQ(original.entries.size(), last - 600);
  std::string out;
  const std::string dest = tmp_.Sub("backup");
  ASSERT_EQ(RunCtl(absl::StrCat(Ctl(), " backup ", dest), &out), 0) << out;
  // Restore: the backup becomes DATA/wal of a new data directory.
  const std::string restored = tmp_.Sub("restored");
  std::filesystem::create_directories(restored);
  std::filesystem::rename(dest, restored + "/wal");
  Daemon second(restored, {"--segment-size-bytes", "65536"});
  ASSERT_TRUE(second.Start()) << second.log();
  ReadBack back = ReadAll(second.stub(), 600, 1);
  ASSERT_TRUE(back.status.ok()) << back.status.error_message();
  EXPECT_EQ(back.metadata, "meta");
  ASSERT_EQ(back.entries.size(), original.entries.size());
  EXPECT_EQ(back.entries.back().index(), last);
  for (size_t i = 0; i < back.entries.size(); ++i) {
    ASSERT_EQ(back.entries[i].index(), original.entries[i].index());
    ASSERT_EQ(back.entries[i].data(), original.entries[i].data()) << back.entries[i].index();
  }
  EXPECT_EQ(back.state.commit(), original.state.commit());
  uint64_t after = 0;
  ASSERT_TRUE(
      Append(second.stub(), MakeAppend(last + 1, last + 5, 1, last + 5, kEntryBytes), &after).ok());
  EXPECT_EQ(after, last + 5);
}

TEST_F(BackupGcTest, Backup_DestinationExists_IsRefusedAndLeftAlone) {
  StartDaemon();
  AppendEntries(daemon_->stub(), 40);
  const std::string dest = tmp_.Sub("taken");
  std::filesystem::create_directories(dest);
  WriteFile(dest + "/mine", "keep");
  std::string out;
  EXPECT_EQ(RunCtl(absl::StrCat(Ctl(), " backup ", dest), &out), 1) << out;
  EXPECT_NE(out.find("already exists"), std::string::npos) << out;
  EXPECT_EQ(RunCtl(absl::StrCat("backup ", daemon_->wal_dir(), " ", dest), &out), 1) << out;
  EXPECT_EQ(ReadFile(dest + "/mine"), "keep");
  EXPECT_FALSE(std::filesystem::exists(dest + ".tmp"));
}

TEST_F(BackupGcTest, Repair_OnDirectoryALiveWalrusdHolds_IsRefusedInUse) {
  StartDaemon();
  AppendEntries(daemon_->stub(), 40);
  std::string out;
  EXPECT_EQ(RunCtl(absl::StrCat("repair ", daemon_->wal_dir()), &out), 4) << out;
}

TEST_F(BackupGcTest, StatusDir_OnLiveDirectory_ShowsSegmentsRangesAndHeldLocks) {
  StartDaemon();
  AppendEntries(daemon_->stub(), 600);
  ASSERT_TRUE(Release(daemon_->stub(), 1).ok());
  std::string out;
  ASSERT_EQ(RunCtl(absl::StrCat("status ", daemon_->data_dir(), " --json"), &out), 0) << out;
  EXPECT_NE(out.find("\"offline\":true"), std::string::npos) << out;
  EXPECT_NE(out.find("\"last_index\":600"), std::string::npos) << out;
  EXPECT_NE(out.find("\"locked\":true"), std::string::npos) << out;
  ASSERT_EQ(RunCtl(absl::StrCat(Ctl(), " status"), &out), 0) << out;
  EXPECT_NE(out.find("purge:"), std::string::npos) << out;
}

}  // namespace
}  // namespace walrus::testing
