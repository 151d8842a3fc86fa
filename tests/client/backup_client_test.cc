// The receiving side of an online backup: BackupReceiver's checks driven
// message by message, and WalClient::Backup against a fake daemon that
// misbehaves (tests/client/fake_backup_daemon.h). Each failure has a clear
// status, the side it came from, and no destination left behind.
#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "client/backup_receiver.h"
#include "client/client.h"
#include "core/crc32c.h"
#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/client/fake_backup_daemon.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

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

INSTANTIATE_TEST_SUITE_P(Mischief, BackupClientTest, ::testing::ValuesIn(kEveryMischief),
                         MischiefName);

}  // namespace
}  // namespace walrus
