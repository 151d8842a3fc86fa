// A WalStore on the in-memory file system, as the server's tests open one.
#ifndef WALRUS_TESTS_SERVER_MEM_STORE_H_
#define WALRUS_TESTS_SERVER_MEM_STORE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "server/wal_store.h"
#include "tests/support/mem_fs.h"

namespace walrus::testing {

// Opens a WalStore with its log at /data/wal on `fs` (creating /data if
// missing). `options` may carry anything else; its fs and wal_dir are set here.
inline absl::StatusOr<std::unique_ptr<WalStore>> OpenMemStore(MemFileSystem* fs,
                                                              StoreOptions options = {}) {
  if (!fs->Exists("/data")) {
    if (absl::Status s = fs->CreateDir("/data"); !s.ok()) return s;
  }
  options.fs = fs;
  options.wal_dir = "/data/wal";
  RecoverySummary summary;
  return WalStore::Open(options, nullptr, &summary);
}

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_SERVER_MEM_STORE_H_
