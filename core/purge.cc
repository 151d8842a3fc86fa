#include "core/purge.h"

#include <memory>

#include "absl/strings/str_cat.h"

namespace walrus {

std::string PurgeReport::Describe() const {
  std::string out = absl::StrCat("purged ", purged.size(), " of ", released, " released segments (",
                                 purged_bytes, " bytes)");
  if (!purged.empty()) {
    absl::StrAppend(&out, ": ", purged.front().name,
                    purged.size() > 1 ? absl::StrCat(" .. ", purged.back().name) : "");
  }
  if (blocked.has_value()) {
    absl::StrAppend(&out, "; blocked at ", blocked->file, ": ", blocked->holder);
  }
  return out;
}

absl::StatusOr<PurgeReport> PurgeReleased(FileSystem* fs, const std::string& dir,
                                          const PurgePolicy& policy, SegmentPins* pins,
                                          PurgeReport* partial) {
  PurgeReport scratch;
  PurgeReport& report = partial != nullptr ? *partial : scratch;
  report = PurgeReport();
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok()) return segments.status();
  size_t released = 0;
  while (released < segments->size() &&
         (*segments)[released].id.seq < policy.first_unreleased_seq) {
    ++released;
  }
  report.released = released;
  const size_t deletable =
      released > policy.retain_released ? released - policy.retain_released : 0;

  for (size_t i = 0; i < deletable; ++i) {
    const SegmentFile& segment = (*segments)[i];
    const std::string path = JoinPath(dir, segment.name);
    // Holding the file's own lock while unlinking it: whoever else locked it
    // (a backup reading it, a writer that still needs it) makes this fail,
    // and nobody can take it while we delete.
    absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(path);
    if (!lock.ok()) {
      if (lock.status().code() == absl::StatusCode::kNotFound) continue;  // gone already
      if (lock.status().code() != absl::StatusCode::kFailedPrecondition) return lock.status();
      report.blocked = PurgeBlocker{
          path, absl::StrCat("locked by another process (an offline backup or reader holds "
                             "its lock): ",
                             lock.status().message())};
      break;
    }
    absl::StatusOr<uint64_t> size = fs->FileSize(path);
    absl::Status removed;
    auto remove = [&]() { return fs->RemoveFile(path); };
    std::optional<std::string> holder;
    if (pins != nullptr) {
      holder = pins->RemoveUnlessPinned(segment.id.seq, remove, &removed);
    } else {
      removed = remove();
    }
    if (holder.has_value()) {
      report.blocked = PurgeBlocker{path, absl::StrCat("pinned by ", *holder)};
      break;
    }
    if (!removed.ok()) {
      if (!report.purged.empty()) (void)fs->SyncDir(dir);
      return removed;
    }
    report.purged.push_back(segment);
    if (size.ok()) report.purged_bytes += *size;
  }
  // Unlinks are durable only once the directory is synced; until then a crash
  // may bring files back, which is harmless (they are released) but would
  // make the reclaimed space a lie.
  if (!report.purged.empty()) {
    if (absl::Status s = fs->SyncDir(dir); !s.ok()) return s;
  }
  return report;
}

}  // namespace walrus
