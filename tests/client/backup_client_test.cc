// The receiving side of an online backup: BackupReceiver's checks driven
// message by message, and WalClient::Backup and walrusctl's backup command
// against a fake daemon that misbehaves (a chunk with a bad CRC, a file cut
// short, a chunk of an unlisted file). Each failure has a clear status, the
// side it came from, walrusctl's exit code, and no destination left behind.
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "client/backup_commands.h"
#include "client/backup_receiver.h"
#include "core/crc32c.h"
#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

enum class Mischief { kNone, kBadCrc, kShortFile, kUnlistedFile };

// Writes a WAL of several segments into `dir`, its tail cut at its data (as
// the daemon streams it: up to the durable end).
void WriteWal(const std::string& dir) {
  WalOptions options;
  options.segment_size = 4096;
  options.prepare_in_background = false;
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir, "meta", options);
  ASSERT_TRUE(wal.ok()) << wal.status();
  for (uint64_t i = 1; i <= 100; i += 10) {
    ASSERT_TRUE(
        (*wal)->Save(testing::MakeState(1, 1, i), testing::MakeEntries(i, i + 9, 1, 100)).ok());
  }
  ASSERT_TRUE((*wal)->Close().ok());
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(PosixFs(), dir);
  ASSERT_TRUE(files.ok());
  ASSERT_GE(files->size(), 2u);
  std::filesystem::resize_file(dir + "/" + files->back().name, (*wal)->durable_position().offset);
}

// The messages a daemon sends for the segments of `dir`, the header first,
// one chunk per file, with the mischief asked for.
std::vector<v1::BackupChunk> BackupMessages(const std::string& dir, Mischief mischief) {
  std::vector<v1::BackupChunk> out;
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(PosixFs(), dir);
  if (!files.ok()) return out;
  v1::BackupChunk& header = out.emplace_back();
  header.set_has_header(true);
  header.set_last_entry_index(100);
  std::vector<std::string> bytes;
  for (const SegmentFile& f : *files) {
    bytes.push_back(testing::ReadFile(dir + "/" + f.name));
    v1::BackupFile* file = header.add_files();
    file->set_name(f.name);
    file->set_size_bytes(bytes.back().size());
    header.set_total_bytes(header.total_bytes() + bytes.back().size());
  }
  for (size_t i = 0; i < files->size(); ++i) {
    std::string data = bytes[i];
    if (mischief == Mischief::kShortFile && i + 1 == files->size()) data.resize(data.size() / 2);
    v1::BackupChunk& chunk = out.emplace_back();
    chunk.set_file_name(mischief == Mischief::kUnlistedFile ? SegmentName(99, 99)
                                                            : (*files)[i].name);
    chunk.set_offset(0);
    chunk.set_data(data);
    chunk.set_crc32c(crc32c::Value(data) ^ (mischief == Mischief::kBadCrc ? 1 : 0));
  }
  return out;
}

// Splits the chunk `messages[i]` in two at `at` bytes.
void Split(std::vector<v1::BackupChunk>* messages, size_t i, size_t at) {
  v1::BackupChunk second = (*messages)[i];
  v1::BackupChunk& first = (*messages)[i];
  first.set_data(first.data().substr(0, at));
  first.set_crc32c(crc32c::Value(first.data()));
  second.set_data(second.data().substr(at));
  second.set_offset(second.offset() + at);
  second.set_crc32c(crc32c::Value(second.data()));
  messages->insert(messages->begin() + static_cast<std::ptrdiff_t>(i) + 1, second);
}

// BackupReceiver on its own: no connection, the messages handed in directly.
class BackupReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override { WriteWal(wal_dir_); }

  std::unique_ptr<BackupReceiver> Begin() {
    absl::StatusOr<std::unique_ptr<BackupReceiver>> receiver = BackupReceiver::Begin(
        PosixFs(), dest_, [this](const BackupProgress& p) { progress_.push_back(p); });
    EXPECT_TRUE(receiver.ok()) << receiver.status();
    return receiver.ok() ? std::move(*receiver) : nullptr;
  }
  // Feeds `messages` until one is refused; returns that error, or Finish's.
  absl::StatusOr<BackupReply> Receive(BackupReceiver* receiver,
                                      const std::vector<v1::BackupChunk>& messages) {
    for (const v1::BackupChunk& message : messages) {
      if (absl::Status s = receiver->Take(message); !s.ok()) return s;
    }
    return receiver->Finish();
  }
  bool NothingAtDest() const {
    return !std::filesystem::exists(dest_) && !std::filesystem::exists(dest_ + ".tmp");
  }

  testing::TempDir tmp_;
  std::string wal_dir_ = tmp_.Sub("wal");
  std::string dest_ = tmp_.Sub("backup");
  std::vector<BackupProgress> progress_;
};

TEST_F(BackupReceiverTest, Receive_WholeStreamInChunks_PublishesACleanCopyAndReportsProgress) {
  std::vector<v1::BackupChunk> messages = BackupMessages(wal_dir_, Mischief::kNone);
  Split(&messages, 1, 100);
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = Receive(receiver.get(), messages);
  ASSERT_TRUE(reply.ok()) << reply.status();
  const v1::BackupChunk& header = messages[0];
  EXPECT_EQ(reply->files, static_cast<uint64_t>(header.files_size()));
  EXPECT_EQ(reply->bytes, header.total_bytes());
  EXPECT_EQ(reply->last_entry_index, 100u);
  EXPECT_EQ(reply->verified.outcome, VerifyReport::kClean);
  EXPECT_EQ(reply->verified.last_index, 100u);
  EXPECT_TRUE(std::filesystem::exists(dest_));
  ASSERT_FALSE(progress_.empty());
  EXPECT_EQ(progress_.front().bytes_done, 0u);
  EXPECT_EQ(progress_.front().bytes_total, header.total_bytes());
  EXPECT_EQ(progress_.back().bytes_done, header.total_bytes());
  EXPECT_EQ(progress_.back().files_done, static_cast<uint64_t>(header.files_size()));
}

TEST_F(BackupReceiverTest, Take_ChunkBeforeTheHeader_IsInternal) {
  std::vector<v1::BackupChunk> messages = BackupMessages(wal_dir_, Mischief::kNone);
  messages.erase(messages.begin());
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = Receive(receiver.get(), messages);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal) << reply.status();
  EXPECT_EQ(receiver->failed_side(), BackupSide::kRemote);
  receiver.reset();
  EXPECT_TRUE(NothingAtDest());
}

TEST_F(BackupReceiverTest, Take_SecondHeader_IsInternal) {
  std::vector<v1::BackupChunk> messages = BackupMessages(wal_dir_, Mischief::kNone);
  messages.insert(messages.begin() + 2, messages[0]);
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = Receive(receiver.get(), messages);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal) << reply.status();
  EXPECT_NE(reply.status().message().find("second header"), absl::string_view::npos);
}

TEST_F(BackupReceiverTest, Take_OffsetAfterAGap_IsInvalidArgumentFromTheDaemon) {
  std::vector<v1::BackupChunk> messages = BackupMessages(wal_dir_, Mischief::kNone);
  Split(&messages, 1, 100);
  messages[2].set_offset(messages[2].offset() + 1);
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = Receive(receiver.get(), messages);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInvalidArgument) << reply.status();
  EXPECT_EQ(receiver->failed_side(), BackupSide::kRemote);
}

TEST_F(BackupReceiverTest, Take_ChunkOfTheNextFileBeforeThisOneIsComplete_IsInternal) {
  std::vector<v1::BackupChunk> messages = BackupMessages(wal_dir_, Mischief::kNone);
  messages.erase(messages.begin() + 1);
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = Receive(receiver.get(), messages);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal) << reply.status();
  EXPECT_NE(reply.status().message().find("was complete"), absl::string_view::npos)
      << reply.status();
}

TEST_F(BackupReceiverTest, Finish_StreamWithoutAHeader_IsInternal) {
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = receiver->Finish();
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kInternal) << reply.status();
  EXPECT_EQ(receiver->failed_side(), BackupSide::kRemote);
}

TEST_F(BackupReceiverTest, Finish_CopyLacksTheLastAcknowledgedEntry_IsLocalDataLoss) {
  std::vector<v1::BackupChunk> messages = BackupMessages(wal_dir_, Mischief::kNone);
  messages[0].set_last_entry_index(101);
  std::unique_ptr<BackupReceiver> receiver = Begin();
  ASSERT_NE(receiver, nullptr);
  absl::StatusOr<BackupReply> reply = Receive(receiver.get(), messages);
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kDataLoss) << reply.status();
  EXPECT_EQ(receiver->failed_side(), BackupSide::kLocal);
  receiver.reset();
  EXPECT_TRUE(NothingAtDest());
}

TEST_F(BackupReceiverTest, Begin_DestinationExists_IsAlreadyExistsAndLeavesItAlone) {
  std::filesystem::create_directories(dest_);
  testing::WriteFile(dest_ + "/keep", "mine");
  absl::StatusOr<std::unique_ptr<BackupReceiver>> receiver =
      BackupReceiver::Begin(PosixFs(), dest_, {});
  EXPECT_EQ(receiver.status().code(), absl::StatusCode::kAlreadyExists) << receiver.status();
  EXPECT_EQ(testing::ReadFile(dest_ + "/keep"), "mine");
}

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

TEST_P(BackupClientTest, Backup_MisbehavingDaemon_FailsFromTheDaemonsSideAndLeavesNoDestination) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target_);
  ASSERT_TRUE(client.ok());
  BackupSide side = BackupSide::kLocal;
  absl::StatusOr<BackupReply> reply = (*client)->Backup(dest_, {}, &side);
  if (GetParam() == Mischief::kNone) {
    ASSERT_TRUE(reply.ok()) << reply.status();
    EXPECT_EQ(reply->verified.last_index, 100u);
    EXPECT_TRUE(std::filesystem::exists(dest_));
    return;
  }
  const absl::StatusCode want = GetParam() == Mischief::kBadCrc ? absl::StatusCode::kDataLoss
                                : GetParam() == Mischief::kShortFile
                                    ? absl::StatusCode::kInvalidArgument
                                    : absl::StatusCode::kInternal;
  EXPECT_EQ(reply.status().code(), want) << reply.status();
  EXPECT_EQ(side, BackupSide::kRemote);
  EXPECT_FALSE(std::filesystem::exists(dest_));
  EXPECT_FALSE(std::filesystem::exists(dest_ + ".tmp"));
}

TEST_P(BackupClientTest, RemoteBackup_MisbehavingDaemon_ExitCodeNamesTheFailure) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target_);
  ASSERT_TRUE(client.ok());
  cli::Args args;
  args.positional = {dest_};
  const int code = RemoteBackup(client->get(), args);
  switch (GetParam()) {
    case Mischief::kNone:
      EXPECT_EQ(code, cli::kExitOk);
      EXPECT_TRUE(std::filesystem::exists(dest_));
      return;
    case Mischief::kBadCrc:
      EXPECT_EQ(code, cli::kExitCorrupt);
      break;
    case Mischief::kShortFile:
      EXPECT_EQ(code, cli::kExitRefused);
      break;
    case Mischief::kUnlistedFile:
      EXPECT_EQ(code, cli::kExitError);
      break;
  }
  EXPECT_FALSE(std::filesystem::exists(dest_));
  EXPECT_FALSE(std::filesystem::exists(dest_ + ".tmp"));
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
