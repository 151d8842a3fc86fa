// An LD_PRELOAD shim for the libfiu fault tests: logs every fdatasync(2) and
// fsync(2) call of the process, with the file's path and the result, to the
// file named by $WALRUS_SYNC_LOG, one line each: "fdatasync <path> <rc> <errno>",
// and every short pwrite(2) (fewer bytes written than asked, no error) as
// "pwrite <path> <bytes written> <bytes asked>", so a test of short writes
// can show that writes really were short.
//
// It goes first in LD_PRELOAD, before libfiu's posix wrappers, so it sees
// every attempt, including the ones libfiu then fails: that is how a test
// proves an fsync was not retried after it failed.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/types.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void Log(const char* call, int fd, int rc, int err) {
  const char* log = getenv("WALRUS_SYNC_LOG");
  if (log == NULL) return;
  char link[64], path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n < 0) n = 0;
  path[n] = '\0';
  char line[4200];
  int len = snprintf(line, sizeof(line), "%s %s %d %d\n", call, path, rc, err);
  // O_APPEND and one write per line: lines of concurrent calls never mix.
  int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (out < 0) return;
  ssize_t unused = write(out, line, (size_t)len);
  (void)unused;
  close(out);
}

int fdatasync(int fd) {
  static int (*next)(int) = NULL;
  if (next == NULL) next = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  int rc = next(fd);
  int err = rc == 0 ? 0 : errno;
  Log("fdatasync", fd, rc, err);
  errno = err;
  return rc;
}

int fsync(int fd) {
  static int (*next)(int) = NULL;
  if (next == NULL) next = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  int rc = next(fd);
  int err = rc == 0 ? 0 : errno;
  Log("fsync", fd, rc, err);
  errno = err;
  return rc;
}

ssize_t pwrite(int fd, const void* buf, size_t count, off_t offset) {
  static ssize_t (*next)(int, const void*, size_t, off_t) = NULL;
  if (next == NULL) next = (ssize_t(*)(int, const void*, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  ssize_t rc = next(fd, buf, count, offset);
  int err = errno;
  if (rc >= 0 && (size_t)rc < count) Log("pwrite", fd, (int)rc, (int)count);
  errno = err;
  return rc;
}
