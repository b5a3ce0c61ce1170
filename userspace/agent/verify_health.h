#pragma once
// How well identity verification keeps up: the SG_IO queue's state and, for
// every path under a device an instance holds (libvirt's view), how long ago
// it last answered with an identity. Pure; the agent exports it as metrics.
#include "detect/correlator.h"
#include "sinks/metrics.h"
#include "topology/sgio.h"

namespace lunwatch::agent {

// max_age_s: the bound a held path's last good verification may not exceed.
sinks::VerifyHealth verify_health(const detect::Correlator& c, const topology::IdentityVerifier& v, double max_age_s);

}  // namespace lunwatch::agent
