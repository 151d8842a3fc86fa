#include "tests/integration/rpc_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

void SetDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
}

}  // namespace

grpc::Status CreateWal(v1::WAL::Stub* stub, const std::string& metadata, bool* created) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::CreateRequest request;
  request.set_metadata(metadata);
  v1::CreateResponse response;
  grpc::Status status = stub->Create(&context, request, &response);
  if (created != nullptr) *created = response.created();
  return status;
}

v1::AppendRequest MakeAppend(uint64_t first, uint64_t last, uint64_t term, uint64_t commit,
                             size_t data_bytes, bool with_crc) {
  v1::AppendRequest request;
  *request.mutable_hard_state() = MakeState(term, 1, commit);
  if (last >= first) {
    for (raftpb::Entry& e : MakeEntries(first, last, term, data_bytes)) {
      if (with_crc) request.add_entry_crc32c(crc32c::Value(e.data()));
      *request.add_entries() = std::move(e);
    }
  }
  return request;
}

grpc::Status Append(v1::WAL::Stub* stub, const v1::AppendRequest& request, uint64_t* last_index) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::AppendResponse response;
  grpc::Status status = stub->Append(&context, request, &response);
  if (last_index != nullptr) *last_index = response.last_index();
  return status;
}

ReadBack ReadAll(v1::WAL::Stub* stub, uint64_t snapshot_index, uint64_t snapshot_term,
                 uint32_t max_chunk_bytes) {
  v1::ReadAllRequest request;
  request.set_snapshot_index(snapshot_index);
  request.set_snapshot_term(snapshot_term);
  request.set_max_chunk_bytes(max_chunk_bytes);
  return ReadAll(stub, request);
}

ReadBack ReadAll(v1::WAL::Stub* stub, const v1::ReadAllRequest& request) {
  ReadBack out;
  grpc::ClientContext context;
  SetDeadline(&context);
  auto reader = stub->ReadAll(&context, request);
  v1::ReadAllResponse response;
  while (reader->Read(&response)) {
    ++out.messages;
    if (response.has_header()) {
      out.metadata = response.metadata();
      out.state = response.hard_state();
      out.snapshot = response.snapshot();
    }
    for (raftpb::Entry& e : *response.mutable_entries()) out.entries.push_back(std::move(e));
  }
  out.status = reader->Finish();
  return out;
}

v1::SnapshotsResponse GetSnapshots(v1::WAL::Stub* stub) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::SnapshotsResponse response;
  (void)stub->Snapshots(&context, v1::SnapshotsRequest(), &response);
  return response;
}

v1::StatusResponse GetStatus(v1::WAL::Stub* stub) {
  grpc::ClientContext context;
  SetDeadline(&context);
  v1::StatusResponse response;
  (void)stub->Status(&context, v1::StatusRequest(), &response);
  return response;
}

std::string IndexedData(const std::string& tag, uint64_t index, size_t base, size_t spread) {
  std::string data = tag + "-" + std::to_string(index) + "-";
  data.resize(base + index % spread, static_cast<char>('a' + index % 26));
  return data;
}

v1::AppendRequest IndexedAppend(const std::string& tag, uint64_t first, uint64_t count, size_t base,
                                size_t spread) {
  v1::AppendRequest request;
  *request.mutable_hard_state() = MakeState(1, 1, first - 1);
  for (uint64_t i = first; i < first + count; ++i) {
    *request.add_entries() = MakeEntry(i, 1, IndexedData(tag, i, base, spread));
  }
  request.set_sequence(first + count - 1);
  return request;
}

int EnvCount(const char* name, int fallback) {
  const char* env = std::getenv(name);
  return env != nullptr ? std::max(1, std::atoi(env)) : fallback;
}

grpc::Status SaveSnapshot(v1::WAL::Stub* stub, uint64_t index, uint64_t term) {
  grpc::ClientContext context;
  v1::SaveSnapshotRequest request;
  request.set_index(index);
  request.set_term(term);
  v1::SaveSnapshotResponse response;
  return stub->SaveSnapshot(&context, request, &response);
}

// GET http://127.0.0.1:port/path; the body, or "" on failure.
int UnusedLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  (void)!write(fd, request.data(), request.size());
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  close(fd);
  size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

}  // namespace walrus::testing
