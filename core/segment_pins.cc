#include "core/segment_pins.h"

#include <utility>

namespace walrus {

SegmentPins::Pin::~Pin() { pins_->Unpin(info_.id); }

std::unique_ptr<SegmentPins::Pin> SegmentPins::PinRange(uint64_t first_seq, uint64_t last_seq,
                                                        std::string holder) {
  std::lock_guard<std::mutex> lock(mu_);
  PinInfo info{next_id_++, first_seq, last_seq, std::move(holder)};
  pins_[info.id] = info;
  return std::unique_ptr<Pin>(new Pin(this, std::move(info)));
}

std::optional<std::string> SegmentPins::RemoveUnlessPinned(uint64_t seq,
                                                           absl::FunctionRef<absl::Status()> remove,
                                                           absl::Status* status) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, pin] : pins_) {
    if (pin.first_seq <= seq && seq <= pin.last_seq) return pin.holder;
  }
  *status = remove();
  return std::nullopt;
}

std::optional<std::string> SegmentPins::HolderOf(uint64_t seq) const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [id, pin] : pins_) {
    if (pin.first_seq <= seq && seq <= pin.last_seq) return pin.holder;
  }
  return std::nullopt;
}

std::vector<PinInfo> SegmentPins::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<PinInfo> out;
  for (const auto& [id, pin] : pins_) out.push_back(pin);
  return out;
}

void SegmentPins::set_on_unpin(std::function<void()> callback) {
  std::lock_guard<std::mutex> lock(mu_);
  on_unpin_ = std::move(callback);
}

void SegmentPins::Unpin(uint64_t id) {
  std::function<void()> callback;
  {
    std::lock_guard<std::mutex> lock(mu_);
    pins_.erase(id);
    callback = on_unpin_;
  }
  if (callback) callback();
}

}  // namespace walrus
