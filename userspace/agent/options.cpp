#include "agent/options.h"

#include <unistd.h>

namespace lunwatch::agent {

detect::CorrelatorOptions correlator_options(const AgentOptions& o) {
  detect::CorrelatorOptions co;
  co.orphan_grace_ns = static_cast<uint64_t>(o.orphan_grace_s * 1e9);
  co.alert_quiet_ns = static_cast<uint64_t>(o.alert_quiet_s * 1e9);
  co.host_allowlist.insert(co.host_allowlist.end(), o.host_allowlist_extra.begin(), o.host_allowlist_extra.end());
  co.hostname = o.hostname;
  if (co.hostname.empty()) {
    char h[256] = {};
    gethostname(h, sizeof h - 1);
    co.hostname = h;
  }
  return co;
}

}  // namespace lunwatch::agent
