// `walrusctl --server ADDR backup DEST` against a fake daemon that misbehaves
// (tests/client/fake_backup_daemon.h): walrusctl's exit code names the
// failure, and no destination is left behind.
#include <filesystem>

#include "client/walrusctl/backup_commands.h"
#include "gtest/gtest.h"
#include "tests/client/fake_backup_daemon.h"

namespace walrus {
namespace {

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

INSTANTIATE_TEST_SUITE_P(Mischief, BackupClientTest, ::testing::ValuesIn(kEveryMischief),
                         MischiefName);

}  // namespace
}  // namespace walrus
