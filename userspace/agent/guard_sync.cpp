#include "agent/guard_sync.h"

#include "common/devt.h"
#include "common/log.h"
#include "guard/policy.h"
#include "inventory/cgroups.h"

namespace lunwatch::agent {

void GuardSync::verified(const std::string& dev, uint64_t asked_ns) {
  ledger_.failed_since.erase(dev);
  ledger_.verified_since[dev] = asked_ns;
}

void GuardSync::verify_failed(const std::string& dev, uint64_t asked_ns) { ledger_.failed_since[dev] = asked_ns; }

std::vector<detect::VerifyRequest> GuardSync::sync(const detect::Correlator& c, const v1::Topology& topology,
                                                   uint64_t now_ns, bool starting) {
  // Instance scopes by pid, cached (a scope outlives its qemu's pid only
  // through a restart, which brings a new pid); re-read once a minute.
  if (now_ns - cgroup_cache_ns_ > 60'000'000'000ULL) {
    cgroup_of_pid_.clear();
    cgroup_cache_ns_ = now_ns;
  }
  auto policy = guard::compute_policy(c, [this, now_ns](uint32_t pid) {
    auto it = cgroup_of_pid_.find(pid);
    if (it == cgroup_of_pid_.end() || (it->second.id == 0 && now_ns - it->second.read_ns > 2'000'000'000ULL))
      it = cgroup_of_pid_.insert_or_assign(pid, Scope{inventory::instance_cgroup_id(pid), now_ns}).first;
    return it->second.id;
  });
  auto kernel = maps_.devices();
  guard::ReconcileInput in;
  in.policy = &policy;
  in.kernel = &kernel;
  in.ledger = &ledger_;
  for (const auto& d : topology.devices()) in.present.insert(d.dev());
  for (const auto& m : topology.maps()) in.present.insert(m.dev());
  for (const auto* d : c.device_views()) {
    if (!d->name.empty()) in.names[d->dev] = d->name;
    if (d->path_failed) in.failed_paths.insert(d->dev);
  }
  in.now_ns = now_ns;
  auto plan = guard::reconcile(in, state_);

  auto checked = [&](const Result<void>& r, const std::string& what) {
    if (r.ok()) return true;
    map_errors_++;
    log::warn("guard: " + what + ": " + r.error().message + " (tried again next round)");
    return false;
  };
  for (const auto& p : plan.puts) {
    std::string dev = to_string(from_kernel_dev(p.kdev));
    if (!checked(maps_.put_device(p.kdev, p.entry), "cannot write the entry of " + dev)) continue;
    if (p.kind == guard::GuardPut::kClose)
      log::warn(p.message);
    else if (!p.message.empty())
      log::info(p.message);
  }
  for (const auto& p : plan.revokes)
    if (checked(maps_.put_device(p.kdev, p.entry), "cannot revoke " + to_string(from_kernel_dev(p.kdev))))
      log::warn(p.message);
  for (uint32_t kdev : plan.removes) checked(maps_.remove_device(kdev), "cannot remove an entry");
  if (starting) return plan.verify;
  checked(maps_.set_procs(plan.procs), "cannot write the instance processes");
  checked(maps_.set_cgroups(plan.cgroups), "cannot write the instance scopes");
  return plan.verify;
}

}  // namespace lunwatch::agent
