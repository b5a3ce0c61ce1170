#pragma once
// Carries out what the correlator asked for (a detect::Output): alerts to the
// sinks, captures and containment; identity verification requests to SG_IO;
// kernel flows to re-arm; the binding store to persist; sysfs to re-read.
// Each target is optional: replay wires alerts only.
#include <cstdint>
#include <functional>
#include <set>

#include "common/devt.h"
#include "detect/correlator.h"

namespace lunwatch::agent {

struct DispatchTargets {
  std::function<void(const v1::Alert&)> alert;  // each alert, in order
  std::function<void()> alerts_changed;         // after a batch with alerts (active-alert gauge)
  // A device to verify (name and number parsed); true when submitted.
  std::function<bool(const detect::VerifyRequest&, DevNum)> verify;
  std::function<void(const std::set<uint32_t>& kernel_devs)> rearm;
  std::function<void()> bindings_changed;
  std::function<void()> topology_stale;
};

struct DispatchStats {
  uint64_t alerts = 0;
  uint64_t verify_submitted = 0;
  uint64_t verify_dropped = 0;  // no name, unparsable device, or the verifier was busy with it
};

class Dispatcher {
 public:
  explicit Dispatcher(DispatchTargets targets) : t_(std::move(targets)) {}
  void dispatch(const detect::Output& out);
  const DispatchStats& stats() const { return stats_; }

 private:
  DispatchTargets t_;
  DispatchStats stats_;
};

}  // namespace lunwatch::agent
