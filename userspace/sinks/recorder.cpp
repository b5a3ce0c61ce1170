#include "sinks/recorder.h"

#include <algorithm>

namespace lunwatch::sinks {

std::string baseline_key(const v1::Event& ev) {
  switch (ev.body_case()) {
    case v1::Event::kInventory: return "inventory/" + std::to_string(ev.inventory().kind());
    case v1::Event::kTopology: return "topology";
    case v1::Event::kBindings: return "bindings";
    case v1::Event::kIdentity: return ev.identity().ok() ? "identity/" + ev.identity().dev() : "";
    case v1::Event::kEdge: return "edge/" + ev.edge().upper() + "/" + ev.edge().lower();
    case v1::Event::kScsiBind: return "bind/" + ev.scsi_bind().dev();
    default: return "";
  }
}

FlightRecorder::FlightRecorder() : FlightRecorder(Options{}) {}
FlightRecorder::FlightRecorder(Options o) : opt_(o) {}

void FlightRecorder::evict_front() {
  auto& ev = window_.front();
  auto key = baseline_key(ev);
  if (!key.empty()) baseline_[key] = std::move(ev);
  bytes_ -= window_.empty() ? 0 : sizes_.front();
  sizes_.pop_front();
  window_.pop_front();
  evicted_++;
}

void FlightRecorder::add(const v1::Event& ev) {
  size_t sz = ev.ByteSizeLong();
  window_.push_back(ev);
  sizes_.push_back(sz);
  bytes_ += sz;
  while (!window_.empty() && (bytes_ > opt_.max_bytes || window_.front().unix_ms() < ev.unix_ms() - opt_.keep_ms) &&
         window_.size() > 1)
    evict_front();
}

std::vector<v1::Event> FlightRecorder::baseline() const {
  std::vector<v1::Event> out;
  for (const auto& [k, e] : baseline_) out.push_back(e);
  std::sort(out.begin(), out.end(), [](const v1::Event& a, const v1::Event& b) { return a.seq() < b.seq(); });
  return out;
}

}  // namespace lunwatch::sinks
