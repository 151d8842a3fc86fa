#include "client/status_format.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"
#include "client/progress.h"

namespace walrus {
namespace {

std::string HardStateJson(const raftpb::HardState& s) {
  return absl::StrCat("{\"term\":", s.term(), ",\"vote\":", s.vote(), ",\"commit\":", s.commit(),
                      "}");
}

// The entries a segment may hold: from what was read (offline), else from
// the names (a segment holds up to the next one's first index - 1).
std::string IndexRange(const v1::StatusResponse& s, int i) {
  const v1::SegmentStatus& seg = s.segments(i);
  if (s.offline()) {
    return seg.entries() == 0 ? "-" : absl::StrCat(seg.first_entry(), "-", seg.last_entry());
  }
  uint64_t from = std::max<uint64_t>(seg.first_index(), 1);
  uint64_t to = i + 1 < s.segments_size() ? s.segments(i + 1).first_index() : s.last_index() + 1;
  if (to == 0 || to - 1 < from) return "-";
  return absl::StrCat(from, "-", to - 1);
}

std::string SegmentState(const v1::StatusResponse& s, const v1::SegmentStatus& seg) {
  std::string state = seg.locked() ? (s.offline() ? "locked" : "held") : "released";
  if (seg.pinned()) absl::StrAppend(&state, ",pinned");
  return state;
}

}  // namespace

std::string StatusText(const v1::StatusResponse& s) {
  std::string out;
  if (s.offline()) {
    absl::StrAppendFormat(&out, "directory:    %s (read offline by walrusctl)\n", s.data_dir());
    if (!s.damage().empty()) absl::StrAppendFormat(&out, "damage:       %s\n", s.damage());
  } else {
    absl::StrAppendFormat(&out, "daemon:       walrusd %s, WAL in %s\n",
                          s.version().empty() ? "(unknown version)" : s.version(), s.data_dir());
  }
  std::string health = s.fail_stop()   ? absl::StrCat("FAIL-STOP: ", s.fail_stop_reason())
                       : s.read_only() ? "read-only"
                                       : "ok";
  if (!s.offline()) absl::StrAppendFormat(&out, "health:       %s\n", health);
  if (!s.offline()) {
    absl::StrAppendFormat(&out, "writer epoch: %d%s\n", s.writer_epoch(),
                          s.writer_epoch() == 0 ? " (never fenced)" : "");
  }
  if (!s.created()) {
    absl::StrAppend(&out, "created:      no (waiting for Create)\n");
    return out;
  }
  if (s.last_index() == 0) {
    absl::StrAppend(&out, "entries:      none\n");
  } else {
    absl::StrAppendFormat(&out, "entries:      %d to %d\n", s.first_index(), s.last_index());
  }
  absl::StrAppendFormat(&out, "hard state:   term=%d vote=%d commit=%d\n", s.hard_state().term(),
                        s.hard_state().vote(), s.hard_state().commit());
  absl::StrAppendFormat(&out, "snapshot:     index=%d term=%d\n", s.snapshot_index(),
                        s.snapshot_term());
  if (s.snapshots_size() > 0) {
    std::string markers;
    for (const v1::SnapshotMarker& m : s.snapshots()) {
      absl::StrAppend(&markers, markers.empty() ? "" : ", ", m.index(), "/", m.term());
    }
    absl::StrAppendFormat(&out, "markers:      %s (index/term)\n", markers);
  }
  absl::StrAppendFormat(&out, "%s segment %d, offset %d\n",
                        s.offline() ? "valid end:   " : "durable end: ", s.durable_segment(),
                        s.durable_offset());
  if (!s.offline()) {
    absl::StrAppendFormat(
        &out, "purge:        keeps %d released segments; %s\n", s.retain_released_segments(),
        s.purge_blocked_by().empty() ? std::string("not blocked")
                                     : absl::StrCat("BLOCKED at ", s.purge_blocked_by()));
    if (s.backups_in_progress() > 0) {
      absl::StrAppendFormat(&out, "backups:      %d in progress\n", s.backups_in_progress());
    }
  }
  absl::StrAppendFormat(&out, "size:         %d segment%s, %s\n", s.segments_size(),
                        s.segments_size() == 1 ? "" : "s", HumanBytes(s.total_bytes()));
  if (s.segments_size() > 0) {
    absl::StrAppendFormat(&out, "  %6s %23s %12s  %-15s %s\n", "seq", "entries", "bytes", "state",
                          "name");
    for (int i = 0; i < s.segments_size(); ++i) {
      const v1::SegmentStatus& seg = s.segments(i);
      absl::StrAppendFormat(&out, "  %6d %23s %12d  %-15s %s%s\n", seg.seq(), IndexRange(s, i),
                            seg.size_bytes(), SegmentState(s, seg), seg.name(),
                            seg.pinned() ? absl::StrCat(" (", seg.pinned_by(), ")") : "");
    }
  }
  return out;
}

std::string StatusJson(const v1::StatusResponse& s) {
  std::string segments;
  for (const v1::SegmentStatus& seg : s.segments()) {
    absl::StrAppend(
        &segments, segments.empty() ? "" : ",", "{\"name\":", cli::JsonQuote(seg.name()),
        ",\"seq\":", seg.seq(), ",\"first_index\":", seg.first_index(),
        ",\"size_bytes\":", seg.size_bytes(), ",\"locked\":", seg.locked() ? "true" : "false",
        ",\"pinned\":", seg.pinned() ? "true" : "false",
        ",\"pinned_by\":", cli::JsonQuote(seg.pinned_by()),
        s.offline()
            ? absl::StrCat(",\"entries\":", seg.entries(), ",\"first_entry\":", seg.first_entry(),
                           ",\"last_entry\":", seg.last_entry())
            : "",
        "}");
  }
  std::string markers;
  for (const v1::SnapshotMarker& m : s.snapshots()) {
    absl::StrAppend(&markers, markers.empty() ? "" : ",", "{\"index\":", m.index(),
                    ",\"term\":", m.term(), "}");
  }
  auto b = [](bool v) { return v ? "true" : "false"; };
  return absl::StrCat(
      "{\"created\":", b(s.created()), ",\"first_index\":", s.first_index(),
      ",\"last_index\":", s.last_index(), ",\"hard_state\":", HardStateJson(s.hard_state()),
      ",\"snapshot_index\":", s.snapshot_index(), ",\"snapshot_term\":", s.snapshot_term(),
      ",\"segments\":[", segments, "],\"total_bytes\":", s.total_bytes(),
      ",\"durable_segment\":", s.durable_segment(), ",\"durable_offset\":", s.durable_offset(),
      ",\"fail_stop\":", b(s.fail_stop()),
      ",\"fail_stop_reason\":", cli::JsonQuote(s.fail_stop_reason()),
      ",\"read_only\":", b(s.read_only()), ",\"data_dir\":", cli::JsonQuote(s.data_dir()),
      ",\"version\":", cli::JsonQuote(s.version()),
      ",\"retain_released_segments\":", s.retain_released_segments(),
      ",\"purge_blocked_by\":", cli::JsonQuote(s.purge_blocked_by()),
      ",\"backups_in_progress\":", s.backups_in_progress(), ",\"snapshots\":[", markers, "]",
      ",\"damage\":", cli::JsonQuote(s.damage()), ",\"offline\":", b(s.offline()),
      ",\"writer_epoch\":", s.writer_epoch(), "}\n");
}

}  // namespace walrus
