#include "agent/pipeline.h"

#include <chrono>

#include "detect/annotate.h"
#include "inventory/instances.h"

namespace lunwatch::agent {
namespace {

uint64_t steady_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
uint64_t wall_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

}  // namespace

Pipeline::Pipeline(Options options)
    : options_(std::move(options)), correlator_(options_.correlator), unix_ms_(wall_ms), mono_ns_(steady_ns) {}

void Pipeline::set_clocks(Clock unix_ms, Clock mono_ns) {
  unix_ms_ = std::move(unix_ms);
  mono_ns_ = std::move(mono_ns);
}

void Pipeline::on_kernel_event(v1::Event&& ev, detect::Output& out) {
  if (annotator_) annotator_->annotate(ev);
  if (resolver_) {
    if (ev.has_flow()) *ev.mutable_flow()->mutable_instance() = resolver_->resolve(ev.flow().pid(), ev.flow().cgroup());
    if (ev.has_guard()) *ev.mutable_guard()->mutable_instance() = resolver_->resolve(ev.guard().pid());
  }
  if (options_.stamp) ev.set_unix_ms(static_cast<int64_t>(unix_ms_()));
  feed(std::move(ev), out);
}

void Pipeline::feed(v1::Event ev, detect::Output& out) {
  if (options_.stamp) {
    if (ev.unix_ms() == 0) ev.set_unix_ms(static_cast<int64_t>(unix_ms_()));
    if (ev.ts_ns() == 0) ev.set_ts_ns(mono_ns_());
    ev.set_seq(++seq_);
  } else {
    ++seq_;
  }
  for (const auto& t : taps_) t(ev);
  correlator_.on_event(ev, out);
}

}  // namespace lunwatch::agent
