#pragma once
// What the guard should enforce, computed from the correlator's state. Pure.
//
// For every device an instance holds (libvirt's view): once its identity is
// verified, the instances whose bound identity matches it are its owners and
// every other instance process is refused. A device whose identity no longer
// matches its holder's binding has no owner among the holders: the old
// holder is refused, the new owner (if it holds the device too) is allowed.
// Devices not yet verified are left as the kernel has them; a device with a
// path whose identity is unknown (a failed check, a LUN-gone error, not yet
// re-verified) is UNVERIFIED: closed to every instance until it answers.
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "detect/correlator.h"

extern "C" {
#include "lunwatch.h"
}

namespace lunwatch::guard {

struct DevicePolicy {
  uint32_t kdev = 0;
  std::string name;
  uint32_t state = LW_GUARD_VERIFIED;
  std::vector<uint32_t> owners;         // tgids
  std::vector<uint64_t> owner_cgroups;  // the owners' instance scopes (cgroup v2 ids)
  std::vector<lw_guard_path> paths;
  std::string reason;         // why these owners
  uint32_t closed_paths = 0;  // UNVERIFIED for unknown paths: bit i = paths[i] (0: all)
};

struct Policy {
  std::map<uint32_t, DevicePolicy> devices;  // by kernel dev_t
  std::set<uint32_t> instance_tgids;         // processes the guard applies to
  std::set<uint64_t> instance_cgroups;       // and every process in these scopes
  std::set<uint32_t> held;                   // devices some instance holds, judged or not
};

// pid -> the cgroup v2 id of its instance scope, 0 when none (see
// inventory::instance_cgroup_id); without one the policy keys on tgids only.
using CgroupOf = std::function<uint64_t(uint32_t pid)>;

Policy compute_policy(const detect::Correlator& c, const CgroupOf& cgroup_of = nullptr);

// The kernel record for a device policy.
lw_guard_dev to_kernel(const DevicePolicy& p, uint64_t generation);

}  // namespace lunwatch::guard
