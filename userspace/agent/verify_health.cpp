#include "agent/verify_health.h"

#include <algorithm>
#include <map>
#include <set>

namespace lunwatch::agent {

sinks::VerifyHealth verify_health(const detect::Correlator& c, const topology::IdentityVerifier& v, double max_age_s) {
  sinks::VerifyHealth h;
  auto st = v.stats();
  h.queued = st.queued;
  h.running = st.running;
  h.retry_wait = st.retry_wait;
  h.hung = st.hung;
  h.oldest_request_age_s = st.oldest_age_s;
  h.retries_total = st.retries_total;
  h.max_age_s = max_age_s;

  for (const auto* d : c.device_views())
    if (d->scsi && d->suspect) h.unknown_devices++;
  std::set<std::string> held_paths;  // sd names
  for (const auto& [att, devs] : c.attachment_devices()) {
    if (att.source() != v1::SOURCE_LIBVIRT || att.resolved_dev().empty()) continue;
    for (const auto& l : c.device_identity(att.resolved_dev()).leaves)
      if (const auto* v = c.device_view(l); v && !v->name.empty()) held_paths.insert(v->name);
  }
  h.held_paths = held_paths.size();
  for (const auto& name : held_paths) {
    auto age = v.since_good(name);
    if (!age) continue;  // never asked for yet: the queue has not seen it (counts once it has)
    double s = std::chrono::duration<double>(*age).count();
    h.held_age_max_s = std::max(h.held_age_max_s, s);
    if (s > max_age_s) h.held_overdue++;
  }
  return h;
}

}  // namespace lunwatch::agent
