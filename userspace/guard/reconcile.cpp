#include "guard/reconcile.h"

#include <algorithm>

#include "common/devt.h"
#include "guard/maps.h"

namespace lunwatch::guard {
namespace {

bool same_entry(const lw_guard_dev& cur, const DevicePolicy& dp) {
  return cur.n_owners == dp.owners.size() && cur.n_paths == dp.paths.size() &&
         cur.n_owner_cgroups == dp.owner_cgroups.size() && std::equal(dp.owners.begin(), dp.owners.end(), cur.owners) &&
         std::equal(dp.owner_cgroups.begin(), dp.owner_cgroups.end(), cur.owner_cgroups) &&
         std::equal(dp.paths.begin(), dp.paths.end(), cur.paths, [](const lw_guard_path& a, const lw_guard_path& b) {
           return a.dev == b.dev && a.host == b.host && a.lun == b.lun;
         });
}

// Is path p one of those the kernel's closes were about?
bool in_question(const lw_guard_dev& cur, const lw_guard_path& p) {
  if (cur.closed_paths == 0 || cur.closed_paths == ~0U) return true;
  for (uint32_t i = 0; i < cur.n_paths && i < LW_GUARD_MAX_PATHS; ++i)
    if (cur.paths[i].dev == p.dev) return (cur.closed_paths >> i & 1U) != 0;
  return true;  // a path the kernel entry did not have
}

std::string name_of(const ReconcileInput& in, const std::string& dev) {
  auto it = in.names.find(dev);
  return it == in.names.end() || it->second.empty() ? dev : it->second;
}

}  // namespace

GuardPlan reconcile(const ReconcileInput& in, ReconcileState& state) {
  GuardPlan plan;
  const Policy& policy = *in.policy;
  const auto& kernel = *in.kernel;
  const VerifyLedger& ledger = *in.ledger;

  for (const auto& [kdev, dp] : policy.devices) {
    auto k = kernel.find(kdev);
    if (dp.state == LW_GUARD_UNVERIFIED) {  // paths disagree: keep it closed
      if (k == kernel.end() || k->second.state == LW_GUARD_VERIFIED) {
        GuardPut put{GuardPut::kClose, kdev, to_kernel(dp, ++state.generation),
                     "guard: " + dp.name + " closed: " + dp.reason};
        put.entry.closed_ns = in.now_ns;
        plan.puts.push_back(std::move(put));
      }
      continue;
    }
    GuardPut::Kind kind = GuardPut::kUpdate;
    std::string message;
    if (k != kernel.end()) {
      const auto& cur = k->second;
      if (cur.state == LW_GUARD_QUARANTINE) continue;  // the operator's call
      if (cur.state == LW_GUARD_UNVERIFIED) {
        // Closed by the kernel: re-open only on answers asked after the close.
        // Every path the closes were about must have answered since (a path
        // that is down answers with an error and cannot carry I/O), and at
        // least one must have verified the owner's identity. Paths no close
        // named keep their verified identity: waiting for them would stall the
        // owner behind a path that is being dropped (its SG_IO times out)
        // while the reinstated one is fine.
        bool fresh = false, pending = false;
        size_t questioned = 0, asked = 0;
        std::vector<detect::VerifyRequest> again;
        for (const auto& p : dp.paths) {
          if (!in_question(cur, p)) continue;
          questioned++;
          std::string pd = to_string(from_kernel_dev(p.dev));
          if (in.failed_paths.count(pd)) continue;  // dm failed it: no I/O goes there (a reinstate closes again)
          asked++;
          auto ok = ledger.verified_since.find(pd);
          auto bad = ledger.failed_since.find(pd);
          bool ok_after = ok != ledger.verified_since.end() && ok->second >= cur.closed_ns;
          bool bad_after = bad != ledger.failed_since.end() && bad->second >= cur.closed_ns;
          if (ok_after) fresh = true;
          if (!ok_after && !bad_after) {
            pending = true;
            auto n = in.names.find(pd);
            again.push_back({n == in.names.end() ? "" : n->second, pd, v1::VERIFY_ERROR_RECOVERY});
          }
        }
        if (pending) fresh = false;
        if (questioned && !asked && questioned < dp.paths.size()) fresh = true;  // the others carry the I/O
        if (!fresh) {
          plan.verify.insert(plan.verify.end(), again.begin(), again.end());
          continue;
        }
        kind = GuardPut::kReopen;
        message = "guard: " + dp.name + " re-opened " +
                  std::to_string((in.now_ns > cur.closed_ns ? in.now_ns - cur.closed_ns : 0) / 1000000) +
                  " ms after the kernel closed it (" + close_reason_name(cur.close_reason) + "): " + dp.reason;
      } else if (same_entry(cur, dp)) {
        continue;  // unchanged
      }
    }
    plan.puts.push_back({kind, kdev, to_kernel(dp, ++state.generation), std::move(message)});
  }

  // A device no instance holds any more (libvirt's view): while it exists it
  // is revoked, owners cleared, so a qemu that still has it open after Nova
  // detached it (a failed detach) is refused, as it would be once the LUN is
  // another volume. It is forgotten once sysfs no longer shows it, so a new
  // device under the same number starts unguarded. A held device the policy
  // cannot judge yet (unverified paths) stays as the kernel has it.
  auto revoke = [&](uint32_t kdev, lw_guard_dev entry) {
    entry.n_owners = 0;
    entry.n_owner_cgroups = 0;
    entry.generation = ++state.generation;
    plan.revokes.push_back({GuardPut::kRevoke, kdev, entry,
                            "guard: " + name_of(in, to_string(from_kernel_dev(kdev))) +
                                " revoked: no instance holds it any more (libvirt), so no instance may use it"});
  };
  auto present = [&](uint32_t kdev) { return in.present.count(to_string(from_kernel_dev(kdev))) > 0; };
  state.ever_held.insert(policy.held.begin(), policy.held.end());
  for (auto it = state.ever_held.begin(); it != state.ever_held.end();) {
    uint32_t kdev = *it;
    if (!present(kdev)) {
      it = state.ever_held.erase(it);
      continue;
    }
    ++it;
    if (policy.held.count(kdev) || kernel.count(kdev)) continue;
    // Held once, never armed (its identity was not verified while held), held
    // by nobody now: revoked all the same.
    lw_guard_dev fresh{};
    fresh.state = LW_GUARD_VERIFIED;
    revoke(kdev, fresh);
  }
  for (const auto& [kdev, cur] : kernel) {
    if (policy.devices.count(kdev) || policy.held.count(kdev) || cur.generation == 0 ||
        cur.state == LW_GUARD_QUARANTINE)
      continue;
    if (!present(kdev)) {
      plan.removes.push_back(kdev);
      continue;
    }
    if (cur.n_owners == 0 && cur.n_owner_cgroups == 0) continue;  // revoked already
    revoke(kdev, cur);
  }
  plan.procs = policy.instance_tgids;
  plan.cgroups = policy.instance_cgroups;
  return plan;
}

}  // namespace lunwatch::guard
