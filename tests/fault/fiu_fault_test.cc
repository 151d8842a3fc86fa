// I/O errors on the real walrusd binary, injected with libfiu's POSIX preload
// library (fiu-utils) and switched on and off at run time through libfiu's
// control FIFOs, the same protocol `fiu-ctrl` speaks:
//   - fdatasync EIO: that batch is not acknowledged, the daemon goes
//     fail-stop (health NOT_SERVING, later writes UNAVAILABLE) and never calls
//     fdatasync again on that file (tests/fault/sync_probe.c logs every call);
//   - pwrite ENOSPC: RESOURCE_EXHAUSTED, the log on disk stays valid, appends
//     resume once space returns;
//   - short writes (pwrite writing fewer bytes than asked): completed, every
//     acknowledged entry reads back intact;
//   - rename and open failures at a segment cut: fail-stop, nothing
//     acknowledged is lost, the log restarts clean.
//
// Skipped in sanitizer builds: the sanitizer runtime must come first in the
// process's library list, which LD_PRELOAD breaks.
#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/fs.h"
#include "core/verify.h"
#include "gtest/gtest.h"
#include "health.grpc.pb.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

constexpr char kFiuDir[] = WALRUS_FIU_LIB_DIR;
constexpr uint32_t kEio = 5, kEnospc = 28;

using HealthStatus = grpc::health::v1::HealthCheckResponse::ServingStatus;

// One fdatasync/fsync call as the probe logged it.
struct SyncCall {
  std::string call;
  std::string path;
  int rc = 0;
  int err = 0;
};

class FiuFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (kSanitizerBuild) {
      GTEST_SKIP() << "libfiu's LD_PRELOAD conflicts with the sanitizer runtime; run this "
                      "suite in the plain build (label fault)";
    }
    for (const char* lib : {"fiu_run_preload.so", "fiu_posix_preload.so"}) {
      if (access(absl::StrCat(kFiuDir, "/", lib).c_str(), R_OK) != 0) {
        GTEST_SKIP() << kFiuDir << "/" << lib << " missing: install fiu-utils";
      }
    }
  }

  // Starts walrusd with libfiu's preload libraries and the sync probe.
  // With `create`, also creates the WAL (metadata "fiu").
  void StartUnderFiu(std::vector<std::string> flags = {}, bool create = true) {
    daemon_ = std::make_unique<Daemon>(tmp_.Sub("data"), std::move(flags));
    daemon_->set_command_prefix(
        {"/usr/bin/env",
         absl::StrCat("LD_PRELOAD=", WALRUS_SYNC_PROBE, " ", kFiuDir, "/fiu_run_preload.so ",
                      kFiuDir, "/fiu_posix_preload.so"),
         "FIU_ENABLE=", "FIU_CTRL_FIFO=" + FifoPrefix(), "WALRUS_SYNC_LOG=" + SyncLog()});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
    if (!create) return;
    grpc::Status created = CreateWal(daemon_->stub(), "fiu");
    ASSERT_TRUE(created.ok()) << created.error_message() << "\n" << daemon_->log();
  }

  // Restarts the daemon on the same directory without any fault injection.
  void RestartClean() {
    daemon_->set_command_prefix({});
    ASSERT_TRUE(daemon_->Start()) << daemon_->log();
  }

  // Stops the daemon; SIGTERM, as an operator would after a disk error.
  void Stop() {
    int code = daemon_->Signal(SIGTERM);
    ASSERT_NE(code, -1) << "walrusd did not exit after SIGTERM:\n" << daemon_->log();
  }

  std::string FifoPrefix() const { return tmp_.Sub("fiu"); }
  std::string SyncLog() const { return tmp_.Sub("sync.log"); }

  // Sends one libfiu remote-control command ("enable name=...,failinfo=5")
  // and checks the reply, as fiu-ctrl does.
  ::testing::AssertionResult Fiu(const std::string& command) {
    std::string base = absl::StrCat(FifoPrefix(), "-", daemon_->pid());
    int in = open((base + ".in").c_str(), O_WRONLY | O_CLOEXEC);
    if (in < 0) return ::testing::AssertionFailure() << "no libfiu control FIFO " << base << ".in";
    std::string line = command + "\n";
    bool wrote = write(in, line.data(), line.size()) == static_cast<ssize_t>(line.size());
    close(in);
    if (!wrote) return ::testing::AssertionFailure() << "writing to " << base << ".in failed";
    std::ifstream out(base + ".out");
    std::string reply;
    std::getline(out, reply);
    if (reply != "0") {
      return ::testing::AssertionFailure() << "libfiu refused '" << command << "': " << reply;
    }
    return ::testing::AssertionSuccess();
  }

  // The probe's lines for `kind`: "sync" (fsync and fdatasync, with rc and
  // errno) or "pwrite" (short writes only, with bytes written and asked).
  std::vector<SyncCall> ProbeCalls(const std::string& kind) const {
    std::vector<SyncCall> calls;
    std::ifstream in(SyncLog());
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> f = absl::StrSplit(line, ' ');
      if (f.size() != 4) continue;
      const bool is_write = f[0] == "pwrite";
      if (is_write != (kind == "pwrite")) continue;
      calls.push_back({f[0], f[1], std::atoi(f[2].c_str()), std::atoi(f[3].c_str())});
    }
    return calls;
  }
  std::vector<SyncCall> SyncCalls() const { return ProbeCalls("sync"); }

  HealthStatus Health() {
    auto stub = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(daemon_->target(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service("walrus.v1.WAL");
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, request, &response);
    return status.ok() ? response.status() : grpc::health::v1::HealthCheckResponse::UNKNOWN;
  }

  // Appends entries [first, last] (term 1, 200-byte payloads).
  grpc::Status AppendRange(uint64_t first, uint64_t last) {
    return Append(daemon_->stub(), MakeAppend(first, last, 1, 0, 200));
  }

  // The log as a clean restart reads it: at least entries 1..acked, each
  // intact, indexes contiguous.
  void ExpectAcknowledgedReadBack(uint64_t acked, const std::string& when) {
    ReadBack back = ReadAll(daemon_->stub());
    ASSERT_TRUE(back.status.ok()) << when << ": " << back.status.error_message();
    ASSERT_GE(back.entries.size(), acked) << when << ": acknowledged entries lost";
    for (uint64_t i = 0; i < back.entries.size(); ++i) {
      ASSERT_EQ(back.entries[i].index(), i + 1) << when;
      ASSERT_EQ(back.entries[i].data(), MakeEntries(i + 1, i + 1, 1, 200)[0].data())
          << when << ": entry " << i + 1 << " changed";
    }
  }

  // Offline check of the directory (no daemon running).
  void ExpectLogClean(const std::string& when) {
    absl::StatusOr<VerifyReport> report = Verify(PosixFs(), daemon_->wal_dir());
    ASSERT_TRUE(report.ok()) << when << ": " << report.status();
    EXPECT_EQ(report->outcome, VerifyReport::kClean) << when << ": " << report->Describe();
  }

  // Waits until the daemon's background preparer has a next segment ready
  // (a preallocated *.tmp file), so a fault at the cut hits the cut itself.
  bool WaitForPreparedSegment(uint64_t size) {
    for (int i = 0; i < 1000; ++i) {
      for (const auto& f : std::filesystem::directory_iterator(daemon_->wal_dir())) {
        if (f.path().extension() == ".tmp" && f.file_size() == size) return true;
      }
      usleep(10 * 1000);
    }
    return false;
  }

  TempDir tmp_;
  std::unique_ptr<Daemon> daemon_;
};

TEST_F(FiuFaultTest, FdatasyncEio_NotAcknowledged_FailStop_NeverSyncedAgain) {
  StartUnderFiu();
  ASSERT_TRUE(AppendRange(1, 10).ok());
  ASSERT_EQ(Health(), grpc::health::v1::HealthCheckResponse::SERVING);
  ASSERT_TRUE(Fiu(absl::StrCat("enable name=posix/io/sync/fdatasync,failinfo=", kEio, ",onetime")));

  grpc::Status failed = AppendRange(11, 12);
  EXPECT_EQ(failed.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "the batch whose fdatasync failed was answered: " << failed.error_message();
  EXPECT_EQ(Health(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_TRUE(GetStatus(daemon_->stub()).fail_stop());
  // The fault was one-shot: a retried fdatasync would now succeed, so these
  // must fail because the daemon is fail-stop, not because of libfiu.
  grpc::Status later = AppendRange(11, 12);
  EXPECT_EQ(later.error_code(), grpc::StatusCode::UNAVAILABLE) << later.error_message();
  EXPECT_NE(later.error_message().find("fail-stop"), std::string::npos) << later.error_message();
  EXPECT_EQ(AppendRange(11, 11).error_code(), grpc::StatusCode::UNAVAILABLE);
  Stop();

  // Exactly one failed call, and after it no fdatasync of that file at all
  // (Linux may have dropped the dirty pages; a retry would lie).
  std::vector<SyncCall> calls = SyncCalls();
  size_t failed_at = calls.size();
  for (size_t i = 0; i < calls.size(); ++i) {
    if (calls[i].rc != 0) {
      ASSERT_EQ(failed_at, calls.size()) << "more than one failed sync: " << calls[i].path;
      failed_at = i;
    }
  }
  ASSERT_LT(failed_at, calls.size()) << "the probe saw no failed fdatasync";
  EXPECT_EQ(calls[failed_at].call, "fdatasync");
  EXPECT_EQ(calls[failed_at].err, static_cast<int>(kEio));
  EXPECT_NE(calls[failed_at].path.find(".wal"), std::string::npos) << calls[failed_at].path;
  size_t after_on_file = 0;
  for (size_t i = failed_at + 1; i < calls.size(); ++i) {
    if (calls[i].path != calls[failed_at].path) continue;
    ++after_on_file;
    ADD_FAILURE() << calls[i].call << " of " << calls[i].path << " after its fdatasync failed";
  }
  std::printf("fdatasync calls before the injected EIO: %zu, after it on that file: %zu\n",
              failed_at, after_on_file);

  RestartClean();
  ExpectAcknowledgedReadBack(10, "after restart");
}

TEST_F(FiuFaultTest, WriteEnospc_ResourceExhausted_LogValid_AppendsResume) {
  StartUnderFiu();
  ASSERT_TRUE(AppendRange(1, 10).ok());
  ASSERT_TRUE(Fiu(absl::StrCat("enable name=posix/io/rw/pwrite,failinfo=", kEnospc)));
  for (int attempt = 0; attempt < 3; ++attempt) {
    grpc::Status full = AppendRange(11, 15);
    EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << "attempt " << attempt << ": " << full.error_message();
  }
  EXPECT_EQ(Health(), grpc::health::v1::HealthCheckResponse::SERVING)
      << "a full disk is not fail-stop";
  EXPECT_FALSE(GetStatus(daemon_->stub()).fail_stop());
  EXPECT_EQ(GetStatus(daemon_->stub()).last_index(), 10u) << "the failed batch must be forgotten";
  // The files as they are while the disk is full: valid, ending at entry 10.
  absl::StatusOr<VerifyReport> full_report = Verify(PosixFs(), daemon_->wal_dir());
  ASSERT_TRUE(full_report.ok()) << full_report.status();
  EXPECT_EQ(full_report->outcome, VerifyReport::kClean) << full_report->Describe();
  EXPECT_EQ(full_report->last_index, 10u);

  ASSERT_TRUE(Fiu("disable name=posix/io/rw/pwrite"));
  grpc::Status resumed = AppendRange(11, 15);
  ASSERT_TRUE(resumed.ok()) << "space returned but appends do not resume: "
                            << resumed.error_message();
  ASSERT_TRUE(AppendRange(16, 20).ok());
  Stop();
  ExpectLogClean("after ENOSPC and resume");
  RestartClean();
  ExpectAcknowledgedReadBack(20, "after restart");
  EXPECT_EQ(GetStatus(daemon_->stub()).last_index(), 20u);
}

// Duplicates of one SaveSnapshot that share a batch: the first one encodes
// the marker, the others find it already in the log. While the batch's write
// fails, none of them may be acknowledged on the strength of it; every marker
// acknowledged is read back after a restart.
TEST_F(FiuFaultTest, SaveSnapshotDuplicatesInOneFailedBatch_NoneAcknowledged) {
  StartUnderFiu();
  ASSERT_TRUE(AppendRange(1, 10).ok());
  ASSERT_TRUE(Fiu(absl::StrCat("enable name=posix/io/rw/pwrite,failinfo=", kEnospc)));
  // Rounds of concurrent duplicates: requests that arrive while a batch is
  // written form the next one, so many of them share batches.
  constexpr int kSenders = 16, kRounds = 10;
  std::vector<grpc::Status> answers(kSenders * kRounds);
  std::vector<std::unique_ptr<v1::WAL::Stub>> stubs;
  for (int i = 0; i < kSenders; ++i) stubs.push_back(daemon_->NewStub());
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> ready{0};
    std::vector<std::thread> senders;
    for (int i = 0; i < kSenders; ++i) {
      senders.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < kSenders) std::this_thread::yield();
        answers[round * kSenders + i] = SaveSnapshot(stubs[i].get(), 5, 1);
      });
    }
    for (std::thread& t : senders) t.join();
  }
  int acknowledged = 0;
  for (const grpc::Status& answer : answers) {
    if (answer.ok()) {
      ++acknowledged;
    } else {
      EXPECT_EQ(answer.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
          << answer.error_message();
    }
  }
  EXPECT_EQ(acknowledged, 0) << "SaveSnapshot acknowledged while every write failed ENOSPC";
  ASSERT_TRUE(Fiu("disable name=posix/io/rw/pwrite"));
  Stop();
  RestartClean();
  ReadBack from_marker = ReadAll(daemon_->stub(), 5, 1);
  if (acknowledged > 0) {
    EXPECT_TRUE(from_marker.status.ok())
        << "an acknowledged marker is not on disk: " << from_marker.status.error_message();
  }
  EXPECT_TRUE(SaveSnapshot(daemon_->stub(), 5, 1).ok()) << "with space back, the marker saves";
}

// The first segment is built under a temporary name and renamed into place;
// an error in between names the file an operator will find, not the
// temporary one that is gone.
TEST_F(FiuFaultTest, CreateSyncFails_ErrorNamesTheSegmentsRealPath) {
  StartUnderFiu({}, /*create=*/false);
  ASSERT_TRUE(Fiu(absl::StrCat("enable name=posix/io/sync/fdatasync,failinfo=", kEio, ",onetime")));
  grpc::Status created = CreateWal(daemon_->stub(), "fiu");
  ASSERT_FALSE(created.ok());
  EXPECT_NE(
      created.error_message().find(daemon_->wal_dir() + "/0000000000000000-0000000000000000.wal"),
      std::string::npos)
      << created.error_message();
  EXPECT_EQ(created.error_message().find(".tmp"), std::string::npos) << created.error_message();
}

TEST_F(FiuFaultTest, ShortWrites_AreCompleted_EveryAcknowledgedEntryIntact) {
  StartUnderFiu();
  // Every pwrite from here on writes a random prefix (at least one byte).
  ASSERT_TRUE(Fiu("enable name=posix/io/rw/pwrite/reduce"));
  uint64_t acked = 0;
  for (uint64_t i = 1; i <= 300; i += 10) {
    grpc::Status status = AppendRange(i, i + 9);
    ASSERT_TRUE(status.ok()) << "append " << i << " under short writes: " << status.error_message();
    acked = i + 9;
  }
  Stop();
  // The probe saw the daemon's writes come back short: the test is only
  // worth its name if the retry path really ran.
  size_t short_on_wal = 0;
  for (const SyncCall& write : ProbeCalls("pwrite")) {
    if (write.path.find(".wal") != std::string::npos && write.rc < write.err) ++short_on_wal;
  }
  EXPECT_GT(short_on_wal, 0u) << "no pwrite to a segment came back short";
  std::printf("short pwrites to segments completed by the daemon: %zu\n", short_on_wal);
  ExpectLogClean("after short writes");
  RestartClean();
  ExpectAcknowledgedReadBack(acked, "after short writes");
}

TEST_F(FiuFaultTest, RenameFailureAtSegmentCut_FailStop_NothingAcknowledgedLost) {
  StartUnderFiu({"--segment-size-bytes", "65536"});
  ASSERT_TRUE(Fiu(absl::StrCat("enable name=posix/io/dir/rename,failinfo=", kEio)));
  uint64_t acked = 0;
  grpc::Status status;
  for (uint64_t i = 1; i <= 2000 && status.ok(); i += 10) {
    status = AppendRange(i, i + 9);
    if (status.ok()) acked = i + 9;
  }
  ASSERT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a failed rename at the cut must stop the WAL: " << status.error_message();
  ASSERT_GT(acked, 0u);
  EXPECT_EQ(Health(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  EXPECT_NE(daemon_->log().find("rename"), std::string::npos) << daemon_->log();
  Stop();
  RestartClean();
  ExpectAcknowledgedReadBack(acked, "after the failed cut");
  uint64_t next = GetStatus(daemon_->stub()).last_index() + 1;
  EXPECT_TRUE(AppendRange(next, next + 9).ok()) << "the restarted log takes appends";
}

TEST_F(FiuFaultTest, OpenFailureAtSegmentCut_FailStop_NothingAcknowledgedLost) {
  StartUnderFiu({"--segment-size-bytes", "65536"});
  // The cut takes the segment prepared in the background, renames it and
  // opens the directory to fsync it: fail that open.
  ASSERT_TRUE(WaitForPreparedSegment(65536)) << "no prepared segment appeared";
  ASSERT_TRUE(Fiu(absl::StrCat("enable name=posix/io/oc/open,failinfo=", kEio)));
  uint64_t acked = 0;
  grpc::Status status;
  for (uint64_t i = 1; i <= 2000 && status.ok(); i += 10) {
    status = AppendRange(i, i + 9);
    if (status.ok()) acked = i + 9;
  }
  ASSERT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE)
      << "a failed open at the cut must stop the WAL: " << status.error_message();
  ASSERT_GT(acked, 0u);
  EXPECT_EQ(Health(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  ASSERT_TRUE(Fiu("disable name=posix/io/oc/open"));
  Stop();
  RestartClean();
  ExpectAcknowledgedReadBack(acked, "after the failed cut");
  uint64_t next = GetStatus(daemon_->stub()).last_index() + 1;
  EXPECT_TRUE(AppendRange(next, next + 9).ok()) << "the restarted log takes appends";
}

}  // namespace
}  // namespace walrus::testing
