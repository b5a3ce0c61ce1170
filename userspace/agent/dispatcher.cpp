#include "agent/dispatcher.h"

namespace lunwatch::agent {

void Dispatcher::dispatch(const detect::Output& out) {
  for (const auto& a : out.alerts) {
    stats_.alerts++;
    if (t_.alert) t_.alert(a);
  }
  if (!out.alerts.empty() && t_.alerts_changed) t_.alerts_changed();
  for (const auto& r : out.verify) {
    auto d = parse_devnum(r.dev);
    if (r.name.empty() || !d || !t_.verify || !t_.verify(r, *d)) {
      stats_.verify_dropped++;
      continue;
    }
    stats_.verify_submitted++;
  }
  if (!out.rearm.empty() && t_.rearm) {
    std::set<uint32_t> devs;
    for (const auto& r : out.rearm)
      if (auto d = parse_devnum(r)) devs.insert(to_kernel_dev(*d));
    t_.rearm(devs);
  }
  if (out.bindings_changed && t_.bindings_changed) t_.bindings_changed();
  if (out.topology_stale && t_.topology_stale) t_.topology_stale();
}

}  // namespace lunwatch::agent
