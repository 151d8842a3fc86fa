#include "tests/sim/simulator.h"

#include <cstdio>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/backup.h"
#include "core/decoder.h"
#include "core/format.h"
#include "core/mem_fs.h"
#include "core/segment.h"
#include "core/verify.h"
#include "core/wal.h"
#include "server/wal_store.h"
#include "tests/sim/generator.h"
#include "tests/sim/model.h"
#include "tests/sim/rng.h"

namespace walrus::sim {
namespace {

constexpr char kWalDir[] = "/data/wal";
constexpr char kEpochPath[] = "/data/epoch";

std::string Text(const absl::Status& s) { return s.ok() ? "OK" : s.ToString(); }

const char* OutcomeName(VerifyReport::Outcome o) {
  switch (o) {
    case VerifyReport::kClean:
      return "clean";
    case VerifyReport::kTornTail:
      return "torn tail";
    default:
      return "corrupt";
  }
}

// Entries after `from` of `want` against what a read returned; "" if equal.
std::string DiffEntries(const LogState& want, uint64_t from,
                        const std::vector<raftpb::Entry>& got) {
  const uint64_t last = want.last_index();
  const uint64_t count = last > from ? last - from : 0;
  if (got.size() != count) {
    return absl::StrCat(
        "read ", got.size(), " entries after ", from, " (",
        got.empty() ? "" : absl::StrCat(got.front().index(), "..", got.back().index()),
        "), the acknowledged log has ", count, " (to ", last, ")");
  }
  for (uint64_t k = 0; k < count; ++k) {
    const uint64_t index = from + 1 + k;
    const EntryRef* ref = want.At(index);
    const raftpb::Entry& e = got[k];
    if (ref == nullptr) return absl::StrCat("entry ", index, " is not in the acknowledged log");
    if (e.index() != index || e.term() != ref->term ||
        static_cast<uint32_t>(e.type()) != ref->type || e.data() != EntryData(index, *ref)) {
      return absl::StrCat("entry ", index, " reads as ", e.index(), "/", e.term(), " (",
                          e.data().size(), " bytes), acknowledged ", index, "/", ref->term, " (",
                          ref->size, " bytes)");
    }
  }
  return "";
}

struct PendingBackup {
  BackupPlan plan;
  LogState at_start;
  int steps_left = 0;
};

class History {
 public:
  History(uint64_t seed, bool verbose)
      : seed_(seed), verbose_(verbose), rng_(seed), gen_(&rng_, absl::StrCat("sim-", seed)) {}

  Result Run();

 private:
  void Trace(std::string line) {
    if (verbose_) std::fprintf(stderr, "%s\n", line.c_str());
    result_.trace.push_back(std::move(line));
  }
  void Fail(std::string what) {
    if (!result_.ok) return;
    result_.ok = false;
    result_.failure = absl::StrCat("step ", step_, ": ", what);
    Trace("FAILED: " + result_.failure);
  }
  bool failed() const { return !result_.ok; }

  void NewFileSystem(std::unique_ptr<MemFileSystem> fs);
  void RequestStep();
  void Submit(const Request& r, size_t i);
  void ProcessAnswers(const std::vector<Request>& reqs);
  void Restart();
  void Crash(bool now);
  CrashOptions RandomCrash(std::string* what);
  void CloseStore();
  // Opens the store after a restart or crash and checks it serves one of
  // `candidates`; `max_fences` fences may have been in flight.
  void OpenStore(const std::vector<LogState>& candidates, uint64_t max_fences);
  std::string Mismatch(const LogState& want);
  void CheckSteady(bool all_markers);
  void StartBackup();
  void FinishBackup();
  void CheckBackup(const std::string& dest, const LogState& want);
  void Damage();
  void EndEnospc();

  const uint64_t seed_;
  const bool verbose_;
  Rng rng_;
  Generator gen_;
  Result result_;
  int step_ = 0;

  std::unique_ptr<MemFileSystem> fs_;
  StoreOptions options_;
  std::unique_ptr<WalStore> store_;

  LogState acked_;
  bool fail_stopped_ = false;
  std::vector<Record> in_flight_;  // valid, not acknowledged, maybe durable
  std::vector<Request> recent_;

  // Crash at the crash_at_-th sync (file or directory) from now.
  uint64_t syncs_ = 0;
  uint64_t crash_at_ = 0;
  CrashOptions crash_options_;
  std::unique_ptr<MemFileSystem> image_;
  std::string crash_point_;

  // Answers of the current step.
  std::vector<std::optional<absl::StatusOr<uint64_t>>> answers_;
  std::vector<int> batch_of_;
  std::vector<bool> after_crash_;
  int run_ = 0;

  int enospc_steps_ = 0;
  bool io_error_armed_ = false;
  std::optional<PendingBackup> backup_;
  int backups_ = 0;
};

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
    case Request::kAppend:
      store_->Append(r.app.get(), done);
      break;
    case Request::kSnapshot:
      store_->SaveSnapshot(r.index, r.term, r.epoch, [done](absl::Status s) {
        done(s.ok() ? absl::StatusOr<uint64_t>(0) : absl::StatusOr<uint64_t>(s));
      });
      break;
    case Request::kRelease:
      store_->ReleaseTo(r.index, r.epoch, [done](absl::StatusOr<uint32_t> a) {
        done(a.ok() ? absl::StatusOr<uint64_t>(*a) : absl::StatusOr<uint64_t>(a.status()));
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
  for (run_ = 0;; ++run_) {
    if (!store_->RunOnce()) break;
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
  bool became_fail_stopped = false;
  for (size_t i = 0; i < reqs.size() && !failed(); ++i) {
    const Request& r = reqs[i];
    if (!answers_[i].has_value()) return Fail(absl::StrCat(r.ToString(), " was never answered"));
    if (batch_of_[i] != batch) {
      // The store validates each batch against what the batch before left.
      batch = batch_of_[i];
      tentative = timeline;
      if (became_fail_stopped) fail_stopped_ = true;
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
    if (code == absl::StatusCode::kResourceExhausted && enospc_steps_ > 0) continue;
    if (code == absl::StatusCode::kUnavailable && (io_error_armed_ || fail_stopped_)) {
      in_flight_.insert(in_flight_.end(), v.records.begin(), v.records.end());
      became_fail_stopped = true;
      continue;
    }
    return Fail(absl::StrCat("refused a request the model accepts: ", r.ToString(), ": ",
                             Text(a.status())));
  }
  if (became_fail_stopped) fail_stopped_ = true;
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

void History::OpenStore(const std::vector<LogState>& candidates, uint64_t max_fences) {
  RecoverySummary summary;
  absl::StatusOr<std::unique_ptr<WalStore>> opened = absl::UnknownError("not opened");
  std::optional<VerifyReport> report;
  for (int attempt = 0; attempt < 4; ++attempt) {
    report.reset();
    if (WalExists(fs_.get(), kWalDir)) {
      absl::StatusOr<VerifyReport> r = Verify(fs_.get(), kWalDir);
      if (!r.ok()) return Fail("verify could not read the log: " + Text(r.status()));
      report = *r;
    }
    opened = WalStore::Open(options_, nullptr, &summary);
    if (image_ == nullptr) break;
    // Crashed inside recovery: recover the crashed image instead.
    Trace("  crashed inside recovery at " + crash_point_);
    if (opened.ok()) (*opened)->Shutdown();
    opened = absl::UnknownError("crashed");
    NewFileSystem(std::move(image_));
  }
  crash_at_ = 0;
  const std::string verdict = report.has_value() ? OutcomeName(report->outcome) : "no log";
  if (!opened.ok()) {
    return Fail(absl::StrCat("recovery refused a state the API can reach (verify says ", verdict,
                             "): ", Text(opened.status())));
  }
  store_ = std::move(*opened);
  Trace(absl::StrCat("  recovered (verify: ", verdict, summary.repaired ? "; repaired " : "",
                     summary.repaired ? summary.repair_detail : "", ")"));
  if (report.has_value()) {
    const bool torn = report->outcome == VerifyReport::kTornTail;
    if (report->outcome == VerifyReport::kCorrupt || torn != summary.repaired) {
      return Fail(absl::StrCat("verify says ", verdict, " (", report->Describe(), ") but recovery ",
                               summary.repaired ? "repaired a torn tail" : "started as is"));
    }
  }
  std::string why;
  const LogState* match = nullptr;
  for (const LogState& c : candidates) {
    std::string m = Mismatch(c);
    if (m.empty()) {
      match = &c;
      break;
    }
    absl::StrAppend(&why, why.empty() ? "" : "; ", "vs. ",
                    &c == &candidates.front() ? "acked" : "acked+prefix", ": ", m);
  }
  if (match == nullptr) {
    return Fail(absl::StrCat("recovered log is not the acknowledged one plus a prefix of the ",
                             in_flight_.size(), " records in flight: ", why,
                             " (acknowledged: ", acked_.Summary(), ")"));
  }
  LogState next = *match;
  const uint64_t epoch = store_->Status().writer_epoch();
  if (epoch < acked_.epoch || epoch > acked_.epoch + max_fences) {
    return Fail(absl::StrCat("writer epoch ", epoch, " after recovery, acknowledged ", acked_.epoch,
                             " with ", max_fences, " fences in flight"));
  }
  next.epoch = epoch;
  acked_ = std::move(next);
  in_flight_.clear();
  fail_stopped_ = false;
  Trace("  state: " + acked_.Summary());
}

std::string History::Mismatch(const LogState& want) {
  v1::StatusResponse st = store_->Status();
  if (st.created() != want.created) {
    return absl::StrCat("created is ", st.created(), ", expected ", want.created);
  }
  if (!want.created) return "";
  const HardState hs{st.hard_state().term(), st.hard_state().vote(), st.hard_state().commit()};
  if (!(hs == want.hs)) {
    return absl::StrCat("hard state ", hs.ToString(), ", acknowledged ", want.hs.ToString());
  }
  const Marker m = want.newest_marker();
  if (st.snapshot_index() != m.index || st.snapshot_term() != m.term) {
    return absl::StrCat("newest snapshot marker ", st.snapshot_index(), "/", st.snapshot_term(),
                        ", acknowledged ", m.index, "/", m.term);
  }
  walpb::Snapshot snap;
  snap.set_index(m.index);
  snap.set_term(m.term);
  absl::StatusOr<ReadAllResult> read = store_->ReadAll(snap);
  if (!read.ok()) {
    return absl::StrCat("ReadAll from the newest snapshot marker ", m.index, "/", m.term,
                        " failed: ", Text(read.status()));
  }
  return DiffEntries(want, m.index, read->entries);
}

void History::CheckSteady(bool all_markers) {
  // A fail-stopped store may serve the durable part of a failed batch (a
  // write that reached the disk before a later step failed); the next
  // recovery checks it against every prefix.
  if (fail_stopped_) return;
  if (std::string m = Mismatch(acked_); !m.empty()) {
    return Fail("the store does not serve the acknowledged log: " + m);
  }
  if (!acked_.created || !all_markers) return;
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs_.get(), kWalDir);
  if (!segments.ok() || segments->empty()) return Fail("no segments in a created WAL");
  const uint64_t oldest = segments->front().id.index;
  std::vector<Marker> retained;
  for (const Marker& m : acked_.markers) {
    if (m.index < acked_.base || (segments->front().id.seq != 0 && m.index < oldest)) continue;
    retained.push_back(m);
  }
  // Every read is of the whole retained log: three markers per check (the
  // oldest, one at random, the newest) keep a long history fast, and over the
  // steps every retained marker gets its turn.
  if (retained.size() > 3) {
    retained = {retained.front(), retained[rng_.Below(retained.size())], retained.back()};
  }
  for (const Marker& m : retained) {
    walpb::Snapshot snap;
    snap.set_index(m.index);
    snap.set_term(m.term);
    absl::StatusOr<ReadAllResult> read = store_->ReadAll(snap);
    if (!read.ok()) {
      return Fail(absl::StrCat("ReadAll from the acknowledged snapshot marker ", m.index, "/",
                               m.term, " (retained) failed: ", Text(read.status())));
    }
    if (std::string d = DiffEntries(acked_, m.index, read->entries); !d.empty()) {
      return Fail(absl::StrCat("ReadAll from marker ", m.index, "/", m.term, ": ", d));
    }
  }
}

void History::StartBackup() {
  if (backup_.has_value() || !acked_.created) return;
  if (rng_.Percent(50)) {
    absl::StatusOr<BackupPlan> plan = store_->BeginBackup("sim");
    if (!plan.ok()) return Fail("BeginBackup: " + Text(plan.status()));
    Trace(absl::StrCat("step ", step_, ": online backup begins (", plan->files.size(), " files)"));
    backup_ = PendingBackup{std::move(*plan), acked_, static_cast<int>(rng_.Range(0, 4))};
    return;
  }
  const std::string dest = absl::StrCat("/backup", ++backups_);
  Trace(absl::StrCat("step ", step_, ": offline backup to ", dest));
  absl::StatusOr<BackupSummary> done = OfflineBackup(fs_.get(), kWalDir, dest);
  if (!done.ok()) return Fail("offline backup of a live WAL: " + Text(done.status()));
  CheckBackup(dest, acked_);
  (void)fs_->RemoveAll(dest);
}

void History::FinishBackup() {
  const std::string dest = absl::StrCat("/backup", ++backups_);
  Trace(absl::StrCat("step ", step_, ": online backup copies to ", dest));
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(fs_.get(), dest);
  if (!writer.ok()) return Fail("backup writer: " + Text(writer.status()));
  for (const v1::BackupFile& file : backup_->plan.files) {
    absl::StatusOr<std::string> bytes = fs_->Contents(JoinPath(kWalDir, file.name()));
    if (!bytes.ok()) return Fail("a pinned segment is gone: " + Text(bytes.status()));
    if (bytes->size() < file.size_bytes()) return Fail("a pinned segment shrank: " + file.name());
    absl::Status s = (*writer)->OpenFile(file.name());
    if (s.ok()) s = (*writer)->Write(0, absl::string_view(*bytes).substr(0, file.size_bytes()));
    if (s.ok()) s = (*writer)->CloseFile(file.size_bytes());
    if (!s.ok()) return Fail("backup copy: " + Text(s));
  }
  absl::StatusOr<VerifyReport> committed = (*writer)->Commit(std::nullopt);
  if (!committed.ok()) return Fail("backup commit: " + Text(committed.status()));
  LogState want = backup_->at_start;
  backup_.reset();
  CheckBackup(dest, want);
  (void)fs_->RemoveAll(dest);
}

void History::CheckBackup(const std::string& dest, const LogState& want) {
  absl::StatusOr<VerifyReport> report = Verify(fs_.get(), dest);
  if (!report.ok() || report->outcome != VerifyReport::kClean) {
    return Fail(absl::StrCat("backup ", dest, " does not verify clean: ",
                             report.ok() ? report->Describe() : Text(report.status())));
  }
  walpb::Snapshot snap;
  snap.set_index(want.newest_marker().index);
  snap.set_term(want.newest_marker().term);
  WalOptions wal_options;
  wal_options.fs = fs_.get();
  absl::StatusOr<std::unique_ptr<Wal>> wal = Wal::OpenForRead(dest, snap, wal_options);
  absl::StatusOr<ReadAllResult> read =
      wal.ok() ? (*wal)->ReadAll() : absl::StatusOr<ReadAllResult>(wal.status());
  if (!read.ok()) return Fail(absl::StrCat("backup ", dest, " ReadAll: ", Text(read.status())));
  const HardState hs{read->state.term(), read->state.vote(), read->state.commit()};
  std::string d = DiffEntries(want, snap.index(), read->entries);
  if (!(hs == want.hs)) d = absl::StrCat("hard state ", hs.ToString(), " not ", want.hs.ToString());
  if (!d.empty()) return Fail(absl::StrCat("backup ", dest, " lacks what was acknowledged: ", d));
}

void History::Damage() {
  EndEnospc();
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs_.get(), kWalDir);
  if (!segments.ok() || segments->empty()) return;
  CloseStore();
  const bool last = rng_.Percent(60);
  const SegmentFile& seg = last ? segments->back() : segments->front();
  const std::string path = JoinPath(kWalDir, seg.name);
  const uint64_t size = fs_->FileSize(path).value_or(0);
  std::string what;
  switch (rng_.Below(3)) {
    case 0:
      what = "zero-filled";
      (void)fs_->ZeroRange(path, 0, size);
      break;
    case 1: {
      what = "emptied (0 bytes)";
      absl::StatusOr<std::unique_ptr<WritableFile>> f = fs_->OpenWritableFile(path, 0);
      if (f.ok() && (*f)->Truncate(0).ok()) (void)(*f)->Sync();
      break;
    }
    default: {
      // A bit in the middle of one of the header records (crc, metadata,
      // hard state) that the segment starts with: synced before the segment
      // got its name.
      std::vector<RecordPosition> header;
      Decoder decoder(fs_.get(), {path});
      (void)decoder.Decode([&](const RecordView& record, const RecordPosition& pos) {
        if (record.type == static_cast<int64_t>(RecordType::kEntry) ||
            record.type == static_cast<int64_t>(RecordType::kSnapshot)) {
          return absl::CancelledError("past the header");
        }
        header.push_back(pos);
        return absl::OkStatus();
      });
      if (header.empty()) return Fail("a segment without a readable header: " + seg.name);
      const RecordPosition& pos = header[rng_.Below(header.size())];
      const uint64_t at = pos.offset + 8 + (pos.end - pos.offset - 8) / 2;
      what = absl::StrCat("damaged in a header record (bit flipped at offset ", at, " of ",
                          header.size(), " header records, ", size, " bytes)");
      (void)fs_->FlipBit(path, at, static_cast<int>(rng_.Below(8)));
      break;
    }
  }
  what = absl::StrCat(last ? "last" : "first", " segment ", seg.name, " ", what);
  Trace(absl::StrCat("step ", step_, ": media damage: ", what));
  absl::StatusOr<VerifyReport> report = Verify(fs_.get(), kWalDir);
  RecoverySummary summary;
  absl::StatusOr<std::unique_ptr<WalStore>> opened = WalStore::Open(options_, nullptr, &summary);
  const bool verify_corrupt = !report.ok() || report->outcome == VerifyReport::kCorrupt;
  std::string recovery =
      opened.ok() ? (summary.repaired ? "repaired it as a torn tail and started" : "started")
                  : "refused: " + Text(opened.status());
  Trace(absl::StrCat("  verify: ", report.ok() ? report->Describe() : Text(report.status()),
                     "; recovery ", recovery));
  if (!verify_corrupt || opened.ok()) {
    Fail(absl::StrCat("media damage not reported as corruption (", what, "): verify says ",
                      report.ok() ? OutcomeName(report->outcome) : "error", ", recovery ",
                      recovery));
  }
  if (opened.ok()) (*opened)->Shutdown();
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

}  // namespace

Result RunHistory(uint64_t seed, bool verbose) { return History(seed, verbose).Run(); }

}  // namespace walrus::sim
