// PosixFs's writable files with direct I/O (WritableFile::UseDirectIo): the
// file holds exactly the bytes appended, zeros after them to the end of the
// last block, across truncation, reopening over a torn tail and renames; and
// a Wal on them reads back what it wrote.
#include <algorithm>
#include <random>
#include <string>

#include "absl/strings/match.h"
#include "core/encoder.h"
#include "core/fs.h"
#include "core/segment.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

constexpr size_t kBlock = 4096;

std::string Pattern(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>('a' + rng() % 26);
  return s;
}

class DirectIoTest : public ::testing::Test {
 protected:
  // A new file at `name` with direct appends of at least `min_bytes`; skips
  // the test where the file system does not take O_DIRECT.
  std::unique_ptr<WritableFile> NewDirect(const std::string& name, uint64_t offset = 0,
                                          bool create = true, uint64_t min_bytes = 0) {
    const std::string path = tmp_.Sub(name);
    absl::StatusOr<std::unique_ptr<WritableFile>> file =
        create ? PosixFs()->NewWritableFile(path) : PosixFs()->OpenWritableFile(path, offset);
    EXPECT_TRUE(file.ok()) << file.status();
    if (!file.ok()) return nullptr;
    absl::Status direct = (*file)->UseDirectIo(min_bytes);
    if (absl::IsUnimplemented(direct)) {
      skip_ = direct.ToString();
      return nullptr;
    }
    EXPECT_TRUE(direct.ok()) << direct;
    EXPECT_TRUE((*file)->direct_io());
    return std::move(*file);
  }

  // The file holds `want`, then only zeros to the end of its block.
  void ExpectHolds(const std::string& name, const std::string& want) {
    const std::string got = testing::ReadFile(tmp_.Sub(name));
    ASSERT_GE(got.size(), want.size());
    ASSERT_EQ(got.substr(0, want.size()), want) << "a byte before the end differs";
    const size_t block_end = (want.size() + kBlock - 1) / kBlock * kBlock;
    const std::string after = got.substr(want.size(), block_end - want.size());
    EXPECT_EQ(after, std::string(after.size(), '\0')) << "not zeros after the end";
  }

  // With `congruent`, each append's bytes sit in memory at the file's
  // offset within a page, as the Encoder places them (the direct writes take
  // their whole blocks from there); otherwise wherever std::string puts them.
  void RunRandomAppends(WritableFile* file, const std::string& name, bool congruent = false) {
    ASSERT_TRUE(file->Preallocate(4 << 20).ok());
    std::mt19937 rng(7);
    std::string want;
    std::basic_string<char, std::char_traits<char>, PageAlignedAllocator<char>> placed;
    for (int i = 0; i < 300; ++i) {
      const size_t sizes[] = {0, 1, 7, kBlock - 1, kBlock, kBlock + 1, 3 * kBlock + 5, 70000};
      const size_t n = sizes[rng() % 8] + (rng() % 3 == 0 ? rng() % 100 : 0);
      const std::string bytes = Pattern(n, static_cast<uint32_t>(i));
      absl::string_view data = bytes;
      if (congruent) {
        const size_t at = want.size() % kBlock;
        placed.reserve(kBlock + at + n);
        placed.assign(at, '\0');
        placed += bytes;
        data = absl::string_view(placed).substr(at);
        ASSERT_EQ(reinterpret_cast<uintptr_t>(data.data()) % kBlock, at);
      }
      ASSERT_TRUE(file->Append(data).ok()) << "append " << i;
      want += bytes;
      ASSERT_EQ(file->Offset(), want.size());
      if (i % 37 == 0) {
        ASSERT_TRUE(file->Sync().ok());
        ExpectHolds(name, want);
      }
    }
    ASSERT_TRUE(file->Sync().ok());
    EXPECT_TRUE(file->direct_io()) << "a direct write was refused and appends went buffered";
    ASSERT_TRUE(file->Close().ok());
    ExpectHolds(name, want);
  }

  testing::TempDir tmp_;
  std::string skip_;
};

#define SKIP_IF_NO_DIRECT_IO(file) \
  if ((file) == nullptr && !skip_.empty()) GTEST_SKIP() << skip_

// Appends of random sizes, all direct (min_bytes 0) or mixed with buffered
// ones below a threshold: every alignment of start and end, and every switch
// between the two ways, is taken.
TEST_F(DirectIoTest, RandomAppends_AllDirect_FileHoldsExactlyTheBytesThenZeros) {
  std::unique_ptr<WritableFile> file = NewDirect("f");
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  RunRandomAppends(file.get(), "f");
}

TEST_F(DirectIoTest, RandomAppends_DirectAndBufferedMixed_FileHoldsExactlyTheBytesThenZeros) {
  std::unique_ptr<WritableFile> file = NewDirect("f", 0, true, /*min_bytes=*/kBlock + 1);
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  RunRandomAppends(file.get(), "f");
}

TEST_F(DirectIoTest, RandomAppends_FromMemoryAtTheFilesOffsetInAPage_FileHoldsExactlyTheBytes) {
  std::unique_ptr<WritableFile> file = NewDirect("f");
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  RunRandomAppends(file.get(), "f", /*congruent=*/true);
}

TEST_F(DirectIoTest,
       RandomAppends_FromPlacedMemory_DirectAndBufferedMixed_FileHoldsExactlyTheBytes) {
  std::unique_ptr<WritableFile> file = NewDirect("f", 0, true, /*min_bytes=*/kBlock + 1);
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  RunRandomAppends(file.get(), "f", /*congruent=*/true);
}

TEST_F(DirectIoTest, Truncate_AppendsContinueFromTheNewEnd) {
  std::unique_ptr<WritableFile> file = NewDirect("f");
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  std::string want = Pattern(10000, 1);
  ASSERT_TRUE(file->Append(want).ok());
  // Back to the middle of the second block, then on.
  ASSERT_TRUE(file->Truncate(5000).ok());
  want.resize(5000);
  const std::string more = Pattern(3000, 2);
  ASSERT_TRUE(file->Append(more).ok());
  want += more;
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(file->direct_io()) << "a direct write was refused and appends went buffered";
  ASSERT_TRUE(file->Close().ok());
  ExpectHolds("f", want);
}

TEST_F(DirectIoTest, ReopenedOverATornTail_KeepsTheBytesBeforeTheOffsetAndOverwritesTheRest) {
  // A crash left 3000 bytes of garbage after the last valid byte (5000).
  const std::string valid = Pattern(5000, 3);
  testing::WriteFile(tmp_.Sub("f"), valid + std::string(3000, '\xff'));
  std::unique_ptr<WritableFile> file = NewDirect("f", valid.size(), /*create=*/false);
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  const std::string more = Pattern(100, 4);
  ASSERT_TRUE(file->Append(more).ok());
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(file->direct_io()) << "a direct write was refused and appends went buffered";
  ASSERT_TRUE(file->Close().ok());
  ExpectHolds("f", valid + more);
}

TEST_F(DirectIoTest, AfterARename_WritesReachTheSameFile) {
  const std::string from = tmp_.Sub("f.tmp"), to = tmp_.Sub("f");
  absl::StatusOr<std::unique_ptr<WritableFile>> file = PosixFs()->NewWritableFile(from);
  ASSERT_TRUE(file.ok()) << file.status();
  const std::string head = Pattern(700, 5);
  ASSERT_TRUE((*file)->Append(head).ok());  // buffered, before the switch
  ASSERT_TRUE(PosixFs()->Rename(from, to).ok());
  absl::Status direct = (*file)->UseDirectIo(0);
  if (absl::IsUnimplemented(direct)) GTEST_SKIP() << direct;
  ASSERT_TRUE(direct.ok()) << direct;
  const std::string tail = Pattern(9000, 6);
  ASSERT_TRUE((*file)->Append(tail).ok());
  ASSERT_TRUE((*file)->Sync().ok());
  EXPECT_TRUE((*file)->direct_io()) << "a direct write was refused and appends went buffered";
  ASSERT_TRUE((*file)->Close().ok());
  ExpectHolds("f", head + tail);
}

// Zeros (always buffered), block-aligned or not and past the end, replace
// whatever was there and leave the rest alone; direct appends after them
// continue right (the kept partial block is reloaded).
TEST_F(DirectIoTest, WriteZeros_AlignedAndNot_ZeroExactlyTheirRange) {
  std::string want = Pattern(40000, 8);
  testing::WriteFile(tmp_.Sub("f"), want);
  std::unique_ptr<WritableFile> file = NewDirect("f", want.size(), /*create=*/false);
  SKIP_IF_NO_DIRECT_IO(file);
  ASSERT_NE(file, nullptr);
  ASSERT_TRUE(file->WriteZeros(kBlock, 3 * kBlock).ok());  // aligned
  std::fill(want.begin() + kBlock, want.begin() + 4 * kBlock, '\0');
  ASSERT_TRUE(file->WriteZeros(5 * kBlock + 10, 1000).ok());  // not aligned
  std::fill(want.begin() + 5 * kBlock + 10, want.begin() + 5 * kBlock + 1010, '\0');
  ASSERT_TRUE(file->WriteZeros(want.size(), 2 * kBlock).ok());  // past the end
  const std::string more = Pattern(3000, 9);
  ASSERT_TRUE(file->Append(more).ok());
  want += more;
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_TRUE(file->direct_io());
  ASSERT_TRUE(file->Close().ok());
  ExpectHolds("f", want);
}

class DirectIoFlag : public WalMetrics {
 public:
  void SetDirectIo(bool on) override { on_ = on ? 1 : 0; }
  int on_ = -1;
};

// A Wal with direct appends, through cuts and a reopen that continues a
// partly written block, reads back every entry; with direct I/O off the
// metric says so.
TEST(DirectIoWalTest, EntriesOfEverySizeAcrossCutsAndAReopen_ReadBackExactly) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  DirectIoFlag flag;
  WalOptions options;
  options.segment_size = 256 * 1024;
  options.metrics = &flag;
  options.direct_io_min_bytes = 4500;  // the larger entries direct, the smaller buffered
  std::vector<raftpb::Entry> written;
  std::mt19937 rng(11);
  auto append = [&](Wal* wal, uint64_t first, uint64_t last) {
    for (uint64_t i = first; i <= last; ++i) {
      const size_t sizes[] = {1, 100, 4000, 5000, 40000};
      raftpb::Entry e = testing::MakeEntry(i, 1, Pattern(sizes[rng() % 5], uint32_t(i)));
      ASSERT_TRUE(wal->Save(raftpb::HardState(), {e}).ok()) << "entry " << i;
      written.push_back(e);
    }
  };
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Create(dir, "meta", options);
    ASSERT_TRUE(wal.ok()) << wal.status();
    if (flag.on_ == 0) GTEST_SKIP() << "this file system does not take O_DIRECT";
    EXPECT_EQ(flag.on_, 1);
    append(wal->get(), 1, 60);
    ASSERT_TRUE((*wal)->Close().ok());
  }
  {
    absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::Open(dir, walpb::Snapshot(), options);
    ASSERT_TRUE(wal.ok()) << wal.status();
    ASSERT_TRUE((*wal)->ReadAll().ok());
    EXPECT_EQ(flag.on_, 1);
    append(wal->get(), 61, 120);
    EXPECT_EQ(flag.on_, 1) << "a direct write was refused and appends went buffered";
    ASSERT_TRUE((*wal)->Close().ok());
  }
  absl::StatusOr<std::vector<std::string>> names = PosixFs()->ListDir(dir);
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_GE(std::count_if(names->begin(), names->end(),
                          [](const std::string& n) { return absl::EndsWith(n, ".wal"); }),
            3)
      << "no cut";
  absl::StatusOr<std::unique_ptr<Wal>> read = Wal::OpenForRead(dir, walpb::Snapshot(), options);
  ASSERT_TRUE(read.ok()) << read.status();
  absl::StatusOr<ReadAllResult> all = (*read)->ReadAll();
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->entries.size(), written.size());
  for (size_t i = 0; i < written.size(); ++i) {
    ASSERT_EQ(all->entries[i].SerializeAsString(), written[i].SerializeAsString()) << "entry " << i;
  }

  options.direct_io = false;
  const std::string buffered = tmp.Sub("buffered");
  absl::StatusOr<std::unique_ptr<Wal>> off = Wal::Create(buffered, "meta", options);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_EQ(flag.on_, 0);
}

}  // namespace
}  // namespace walrus
