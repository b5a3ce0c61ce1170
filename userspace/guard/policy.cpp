#include "guard/policy.h"

#include <algorithm>

#include "common/devt.h"

namespace lunwatch::guard {

Policy compute_policy(const detect::Correlator& c, const CgroupOf& cgroup_of) {
  Policy p;
  auto scope_of = [&](uint32_t pid) -> uint64_t { return cgroup_of ? cgroup_of(pid) : 0; };

  auto view = [&](const std::string& dev) { return c.device_view(dev); };

  // Holders per device (libvirt's view of who has it open).
  std::map<std::string, std::vector<const v1::Attachment*>> holders;
  // Instances libvirt lists, with or without disks: an instance whose disk
  // Nova detached while its qemu still holds the device (a failed detach)
  // has no attachment record left but must stay under the guard.
  // Their qemu pids come from libvirt too (the domain's pid) as well as from
  // the flows seen so far: a qemu that has done no I/O yet (just started, or
  // restarted under a new pid) is under the guard from its first open.
  std::set<std::string> known;
  std::map<std::string, std::set<uint32_t>> pids = c.instance_pids();
  if (auto it = c.sources().find(v1::SOURCE_LIBVIRT); it != c.sources().end())
    for (const auto& i : it->second.instances()) {
      if (!i.uuid().empty()) known.insert(i.uuid());
      if (!i.name().empty()) known.insert(i.name());
      if (i.pid() != 0) pids[i.uuid().empty() ? i.name() : i.uuid()].insert(i.pid());
    }
  for (const auto& [att, devs] : c.attachment_devices()) {
    if (att.source() != v1::SOURCE_LIBVIRT) continue;
    known.insert(att.instance_uuid().empty() ? att.instance_name() : att.instance_uuid());
    if (!att.resolved_dev().empty()) holders[att.resolved_dev()].push_back(&att);
  }
  // The guard applies to the processes of instances libvirt has listed: a
  // process of an instance whose domain XML has not been read yet is left
  // alone for that moment rather than refused its own, new volume.
  for (const auto& [key, ps] : pids)
    if (known.count(key))
      for (uint32_t pid : ps) {
        p.instance_tgids.insert(pid);
        if (uint64_t cg = scope_of(pid)) p.instance_cgroups.insert(cg);
      }

  for (const auto& [dev, atts] : holders) {
    auto num = parse_devnum(dev);
    if (!num) continue;
    p.held.insert(to_kernel_dev(*num));
    auto id = c.device_identity(dev);
    if (!id.complete && id.unknown.empty()) continue;  // not verified (yet): the kernel keeps what it has
    DevicePolicy dp;
    dp.kdev = to_kernel_dev(*num);
    dp.name = view(dev) ? view(dev)->name : dev;
    if (!id.unknown.empty()) {
      // A failed re-check is not a pass: closed until every unknown path answers.
      dp.state = LW_GUARD_UNVERIFIED;
      dp.reason = "identity unknown (SG_IO check failed or the LUN reported gone) on";
      for (const auto& u : id.unknown) dp.reason += " " + (view(u) ? view(u)->name : u);
    } else if (id.mismatch) {
      // Its paths answer as different volumes: nobody among the instances.
      dp.state = LW_GUARD_UNVERIFIED;
      dp.reason = "paths answer with different identities";
    }
    for (const auto& l : id.leaves) {
      const auto* lv = view(l);
      if (!lv || dp.paths.size() >= LW_GUARD_MAX_PATHS) continue;
      lw_guard_path gp{};
      if (auto ln = parse_devnum(l)) gp.dev = to_kernel_dev(*ln);
      if (lv->scsi) {
        gp.host = lv->scsi->addr().host();
        gp.lun = lv->scsi->addr().lun();
      } else {
        gp.host = ~0U;
        gp.lun = ~0ULL;
      }
      if (std::find(id.unknown.begin(), id.unknown.end(), l) != id.unknown.end())
        dp.closed_paths |= 1U << dp.paths.size();
      dp.paths.push_back(gp);
    }
    // The identity's bound owners; a holder not bound yet owns it only when
    // nobody else does (its binding is about to be made).
    bool bound_elsewhere = false;
    for (const auto* ob : c.bindings().by_wwid(id.wwid))
      for (const auto* a : atts)
        if (ob->instance_uuid() != a->instance_uuid()) bound_elsewhere = true;
    for (const auto* ap : atts) {
      const auto& a = *ap;
      if (id.mismatch || dp.state == LW_GUARD_UNVERIFIED) break;
      const auto* b = c.bindings().find(a.instance_uuid(), a.volume_id());
      bool owner = b ? b->wwid() == id.wwid : !bound_elsewhere;
      auto pit = pids.find(a.instance_uuid().empty() ? a.instance_name() : a.instance_uuid());
      if (owner && pit != pids.end())
        for (uint32_t pid : pit->second) {
          if (dp.owners.size() < LW_GUARD_MAX_OWNERS &&
              std::find(dp.owners.begin(), dp.owners.end(), pid) == dp.owners.end())
            dp.owners.push_back(pid);
          uint64_t cg = scope_of(pid);
          if (cg && dp.owner_cgroups.size() < LW_GUARD_MAX_OWNER_CGROUPS &&
              std::find(dp.owner_cgroups.begin(), dp.owner_cgroups.end(), cg) == dp.owner_cgroups.end())
            dp.owner_cgroups.push_back(cg);
        }
      dp.reason += (dp.reason.empty() ? "" : "; ") +
                   (a.instance_name().empty() ? a.instance_uuid() : a.instance_name()) +
                   (owner ? " owns " : " does not own ") + id.wwid;
    }
    p.devices[dp.kdev] = dp;
  }
  return p;
}

lw_guard_dev to_kernel(const DevicePolicy& p, uint64_t generation) {
  lw_guard_dev d{};
  d.generation = generation;
  d.state = p.state;
  d.n_owners = static_cast<uint32_t>(std::min<size_t>(p.owners.size(), LW_GUARD_MAX_OWNERS));
  for (uint32_t i = 0; i < d.n_owners; ++i) d.owners[i] = p.owners[i];
  d.n_paths = static_cast<uint32_t>(std::min<size_t>(p.paths.size(), LW_GUARD_MAX_PATHS));
  for (uint32_t i = 0; i < d.n_paths; ++i) d.paths[i] = p.paths[i];
  d.closed_paths = p.state == LW_GUARD_UNVERIFIED ? p.closed_paths : 0;
  d.n_owner_cgroups = static_cast<uint32_t>(std::min<size_t>(p.owner_cgroups.size(), LW_GUARD_MAX_OWNER_CGROUPS));
  for (uint32_t i = 0; i < d.n_owner_cgroups; ++i) d.owner_cgroups[i] = p.owner_cgroups[i];
  return d;
}

}  // namespace lunwatch::guard
