#include "core/backup_source.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "core/crc32c.h"
#include "core/segment.h"

namespace walrus {

absl::StatusOr<BackupPlan> PlanBackup(FileSystem* fs, const std::string& dir,
                                      const LogPosition& durable, uint64_t last_entry_index,
                                      SegmentPins* pins, std::string holder) {
  BackupPlan plan;
  // Pin first, list second: a segment the listing shows stays until the pin
  // goes (purge checks the pins and deletes under one mutex).
  plan.pin = pins->PinRange(0, durable.seq, std::move(holder));
  plan.durable = durable;
  plan.last_entry_index = last_entry_index;
  absl::StatusOr<std::vector<SegmentFile>> files = ListSegments(fs, dir);
  if (!files.ok()) return files.status();
  while (!files->empty() && files->back().id.seq > durable.seq) files->pop_back();
  if (files->empty() || files->back().id.seq != durable.seq || !IsContiguous(*files, 0)) {
    return absl::InternalError(absl::StrCat("backup: the segments of ", dir,
                                            " do not reach the durable segment ", durable.seq,
                                            " without a gap"));
  }
  for (const SegmentFile& file : *files) {
    uint64_t bytes = durable.offset;
    if (file.id.seq != durable.seq) {
      // Sealed segments were cut to their data when the next one started.
      absl::StatusOr<uint64_t> size = fs->FileSize(JoinPath(dir, file.name));
      if (!size.ok()) return size.status();
      bytes = *size;
    }
    plan.files.push_back(BackupFile{file.name, bytes});
    plan.total_bytes += bytes;
  }
  return plan;
}

BackupChunkReader::BackupChunkReader(FileSystem* fs, std::string dir, const BackupPlan& plan,
                                     size_t chunk_bytes)
    : fs_(fs), dir_(std::move(dir)), plan_(plan), buffer_(chunk_bytes, '\0') {}

absl::StatusOr<bool> BackupChunkReader::Next(BackupChunk* chunk) {
  for (; file_ < plan_.files.size(); ++file_, open_.reset(), offset_ = 0) {
    const BackupFile& file = plan_.files[file_];
    const std::string path = JoinPath(dir_, file.name);
    if (open_ == nullptr) {
      absl::StatusOr<std::unique_ptr<ReadableFile>> in = fs_->NewReadableFile(path);
      if (!in.ok()) return Stop(in.status());
      open_ = std::move(*in);
    }
    if (offset_ >= file.size_bytes) continue;
    const size_t want =
        static_cast<size_t>(std::min<uint64_t>(buffer_.size(), file.size_bytes - offset_));
    absl::StatusOr<size_t> n = open_->Read(offset_, want, buffer_.data());
    if (!n.ok()) return Stop(n.status());
    if (*n != want) {
      return Stop(
          absl::InternalError(absl::StrCat("backup: ", path, " ended at ", offset_ + *n,
                                           " bytes, before the durable end ", file.size_bytes)));
    }
    chunk->file = file_;
    chunk->offset = offset_;
    chunk->data = absl::string_view(buffer_.data(), *n);
    chunk->crc32c = crc32c::Value(chunk->data);
    offset_ += *n;
    return true;
  }
  return false;
}

absl::Status BackupChunkReader::Stop(absl::Status error) {
  file_ = plan_.files.size();
  open_.reset();
  return error;
}

}  // namespace walrus
