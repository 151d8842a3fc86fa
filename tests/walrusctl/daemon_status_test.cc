// `walrusctl status` on a daemon: the view of its answer, printed as JSON
// and as text.
#include <gtest/gtest.h>

#include <string>

#include "client/walrusctl/status_format.h"
#include "walrus.pb.h"

namespace walrus {
namespace {

TEST(StatusJson, EveryFieldPresent_NumbersAsNumbers_StringsEscaped) {
  v1::StatusResponse s;
  s.set_created(true);
  s.set_first_index(1);
  s.set_last_index(18446744073709551615ull);
  s.mutable_hard_state()->set_term(2);
  s.mutable_hard_state()->set_vote(1);
  s.mutable_hard_state()->set_commit(9);
  v1::SegmentStatus* seg = s.add_segments();
  seg->set_name("0000000000000000-0000000000000000.wal");
  seg->set_size_bytes(64);
  seg->set_locked(true);
  s.set_fail_stop_reason("disk \"sdb\"\n");
  s.set_data_dir("/d");
  EXPECT_EQ(StatusJson(DaemonStatusView(s)),
            "{\"created\":true,\"first_index\":1,\"last_index\":18446744073709551615,"
            "\"hard_state\":{\"term\":2,\"vote\":1,\"commit\":9},\"snapshot_index\":0,"
            "\"snapshot_term\":0,\"segments\":[{\"name\":\"0000000000000000-0000000000000000.wal\","
            "\"seq\":0,\"first_index\":0,\"size_bytes\":64,\"locked\":true,\"pinned\":false,"
            "\"pinned_by\":\"\"}],\"total_bytes\":0,"
            "\"durable_segment\":0,\"durable_offset\":0,\"fail_stop\":false,"
            "\"fail_stop_reason\":\"disk \\\"sdb\\\"\\n\",\"read_only\":false,\"data_dir\":\"/d\","
            "\"version\":\"\",\"retain_released_segments\":0,\"purge_blocked_by\":\"\","
            "\"backups_in_progress\":0,\"snapshots\":[],\"damage\":\"\",\"offline\":false,"
            "\"writer_epoch\":0}\n");
}

TEST(StatusText, NotCreated_SaysItWaitsForCreate) {
  std::string text = StatusText(DaemonStatusView(v1::StatusResponse()));
  EXPECT_NE(text.find("waiting for Create"), std::string::npos) << text;
}

// Every member of the daemon's answer reaches the view; the offline-only
// ones stay empty.
TEST(DaemonStatusView, CopiesEveryWireField) {
  v1::StatusResponse s;
  s.set_created(true);
  s.set_first_index(3);
  s.set_last_index(9);
  s.mutable_hard_state()->set_commit(8);
  s.set_snapshot_index(2);
  s.set_snapshot_term(1);
  v1::SnapshotMarker* marker = s.add_snapshots();
  marker->set_index(2);
  marker->set_term(1);
  v1::SegmentStatus* seg = s.add_segments();
  seg->set_name("n");
  seg->set_seq(4);
  seg->set_first_index(3);
  seg->set_size_bytes(64);
  seg->set_locked(true);
  seg->set_pinned(true);
  seg->set_pinned_by("backup #1");
  s.set_total_bytes(128);
  s.set_durable_segment(4);
  s.set_durable_offset(60);
  s.set_fail_stop(true);
  s.set_fail_stop_reason("EIO");
  s.set_read_only(true);
  s.set_data_dir("/d");
  s.set_version("1.2");
  s.set_writer_epoch(7);
  s.set_retain_released_segments(5);
  s.set_purge_blocked_by("pinned");
  s.set_backups_in_progress(1);
  StatusView view = DaemonStatusView(s);
  EXPECT_FALSE(view.offline);
  EXPECT_TRUE(view.damage.empty());
  EXPECT_EQ(StatusJson(view),
            "{\"created\":true,\"first_index\":3,\"last_index\":9,"
            "\"hard_state\":{\"term\":0,\"vote\":0,\"commit\":8},\"snapshot_index\":2,"
            "\"snapshot_term\":1,\"segments\":[{\"name\":\"n\",\"seq\":4,\"first_index\":3,"
            "\"size_bytes\":64,\"locked\":true,\"pinned\":true,\"pinned_by\":\"backup #1\"}],"
            "\"total_bytes\":128,\"durable_segment\":4,\"durable_offset\":60,"
            "\"fail_stop\":true,\"fail_stop_reason\":\"EIO\",\"read_only\":true,"
            "\"data_dir\":\"/d\",\"version\":\"1.2\",\"retain_released_segments\":5,"
            "\"purge_blocked_by\":\"pinned\",\"backups_in_progress\":1,"
            "\"snapshots\":[{\"index\":2,\"term\":1}],\"damage\":\"\",\"offline\":false,"
            "\"writer_epoch\":7}\n");
}

}  // namespace
}  // namespace walrus
