// Thin synchronous wrappers over the generated stub, for tests.
#ifndef WALRUS_TESTS_INTEGRATION_RPC_UTIL_H_
#define WALRUS_TESTS_INTEGRATION_RPC_UTIL_H_

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "walrus.grpc.pb.h"

namespace walrus::testing {

struct ReadBack {
  grpc::Status status;
  std::string metadata;
  raftpb::HardState state;
  std::vector<raftpb::Entry> entries;
  v1::SnapshotMarker snapshot;  // the marker the read started from
  int messages = 0;
};

grpc::Status CreateWal(v1::WAL::Stub* stub, const std::string& metadata, bool* created = nullptr);
v1::AppendRequest MakeAppend(uint64_t first, uint64_t last, uint64_t term, uint64_t commit,
                             size_t data_bytes = 32, bool with_crc = true);
grpc::Status Append(v1::WAL::Stub* stub, const v1::AppendRequest& request,
                    uint64_t* last_index = nullptr);
ReadBack ReadAll(v1::WAL::Stub* stub, uint64_t snapshot_index = 0, uint64_t snapshot_term = 0,
                 uint32_t max_chunk_bytes = 0);
ReadBack ReadAll(v1::WAL::Stub* stub, const v1::ReadAllRequest& request);
v1::StatusResponse GetStatus(v1::WAL::Stub* stub);
// The snapshot catalogue (empty if the call fails).
v1::SnapshotsResponse GetSnapshots(v1::WAL::Stub* stub);
grpc::Status SaveSnapshot(v1::WAL::Stub* stub, uint64_t index, uint64_t term);

// Entry data a reader can check byte for byte: "<tag>-<index>-" padded with
// one letter to `base + index % spread` bytes.
std::string IndexedData(const std::string& tag, uint64_t index, size_t base, size_t spread);
// One append of entries first .. first+count-1 (term 1) whose data is
// IndexedData(tag, i, base, spread), with the hard state committing first-1
// and the sequence set to the last index.
v1::AppendRequest IndexedAppend(const std::string& tag, uint64_t first, uint64_t count, size_t base,
                                size_t spread);
// A loopback TCP port nobody listens on right now.
int UnusedLoopbackPort();
// GET http://127.0.0.1:port/path (plain HTTP/1.0): the body, or "" on failure.
std::string HttpGet(int port, const std::string& path);
// A count knob from the environment (at least 1), or `fallback`.
int EnvCount(const char* name, int fallback);

}  // namespace walrus::testing

#endif  // WALRUS_TESTS_INTEGRATION_RPC_UTIL_H_
