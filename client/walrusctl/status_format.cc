#include "client/walrusctl/status_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli/cli.h"
#include "client/walrusctl/progress.h"
#include "walrus.pb.h"

namespace walrus {

StatusView DaemonStatusView(const v1::StatusResponse& s) {
  StatusView view;
  view.created = s.created();
  view.data_dir = s.data_dir();
  view.first_index = s.first_index();
  view.last_index = s.last_index();
  view.hard_state = s.hard_state();
  view.snapshot_index = s.snapshot_index();
  view.snapshot_term = s.snapshot_term();
  for (const v1::SnapshotMarker& m : s.snapshots()) {
    view.snapshots.push_back({.index = m.index(), .term = m.term()});
  }
  for (const v1::SegmentStatus& seg : s.segments()) {
    StatusView::Segment& segment = view.segments.emplace_back();
    segment.name = seg.name();
    segment.seq = seg.seq();
    segment.first_index = seg.first_index();
    segment.size_bytes = seg.size_bytes();
    segment.locked = seg.locked();
    segment.pinned = seg.pinned();
    segment.pinned_by = seg.pinned_by();
  }
  view.total_bytes = s.total_bytes();
  view.durable_segment = s.durable_segment();
  view.durable_offset = s.durable_offset();
  view.version = s.version();
  view.fail_stop = s.fail_stop();
  view.fail_stop_reason = s.fail_stop_reason();
  view.read_only = s.read_only();
  view.writer_epoch = s.writer_epoch();
  view.retain_released_segments = s.retain_released_segments();
  view.purge_blocked_by = s.purge_blocked_by();
  view.backups_in_progress = s.backups_in_progress();
  return view;
}

StatusView DirStatusView(const DirInspection& d) {
  StatusView view;
  view.offline = true;
  view.created = true;  // segments exist
  view.data_dir = d.dir;
  view.first_index = d.first_index;
  view.last_index = d.last_index;
  view.hard_state = d.hard_state;
  view.snapshot_index = d.last_snapshot().index;
  view.snapshot_term = d.last_snapshot().term;
  view.snapshots = d.snapshots;
  for (const SegmentInspection& seg : d.segments) {
    StatusView::Segment& segment = view.segments.emplace_back();
    segment.name = seg.name;
    segment.seq = seg.seq;
    segment.first_index = seg.first_index;
    segment.size_bytes = seg.size_bytes;
    segment.locked = seg.locked;
    segment.entries = seg.entries;
    segment.first_entry = seg.first_entry;
    segment.last_entry = seg.last_entry;
  }
  view.total_bytes = d.total_bytes;
  view.durable_segment = d.end.seq;
  view.durable_offset = d.end.offset;
  if (d.damage.kind != LogDamage::kNone) view.damage = d.damage.Describe();
  return view;
}

namespace {

// The entries a segment may hold: from what was read (offline), else from
// the names (a segment holds up to the next one's first index - 1).
std::string IndexRange(const StatusView& s, size_t i) {
  const StatusView::Segment& seg = s.segments[i];
  if (s.offline) {
    return seg.entries == 0 ? "-" : absl::StrCat(seg.first_entry, "-", seg.last_entry);
  }
  uint64_t from = std::max<uint64_t>(seg.first_index, 1);
  uint64_t to = i + 1 < s.segments.size() ? s.segments[i + 1].first_index : s.last_index + 1;
  if (to == 0 || to - 1 < from) return "-";
  return absl::StrCat(from, "-", to - 1);
}

std::string SegmentState(const StatusView& s, const StatusView::Segment& seg) {
  std::string state = seg.locked ? (s.offline ? "locked" : "held") : "released";
  if (seg.pinned) absl::StrAppend(&state, ",pinned");
  return state;
}

std::string SegmentJson(const StatusView& s, const StatusView::Segment& seg) {
  cli::JsonObject json;
  json.String("name", seg.name)
      .Number("seq", seg.seq)
      .Number("first_index", seg.first_index)
      .Number("size_bytes", seg.size_bytes)
      .Bool("locked", seg.locked)
      .Bool("pinned", seg.pinned)
      .String("pinned_by", seg.pinned_by);
  if (s.offline) {
    json.Number("entries", seg.entries)
        .Number("first_entry", seg.first_entry)
        .Number("last_entry", seg.last_entry);
  }
  return json.Build();
}

}  // namespace

std::string StatusText(const StatusView& s) {
  std::string out;
  if (s.offline) {
    absl::StrAppendFormat(&out, "directory:    %s (read offline by walrusctl)\n", s.data_dir);
    if (!s.damage.empty()) absl::StrAppendFormat(&out, "damage:       %s\n", s.damage);
  } else {
    absl::StrAppendFormat(&out, "daemon:       walrusd %s, WAL in %s\n",
                          s.version.empty() ? "(unknown version)" : s.version, s.data_dir);
    std::string health = s.fail_stop   ? absl::StrCat("FAIL-STOP: ", s.fail_stop_reason)
                         : s.read_only ? "read-only"
                                       : "ok";
    absl::StrAppendFormat(&out, "health:       %s\n", health);
    absl::StrAppendFormat(&out, "writer epoch: %d%s\n", s.writer_epoch,
                          s.writer_epoch == 0 ? " (never fenced)" : "");
  }
  if (!s.created) {
    absl::StrAppend(&out, "created:      no (waiting for Create)\n");
    return out;
  }
  if (s.last_index == 0) {
    absl::StrAppend(&out, "entries:      none\n");
  } else {
    absl::StrAppendFormat(&out, "entries:      %d to %d\n", s.first_index, s.last_index);
  }
  absl::StrAppendFormat(&out, "hard state:   term=%d vote=%d commit=%d\n", s.hard_state.term(),
                        s.hard_state.vote(), s.hard_state.commit());
  absl::StrAppendFormat(&out, "snapshot:     index=%d term=%d\n", s.snapshot_index,
                        s.snapshot_term);
  if (!s.snapshots.empty()) {
    std::string markers;
    for (const SnapshotMarker& m : s.snapshots) {
      absl::StrAppend(&markers, markers.empty() ? "" : ", ", m.index, "/", m.term);
    }
    absl::StrAppendFormat(&out, "markers:      %s (index/term)\n", markers);
  }
  absl::StrAppendFormat(&out, "%s segment %d, offset %d\n",
                        s.offline ? "valid end:   " : "durable end: ", s.durable_segment,
                        s.durable_offset);
  if (!s.offline) {
    absl::StrAppendFormat(
        &out, "purge:        keeps %d released segments; %s\n", s.retain_released_segments,
        s.purge_blocked_by.empty() ? std::string("not blocked")
                                   : absl::StrCat("BLOCKED at ", s.purge_blocked_by));
    if (s.backups_in_progress > 0) {
      absl::StrAppendFormat(&out, "backups:      %d in progress\n", s.backups_in_progress);
    }
  }
  absl::StrAppendFormat(&out, "size:         %d segment%s, %s\n", s.segments.size(),
                        s.segments.size() == 1 ? "" : "s", HumanBytes(s.total_bytes));
  if (!s.segments.empty()) {
    absl::StrAppendFormat(&out, "  %6s %23s %12s  %-15s %s\n", "seq", "entries", "bytes", "state",
                          "name");
    for (size_t i = 0; i < s.segments.size(); ++i) {
      const StatusView::Segment& seg = s.segments[i];
      absl::StrAppendFormat(&out, "  %6d %23s %12d  %-15s %s%s\n", seg.seq, IndexRange(s, i),
                            seg.size_bytes, SegmentState(s, seg), seg.name,
                            seg.pinned ? absl::StrCat(" (", seg.pinned_by, ")") : "");
    }
  }
  return out;
}

std::string StatusJson(const StatusView& s) {
  std::vector<std::string> segments;
  for (const StatusView::Segment& seg : s.segments) segments.push_back(SegmentJson(s, seg));
  std::vector<std::string> markers;
  for (const SnapshotMarker& m : s.snapshots) {
    markers.push_back(cli::JsonObject().Number("index", m.index).Number("term", m.term).Build());
  }
  const std::string hard_state = cli::JsonObject()
                                     .Number("term", s.hard_state.term())
                                     .Number("vote", s.hard_state.vote())
                                     .Number("commit", s.hard_state.commit())
                                     .Build();
  return cli::JsonObject()
             .Bool("created", s.created)
             .Number("first_index", s.first_index)
             .Number("last_index", s.last_index)
             .Raw("hard_state", hard_state)
             .Number("snapshot_index", s.snapshot_index)
             .Number("snapshot_term", s.snapshot_term)
             .Raw("segments", cli::JsonArray(segments))
             .Number("total_bytes", s.total_bytes)
             .Number("durable_segment", s.durable_segment)
             .Number("durable_offset", s.durable_offset)
             .Bool("fail_stop", s.fail_stop)
             .String("fail_stop_reason", s.fail_stop_reason)
             .Bool("read_only", s.read_only)
             .String("data_dir", s.data_dir)
             .String("version", s.version)
             .Number("retain_released_segments", s.retain_released_segments)
             .String("purge_blocked_by", s.purge_blocked_by)
             .Number("backups_in_progress", s.backups_in_progress)
             .Raw("snapshots", cli::JsonArray(markers))
             .String("damage", s.damage)
             .Bool("offline", s.offline)
             .Number("writer_epoch", s.writer_epoch)
             .Build() +
         "\n";
}

}  // namespace walrus
