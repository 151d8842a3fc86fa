#include <random>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/backup.h"
#include "core/decoder.h"
#include "core/format.h"
#include "core/segment.h"
#include "core/verify.h"
#include "core/wal.h"
#include "tests/sim/history.h"

namespace walrus::sim {
namespace {

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

}  // namespace

std::string Text(const absl::Status& s) { return s.ok() ? "OK" : s.ToString(); }

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
    if (!opened.ok() && io_error_armed_ && image_ == nullptr &&
        absl::StrContains(opened.status().message(), "(injected fault)")) {
      // The armed EIO hit recovery's own syncs: walrusd refuses to start on
      // a failing disk, and the next start (the fault spent) goes on.
      Trace("  recovery failed on the injected fault: " + Text(opened.status()));
      io_error_armed_ = false;
      continue;
    }
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
  const uint64_t epoch = store_->Status().writer_epoch;
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
  StoreStatus st = store_->Status();
  if (st.created != want.created) {
    return absl::StrCat("created is ", st.created, ", expected ", want.created);
  }
  if (!want.created) return "";
  const HardState hs{st.hard_state.term(), st.hard_state.vote(), st.hard_state.commit()};
  if (!(hs == want.hs)) {
    return absl::StrCat("hard state ", hs.ToString(), ", acknowledged ", want.hs.ToString());
  }
  const Marker m = want.newest_marker();
  const SnapshotMarker newest = st.newest_snapshot();
  if (newest.index != m.index || newest.term != m.term) {
    return absl::StrCat("newest snapshot marker ", newest.index, "/", newest.term,
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
  if (std::string d = DiffEntries(want, m.index, read->entries); !d.empty()) return d;
  return RangedMismatch(want, m);
}

std::string History::RangedMismatch(const LogState& want, const Marker& marker) {
  // Ranges and terms picked from the step and the log, not from the
  // history's generator: checking must not change what the history does.
  std::mt19937_64 pick(step_ * 1000003 + want.last_index());
  const uint64_t last = want.last_index();
  absl::StatusOr<WalStore::Range> past = store_->Entries(last + 1, last + 2, 0);
  if (past.status().code() != absl::StatusCode::kOutOfRange) {
    return absl::StrCat("Entries past the last index ", last, ": ", Text(past.status()),
                        ", expected OUT_OF_RANGE");
  }
  uint64_t term = 0;
  if (marker.index > 0) {
    absl::StatusOr<WalStore::Range> at_marker = store_->Term(marker.index, &term);
    if (!at_marker.ok() || term != marker.term) {
      return absl::StrCat("Term(", marker.index,
                          ") at the newest marker: ", Text(at_marker.status()), " term ", term,
                          ", expected ", marker.term);
    }
  }
  if (last <= marker.index) return "";
  const uint64_t lo = marker.index + 1 + pick() % (last - marker.index);
  const uint64_t hi = lo + 1 + pick() % std::min<uint64_t>(last + 1 - lo, 60);
  const uint64_t max_bytes = pick() % 2 == 0 ? 0 : 1 + pick() % 20000;
  absl::StatusOr<WalStore::Range> got = store_->Entries(lo, hi, max_bytes);
  if (!got.ok()) return absl::StrCat("Entries(", lo, ", ", hi, ") failed: ", Text(got.status()));
  const std::string range = absl::StrCat("Entries(", lo, ", ", hi, ", ", max_bytes, ")");
  if (got->last != last) return absl::StrCat(range, " says the last index is ", got->last);
  if (got->first <= want.base) {
    return absl::StrCat(range, " says the first index is ", got->first,
                        ": it serves entries at or before the log's base ", want.base);
  }
  if (got->entries.empty() || got->entries.size() > hi - lo) {
    return absl::StrCat(range, " returned ", got->entries.size(), " entries");
  }
  if (max_bytes == 0 && got->entries.size() != hi - lo) {
    return absl::StrCat(range, " returned ", got->entries.size(), " entries without a limit");
  }
  uint64_t bytes = 0;
  for (size_t k = 0; k < got->entries.size(); ++k) {
    const uint64_t index = lo + k;
    const raftpb::Entry& e = got->entries[k];
    const EntryRef* ref = want.At(index);
    if (ref == nullptr || e.index() != index || e.term() != ref->term ||
        e.data() != EntryData(index, *ref)) {
      return absl::StrCat(range, ": entry ", index, " reads as ", e.index(), "/", e.term(), " (",
                          e.data().size(), " bytes)",
                          ref == nullptr ? ", not in the acknowledged log"
                                         : absl::StrCat(", acknowledged ", index, "/", ref->term,
                                                        " (", ref->size, " bytes)"));
    }
    bytes += e.ByteSizeLong();
  }
  if (max_bytes != 0 && got->entries.size() > 1 && bytes > max_bytes) {
    return absl::StrCat(range, " returned ", bytes, " bytes of entries");
  }
  absl::StatusOr<WalStore::Range> t = store_->Term(lo, &term);
  if (!t.ok() || term != want.TermAt(lo)) {
    return absl::StrCat("Term(", lo, "): ", Text(t.status()), " term ", term, ", acknowledged ",
                        want.TermAt(lo));
  }
  return "";
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
  for (const BackupFile& file : backup_->plan.files) {
    absl::StatusOr<std::string> bytes = fs_->Contents(JoinPath(kWalDir, file.name));
    if (!bytes.ok()) return Fail("a pinned segment is gone: " + Text(bytes.status()));
    if (bytes->size() < file.size_bytes) return Fail("a pinned segment shrank: " + file.name);
    absl::Status s = (*writer)->OpenFile(file.name);
    if (s.ok()) s = (*writer)->Write(0, absl::string_view(*bytes).substr(0, file.size_bytes));
    if (s.ok()) s = (*writer)->CloseFile(file.size_bytes);
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
  // The damage is the media's, not a write that an armed fault could fail.
  fs_->ClearFaults();
  io_error_armed_ = false;
  // Listed after the store is closed: its shutdown may still purge segments.
  CloseStore();
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs_.get(), kWalDir);
  if (!segments.ok() || segments->empty()) return;
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
      // The crc and metadata records open every segment; Create's first
      // segment adds the marker (0, 0). A hard state after them may be the
      // cut's copy or a later save: which, the segment alone cannot tell.
      const size_t header_records = seg.id.seq == 0 ? 3 : 2;
      std::vector<RecordPosition> header;
      Decoder decoder(fs_.get(), {path});
      (void)decoder.Decode([&](const RecordView&, const RecordPosition& pos) {
        if (header.size() == header_records) return absl::CancelledError("past the header");
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

}  // namespace walrus::sim
