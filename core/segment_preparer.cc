#include "core/segment_preparer.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace walrus {
namespace {

// How often a thread that is ahead of the writer looks at its progress again.
constexpr std::chrono::milliseconds kPacePoll(10);
// The longest rest after a slow chunk.
constexpr std::chrono::milliseconds kMaxPause(100);
// How far zeroing may run ahead of twice the writer's progress, so a fresh
// segment gets a head start before the writer has written much into it.
constexpr uint64_t kZeroLead = uint64_t{1} << 20;

// Lowers this thread's I/O to the idle class: its zero-fill gets the device
// only when nothing else wants it. Where the kernel or the I/O scheduler does
// not honour it, the pacing alone keeps it gentle; failure is ignored.
void UseIdleIoPriority() {
#ifdef __linux__
  constexpr int kWhoProcess = 1;  // IOPRIO_WHO_PROCESS; with who 0: this thread
  constexpr int kClassIdle = 3;   // IOPRIO_CLASS_IDLE
  constexpr int kClassShift = 13;
  (void)::syscall(SYS_ioprio_set, kWhoProcess, 0, kClassIdle << kClassShift);
#endif
}

// Zeroes [at, at+n), starts its writeback and waits for the chunk before it
// (full `chunk` bytes, if any), so at most two chunks are dirty or in flight.
absl::Status ZeroChunk(WritableFile* file, uint64_t at, uint64_t n, uint64_t chunk) {
  if (absl::Status s = file->WriteZeros(at, n); !s.ok()) return s;
  if (absl::Status s = file->StartWriteback(at, n, /*wait=*/false); !s.ok()) return s;
  if (at >= chunk) return file->StartWriteback(at - chunk, chunk, /*wait=*/true);
  return absl::OkStatus();
}

}  // namespace

absl::Status FillWithZeros(WritableFile* file, uint64_t size, uint64_t chunk) {
  for (uint64_t at = 0; at < size; at += chunk) {
    if (absl::Status s = ZeroChunk(file, at, std::min(chunk, size - at), chunk); !s.ok()) return s;
  }
  return absl::OkStatus();
}

SegmentPreparer::SegmentPreparer(FileSystem* fs, std::string dir, uint64_t segment_size,
                                 SegmentBlocks blocks, bool background)
    : fs_(fs), dir_(std::move(dir)), segment_size_(segment_size), blocks_(blocks) {
  if (background) thread_ = std::thread([this] { Run(); });
}

SegmentPreparer::~SegmentPreparer() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (ready_.has_value() && ready_->ok()) Discard(**ready_);
  if (filling_.has_value()) Discard(filling_->segment);
}

std::string SegmentPreparer::NextPath() {
  std::lock_guard<std::mutex> lock(mu_);
  return NextPathLocked();
}

std::string SegmentPreparer::NextPathLocked() {
  return JoinPath(dir_, absl::StrCat(counter_++, ".tmp"));
}

void SegmentPreparer::Discard(PreparedSegment& segment) {
  (void)segment.file->Close();
  (void)fs_->RemoveFile(segment.path);
}

absl::StatusOr<PreparedSegment> SegmentPreparer::Create(const std::string& path) {
  absl::StatusOr<std::unique_ptr<WritableFile>> file = fs_->NewWritableFile(path);
  if (!file.ok()) return file.status();
  PreparedSegment segment{path, std::move(*file), SegmentBlocks::kFallocated};
  if (absl::Status s = segment.file->Preallocate(segment_size_); !s.ok()) {
    Discard(segment);
    return s;
  }
  return segment;
}

absl::StatusOr<PreparedSegment> SegmentPreparer::PrepareInline() {
  absl::StatusOr<PreparedSegment> segment = Create(NextPath());
  if (!segment.ok()) return segment.status();
  if (blocks_ == SegmentBlocks::kWritten) {
    if (absl::Status s = FillWithZeros(segment->file.get(), segment_size_, kInlineChunk); !s.ok()) {
      Discard(*segment);
      return s;
    }
  }
  if (absl::Status s = segment->file->Sync(); !s.ok()) {
    Discard(*segment);
    return s;
  }
  segment->blocks = blocks_;
  return segment;
}

absl::StatusOr<PreparedSegment> SegmentPreparer::Fallback(PreparedSegment segment) {
  if (absl::Status s = segment.file->Sync(); !s.ok()) {
    Discard(segment);
    return s;
  }
  segment.blocks = SegmentBlocks::kFallocated;
  return segment;
}

absl::StatusOr<PreparedSegment> SegmentPreparer::Take() {
  if (!thread_.joinable()) return PrepareInline();
  std::optional<Filling> partial;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (ready_.has_value()) {
      absl::StatusOr<PreparedSegment> taken = std::move(*ready_);
      ready_.reset();
      if (taken.ok() && taken->blocks == SegmentBlocks::kWritten) next_skip_ = 1;
      cv_.notify_all();
      return taken;
    }
    if (filling_.has_value()) {
      partial = std::move(filling_);
      filling_.reset();
    }
    if (blocks_ == SegmentBlocks::kWritten) {
      // The writer outran the zero-fill: the next files skip it.
      skip_fills_ = next_skip_;
      next_skip_ = std::min(2 * next_skip_, kMaxSkippedFills);
    }
    cv_.notify_all();
  }
  // Not ready: hand out what there is rather than wait for the zero-fill
  // (or, while the thread is writing a chunk, a fresh file) and let the thread
  // prepare the one after.
  if (partial.has_value()) return Fallback(std::move(partial->segment));
  absl::StatusOr<PreparedSegment> created = Create(NextPath());
  if (!created.ok()) return created.status();
  return Fallback(std::move(*created));
}

bool SegmentPreparer::HasReady() {
  std::lock_guard<std::mutex> lock(mu_);
  return ready_.has_value();
}

uint64_t SegmentPreparer::ZeroAllowance() const {
  const uint64_t written = tail_written_.load(std::memory_order_relaxed);
  // Twice the writer's progress: done when the current segment is half full.
  const uint64_t paced = written > segment_size_ / 2 ? segment_size_ : 2 * written;
  return std::min(segment_size_, paced + kZeroLead);
}

absl::Status SegmentPreparer::Step(Filling& filling, bool* done, std::chrono::nanoseconds* pause) {
  *done = false;
  *pause = std::chrono::nanoseconds(0);
  WritableFile* file = filling.segment.file.get();
  if (filling.zero && filling.zeroed < segment_size_) {
    const uint64_t n = std::min(kBackgroundChunk, segment_size_ - filling.zeroed);
    const auto started = std::chrono::steady_clock::now();
    if (absl::Status s = ZeroChunk(file, filling.zeroed, n, kBackgroundChunk); !s.ok()) return s;
    filling.zeroed += n;
    // Rest as long as the chunk took: the busier the device, the longer the
    // rest, and the thread never has it more than half the time.
    *pause =
        std::min<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started, kMaxPause);
    return absl::OkStatus();
  }
  if (absl::Status s = file->Sync(); !s.ok()) return s;
  filling.segment.blocks = filling.zero ? SegmentBlocks::kWritten : SegmentBlocks::kFallocated;
  *done = true;
  return absl::OkStatus();
}

void SegmentPreparer::Run() {
  UseIdleIoPriority();
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    if (ready_.has_value()) {
      cv_.wait(lock, [this] { return stopping_ || !ready_.has_value(); });
      continue;
    }
    if (!filling_.has_value()) {
      std::string path = NextPathLocked();
      lock.unlock();
      absl::StatusOr<PreparedSegment> created = Create(path);
      lock.lock();
      if (!created.ok()) {
        ready_ = created.status();
        cv_.notify_all();
      } else {
        filling_ = Filling{std::move(*created), 0, blocks_ == SegmentBlocks::kWritten};
      }
      continue;
    }
    if (filling_->zero && skip_fills_ > 0) {
      // The back-off after a fallback: this file is the next one handed out
      // (also when Take() fell back while it was being created or zeroed).
      filling_->zero = false;
      --skip_fills_;
    }
    if (filling_->zero && filling_->zeroed < segment_size_ && filling_->zeroed >= ZeroAllowance()) {
      // Ahead of the writer: wait for it to write more (or for Take()).
      cv_.wait_for(lock, kPacePoll, [this] { return stopping_ || !filling_.has_value(); });
      continue;
    }
    Filling work = std::move(*filling_);
    filling_.reset();
    lock.unlock();
    bool done = false;
    std::chrono::nanoseconds pause(0);
    absl::Status s = Step(work, &done, &pause);
    if (!s.ok()) Discard(work.segment);
    lock.lock();
    if (!s.ok()) {
      ready_ = std::move(s);
      cv_.notify_all();
    } else if (done) {
      ready_ = std::move(work.segment);
      cv_.notify_all();
    } else {
      filling_ = std::move(work);
      if (pause.count() > 0) cv_.wait_for(lock, pause, [this] { return stopping_; });
    }
  }
}

}  // namespace walrus
