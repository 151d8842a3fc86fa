// PosixFs never reads the timestamps of a file on the path of an append: the
// tail's link count after every sync, a reader's size of it, existence and
// type checks. On Linux 6.13 and later, reading a file's times makes its next
// write take a new fine-grained mtime, which dirties the inode, so the next
// fdatasync writes the inode as well as the data: one more device write per
// sync. The tests run those calls on a thread under a seccomp filter that
// fails (EPERM) every stat call able to return timestamps: stat, fstat,
// lstat, newfstatat, and statx asking for any time; and, to show the answers
// hold where the kernel has no statx(2), under one that makes it ENOSYS.
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/fs.h"
#include "core/wal.h"
#include "gtest/gtest.h"
#include "tests/support/test_util.h"

namespace walrus {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kAuditArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kAuditArch = 0;
#endif

enum class Filter {
  // Fails (EPERM) every stat call able to return timestamps.
  kNoTimestamps,
  // statx(2) fails ENOSYS, as on a kernel older than 4.11 (glibc then
  // answers statx() with fstatat); the rest is allowed.
  kNoStatx,
};

// Installs `filter` on the calling thread. Returns 0 or an errno.
int Install(Filter filter) {
  constexpr uint32_t kDeny = SECCOMP_RET_ERRNO | EPERM;
  std::vector<sock_filter> f;
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)));
  f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kAuditArch, 1, 0));
  f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)));
  if (filter == Filter::kNoStatx) {
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_statx, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  } else {
    const std::vector<uint32_t> always_times = {
#ifdef __NR_stat
        __NR_stat,
#endif
#ifdef __NR_lstat
        __NR_lstat,
#endif
#ifdef __NR_fstat
        __NR_fstat,
#endif
#ifdef __NR_newfstatat
        __NR_newfstatat,
#endif
    };
    for (uint32_t nr : always_times) {
      f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1));
      f.push_back(BPF_STMT(BPF_RET | BPF_K, kDeny));
    }
    // statx(dirfd, path, flags, mask, buf): the low half of the mask (args[3]).
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_statx, 0, 3));
    f.push_back(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[3])));
    f.push_back(BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K,
                         STATX_ATIME | STATX_MTIME | STATX_CTIME | STATX_BTIME, 0, 1));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, kDeny));
    f.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  sock_fprog prog{static_cast<unsigned short>(f.size()), f.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return errno;
  return 0;
}

// Runs `body` on a new thread under `filter`, after checking the filter works
// on `probe_path` (stat(2) refused, or statx(2) missing), so a pass means
// something. Skips the test where seccomp is not available.
void UnderFilter(Filter filter, const std::string& probe_path, const std::function<void()>& body) {
  if (kAuditArch == 0) GTEST_SKIP() << "no seccomp architecture constant for this CPU";
  int installed = 0;
  int probe_errno = 0;
  std::thread thread([&] {
    installed = Install(filter);
    if (installed != 0) return;
    struct stat st;
    struct statx stx;
    // The system call itself: glibc's statx() answers ENOSYS with fstatat.
    const long probe =
        filter == Filter::kNoStatx
            ? ::syscall(__NR_statx, AT_FDCWD, probe_path.c_str(), 0, STATX_TYPE, &stx)
            : ::stat(probe_path.c_str(), &st);
    if (probe != 0) probe_errno = errno;
    body();
  });
  thread.join();
  if (installed == EINVAL || installed == EACCES || installed == ENOSYS) {
    GTEST_SKIP() << "seccomp filters are not available here (errno " << installed << ")";
  }
  ASSERT_EQ(installed, 0);
  ASSERT_EQ(probe_errno, filter == Filter::kNoStatx ? ENOSYS : EPERM)
      << "the filter does not do what the test relies on";
}

// Every stat PosixFs makes, checked for its answer.
void StatEverything(FileSystem* fs, WritableFile* file, const std::string& path,
                    const std::string& dir) {
  EXPECT_TRUE(file->Append("record").ok());
  EXPECT_TRUE(file->Sync().ok());
  absl::StatusOr<uint64_t> links = file->LinkCount();
  ASSERT_TRUE(links.ok()) << links.status();
  EXPECT_EQ(*links, 1u);

  absl::StatusOr<std::unique_ptr<ReadableFile>> reader = fs->NewReadableFile(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::StatusOr<uint64_t> size = (*reader)->Size();
  ASSERT_TRUE(size.ok()) << size.status();
  EXPECT_EQ(*size, uint64_t{1} << 20);
  absl::StatusOr<std::unique_ptr<ReadableFile>> not_a_file = fs->NewReadableFile(dir);
  EXPECT_FALSE(not_a_file.ok());

  absl::StatusOr<uint64_t> by_name = fs->FileSize(path);
  ASSERT_TRUE(by_name.ok()) << by_name.status();
  EXPECT_EQ(*by_name, uint64_t{1} << 20);
  EXPECT_FALSE(fs->FileSize(dir + "/absent").ok());
  EXPECT_TRUE(fs->Exists(path));
  EXPECT_FALSE(fs->Exists(dir + "/absent"));
  EXPECT_TRUE(fs->IsDirectory(dir));
  EXPECT_FALSE(fs->IsDirectory(path));
  absl::StatusOr<bool> regular = fs->IsRegularFile(path);
  ASSERT_TRUE(regular.ok()) << regular.status();
  EXPECT_TRUE(*regular);
  absl::StatusOr<bool> dir_regular = fs->IsRegularFile(dir);
  ASSERT_TRUE(dir_regular.ok()) << dir_regular.status();
  EXPECT_FALSE(*dir_regular);
}

// A file of 1 MiB (preallocated) in a fresh directory, for StatEverything.
class PosixFsStatTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<WritableFile>> created = PosixFs()->NewWritableFile(path_);
    ASSERT_TRUE(created.ok()) << created.status();
    file_ = std::move(*created);
    ASSERT_TRUE(file_->Preallocate(1 << 20).ok());
  }

  testing::TempDir tmp_;
  const std::string path_ = tmp_.Sub("file");
  std::unique_ptr<WritableFile> file_;
};

TEST_F(PosixFsStatTest, FileOperationsOnTheAppendPath_NeverAskForTimestamps) {
  UnderFilter(Filter::kNoTimestamps, path_,
              [&] { StatEverything(PosixFs(), file_.get(), path_, tmp_.path()); });
}

TEST_F(PosixFsStatTest, WithoutStatx_TheSameAnswersFromStat) {
  UnderFilter(Filter::kNoStatx, path_,
              [&] { StatEverything(PosixFs(), file_.get(), path_, tmp_.path()); });
}

TEST(PosixFsStatWalTest, AppendsSyncsAndCuts_NeverAskForTimestamps) {
  testing::TempDir tmp;
  const std::string dir = tmp.Sub("wal");
  WalOptions options;
  options.segment_size = 128 << 10;  // a cut every ~30 appends
  absl::StatusOr<std::unique_ptr<Wal>> created = Wal::Create(dir, "meta", options);
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<Wal> wal = std::move(*created);

  // Created outside the filter, so the segment preparer's thread is too: the
  // calls checked are the writer's own, the ones every append waits for.
  UnderFilter(Filter::kNoTimestamps, dir, [&] {
    raftpb::HardState state;
    state.set_term(1);
    for (uint64_t i = 1; i <= 200; ++i) {
      raftpb::Entry entry;
      entry.set_term(1);
      entry.set_index(i);
      entry.set_data(std::string(100 + i % 7 * 1000, 'x'));
      state.set_commit(i);
      bool must_sync = false;
      ASSERT_TRUE(wal->Append(state, absl::Span<const raftpb::Entry>(&entry, 1), &must_sync).ok());
      absl::Status synced = wal->Sync();
      ASSERT_TRUE(synced.ok()) << "sync " << i << ": " << synced;
    }
    EXPECT_GE(wal->locked_segments().size(), 5u) << "the appends were to cross segment cuts";
  });
  ASSERT_TRUE(wal->Close().ok());
}

}  // namespace
}  // namespace walrus
