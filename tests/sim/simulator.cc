#include "tests/sim/simulator.h"

#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "server/wire_convert.h"
#include "tests/sim/history.h"

namespace walrus::sim {

void History::NewFileSystem(std::unique_ptr<MemFileSystem> fs) {
  fs_ = std::move(fs);
  fs_->SetCapacity(MemFileSystem::kUnlimited);
  fs_->ClearFaults();
  fs_->SetSyncObserver([this](const SyncPoint& point) {
    ++syncs_;
    if (crash_at_ != 0 && syncs_ == crash_at_ && image_ == nullptr) {
      image_ = fs_->CrashClone(crash_options_);
      crash_point_ = absl::StrCat(point.is_dir ? "fsync of directory " : "fdatasync of ",
                                  point.path, " (sync #", point.number, ")");
      crash_at_ = 0;
    }
  });
  options_.fs = fs_.get();
  io_error_armed_ = false;
  enospc_steps_ = 0;
  gen_.set_allow_fence(true);
}

CrashOptions History::RandomCrash(std::string* what) {
  CrashOptions c;
  const uint64_t pick = rng_.Below(10);
  c.mode = pick < 2 ? CrashMode::kKeepAll
                    : (pick < 6 ? CrashMode::kDropUnsynced : CrashMode::kTearUnsynced);
  c.drop_unsynced_dir_ops = rng_.Percent(80);
  c.seed = rng_.Next();
  c.sector_size = rng_.Percent(50) ? 512 : 4096;
  *what = c.mode == CrashMode::kKeepAll
              ? "process crash (kill -9)"
              : absl::StrCat(c.mode == CrashMode::kDropUnsynced ? "power loss, unsynced dropped"
                                                                : "power loss, unsynced torn",
                             c.drop_unsynced_dir_ops ? "" : ", directory ops kept", ", sector ",
                             c.sector_size);
  return c;
}

void History::Submit(const Request& r, size_t i) {
  auto done = [this, i](absl::StatusOr<uint64_t> a) {
    answers_[i] = std::move(a);
    batch_of_[i] = run_;
    after_crash_[i] = image_ != nullptr;
  };
  switch (r.kind) {
    case Request::kCreate:
      store_->Create(r.metadata, r.epoch, [done](absl::StatusOr<bool> a) {
        done(a.ok() ? absl::StatusOr<uint64_t>(*a ? 1 : 0) : absl::StatusOr<uint64_t>(a.status()));
      });
      break;
    case Request::kAppend: {
      v1::AppendRequest request = *r.app;  // the history keeps what it sent
      store_->Append(TakeAppend(&request), done);
      break;
    }
    case Request::kSnapshot:
      store_->SaveSnapshot(r.index, r.term, r.epoch, [done](absl::Status s) {
        done(s.ok() ? absl::StatusOr<uint64_t>(0) : absl::StatusOr<uint64_t>(s));
      });
      break;
    case Request::kRelease:
      store_->ReleaseTo(r.index, r.epoch, [done](absl::StatusOr<ReleaseResult> a) {
        done(a.ok() ? absl::StatusOr<uint64_t>(a->released_segments)
                    : absl::StatusOr<uint64_t>(a.status()));
      });
      break;
    case Request::kFence:
      store_->Fence(done);
      break;
  }
}

void History::RequestStep() {
  std::vector<Request> reqs = gen_.Next(acked_, recent_);
  answers_.assign(reqs.size(), std::nullopt);
  batch_of_.assign(reqs.size(), -1);
  after_crash_.assign(reqs.size(), false);
  for (size_t i = 0; i < reqs.size(); ++i) Submit(reqs[i], i);
  // Whether the store was fail-stopped before each batch, and after the last.
  stopped_before_run_.assign(1, fail_stopped_);
  for (run_ = 0;; ++run_) {
    const bool ran = store_->RunOnce();
    stopped_before_run_.push_back(store_->Status().fail_stop);
    if (!ran) break;
  }
  ProcessAnswers(reqs);
  recent_ = reqs;
}

void History::ProcessAnswers(const std::vector<Request>& reqs) {
  LogState tentative = acked_;
  // What the store that ran the step acknowledged, crash or not: the next
  // batch is validated against it.
  LogState timeline = acked_;
  int batch = -1;
  bool stopped_after = fail_stopped_;
  for (size_t i = 0; i < reqs.size() && !failed(); ++i) {
    const Request& r = reqs[i];
    if (!answers_[i].has_value()) return Fail(absl::StrCat(r.ToString(), " was never answered"));
    if (batch_of_[i] != batch) {
      // The store validates each batch against what the batch before left.
      batch = batch_of_[i];
      tentative = timeline;
      fail_stopped_ = stopped_before_run_[static_cast<size_t>(batch)];
      stopped_after = stopped_before_run_[static_cast<size_t>(batch) + 1];
    }
    const absl::StatusOr<uint64_t>& a = *answers_[i];
    Verdict v = Check(r, fail_stopped_, &tentative);
    Trace(absl::StrCat("  ", r.ToString(), " -> ",
                       a.ok() ? absl::StrCat("OK ", *a) : Text(a.status()),
                       after_crash_[i] ? " (after the crash)" : ""));
    if (v.code != absl::StatusCode::kOk) {
      if (a.ok()) {
        return Fail(
            absl::StrCat("accepted a request the model refuses (", v.why, "): ", r.ToString()));
      }
      const absl::StatusCode code = a.status().code();
      if (code == absl::StatusCode::kUnavailable && stopped_after && io_error_armed_ &&
          absl::StrContains(absl::AsciiStrToLower(a.status().message()), "is fail-stopped")) {
        // The store stopped inside this run (a cut owed from the batch
        // before, tried first, failed) and refused it before judging it.
        continue;
      }
      if (v.code != absl::StatusCode::kUnavailable && !fail_stopped_ &&
          (code == absl::StatusCode::kResourceExhausted ||
           code == absl::StatusCode::kUnavailable)) {
        // It got as far as the disk: the store took it as valid.
        return Fail(absl::StrCat("accepted a request the model refuses (", v.why, "): ",
                                 r.ToString(), "; writing it then failed: ", Text(a.status())));
      }
      if (a.status().code() != v.code) {
        return Fail(absl::StrCat("refused ", r.ToString(), " with ", Text(a.status()),
                                 "; the model refuses it with ", absl::StatusCodeToString(v.code),
                                 " (", v.why, ")"));
      }
      continue;
    }
    if (a.ok()) {
      // An append that writes entries answers its last index; a retry or a
      // hard state alone answers the log's end, which may be a snapshot
      // marker's index or its last entry's (not checked).
      const bool wrote_entries = r.kind == Request::kAppend && !v.records.empty() &&
                                 v.records.front().kind == Record::kEntry;
      const bool valued = wrote_entries || r.kind == Request::kFence || r.kind == Request::kCreate;
      if (wrote_entries) v.value = r.app->entries(r.app->entries_size() - 1).index();
      if (valued && *a != v.value) {
        return Fail(absl::StrCat(r.ToString(), " answered ", *a, ", the model expects ", v.value));
      }
      (void)Check(r, false, &timeline);
      if (after_crash_[i]) {
        // Answered by the store that lived on after the crash point: in the
        // crashed image it is in flight.
        in_flight_.insert(in_flight_.end(), v.records.begin(), v.records.end());
        continue;
      }
      // What was acknowledged must hold on its own, against the
      // acknowledged state, not against what the failed requests of its
      // batch would have left.
      Verdict on_acked = Check(r, false, &acked_);
      if (on_acked.code != absl::StatusCode::kOk) {
        return Fail(absl::StrCat("acknowledged ", r.ToString(),
                                 " although the acknowledged log refuses it (", on_acked.why,
                                 "): it was judged against unsynced state"));
      }
      if (v.records.empty() && !on_acked.records.empty() && r.kind != Request::kFence) {
        // A no-op in its batch (a duplicate) whose original was not
        // acknowledged: the answer rests on records that never reached
        // the disk.
        return Fail(absl::StrCat("acknowledged ", r.ToString(),
                                 " as already saved, but the request that saved it failed: "
                                 "acknowledged on the strength of unsynced state"));
      }
      continue;
    }
    const absl::StatusCode code = a.status().code();
    if (after_crash_[i] &&
        (code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kUnavailable)) {
      // The crash came first: the request was in flight then.
      in_flight_.insert(in_flight_.end(), v.records.begin(), v.records.end());
      continue;
    }
    // A failure that left the store fail-stopped may have come after the
    // batch reached the disk (a cut failing after the batch's fdatasync):
    // the request may or may not be durable. One that did not is rolled
    // back: nothing of it may survive.
    const bool io_fault = io_error_armed_ || enospc_steps_ > 0;
    if (io_fault && stopped_after &&
        (code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kUnavailable)) {
      in_flight_.insert(in_flight_.end(), v.records.begin(), v.records.end());
      continue;
    }
    if (code == absl::StatusCode::kResourceExhausted && enospc_steps_ > 0) continue;
    return Fail(absl::StrCat("refused a request the model accepts: ", r.ToString(), ": ",
                             Text(a.status())));
  }
  fail_stopped_ = stopped_before_run_.back();
}

void History::CloseStore() {
  backup_.reset();  // its pin points into the store
  if (store_ != nullptr) store_->Shutdown();
  store_.reset();
}

void History::Restart() {
  EndEnospc();
  Trace(absl::StrCat("step ", step_, ": restart (shutdown, open)"));
  CloseStore();
  if (rng_.Percent(30)) {
    std::string what;
    crash_options_ = RandomCrash(&what);
    crash_at_ = syncs_ + rng_.Range(1, 3);
    Trace("  crash armed inside recovery: " + what);
  }
  OpenStore(Candidates(acked_, in_flight_), in_flight_.size());
}

void History::Crash(bool now) {
  EndEnospc();
  std::string what;
  crash_options_ = RandomCrash(&what);
  if (now) {
    Trace(absl::StrCat("step ", step_, ": crash between requests: ", what));
    image_ = fs_->CrashClone(crash_options_);
    crash_point_ = "between requests";
  } else {
    crash_at_ = syncs_ + rng_.Range(1, 6);
    Trace(absl::StrCat("step ", step_, ": crash armed at sync #", crash_at_, ": ", what));
    RequestStep();
    crash_at_ = 0;
    if (failed()) return;
    if (image_ == nullptr) {
      Trace("  (no crash: fewer syncs)");
      return;
    }
  }
  Trace("  crashed at " + crash_point_);
  uint64_t fences = 0;
  for (const Record& r : in_flight_) fences += r.kind == Record::kEpoch ? 1 : 0;
  CloseStore();
  NewFileSystem(std::move(image_));
  OpenStore(Candidates(acked_, in_flight_), fences);
}

void History::EndEnospc() {
  if (enospc_steps_ == 0) return;
  enospc_steps_ = 0;
  fs_->SetCapacity(MemFileSystem::kUnlimited);
  // Drops an injected EIO not yet hit as well: the next one is armed anew.
  fs_->ClearFaults();
  io_error_armed_ = fail_stopped_;
  gen_.set_allow_fence(true);
  Trace("  disk has space again");
}

Result History::Run() {
  auto fs = std::make_unique<MemFileSystem>();
  // The data directory exists, durably, before walrusd starts.
  (void)fs->CreateDir("/data");
  (void)fs->SyncDir("/");
  NewFileSystem(std::move(fs));
  options_.wal_dir = kWalDir;
  options_.epoch_path = kEpochPath;
  options_.segment_size = uint64_t{4096} << rng_.Below(5);  // 4 to 64 KiB
  const uint64_t batch_pick = rng_.Below(3);
  options_.max_batch_bytes = batch_pick == 0 ? 4096 : (batch_pick == 1 ? 65536 : 16 << 20);
  options_.retain_released_segments = rng_.Range(0, 3);
  options_.run_threads = false;
  const int steps = static_cast<int>(rng_.Range(20, 150));
  Trace(absl::StrCat("seed ", seed_, ": ", steps, " steps, segments of ", options_.segment_size,
                     " bytes, batches up to ", options_.max_batch_bytes, " bytes, retain ",
                     options_.retain_released_segments, " released segments"));
  OpenStore({LogState()}, 0);
  for (step_ = 1; step_ <= steps && !failed(); ++step_) {
    const uint64_t pick = rng_.Below(100);
    if (fail_stopped_ && pick < 60) {
      pick < 40 ? Restart() : Crash(pick < 50);
    } else if (pick < 70 || !acked_.created) {
      Trace(absl::StrCat("step ", step_, ":"));
      RequestStep();
    } else if (pick < 74) {
      Restart();
    } else if (pick < 78) {
      Crash(/*now=*/true);
    } else if (pick < 86) {
      Crash(/*now=*/false);
    } else if (pick < 89 && enospc_steps_ == 0 && !fail_stopped_) {
      StartBackup();
    } else if (pick < 93 && enospc_steps_ == 0 && !backup_.has_value()) {
      enospc_steps_ = static_cast<int>(rng_.Range(1, 5));
      gen_.set_allow_fence(false);
      if (rng_.Percent(50)) {
        // Writes into preallocated space fail too (thin provisioning,
        // copy-on-write file systems, quotas).
        fs_->FailNext(FsOp::kAppend, ENOSPC, Fault::kForever, "/data/wal/");
        Trace(absl::StrCat("step ", step_, ": every segment write fails ENOSPC for ", enospc_steps_,
                           " steps"));
        continue;
      }
      // Mostly a disk with next to no room left; now and then a segment's
      // worth (the next preallocation fails first).
      const uint64_t pick_room = rng_.Below(10);
      const uint64_t room = pick_room < 4   ? 0
                            : pick_room < 7 ? rng_.Below(512)
                                            : rng_.Below(options_.segment_size);
      fs_->SetCapacity(fs_->UsedBytes() + room);
      Trace(absl::StrCat("step ", step_, ": disk full in ", room, " bytes for ", enospc_steps_,
                         " steps"));
      continue;
    } else if (pick < 95 && !io_error_armed_ && acked_.created) {
      io_error_armed_ = true;
      if (rng_.Percent(50)) {
        fs_->FailNext(FsOp::kSync, EIO, 1, "/data/wal/");
        Trace(absl::StrCat("step ", step_, ": the next segment fdatasync fails EIO"));
      } else {
        // A short write of whole sectors, as a device returns them.
        const uint64_t partial = 512 * rng_.Below(3);
        fs_->FailNextAppendAfter(partial, EIO, "/data/wal/");
        Trace(absl::StrCat("step ", step_, ": the next segment write fails EIO after ", partial,
                           " bytes"));
      }
      continue;
    } else if (pick < 96 && acked_.created && !backup_.has_value()) {
      Damage();
      break;  // the log is damaged: the history ends here
    } else {
      Trace(absl::StrCat("step ", step_, ":"));
      RequestStep();
    }
    if (failed() || store_ == nullptr) break;
    if (enospc_steps_ > 0 && --enospc_steps_ == 0) {
      enospc_steps_ = 1;
      EndEnospc();
    }
    if (backup_.has_value() && backup_->steps_left-- == 0) FinishBackup();
    if (!failed()) CheckSteady(step_ % 4 == 0);
  }
  if (!failed() && store_ != nullptr) {
    step_ = steps + 1;
    Restart();
    if (!failed()) CheckSteady(true);
  }
  CloseStore();
  result_.steps = step_;
  return std::move(result_);
}

Result RunHistory(uint64_t seed, bool verbose) { return History(seed, verbose).Run(); }

}  // namespace walrus::sim
