// The crash model of walrus-lossy-fs (LossyFs), without FUSE: what survives a
// power loss and what does not.
#include "tests/powerloss/lossy_fs.h"

#include <fcntl.h>
#include <linux/fs.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

class LossyFsTest : public ::testing::Test {
 protected:
  // Creates /d (durable) and /d/f with `data` written, nothing synced.
  NodePtr FileWith(const std::string& data) {
    EXPECT_EQ(fs_.Mkdir("/d", 0700), 0);
    Sync("/");
    NodePtr file;
    EXPECT_EQ(fs_.Create("/d/f", 0600, true, &file), 0);
    EXPECT_EQ(fs_.Write(file, 0, data.data(), data.size()), static_cast<int>(data.size()));
    return file;
  }
  void Sync(const std::string& path) {
    NodePtr node;
    ASSERT_EQ(fs_.Lookup(path, &node), 0) << path;
    fs_.Sync(node.get());
  }
  // The visible content of `path`, or "<missing>".
  std::string Content(const std::string& path) {
    NodePtr node;
    if (fs_.Lookup(path, &node) != 0) return "<missing>";
    return node->data;
  }

  LossyFs fs_;
};

TEST_F(LossyFsTest, UnsyncedWrite_DroppedAtPowerLoss) {
  FileWith("durable");
  Sync("/d/f");
  Sync("/d");
  NodePtr file;
  ASSERT_EQ(fs_.Lookup("/d/f", &file), 0);
  ASSERT_EQ(fs_.Write(file, 7, "+lost", 5), 5);
  LossReport report = fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), "durable");
  EXPECT_EQ(report.files_reverted, 1);
}

TEST_F(LossyFsTest, SyncedFileWithoutDirectoryFsync_Vanishes) {
  FileWith("data");
  Sync("/d/f");
  (void)fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), "<missing>");
}

TEST_F(LossyFsTest, DirectoryFsyncedFileNeverSynced_IsEmpty) {
  FileWith("data");
  Sync("/d");
  (void)fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), "");
}

TEST_F(LossyFsTest, RenameWithoutDirectoryFsync_Reverted) {
  FileWith("data");
  Sync("/d/f");
  Sync("/d");
  ASSERT_EQ(fs_.Rename("/d/f", "/d/g", 0), 0);
  EXPECT_EQ(Content("/d/g"), "data");
  (void)fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), "data");
  EXPECT_EQ(Content("/d/g"), "<missing>");
}

TEST_F(LossyFsTest, UnlinkWithoutDirectoryFsync_FileComesBack) {
  FileWith("data");
  Sync("/d/f");
  Sync("/d");
  ASSERT_EQ(fs_.Unlink("/d/f"), 0);
  Sync("/");  // another directory's fsync does not make the unlink durable
  (void)fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), "data");
}

TEST_F(LossyFsTest, OpenUnlinkedFile_KeepsServingItsHandle) {
  NodePtr file = FileWith("data");
  ASSERT_EQ(fs_.Unlink("/d/f"), 0);
  char buffer[8];
  EXPECT_EQ(LossyFs::Read(*file, 0, sizeof(buffer), buffer), 4);
  EXPECT_EQ(fs_.Write(file, 4, "more", 4), 4);
}

TEST_F(LossyFsTest, CreateExclusive_ExistingFileIsEexist) {
  FileWith("data");
  NodePtr again;
  EXPECT_EQ(fs_.Create("/d/f", 0600, true, &again), -EEXIST);
  EXPECT_EQ(fs_.Create("/d/f", 0600, false, &again), 0);
  EXPECT_EQ(again->data, "data");
}

TEST_F(LossyFsTest, RenameNoReplace_ExistingTargetIsEexist) {
  FileWith("data");
  NodePtr other;
  ASSERT_EQ(fs_.Create("/d/g", 0600, true, &other), 0);
  EXPECT_EQ(fs_.Rename("/d/f", "/d/g", RENAME_NOREPLACE), -EEXIST);
  EXPECT_EQ(fs_.Rename("/d/f", "/d/g", 0), 0);
}

TEST_F(LossyFsTest, ShrinkThenWriteThenSync_OldBytesDoNotComeBack) {
  NodePtr file = FileWith("AAAAAAAA");
  Sync("/d/f");
  Sync("/d");
  ASSERT_EQ(LossyFs::Truncate(file.get(), 0), 0);
  ASSERT_EQ(fs_.Write(file, 6, "BB", 2), 2);
  Sync("/d/f");
  (void)fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), std::string(6, '\0') + "BB");
}

TEST_F(LossyFsTest, FallocateThenSync_SizeIsDurable) {
  NodePtr file = FileWith("");
  Sync("/d");
  ASSERT_EQ(LossyFs::Fallocate(file.get(), 0, 0, 4096), 0);
  Sync("/d/f");
  (void)fs_.PowerLoss(0, 0);
  EXPECT_EQ(Content("/d/f"), std::string(4096, '\0'));
}

TEST_F(LossyFsTest, TornLastWrite_KeepsASectorAlignedPrefixOnly) {
  const std::string write(2000, 'x');  // sectors of 512: pieces end at 512, 1024, 1536, 2000
  for (uint64_t seed = 0; seed < 32; ++seed) {
    LossyFs fs;
    ASSERT_EQ(fs.Mkdir("/d", 0700), 0);
    NodePtr root, dir, f;
    ASSERT_EQ(fs.Lookup("/", &root), 0);
    fs.Sync(root.get());
    ASSERT_EQ(fs.Create("/d/f", 0600, true, &f), 0);
    ASSERT_EQ(fs.Lookup("/d", &dir), 0);
    fs.Sync(dir.get());
    ASSERT_EQ(fs.Write(f, 0, write.data(), write.size()), 2000);
    LossReport report = fs.PowerLoss(512, seed);
    EXPECT_TRUE(report.torn_bytes % 512 == 0 || report.torn_bytes == 2000) << report.torn_bytes;
    EXPECT_EQ(report.torn_file, "/d/f");
    ASSERT_EQ(fs.Lookup("/d/f", &f), 0);
    EXPECT_EQ(f->data, write.substr(0, report.torn_bytes));
  }
}

// One write of the program's can reach the file system as several (FUSE
// splits it): the tear keeps a prefix of all the unsynced bytes, never a
// later piece without the earlier ones.
TEST_F(LossyFsTest, TornSplitWrite_KeepsAPrefixOfEveryUnsyncedPiece) {
  const std::string first(1024, 'a'), second(1024, 'b');
  int saw_second = 0;
  for (uint64_t seed = 0; seed < 32; ++seed) {
    LossyFs fs;
    ASSERT_EQ(fs.Mkdir("/d", 0700), 0);
    NodePtr root, dir, f;
    ASSERT_EQ(fs.Lookup("/", &root), 0);
    fs.Sync(root.get());
    ASSERT_EQ(fs.Create("/d/f", 0600, true, &f), 0);
    ASSERT_EQ(fs.Lookup("/d", &dir), 0);
    fs.Sync(dir.get());
    ASSERT_EQ(fs.Write(f, 0, first.data(), first.size()), 1024);
    ASSERT_EQ(fs.Write(f, 1024, second.data(), second.size()), 1024);
    LossReport report = fs.PowerLoss(512, seed);
    ASSERT_EQ(fs.Lookup("/d/f", &f), 0);
    EXPECT_EQ(f->data, (first + second).substr(0, report.torn_bytes)) << "seed " << seed;
    if (report.torn_bytes > 1024) ++saw_second;
  }
  EXPECT_GT(saw_second, 0) << "no seed kept part of the second piece";
}

TEST_F(LossyFsTest, DumpThenLoad_RestoresTheDurableTree) {
  FileWith("data");
  Sync("/d/f");
  Sync("/d");
  NodePtr lost;
  ASSERT_EQ(fs_.Create("/d/unsynced", 0600, true, &lost), 0);
  TempDir tmp;
  const std::string image = tmp.Sub("image");
  ASSERT_EQ(fs_.DumpDurable(image), 0);
  LossyFs loaded;
  ASSERT_EQ(loaded.Load(image), 0);
  NodePtr file;
  ASSERT_EQ(loaded.Lookup("/d/f", &file), 0);
  EXPECT_EQ(file->data, "data");
  EXPECT_EQ(loaded.Lookup("/d/unsynced", &file), -ENOENT);
  (void)loaded.PowerLoss(0, 0);  // everything loaded is durable
  ASSERT_EQ(loaded.Lookup("/d/f", &file), 0);
  EXPECT_EQ(file->data, "data");
}

}  // namespace
}  // namespace walrus::testing
