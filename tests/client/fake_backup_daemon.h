// A fake walrusd for the receiving side of an online backup: it streams the
// segments of a real WAL directory, well or with one kind of mischief (a
// chunk with a bad CRC, a file cut short, a chunk of an unlisted file).
// BackupClientTest runs one on a Unix socket for each Mischief.
#ifndef WALRUS_TESTS_CLIENT_FAKE_BACKUP_DAEMON_H_
#define WALRUS_TESTS_CLIENT_FAKE_BACKUP_DAEMON_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/test_util.h"
#include "walrus.grpc.pb.h"

namespace walrus {

enum class Mischief { kNone, kBadCrc, kShortFile, kUnlistedFile };
inline constexpr Mischief kEveryMischief[] = {Mischief::kNone, Mischief::kBadCrc,
                                              Mischief::kShortFile, Mischief::kUnlistedFile};

// "WellBehaved", "BadChunkCrc", ...: the test-name suffix of each.
std::string MischiefName(const ::testing::TestParamInfo<Mischief>& info);

// Writes a WAL of several segments into `dir`, its tail cut at its data (as
// the daemon streams it: up to the durable end).
void WriteWal(const std::string& dir);

// The messages a daemon sends for the segments of `dir`, the header first,
// one chunk per file, with the mischief asked for.
std::vector<v1::BackupChunk> BackupMessages(const std::string& dir, Mischief mischief);

// Streams BackupMessages of a real WAL directory.
class FakeBackupWal final : public v1::WAL::Service {
 public:
  FakeBackupWal(std::string dir, Mischief mischief) : dir_(std::move(dir)), mischief_(mischief) {}

  grpc::Status Backup(grpc::ServerContext*, const v1::BackupRequest*,
                      grpc::ServerWriter<v1::BackupChunk>* writer) override {
    for (const v1::BackupChunk& message : BackupMessages(dir_, mischief_)) writer->Write(message);
    return grpc::Status::OK;
  }

 private:
  std::string dir_;
  Mischief mischief_;
};

class BackupClientTest : public ::testing::TestWithParam<Mischief> {
 protected:
  void SetUp() override {
    WriteWal(wal_dir_);
    fake_ = std::make_unique<FakeBackupWal>(wal_dir_, GetParam());
    grpc::ServerBuilder builder;
    target_ = "unix:" + tmp_.Sub("sock");
    builder.AddListeningPort(target_, grpc::InsecureServerCredentials());
    builder.RegisterService(fake_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown();
  }

  testing::TempDir tmp_;
  std::string wal_dir_ = tmp_.Sub("wal");
  std::string dest_ = tmp_.Sub("backup");
  std::string target_;
  std::unique_ptr<FakeBackupWal> fake_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace walrus

#endif  // WALRUS_TESTS_CLIENT_FAKE_BACKUP_DAEMON_H_
