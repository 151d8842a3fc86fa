#include "core/segment_preparer.h"

#include "absl/strings/str_cat.h"

namespace walrus {

SegmentPreparer::SegmentPreparer(FileSystem* fs, std::string dir, uint64_t segment_size,
                                 bool background)
    : fs_(fs), dir_(std::move(dir)), segment_size_(segment_size) {
  if (background) thread_ = std::thread([this] { Run(); });
}

SegmentPreparer::~SegmentPreparer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (ready_.has_value() && ready_->ok()) {
    PreparedSegment& unused = **ready_;
    (void)unused.file->Close();
    (void)fs_->RemoveFile(unused.path);
  }
}

absl::StatusOr<PreparedSegment> SegmentPreparer::Prepare() {
  std::string path = JoinPath(dir_, absl::StrCat(counter_++ % 2, ".tmp"));
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  if (absl::Status s = (*file)->Preallocate(segment_size_); !s.ok()) {
    (void)(*file)->Close();
    (void)fs_->RemoveFile(path);
    return s;
  }
  return PreparedSegment{std::move(path), std::move(*file)};
}

absl::StatusOr<PreparedSegment> SegmentPreparer::Take() {
  if (!thread_.joinable()) return Prepare();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return ready_.has_value(); });
  absl::StatusOr<PreparedSegment> taken = std::move(*ready_);
  ready_.reset();
  cv_.notify_all();
  return taken;
}

void SegmentPreparer::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (!ready_.has_value()) {
      lock.unlock();
      absl::StatusOr<PreparedSegment> prepared = Prepare();
      lock.lock();
      ready_ = std::move(prepared);
      cv_.notify_all();
      continue;
    }
    cv_.wait(lock, [this] { return stopping_ || !ready_.has_value(); });
  }
}

}  // namespace walrus
