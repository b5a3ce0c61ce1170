// `lunwatch guard`: the operator's view of and hand on the guard's pinned policy.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/commands.h"
#include "common/devt.h"
#include "common/log.h"
#include "guard/maps.h"
#include "probes/features.h"
#include "topology/devnames.h"

namespace lunwatch::cli {
namespace {

std::optional<DevNum> device_arg(const std::string& s) {
  if (auto d = parse_devnum(s)) return d;
  std::string path = s.rfind('/', 0) == 0 ? s : "/dev/" + s;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) return from_user_dev(st.st_rdev);
  return std::nullopt;
}

std::string comm_of(uint32_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string c;
  std::getline(in, c);
  return c.empty() ? "gone" : c;
}

}  // namespace

int cmd_guard(const GuardCommand& g) {
  auto maps = guard::GuardMaps::open(g.pin_dir);
  if (!maps.ok()) {
    log::error(maps.error().message);
    return 1;
  }
  auto& m = maps.value();
  if (g.action == "mode") {
    auto mode = guard::parse_mode(g.arg);
    if (!mode) return log::error("mode is off, monitor or enforce"), 2;
    auto r = m.set_mode(*mode);
    if (!r.ok()) return log::error(r.error().message), 1;
    if (*mode == LW_GUARD_OFF)
      if (auto u = guard::unpin_links(g.pin_dir); !u.ok()) log::warn(u.error().message);
    std::printf("guard mode: %s\n", guard::mode_name(*mode));
    return 0;
  }
  if (g.action == "arm") {
    auto d = device_arg(g.arg);
    if (!d) return log::error("no such block device: " + g.arg), 2;
    if (g.owners.empty() || g.owners.size() > LW_GUARD_MAX_OWNERS)
      return log::error("give 1 to " + std::to_string(LW_GUARD_MAX_OWNERS) + " --owner PIDs"), 2;
    lw_guard_dev e{};
    e.generation = 0;  // the operator's entry: the agent leaves it alone
    e.state = LW_GUARD_VERIFIED;
    e.n_owners = static_cast<uint32_t>(g.owners.size());
    for (size_t i = 0; i < g.owners.size(); ++i) e.owners[i] = g.owners[i];
    auto r = m.put_device(to_kernel_dev(*d), e);
    if (!r.ok()) return log::error(r.error().message), 1;
    auto procs = m.procs();
    procs.insert(g.owners.begin(), g.owners.end());
    procs.insert(g.instances.begin(), g.instances.end());
    if (auto p = m.set_procs(procs); !p.ok()) return log::error(p.error().message), 1;
    std::printf("armed %s (%s) for %zu owner(s)\n", g.arg.c_str(), to_string(*d).c_str(), g.owners.size());
    return 0;
  }
  if (g.action == "release" || g.action == "quarantine") {
    auto d = device_arg(g.arg);
    if (!d) return log::error("no such block device: " + g.arg), 2;
    uint32_t k = to_kernel_dev(*d);
    if (g.action == "release") {
      auto r = m.remove_device(k);
      if (!r.ok()) return log::error(r.error().message), 1;
      std::printf("released %s (%s): no longer guarded until the agent re-arms it\n", g.arg.c_str(),
                  to_string(*d).c_str());
    } else {
      lw_guard_dev q = m.device(k).value_or(lw_guard_dev{});
      q.state = LW_GUARD_QUARANTINE;
      auto r = m.put_device(k, q);
      if (!r.ok()) return log::error(r.error().message), 1;
      std::printf("quarantined %s (%s): refused to everyone but the allowlist\n", g.arg.c_str(), to_string(*d).c_str());
    }
    return 0;
  }
  // status
  auto mode = m.mode();
  auto st = m.stats();
  std::string why;
  bool lsm = probes::bpf_lsm_active(&why);
  std::printf("guard mode: %s%s\n", mode.ok() ? guard::mode_name(mode.value()) : "unknown",
              lsm ? "" : ("   (" + why + ")").c_str());
  std::printf(
      "checks %llu, denied %llu, would deny %llu, closed by the kernel %llu\n",
      static_cast<unsigned long long>(st[LW_GSTAT_CHECKS]), static_cast<unsigned long long>(st[LW_GSTAT_DENIED]),
      static_cast<unsigned long long>(st[LW_GSTAT_WOULD_DENY]), static_cast<unsigned long long>(st[LW_GSTAT_CLOSED]));
  topology::DeviceNames names;
  auto devs = m.devices();
  std::printf("%zu guarded devices, %zu instance processes, %zu instance scopes (cgroups)\n", devs.size(),
              m.procs().size(), m.cgroups().size());
  std::printf("  %-8s %-8s %-22s %-24s %s\n", "DEVICE", "DEV", "STATE", "CLOSED BY", "OWNERS");
  for (const auto& [k, d] : devs) {
    auto num = from_kernel_dev(k);
    std::string owners;
    for (uint32_t i = 0; i < d.n_owners && i < LW_GUARD_MAX_OWNERS; ++i)
      owners += (owners.empty() ? "" : ", ") + std::to_string(d.owners[i]) + "/" + comm_of(d.owners[i]);
    std::string closed = d.state == LW_GUARD_UNVERIFIED ? guard::close_reason_name(d.close_reason) : "-";
    if (d.state == LW_GUARD_UNVERIFIED && d.closed_paths != 0 && d.closed_paths != ~0U) {
      std::string which;  // the paths that must re-verify before it re-opens
      for (uint32_t i = 0; i < d.n_paths && i < LW_GUARD_MAX_PATHS; ++i)
        if (d.closed_paths >> i & 1U) which += (which.empty() ? "" : ",") + names.name(from_kernel_dev(d.paths[i].dev));
      closed += " (" + which + ")";
    }
    if (d.n_owner_cgroups > 0) owners += " +" + std::to_string(d.n_owner_cgroups) + " scope(s)";
    if (d.state == LW_GUARD_VERIFIED && d.n_owners == 0 && d.n_owner_cgroups == 0 && d.generation > 0)
      owners = "(none: revoked)";
    std::printf("  %-8s %-8s %-22s %-24s %s\n", names.name(num).c_str(), to_string(num).c_str(),
                guard::state_name(d.state), closed.c_str(), owners.empty() ? "(none)" : owners.c_str());
  }
  return 0;
}

}  // namespace lunwatch::cli
