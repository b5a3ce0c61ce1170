// Rule ORPHAN_DEVICE: a volume device no attachment explains, after a grace period.
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

std::vector<std::string> Correlator::orphans() const {
  std::vector<std::string> out;
  bool have_inventory =
      std::any_of(sources_.begin(), sources_.end(), [](const auto& s) { return s.second.last_good_unix_ms() > 0; });
  if (!have_inventory) return out;
  std::set<std::string> explained;
  for (const auto* a : all_attachments()) {
    if (gone(a->status())) continue;
    for (const auto& d : attachment_devs(*a)) explained.insert(d);
  }
  for (const auto& [k, d] : devs_) {
    bool candidate =
        (d.v.scsi && (d.v.scsi->transport() == v1::TRANSPORT_ISCSI || d.v.scsi->transport() == v1::TRANSPORT_FC)) ||
        !d.v.map_wwid.empty();
    if (!candidate || explained.count(k)) continue;
    // A map is explained when one of its paths is.
    bool path_explained = false;
    for (const auto& l : leaves(k))
      if (explained.count(l)) path_explained = true;
    if (!path_explained) out.push_back(k);
  }
  return out;
}

void Correlator::check_orphans(const v1::Event& trigger, Output& out) {
  auto now_orphans = orphans();
  std::set<std::string> set(now_orphans.begin(), now_orphans.end());
  for (auto it = orphan_since_.begin(); it != orphan_since_.end();) {
    if (!set.count(it->first)) {
      resolve(alert_id(v1::ORPHAN_DEVICE, it->first), trigger, out);
      it = orphan_since_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& d : now_orphans) {
    auto [it, inserted] = orphan_since_.emplace(d, now_ns_);
    if (now_ns_ - it->second < opt_.orphan_grace_ns) continue;
    // Still an orphan: every refresh says so again, for every such device.
    if (refire(alert_id(v1::ORPHAN_DEVICE, d))) continue;
    auto a = make_alert(v1::ORPHAN_DEVICE, d, trigger);
    describe_device(d, a);
    const auto& v = devs_.at(d).v;
    std::string what = v.map_wwid.empty() ? "SCSI device" : "multipath map";
    std::string where = v.scsi ? " at " + v.scsi->addr().hctl() + " (" + v.scsi->target().iqn() +
                                     v.scsi->target().wwpn() + " LUN " + std::to_string(v.scsi->target().lun()) + ")"
                               : "";
    a.set_summary(what + " " + (v.name.empty() ? d : v.name) + where +
                  " is explained by no attachment: a leftover of a failed detach?");
    fire(std::move(a), out);
  }
}

}  // namespace lunwatch::detect
