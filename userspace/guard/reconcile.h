#pragma once
// Guard reconciliation, pure: from the policy (policy.h), the kernel's view of
// the guard's device map and the verification ledger, the plan that brings the
// kernel to the policy. The agent applies the plan (agent/guard_sync.h) and
// checks every map operation; nothing here touches the kernel or a clock.
//
// Rules (each one is a case of tests/unit/guard_reconcile_test.cpp):
// - a device whose paths disagree is closed (unless the kernel already has it
//   closed or quarantined);
// - a device the kernel closed re-opens only on answers asked after the close:
//   every path the closes named (closed_paths; all when unknown) has answered
//   since, and at least one of them verified the owner's identity; paths not
//   answered yet are asked (VERIFY_ERROR_RECOVERY), paths no close named keep
//   their identity; a path dm-multipath has failed is not waited for (it
//   carries no I/O; its reinstate closes the device again), and when every
//   path in question is failed the others carry the I/O: re-opened;
// - a quarantined entry is the operator's call: never touched;
// - an entry `guard arm` wrote (generation 0) is never touched;
// - owners, owner scopes or paths that changed are written again;
// - a device no instance holds any more is revoked (owners cleared) while
//   sysfs shows it, and removed once sysfs no longer shows it.
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "detect/correlator.h"
#include "guard/policy.h"

extern "C" {
#include "lunwatch.h"
}

namespace lunwatch::guard {

// What SG_IO said about each path since when, by "major:minor": the time the
// question of the last good (verified_since) or failed (failed_since) answer
// was asked.
struct VerifyLedger {
  std::map<std::string, uint64_t> verified_since;
  std::map<std::string, uint64_t> failed_since;
};

// State the reconciler carries from one round to the next (the agent owns it).
struct ReconcileState {
  uint64_t generation = 0;       // last generation written
  std::set<uint32_t> ever_held;  // devices some instance held that sysfs still shows
};

struct ReconcileInput {
  const Policy* policy = nullptr;
  const std::map<uint32_t, lw_guard_dev>* kernel = nullptr;  // the guard's device map now
  const VerifyLedger* ledger = nullptr;
  std::set<std::string> present;             // devices sysfs shows ("maj:min")
  std::map<std::string, std::string> names;  // "maj:min" -> sd/dm name, for requests and logs
  std::set<std::string> failed_paths;        // paths dm-multipath has failed ("maj:min"): they carry no I/O
  uint64_t now_ns = 0;                       // monotonic, the closes' clock
};

struct GuardPut {
  enum Kind { kClose, kReopen, kUpdate, kRevoke };
  Kind kind = kUpdate;
  uint32_t kdev = 0;
  lw_guard_dev entry{};
  std::string message;  // what to log once written ("" for a plain update)
};

struct GuardPlan {
  std::vector<GuardPut> puts;                 // closes, re-opens and updates, in policy order
  std::vector<GuardPut> revokes;              // owners cleared: no instance holds the device any more
  std::vector<uint32_t> removes;              // entries of devices sysfs no longer shows
  std::vector<detect::VerifyRequest> verify;  // paths whose answer a re-open waits for
  std::set<uint32_t> procs;                   // guard_procs, replaced
  std::set<uint64_t> cgroups;                 // guard_cgroups, replaced
  bool empty() const { return puts.empty() && revokes.empty() && removes.empty() && verify.empty(); }
};

// Computes the plan and advances state (generations used, devices held).
GuardPlan reconcile(const ReconcileInput& in, ReconcileState& state);

}  // namespace lunwatch::guard
