#include "client/status_format.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/cli.h"

namespace walrus {
namespace {

std::string Bytes(uint64_t n) {
  if (n < 10'000) return absl::StrCat(n, " B");
  if (n < 10'000'000) return absl::StrFormat("%.1f kB", n / 1e3);
  if (n < 10'000'000'000) return absl::StrFormat("%.1f MB", n / 1e6);
  return absl::StrFormat("%.1f GB", n / 1e9);
}

std::string HardStateJson(const raftpb::HardState& s) {
  return absl::StrCat("{\"term\":", s.term(), ",\"vote\":", s.vote(), ",\"commit\":", s.commit(),
                      "}");
}

}  // namespace

std::string StatusText(const v1::StatusResponse& s) {
  std::string out;
  absl::StrAppendFormat(&out, "daemon:       walrusd %s, WAL in %s\n",
                        s.version().empty() ? "(unknown version)" : s.version(), s.data_dir());
  std::string health = s.fail_stop()   ? absl::StrCat("FAIL-STOP: ", s.fail_stop_reason())
                       : s.read_only() ? "read-only"
                                       : "ok";
  absl::StrAppendFormat(&out, "health:       %s\n", health);
  absl::StrAppendFormat(&out, "writer epoch: %d%s\n", s.writer_epoch(),
                        s.writer_epoch() == 0 ? " (never fenced)" : "");
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
  absl::StrAppendFormat(&out, "durable end:  segment %d, offset %d\n", s.durable_segment(),
                        s.durable_offset());
  absl::StrAppendFormat(&out, "size:         %d segment%s, %s\n", s.segments_size(),
                        s.segments_size() == 1 ? "" : "s", Bytes(s.total_bytes()));
  if (s.segments_size() > 0) {
    absl::StrAppendFormat(&out, "  %6s %12s %12s  %-8s %s\n", "seq", "first index", "bytes",
                          "locked", "name");
    for (const v1::SegmentStatus& seg : s.segments()) {
      absl::StrAppendFormat(&out, "  %6d %12d %12d  %-8s %s\n", seg.seq(), seg.first_index(),
                            seg.size_bytes(), seg.locked() ? "yes" : "released", seg.name());
    }
  }
  return out;
}

std::string StatusJson(const v1::StatusResponse& s) {
  std::string segments;
  for (const v1::SegmentStatus& seg : s.segments()) {
    absl::StrAppend(&segments, segments.empty() ? "" : ",",
                    "{\"name\":", cli::JsonQuote(seg.name()), ",\"seq\":", seg.seq(),
                    ",\"first_index\":", seg.first_index(), ",\"size_bytes\":", seg.size_bytes(),
                    ",\"locked\":", seg.locked() ? "true" : "false", "}");
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
      ",\"version\":", cli::JsonQuote(s.version()), ",\"writer_epoch\":", s.writer_epoch(), "}\n");
}

}  // namespace walrus
