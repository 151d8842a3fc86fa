#include "core/backup.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/format.h"
#include "core/log_reader.h"
#include "core/segment.h"

namespace walrus {

BackupWriter::BackupWriter(FileSystem* fs, std::string dest)
    : fs_(fs), dest_(std::move(dest)), tmp_(dest_ + ".tmp") {}

BackupWriter::~BackupWriter() {
  if (open_ != nullptr) (void)open_->Close();
  if (!committed_) (void)fs_->RemoveAll(tmp_);
}

absl::StatusOr<std::unique_ptr<BackupWriter>> BackupWriter::Begin(FileSystem* fs,
                                                                  const std::string& dest) {
  if (dest.empty()) return absl::InvalidArgumentError("backup: empty destination");
  if (fs->Exists(dest)) {
    return absl::AlreadyExistsError(
        absl::StrCat("backup: ", dest, " already exists; choose a new destination"));
  }
  if (!fs->IsDirectory(ParentDir(dest))) {
    return absl::NotFoundError(
        absl::StrCat("backup: parent directory ", ParentDir(dest), " does not exist"));
  }
  auto writer = std::unique_ptr<BackupWriter>(new BackupWriter(fs, dest));
  if (absl::Status s = fs->RemoveAll(writer->tmp_); !s.ok()) return s;
  if (absl::Status s = fs->CreateDir(writer->tmp_); !s.ok()) return s;
  return writer;
}

absl::Status BackupWriter::OpenFile(const std::string& name) {
  if (open_ != nullptr) return absl::FailedPreconditionError("backup: a file is still open");
  std::optional<SegmentId> id = ParseSegmentName(name);
  // The name comes from a daemon or a directory listing: only a canonical
  // segment name may become a path (no "../", no stray files).
  if (!id.has_value() || SegmentName(*id) != name) {
    return absl::InvalidArgumentError(absl::StrCat("backup: '", name, "' is not a segment name"));
  }
  if (!files_.empty()) {
    std::optional<SegmentId> prev = ParseSegmentName(files_.back());
    if (id->seq != prev->seq + 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("backup: segment ", name, " does not follow ", files_.back()));
    }
  }
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_->NewWritableFile(JoinPath(tmp_, name));
  if (!file.ok()) return file.status();
  open_ = std::move(*file);
  files_.push_back(name);
  return absl::OkStatus();
}

absl::Status BackupWriter::Write(uint64_t offset, absl::string_view data) {
  if (open_ == nullptr) return absl::FailedPreconditionError("backup: no file open");
  if (offset != open_->Offset()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "backup: chunk of ", files_.back(), " at offset ", offset, ", expected ", open_->Offset()));
  }
  if (absl::Status s = open_->Append(data); !s.ok()) return s;
  bytes_written_ += data.size();
  return absl::OkStatus();
}

absl::Status BackupWriter::CloseFile(std::optional<uint64_t> expected_size) {
  if (open_ == nullptr) return absl::FailedPreconditionError("backup: no file open");
  const uint64_t written = open_->Offset();
  absl::Status s = open_->Sync();
  absl::Status c = open_->Close();
  open_.reset();
  if (expected_size.has_value() && written != *expected_size) {
    return absl::InvalidArgumentError(absl::StrCat("backup: ", files_.back(), " has ", written,
                                                   " bytes, expected ", *expected_size));
  }
  return s.ok() ? c : s;
}

absl::StatusOr<uint64_t> BackupWriter::TrimLastFile() {
  if (open_ != nullptr || files_.empty()) {
    return absl::FailedPreconditionError("backup: TrimLastFile needs a closed last file");
  }
  // The copy read as recovery will read it.
  LogReadOptions options;
  options.keep_entries = false;
  absl::StatusOr<ReplayedLog> log = ReadLog(fs_, tmp_, options);
  if (!log.ok()) return log.status();
  const LogDamage& damage = log->damage;
  const std::string last_path = JoinPath(tmp_, files_.back());
  if (damage.kind != LogDamage::kNone && damage.file != last_path) {
    return absl::DataLossError(absl::StrCat("backup: ", damage.Describe()));
  }
  if (damage.kind == LogDamage::kCorrupt) {
    return absl::AbortedError(
        absl::StrCat("backup: ", files_.back(), " is damaged: ", damage.Describe()));
  }
  const uint64_t valid_end = log->end_offset;
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_->OpenWritableFile(last_path, 0);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Truncate(valid_end); !s.ok()) return s;
  if (absl::Status s = (*file)->Sync(); !s.ok()) return s;
  if (absl::Status s = (*file)->Close(); !s.ok()) return s;
  return valid_end;
}

absl::Status BackupWriter::RewriteLastFile() {
  if (open_ != nullptr || files_.empty()) {
    return absl::FailedPreconditionError("backup: RewriteLastFile needs a closed last file");
  }
  const std::string path = JoinPath(tmp_, files_.back());
  absl::StatusOr<uint64_t> size = fs_->FileSize(path);
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  if (size.ok()) bytes_written_ -= std::min(bytes_written_, *size);
  open_ = std::move(*file);
  return absl::OkStatus();
}

absl::StatusOr<VerifyReport> BackupWriter::Commit(std::optional<uint64_t> must_hold_index) {
  if (open_ != nullptr) return absl::FailedPreconditionError("backup: a file is still open");
  if (files_.empty()) return absl::FailedPreconditionError("backup: no segments copied");
  absl::StatusOr<VerifyReport> report = Verify(fs_, tmp_);
  if (!report.ok()) return report.status();
  if (report->outcome != VerifyReport::kClean) {
    return absl::DataLossError(
        absl::StrCat("backup: the copy does not verify clean: ", report->Describe()));
  }
  if (must_hold_index.has_value() && report->last_index.value_or(0) < *must_hold_index) {
    return absl::DataLossError(absl::StrCat(
        "backup: the copy ends at entry ", report->last_index.value_or(0), " but entries up to ",
        *must_hold_index, " were acknowledged before it started"));
  }
  // The files were fsynced one by one; their names need the directory fsync,
  // and the rename publishes the whole backup at once.
  if (absl::Status s = fs_->SyncDir(tmp_); !s.ok()) return s;
  if (fs_->Exists(dest_)) {
    return absl::AlreadyExistsError(
        absl::StrCat("backup: ", dest_, " appeared while the backup ran; not replacing it"));
  }
  if (absl::Status s = fs_->Rename(tmp_, dest_); !s.ok()) return s;
  committed_ = true;
  if (absl::Status s = fs_->SyncDir(ParentDir(dest_)); !s.ok()) return s;
  return report;
}

namespace {

struct SourceFile {
  SegmentFile segment;
  std::unique_ptr<ReadableFile> file;
  std::unique_ptr<FileLock> lock;  // null: another holder (the writer) has it
};

// Opens and, where possible, locks every segment of `dir`, oldest first.
absl::StatusOr<std::vector<SourceFile>> OpenSources(FileSystem* fs, const std::string& dir) {
  absl::StatusOr<std::vector<SegmentFile>> segments = ListSegments(fs, dir);
  if (!segments.ok()) return segments.status();
  std::vector<SourceFile> sources;
  for (const SegmentFile& segment : *segments) {
    const std::string path = JoinPath(dir, segment.name);
    SourceFile source{segment, nullptr, nullptr};
    // Lock first: once we hold it, purge cannot delete the file; a lock held
    // by someone else (the writer, for segments it has not released) keeps
    // purge away just as well.
    absl::StatusOr<std::unique_ptr<FileLock>> lock = fs->TryLockFile(path);
    absl::Status gone = absl::OkStatus();
    if (lock.ok()) {
      source.lock = std::move(*lock);
    } else if (lock.status().code() == absl::StatusCode::kNotFound) {
      gone = lock.status();
    } else if (lock.status().code() != absl::StatusCode::kFailedPrecondition &&
               lock.status().code() != absl::StatusCode::kPermissionDenied) {
      return lock.status();
    }
    if (gone.ok()) {
      absl::StatusOr<std::unique_ptr<ReadableFile>> file = fs->NewReadableFile(path);
      if (file.ok()) {
        source.file = std::move(*file);
      } else if (file.status().code() == absl::StatusCode::kNotFound) {
        gone = file.status();
      } else {
        return file.status();
      }
    }
    if (!gone.ok()) {
      // Purge deletes oldest first: losing the oldest before we got to it is
      // fine (it was released); losing one after a file we hold is not.
      if (sources.empty()) continue;
      return absl::FailedPreconditionError(absl::StrCat(
          "backup: segment ", segment.name, " vanished while the backup opened the log"));
    }
    sources.push_back(std::move(source));
  }
  if (sources.empty()) return absl::NotFoundError(absl::StrCat("backup: no WAL segments in ", dir));
  return sources;
}

absl::Status CopyFile(ReadableFile* file, BackupWriter* writer, BackupProgress* progress,
                      const BackupProgressFn& report, uint64_t* copied) {
  absl::StatusOr<uint64_t> size = file->Size();
  if (!size.ok()) return size.status();
  std::string buffer(kBackupChunkBytes, '\0');
  uint64_t offset = 0;
  while (offset < *size) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(kBackupChunkBytes, *size - offset));
    absl::StatusOr<size_t> n = file->Read(offset, want, buffer.data());
    if (!n.ok()) return n.status();
    if (*n == 0) break;  // the file shrank (the writer sealed it): its data is all here
    if (absl::Status s = writer->Write(offset, absl::string_view(buffer.data(), *n)); !s.ok()) {
      return s;
    }
    offset += *n;
    progress->bytes_done += *n;
    if (report) report(*progress);
  }
  *copied = offset;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<BackupSummary> OfflineBackup(FileSystem* fs, const std::string& dir,
                                            const std::string& dest,
                                            const BackupProgressFn& progress) {
  std::error_code ec;
  const std::string source_abs = std::filesystem::weakly_canonical(dir, ec).string();
  const std::string dest_abs = std::filesystem::weakly_canonical(dest, ec).string();
  if (!ec && (dest_abs == source_abs || absl::StartsWith(dest_abs, source_abs + "/"))) {
    return absl::InvalidArgumentError(
        absl::StrCat("backup: destination ", dest, " lies inside the WAL directory ", dir));
  }
  absl::StatusOr<std::unique_ptr<BackupWriter>> writer = BackupWriter::Begin(fs, dest);
  if (!writer.ok()) return writer.status();
  absl::StatusOr<std::vector<SourceFile>> sources = OpenSources(fs, dir);
  if (!sources.ok()) return sources.status();

  BackupSummary summary;
  BackupProgress state;
  state.files_total = sources->size();
  for (const SourceFile& source : *sources) {
    if (absl::StatusOr<uint64_t> size = source.file->Size(); size.ok()) state.bytes_total += *size;
    if (source.lock != nullptr) ++summary.locked_files;
  }
  if (progress) progress(state);
  for (size_t i = 0; i < sources->size(); ++i) {
    SourceFile& source = (*sources)[i];
    if (absl::Status s = (*writer)->OpenFile(source.segment.name); !s.ok()) return s;
    uint64_t copied = 0;
    if (absl::Status s = CopyFile(source.file.get(), writer->get(), &state, progress, &copied);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = (*writer)->CloseFile(); !s.ok()) return s;
    ++state.files_done;
    if (progress) progress(state);
  }
  // The last segment may be the writer's tail: keep it up to its last valid
  // record. A read racing an in-flight write can see its pages out of order,
  // which looks like damage; real damage is still there on a second read.
  absl::StatusOr<uint64_t> trimmed;
  constexpr int kAttempts = 3;
  for (int attempt = 1;; ++attempt) {
    trimmed = (*writer)->TrimLastFile();
    if (trimmed.ok() || trimmed.status().code() != absl::StatusCode::kAborted) break;
    if (attempt == kAttempts) {
      return absl::DataLossError(
          absl::StrCat(trimmed.status().message(), " on ", kAttempts,
                       " reads: corruption in the last segment, not a write in progress"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20 * attempt));
    if (absl::Status s = (*writer)->RewriteLastFile(); !s.ok()) return s;
    uint64_t copied = 0;
    state.bytes_done = (*writer)->bytes_written();
    if (absl::Status s =
            CopyFile(sources->back().file.get(), writer->get(), &state, progress, &copied);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = (*writer)->CloseFile(); !s.ok()) return s;
  }
  if (!trimmed.ok()) return trimmed.status();

  absl::StatusOr<VerifyReport> verified = (*writer)->Commit(std::nullopt);
  if (!verified.ok()) return verified.status();
  summary.dest = dest;
  summary.files = sources->size();
  summary.bytes = 0;
  for (const SourceFile& source : *sources) {
    if (absl::StatusOr<uint64_t> size = fs->FileSize(JoinPath(dest, source.segment.name));
        size.ok()) {
      summary.bytes += *size;
    }
  }
  summary.verified = *verified;
  return summary;
}

}  // namespace walrus
