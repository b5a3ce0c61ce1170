#pragma once
// Keeps the guard's pinned maps at the policy: computes the policy from the
// correlator (guard/policy.h), the plan from policy + kernel view + the
// verification ledger (guard/reconcile.h, pure), and applies the plan with
// every map operation's result checked (a failure is logged and counted; the
// next round tries again from the kernel's view).
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "detect/correlator.h"
#include "guard/maps.h"
#include "guard/reconcile.h"
#include "lunwatch.pb.h"

namespace lunwatch::agent {

class GuardSync {
 public:
  explicit GuardSync(guard::GuardMaps& maps) : maps_(maps) {}

  // SG_IO answers, by path "maj:min", with the time their question was asked.
  void verified(const std::string& dev, uint64_t asked_ns);
  void verify_failed(const std::string& dev, uint64_t asked_ns);

  // One round; returns the verification requests a re-open waits for.
  // starting: the instance lists of the previous agent's era stay until the
  // first verification round is done, so a new owner is not listed as an
  // instance before its device names it owner (it would be refused).
  std::vector<detect::VerifyRequest> sync(const detect::Correlator& c, const v1::Topology& topology, uint64_t now_ns,
                                          bool starting = false);

  uint64_t map_errors() const { return map_errors_; }

 private:
  guard::GuardMaps& maps_;
  guard::VerifyLedger ledger_;
  guard::ReconcileState state_;
  // instance scope per pid; "none" (0) is asked again after 2 s: libvirt moves
  // its qemu into the scope after the process starts, and an owner whose scope
  // is not known is an owner by pid only (a new process in its scope refused).
  struct Scope {
    uint64_t id = 0;
    uint64_t read_ns = 0;
  };
  std::map<uint32_t, Scope> cgroup_of_pid_;
  uint64_t cgroup_cache_ns_ = 0;
  uint64_t map_errors_ = 0;
};

}  // namespace lunwatch::agent
