// What readers of a WalStore see: the status published after each batch, the
// plan of a backup, and ReadAll of the durable log. These run on the callers'
// threads and never wait for the committer; they read what the committer
// published under status_mu_ and the files themselves.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/log_stream.h"
#include "core/segment.h"
#include "server/wal_store.h"

namespace walrus {

void WalStore::PublishStatus() {
  std::lock_guard<std::mutex> lock(status_mu_);
  status_.created = wal_ != nullptr;
  status_.read_only = options_.read_only;
  status_.data_dir = options_.wal_dir;
  status_.version = WALRUS_VERSION;
  status_.writer_epoch = epoch_;
  if (wal_ == nullptr) return;
  // The durable view: what a restart would find.
  const LogState& log = wal_->model().synced();
  status_.first_index = log.terms.empty() ? log.newest_marker().index + 1 : log.terms.first_index();
  status_.last_index = log.last_index();
  status_.hard_state = log.hard_state;
  status_.snapshots = log.markers;
  // Ranged reads: where the durable entries are, and their terms. Entries
  // in released segments are at or below a durable marker: compacted.
  for (const EntryIndexEvent& event : wal_->TakeDurableLocations()) entry_index_.Apply(event);
  const std::vector<SegmentId> locked = wal_->locked_segments();
  if (!locked.empty()) entry_index_.DropSegmentsBefore(locked.front().seq);
  terms_ = log.terms;
  if (metrics_ != nullptr)
    metrics_->SetEntryIndex(entry_index_.size(), entry_index_.memory_bytes());
  LogPosition durable = wal_->durable_position();
  last_entry_index_ = log.terms.empty() ? 0 : log.terms.last_index();
  status_.durable = durable;
  status_.fail_stop = !wal_->failure().ok();
  status_.fail_stop_reason = std::string(wal_->failure().message());
  status_.segments.clear();
  for (const SegmentId& id : locked) {
    SegmentInfo segment;
    segment.seq = id.seq;
    segment.first_index = id.index;
    segment.locked = true;
    status_.segments.push_back(std::move(segment));
  }
}

StoreStatus WalStore::Status() const {
  StoreStatus status;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    status = status_;
  }
  // Segments from the directory, marked with what the writer holds.
  std::vector<uint64_t> locked;
  for (const SegmentInfo& s : status.segments) locked.push_back(s.seq);
  status.segments.clear();
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(options_.fs, options_.wal_dir);
  uint64_t total = 0;
  if (files.ok()) {
    for (const SegmentFile& file : *files) {
      SegmentInfo segment;
      segment.name = file.name;
      segment.seq = file.id.seq;
      segment.first_index = file.id.index;
      segment.locked = std::find(locked.begin(), locked.end(), file.id.seq) != locked.end();
      segment.pinned_by = pins_.HolderOf(file.id.seq);
      absl::StatusOr<uint64_t> size = options_.fs->FileSize(JoinPath(options_.wal_dir, file.name));
      if (size.ok()) {
        segment.size_bytes = *size;
        total += *size;
      }
      status.segments.push_back(std::move(segment));
    }
  }
  status.total_bytes = total;
  // After a purge the oldest segment left bounds what the log still holds
  // (a segment's name carries the first index it holds).
  if (status.created && files.ok() && !files->empty() &&
      files->front().id.index > status.first_index &&
      files->front().id.index <= status.last_index) {
    status.first_index = files->front().id.index;
  }
  status.retain_released_segments = options_.retain_released_segments;
  uint32_t backups = 0;
  for (const PinInfo& pin : pins_.List()) backups += pin.holder != kReadAllHolder ? 1 : 0;
  status.backups_in_progress = backups;
  status.purge_blocked_by = purger_ != nullptr ? purger_->blocked_by() : "";
  return status;
}

absl::StatusOr<BackupPlan> WalStore::BeginBackup(const std::string& holder) {
  std::optional<LogPosition> durable;
  uint64_t last_entry = 0;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (!status_.created) {
      return absl::FailedPreconditionError("WAL not created: nothing to back up");
    }
    durable = DurableLocked();
    last_entry = last_entry_index_;
  }
  if (!durable.has_value()) {
    return absl::FailedPreconditionError(
        "this walrusd has no writer (read-only), so it has no durable end to back up to; "
        "back the directory up offline: walrusctl backup DIR DEST");
  }
  return PlanBackup(options_.fs, options_.wal_dir, *durable, last_entry, &pins_, holder);
}

SnapshotCatalogue WalStore::Snapshots() const {
  SnapshotCatalogue out;
  std::lock_guard<std::mutex> lock(status_mu_);
  out.snapshots = status_.snapshots;
  out.commit = status_.hard_state.commit();
  return out;
}

absl::StatusOr<walpb::Snapshot> WalStore::CommittedSnapshot() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  if (options_.read_only) {
    return absl::FailedPreconditionError(
        "a read-only walrusd keeps no snapshot catalogue: give the marker to read from");
  }
  if (!status_.created) {
    return absl::FailedPreconditionError("WAL not created: call Create with the metadata first");
  }
  const uint64_t commit = status_.hard_state.commit();
  std::string listed;
  for (auto it = status_.snapshots.rbegin(); it != status_.snapshots.rend(); ++it) {
    if (it->index <= commit) {
      walpb::Snapshot snapshot;
      snapshot.set_index(it->index);
      snapshot.set_term(it->term);
      return snapshot;
    }
    absl::StrAppend(&listed, listed.empty() ? "" : ", ", "(", it->index, ", ", it->term, ")");
  }
  return absl::FailedPreconditionError(
      absl::StrCat("no snapshot marker at or below the durable commit ", commit,
                   " (markers: ", listed, "); read from a marker you have a snapshot for"));
}

absl::Status WalStore::StreamAll(const walpb::Snapshot& snapshot,
                                 const std::function<absl::Status(ReadAllResult&&)>& header,
                                 const std::function<absl::Status(raftpb::Entry&&)>& entry) const {
  std::optional<LogPosition> durable;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (!status_.created && !options_.read_only) {
      return absl::FailedPreconditionError("WAL not created: call Create with the metadata first");
    }
    durable = DurableLocked();
  }
  // Pin first, list second (as BeginBackup): the segments the read lists stay
  // until it is done, however slowly its client takes the entries. Without a
  // writer (read-only) nothing is purged.
  std::unique_ptr<SegmentPins::Pin> pin;
  if (durable.has_value()) pin = pins_.PinRange(0, durable->seq, kReadAllHolder);
  return StreamReadAll(options_.fs, options_.wal_dir, snapshot, durable, header, entry);
}

absl::StatusOr<ReadAllResult> WalStore::ReadAll(const walpb::Snapshot& snapshot) const {
  ReadAllResult out;
  std::vector<raftpb::Entry> entries;
  absl::Status s = StreamAll(
      snapshot,
      [&](ReadAllResult&& result) {
        out = std::move(result);
        return absl::OkStatus();
      },
      [&](raftpb::Entry&& e) {
        entries.push_back(std::move(e));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  out.entries = std::move(entries);
  return out;
}

}  // namespace walrus
