// An LD_PRELOAD shim for the negative control of the power-loss loop: it
// makes walrusd skip one kind of sync, as a bug would, so the loop has
// something to catch. $WALRUS_SKIP_SYNC chooses:
//   fdatasync  fdatasync(2) of a WAL segment (a *.wal file in a directory
//              named wal, so not the first segment Create writes in wal.tmp)
//              returns 0 and does nothing: appends are acknowledged before
//              they are durable;
//   dirsync    fsync(2) of the WAL directory returns 0 and does nothing: a
//              new segment's name is not durable when appends go into it;
//   epochsync  fsync(2) of a directory holding a writer-epoch file returns 0
//              and does nothing: a Fence is acknowledged before its new
//              epoch file's name is durable.
// Every other call goes through.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int Skip(const char* mode, int fd) {
  const char* want = getenv("WALRUS_SKIP_SYNC");
  if (want == NULL || strcmp(want, mode) != 0) return 0;
  char link[64], path[4096];
  snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof(path) - 1);
  if (n < 0) return 0;
  path[n] = '\0';
  size_t len = (size_t)n;
  if (strcmp(mode, "fdatasync") == 0) {
    return len > 4 && strcmp(path + len - 4, ".wal") == 0 && strstr(path, "/wal/") != NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) return 0;
  if (strcmp(mode, "epochsync") == 0) return fstatat(fd, "writer-epoch", &st, 0) == 0;
  return len > 4 && strcmp(path + len - 4, "/wal") == 0;
}

int fdatasync(int fd) {
  static int (*next)(int) = NULL;
  if (next == NULL) next = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
  return Skip("fdatasync", fd) ? 0 : next(fd);
}

int fsync(int fd) {
  static int (*next)(int) = NULL;
  if (next == NULL) next = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
  return Skip("dirsync", fd) || Skip("epochsync", fd) ? 0 : next(fd);
}
