#include "server/wire_convert.h"

namespace walrus {
namespace {

void MarkerToWire(const SnapshotMarker& marker, v1::SnapshotMarker* out) {
  out->set_index(marker.index);
  out->set_term(marker.term);
}

}  // namespace

LogAppend TakeAppend(v1::AppendRequest* request) {
  LogAppend append;
  append.bytes = request->ByteSizeLong();
  append.epoch = request->epoch();
  append.hard_state.Swap(request->mutable_hard_state());
  append.entries.Swap(request->mutable_entries());
  append.entry_crc32c.Swap(request->mutable_entry_crc32c());
  return append;
}

void StatusToWire(const StoreStatus& status, v1::StatusResponse* out) {
  out->set_created(status.created);
  out->set_read_only(status.read_only);
  out->set_data_dir(status.data_dir);
  out->set_version(status.version);
  out->set_writer_epoch(status.writer_epoch);
  out->set_first_index(status.first_index);
  out->set_last_index(status.last_index);
  *out->mutable_hard_state() = status.hard_state;
  const SnapshotMarker newest = status.newest_snapshot();
  out->set_snapshot_index(newest.index);
  out->set_snapshot_term(newest.term);
  for (const SnapshotMarker& marker : status.snapshots) MarkerToWire(marker, out->add_snapshots());
  out->set_durable_segment(status.durable.seq);
  out->set_durable_offset(status.durable.offset);
  out->set_fail_stop(status.fail_stop);
  out->set_fail_stop_reason(status.fail_stop_reason);
  for (const SegmentInfo& segment : status.segments) {
    v1::SegmentStatus* s = out->add_segments();
    s->set_name(segment.name);
    s->set_seq(segment.seq);
    s->set_first_index(segment.first_index);
    s->set_size_bytes(segment.size_bytes);
    s->set_locked(segment.locked);
    if (segment.pinned_by.has_value()) {
      s->set_pinned(true);
      s->set_pinned_by(*segment.pinned_by);
    }
  }
  out->set_total_bytes(status.total_bytes);
  out->set_retain_released_segments(status.retain_released_segments);
  out->set_purge_blocked_by(status.purge_blocked_by);
  out->set_backups_in_progress(status.backups_in_progress);
}

void SnapshotsToWire(const SnapshotCatalogue& catalogue, v1::SnapshotsResponse* out) {
  for (const SnapshotMarker& marker : catalogue.snapshots) {
    MarkerToWire(marker, out->add_snapshots());
  }
  out->set_commit(catalogue.commit);
}

}  // namespace walrus
