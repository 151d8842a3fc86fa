#include "client/bench/bench_log.h"

#include <algorithm>
#include <cstring>
#include <random>

#include "absl/strings/str_cat.h"

namespace walrus {

absl::StatusOr<BenchStart> PrepareLog(WalClient* client, absl::string_view metadata) {
  BenchStart start;
  absl::StatusOr<bool> created = client->Create(metadata);
  if (!created.ok() && created.status().code() != absl::StatusCode::kFailedPrecondition) {
    return absl::Status(created.status().code(),
                        absl::StrCat("Create: ", created.status().message()));
  }
  absl::StatusOr<v1::StatusResponse> status = client->Status();
  if (!status.ok()) {
    return absl::Status(status.status().code(),
                        absl::StrCat("Status: ", status.status().message()));
  }
  if (status->fail_stop()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the daemon is fail-stop: ", status->fail_stop_reason()));
  }
  if (status->read_only()) return absl::FailedPreconditionError("the daemon is read-only");
  if (!created.ok()) {
    if (!status->created()) {
      return absl::FailedPreconditionError(absl::StrCat("Create: ", created.status().message()));
    }
    absl::StrAppend(&start.note, "the WAL exists with other metadata; continuing its log. ");
  }
  start.first_index = std::max(status->last_index(), status->snapshot_index()) + 1;
  start.term = std::max<uint64_t>(status->hard_state().term(), 1);
  if (status->hard_state().term() == 0) {
    raftpb::HardState state;
    state.set_term(start.term);
    absl::StatusOr<uint64_t> appended = client->Append(state, {});
    if (!appended.ok()) {
      return absl::Status(appended.status().code(), absl::StrCat("saving hard state {term 1}: ",
                                                                 appended.status().message()));
    }
  }
  if (start.first_index > 1) {
    absl::StrAppend(&start.note, "continuing the log after index ", start.first_index - 1,
                    " in term ", start.term, ".");
  }
  return start;
}

BenchLog::BenchLog(uint64_t first_index, uint64_t term, uint64_t entries_per_append,
                   uint64_t entry_bytes)
    : term_(term),
      entries_per_append_(entries_per_append),
      next_(first_index),
      acknowledged_(first_index - 1) {
  std::mt19937_64 rng(42);
  payload_.resize(entry_bytes);
  for (char& c : payload_) c = static_cast<char>(rng());
}

v1::AppendRequest BenchLog::Build(uint64_t first, uint64_t last) const {
  v1::AppendRequest request;
  request.mutable_entries()->Reserve(static_cast<int>(last - first + 1));
  for (uint64_t index = first; index <= last; ++index) {
    raftpb::Entry* entry = request.add_entries();
    entry->set_term(term_);
    entry->set_index(index);
    entry->set_type(raftpb::EntryNormal);
    std::string* data = entry->mutable_data();
    *data = payload_;
    std::memcpy(data->data(), &index, std::min(sizeof index, data->size()));
  }
  return request;
}

void BenchLog::Acknowledged(uint64_t last_index) {
  uint64_t seen = acknowledged_.load();
  while (last_index > seen && !acknowledged_.compare_exchange_weak(seen, last_index)) {
  }
}

}  // namespace walrus
