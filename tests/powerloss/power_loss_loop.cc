#include "tests/powerloss/power_loss_loop.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "tests/integration/daemon.h"
#include "tests/integration/rpc_util.h"
#include "tests/powerloss/lossy_mount.h"
#include "tests/support/test_util.h"

namespace walrus::testing {
namespace {

constexpr int kStreams = 3;

std::string DataFor(uint64_t index) { return IndexedData("powerloss", index, 64, 160); }

// The term each index was appended with: a round appends from its first
// index on with its own term.
class TermTable {
 public:
  void StartRound(uint64_t first_index, uint64_t term) { starts_[first_index] = term; }
  uint64_t TermOf(uint64_t index) const {
    auto it = starts_.upper_bound(index);
    return it == starts_.begin() ? 0 : std::prev(it)->second;
  }

 private:
  std::map<uint64_t, uint64_t> starts_;
};

// What the round's clients share, and what was acknowledged.
struct RoundState {
  std::mutex mu;
  uint64_t next = 0;                       // the next index no append has carried yet
  uint64_t acked = 0;                      // every index up to here is acknowledged durable
  uint64_t acked_commit = 0;               // the highest commit of an acknowledged append
  uint64_t snap_index = 0, snap_term = 0;  // the last acknowledged snapshot marker
  uint64_t acked_epoch = 0;                // the newest epoch a Fence returned
  int snapshots = 0;
  int fences = 0;
  uint64_t released = 0;
  std::condition_variable acked_cv;  // notified when `acked` grows
  std::atomic<uint64_t> epoch{0};    // the epoch writers use from now on
  std::atomic<bool> stop{false};
};

ClientOptions FastFailing() {
  ClientOptions options;
  options.retry.max_attempts = 1;  // the daemon is killed under the clients
  options.call_timeout = std::chrono::milliseconds(10'000);
  return options;
}

// Whether a failure is the fencer's doing (a newer epoch than `used`), so the
// writer should carry on with the new one.
bool FencedOut(const absl::Status& status, uint64_t used, const RoundState& round) {
  return status.code() == absl::StatusCode::kFailedPrecondition && used < round.epoch.load() &&
         !round.stop;
}

void AppendLoop(const std::string& target, uint64_t term, uint64_t seed, RoundState* round) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target, FastFailing());
  if (!client.ok()) return;
  std::mt19937_64 rng(seed);
  absl::Status ended;
  uint64_t epoch = 0;
  do {
    // One stream per writer epoch: a Fence refuses the rest of the old one.
    std::mutex pending_mu;
    std::map<uint64_t, std::pair<uint64_t, uint64_t>> pending;  // sequence -> [lo, hi]
    AppendStreamOptions options;
    options.window = 8;
    options.epoch = epoch = round->epoch.load();
    options.on_ack = [&](const AppendAck& ack) {
      std::pair<uint64_t, uint64_t> range;
      {
        std::lock_guard<std::mutex> lock(pending_mu);
        range = pending[ack.sequence];
        pending.erase(ack.sequence);
      }
      std::lock_guard<std::mutex> lock(round->mu);
      round->acked = std::max(round->acked, range.second);
      round->acked_commit = std::max(round->acked_commit, range.first - 1);
      round->acked_cv.notify_all();
    };
    std::unique_ptr<AppendStream> stream = (*client)->OpenAppendStream(options);
    while (!round->stop) {
      uint64_t lo, hi;
      {
        std::lock_guard<std::mutex> lock(round->mu);
        lo = round->acked + 1;
        hi = round->next + rng() % 4;
        round->next = hi + 1;
      }
      v1::AppendRequest request;
      *request.mutable_hard_state() = MakeState(term, 1, lo - 1);
      for (uint64_t i = lo; i <= hi; ++i) *request.add_entries() = MakeEntry(i, term, DataFor(i));
      {
        // Before Send: the acknowledgement may arrive before Send returns.
        std::lock_guard<std::mutex> lock(pending_mu);
        pending[stream->sent() + 1] = {lo, hi};
      }
      absl::StatusOr<uint64_t> sent = stream->Send(std::move(request));
      if (!sent.ok()) {
        ended = sent.status();
        break;
      }
    }
    stream->Cancel();
  } while (FencedOut(ended, epoch, *round));
}

void SnapshotLoop(const std::string& target, const TermTable& terms, uint64_t seed,
                  RoundState* round) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target, FastFailing());
  if (!client.ok()) return;
  std::mt19937_64 rng(seed);
  while (!round->stop) {
    // Pacing only: snapshots every few milliseconds, not a synchronisation.
    std::this_thread::sleep_for(std::chrono::milliseconds(5 + rng() % 20));
    (*client)->set_epoch(round->epoch.load());
    uint64_t index;
    {
      std::lock_guard<std::mutex> lock(round->mu);
      index = round->acked;
      if (index <= round->snap_index) continue;
    }
    uint64_t term = terms.TermOf(index);
    if (absl::Status s = (*client)->SaveSnapshot(index, term); !s.ok()) {
      if (FencedOut(s, (*client)->epoch(), *round)) continue;
      return;
    }
    {
      std::lock_guard<std::mutex> lock(round->mu);
      round->snap_index = index;
      round->snap_term = term;
      ++round->snapshots;
    }
    absl::StatusOr<WalClient::Released> released = (*client)->ReleaseTo(index);
    if (!released.ok()) {
      if (FencedOut(released.status(), (*client)->epoch(), *round)) continue;
      return;
    }
    std::lock_guard<std::mutex> lock(round->mu);
    round->released += released->segments;
  }
}

// A new writer now and then, as after a leader change: the writers above
// carry on with the new epoch.
void FenceLoop(const std::string& target, uint64_t seed, RoundState* round) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target, FastFailing());
  if (!client.ok()) return;
  std::mt19937_64 rng(seed);
  while (!round->stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 60));  // pacing
    absl::StatusOr<uint64_t> epoch = (*client)->Fence();
    if (!epoch.ok()) return;
    std::lock_guard<std::mutex> lock(round->mu);
    round->acked_epoch = std::max(round->acked_epoch, *epoch);
    round->epoch = std::max(round->epoch.load(), *epoch);
    ++round->fences;
  }
}

// "name size, ..." of the files in `dir` (for a report of the disk state).
std::string Listing(const std::string& dir) {
  std::string out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    absl::StrAppend(&out, out.empty() ? "" : ", ", e.path().filename().string());
    if (e.is_regular_file()) absl::StrAppend(&out, " ", e.file_size(ec));
  }
  return ec ? absl::StrCat("(cannot list ", dir, ")") : out;
}

std::string Tail(const std::string& text, size_t n = 4000) {
  return text.size() <= n ? text : "..." + text.substr(text.size() - n);
}

std::string ReadLog(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// What the restarted daemon must hold; empty if it does.
struct Expected {
  uint64_t epoch = 0;
  uint64_t acked = 0, acked_commit = 0, term = 0;
  uint64_t snap_index = 0, snap_term = 0;
};

std::string CheckRecovered(const std::string& target, const Expected& want, const TermTable& terms,
                           uint64_t* log_last) {
  absl::StatusOr<std::unique_ptr<WalClient>> client = WalClient::Connect(target);
  if (!client.ok()) return absl::StrCat("connect: ", client.status().ToString());
  absl::StatusOr<v1::StatusResponse> status = (*client)->Status();
  if (!status.ok()) return absl::StrCat("Status: ", status.status().ToString());
  if (status->writer_epoch() < want.epoch) {
    return absl::StrCat("writer epoch ", want.epoch, " was acknowledged, the daemon has ",
                        status->writer_epoch());
  }
  absl::StatusOr<ReadAllReply> read = (*client)->ReadAll(want.snap_index, want.snap_term);
  if (!read.ok()) {
    return absl::StrCat("ReadAll from the acknowledged snapshot marker (", want.snap_index, ", ",
                        want.snap_term, "): ", read.status().ToString());
  }
  uint64_t expect = want.snap_index + 1;
  for (const raftpb::Entry& e : read->entries) {
    if (e.index() != expect) {
      return absl::StrCat("entry ", expect, " expected, got ", e.index());
    }
    if (e.term() != terms.TermOf(e.index()) || e.data() != DataFor(e.index())) {
      return absl::StrCat("entry ", e.index(), " has term ", e.term(), " and ", e.data().size(),
                          " bytes of other data (want term ", terms.TermOf(e.index()), ")");
    }
    ++expect;
  }
  *log_last = expect - 1;
  if (*log_last < want.acked) {
    return absl::StrCat("acknowledged entries lost: ", want.acked,
                        " acknowledged, the log ends at ", *log_last);
  }
  const raftpb::HardState& state = read->state;
  if (state.term() != want.term || state.vote() != 1 || state.commit() < want.acked_commit) {
    return absl::StrCat("hard state (term ", state.term(), ", vote ", state.vote(), ", commit ",
                        state.commit(), "): want term ", want.term,
                        ", vote 1, commit >= ", want.acked_commit);
  }
  return "";
}

}  // namespace

PowerLossReport RunPowerLossLoop(const PowerLossOptions& options) {
  PowerLossReport report;
  auto started = std::chrono::steady_clock::now();
  const std::string backing = options.work_dir + "/image";
  const std::string mnt = options.work_dir + "/mnt";
  mkdir(backing.c_str(), 0700);
  mkdir(mnt.c_str(), 0700);
  LossyMount mount(backing, mnt, options.work_dir + "/lossy-fs.log");
  if (!mount.Mount(&report.error)) return report;
  // The data directory exists before walrusd starts, durably (an operator's
  // or the orchestrator's job, not walrusd's).
  const std::string data = mnt + "/data";
  if (mkdir(data.c_str(), 0700) != 0 || !SyncPath(mnt)) {
    report.error = "cannot create " + data;
    return report;
  }
  const int metrics_port = UnusedLoopbackPort();
  // Batches here are 0.1-4 KiB: with this threshold some are written direct
  // and some buffered, and a cut finds either unsynced.
  Daemon daemon(
      data, {"--segment-size-bytes", "65536", "--retain-released-segments", "0", "--metrics-listen",
             absl::StrCat("127.0.0.1:", metrics_port), "--direct-io-min-bytes", "1024"});
  daemon.set_log_path(options.work_dir + "/walrusd.log");
  daemon.set_command_prefix(options.daemon_prefix);
  if (!daemon.Start() || !CreateWal(daemon.stub(), "powerloss").ok()) {
    report.error = "first start failed:\n" + Tail(daemon.log());
    return report;
  }
  report.direct_io =
      HttpGet(metrics_port, "/metrics").find("walrus_wal_direct_io 1") != std::string::npos;

  std::mt19937_64 rng(options.seed);
  TermTable terms;
  Expected want;
  uint64_t log_last = 0;
  report.fewest_acked_in_a_round = UINT64_MAX;
  int cut = 0;
  auto seconds = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  auto fail = [&](std::string error) {
    report.error = absl::StrCat("cut ", cut + 1, ": ", error);
    report.seconds = seconds();
    return report;
  };
  for (; cut < options.cuts; ++cut) {
    absl::StatusOr<std::unique_ptr<WalClient>> fencer =
        WalClient::Connect(daemon.target(), FastFailing());
    absl::StatusOr<uint64_t> epoch =
        fencer.ok() ? (*fencer)->Fence() : absl::StatusOr<uint64_t>(fencer.status());
    if (!epoch.ok()) return fail("Fence: " + epoch.status().ToString());
    want.epoch = *epoch;
    ++report.fences;
    want.term = static_cast<uint64_t>(cut) + 1;
    const uint64_t first = log_last + 1;
    terms.StartRound(first, want.term);
    RoundState round;
    round.next = first;
    round.acked = log_last;
    round.snap_index = want.snap_index;
    round.snap_term = want.snap_term;
    round.epoch = round.acked_epoch = want.epoch;
    std::vector<std::thread> clients;
    for (int s = 0; s < kStreams; ++s) {
      clients.emplace_back(AppendLoop, daemon.target(), want.term, rng(), &round);
    }
    clients.emplace_back(SnapshotLoop, daemon.target(), std::cref(terms), rng(), &round);
    clients.emplace_back(FenceLoop, daemon.target(), rng(), &round);
    // Wait for the round's first acknowledgement, then cut at a random
    // moment (the sleep picks the moment; it synchronises nothing).
    bool progress;
    {
      std::unique_lock<std::mutex> lock(round.mu);
      progress = round.acked_cv.wait_for(lock, std::chrono::seconds(30),
                                         [&] { return round.acked >= first; });
    }
    if (progress) std::this_thread::sleep_for(std::chrono::milliseconds(rng() % 150));
    daemon.Kill9();
    round.stop = true;
    for (std::thread& t : clients) t.join();
    if (daemon.running()) return fail("walrusd survived kill -9 for 10 s");
    if (!progress) return fail("no append acknowledged in 30 s:\n" + Tail(daemon.log()));
    uint64_t tear = options.tear_sectors.empty()
                        ? 0
                        : options.tear_sectors[rng() % options.tear_sectors.size()];
    std::string cut_report = mount.Cut(tear, rng());
    std::string where = absl::StrCat("cut ", cut + 1, " (tear ", tear, "; ", cut_report, ")");
    std::string mount_error;
    if (cut_report.rfind("error", 0) == 0 || !mount.Unmount() || !mount.Mount(&mount_error)) {
      return fail(absl::StrCat(where, ": the file system failed: ", mount.error(), mount_error,
                               "\n", Tail(ReadLog(options.work_dir + "/lossy-fs.log"))));
    }
    ++report.cuts;
    if (cut_report.find("torn_bytes=0 ") == std::string::npos) ++report.torn_writes;
    if (size_t at = cut_report.find("files_reverted="); at != std::string::npos) {
      report.files_reverted += std::stoull(cut_report.substr(at + 15));
    }
    want.acked = round.acked;
    want.epoch = round.acked_epoch;
    report.fences += round.fences;
    want.acked_commit = round.acked_commit;
    want.snap_index = round.snap_index;
    want.snap_term = round.snap_term;
    report.snapshots += round.snapshots;
    report.released += round.released;
    report.fewest_acked_in_a_round =
        std::min(report.fewest_acked_in_a_round, round.acked - first + 1);
    report.entries_acknowledged += round.acked - first + 1;

    std::string violation;
    if (!daemon.Start()) {
      violation = "walrusd did not recover:\n" + Tail(daemon.log());
    } else {
      ++report.recoveries;
      violation = CheckRecovered(daemon.target(), want, terms, &log_last);
    }
    if (!violation.empty()) {
      report.violation = absl::StrCat(where, ": ", violation,
                                      "\nwal directory on disk: ", Listing(backing + "/data/wal"));
      if (options.keep_failed_image) {
        std::string kept = absl::StrCat("/tmp/walrus-powerloss-image-", getpid(), "-", cut + 1);
        std::error_code ec;
        std::filesystem::copy(backing, kept, std::filesystem::copy_options::recursive, ec);
        absl::StrAppend(&report.violation, "\nimage kept in ", kept);
      }
      break;
    }
    report.acked_checked += want.acked - want.snap_index;
  }
  daemon.Kill9();
  (void)mount.Unmount();
  report.seconds = seconds();
  return report;
}

}  // namespace walrus::testing
