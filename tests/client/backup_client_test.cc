// walrusctl's online backup against a fake daemon that misbehaves: a chunk
// with a bad CRC, a file cut short, a chunk of an unlisted file. Each must
// fail with a clear message and leave no destination behind.
#include <grpcpp/grpcpp.h>

#include <filesystem>

#include "client/backup_commands.h"
#include "core/crc32c.h"
#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/unit/test_util.h"

namespace walrus {
namespace {

enum class Mischief { kNone, kBadCrc, kShortFile, kUnlistedFile };

// Streams the segments of a real WAL directory, with the mischief asked for.
class FakeBackupWal final : public v1::WAL::Service {
 public:
  FakeBackupWal(std::string dir, Mischief mischief) : dir_(std::move(dir)), mischief_(mischief) {}

  grpc::Status Backup(grpc::ServerContext*, const v1::BackupRequest*,
                      grpc::ServerWriter<v1::BackupChunk>* writer) override {
    absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(PosixFs(), dir_);
    if (!files.ok()) return grpc::Status(grpc::StatusCode::INTERNAL, "list");
    v1::BackupChunk header;
    header.set_has_header(true);
    std::vector<std::string> bytes;
    for (const SegmentFile& f : *files) {
      bytes.push_back(testing::ReadFile(dir_ + "/" + f.name));
      v1::BackupFile* file = header.add_files();
      file->set_name(f.name);
      file->set_size_bytes(bytes.back().size());
      header.set_total_bytes(header.total_bytes() + bytes.back().size());
    }
    writer->Write(header);
    for (size_t i = 0; i < files->size(); ++i) {
      std::string data = bytes[i];
      if (mischief_ == Mischief::kShortFile && i + 1 == files->size()) data.resize(data.size() / 2);
      v1::BackupChunk chunk;
      chunk.set_file_name(mischief_ == Mischief::kUnlistedFile ? SegmentName(99, 99)
                                                               : (*files)[i].name);
      chunk.set_offset(0);
      chunk.set_data(data);
      chunk.set_crc32c(crc32c::Value(data) ^ (mischief_ == Mischief::kBadCrc ? 1 : 0));
      writer->Write(chunk);
    }
    return grpc::Status::OK;
  }

 private:
  std::string dir_;
  Mischief mischief_;
};

class BackupClientTest : public ::testing::TestWithParam<Mischief> {
 protected:
  void SetUp() override {
    WalOptions options;
    options.segment_size = 4096;
    options.prepare_in_background = false;
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(wal_dir_, "meta", options);
    ASSERT_TRUE(wal.ok()) << wal.status();
    for (uint64_t i = 1; i <= 100; i += 10) {
      ASSERT_TRUE(
          (*wal)->Save(testing::MakeState(1, 1, i), testing::MakeEntries(i, i + 9, 1, 100)).ok());
    }
    ASSERT_TRUE((*wal)->Close().ok());
    // The tail ends at its data, as the daemon streams it.
    absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(PosixFs(), wal_dir_);
    ASSERT_TRUE(files.ok());
    std::string tail = wal_dir_ + "/" + files->back().name;
    std::filesystem::resize_file(tail, (*wal)->durable_position().offset);
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
  std::string target_;
  std::unique_ptr<FakeBackupWal> fake_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_P(BackupClientTest, Backup_MisbehavingDaemon_FailsAndLeavesNoDestination) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target_);
  ASSERT_TRUE(client.ok());
  cli::Args args;
  const std::string dest = tmp_.Sub("backup");
  args.positional = {dest};
  int code = RemoteBackup(client->get(), args);
  if (GetParam() == Mischief::kNone) {
    EXPECT_EQ(code, cli::kExitOk);
    EXPECT_TRUE(std::filesystem::exists(dest));
    return;
  }
  EXPECT_NE(code, cli::kExitOk);
  if (GetParam() == Mischief::kBadCrc) {
    EXPECT_EQ(code, cli::kExitCorrupt);
  }
  EXPECT_FALSE(std::filesystem::exists(dest));
  EXPECT_FALSE(std::filesystem::exists(dest + ".tmp"));
}

INSTANTIATE_TEST_SUITE_P(Mischief, BackupClientTest,
                         ::testing::Values(Mischief::kNone, Mischief::kBadCrc, Mischief::kShortFile,
                                           Mischief::kUnlistedFile),
                         [](const ::testing::TestParamInfo<Mischief>& info) {
                           switch (info.param) {
                             case Mischief::kNone:
                               return "WellBehaved";
                             case Mischief::kBadCrc:
                               return "BadChunkCrc";
                             case Mischief::kShortFile:
                               return "FileCutShort";
                             case Mischief::kUnlistedFile:
                               return "UnlistedFile";
                           }
                           return "unknown";
                         });

}  // namespace
}  // namespace walrus
