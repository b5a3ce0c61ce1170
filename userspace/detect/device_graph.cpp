// The device graph: block devices by "major:minor", their stacking (dm over
// sd), and the identity a device answers with through its leaves.
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

Correlator::Dev& Correlator::dev(const std::string& d) {
  auto& x = devs_[d];
  if (x.v.dev.empty()) {
    x.v.dev = d;
    x.first_seen_ns = now_ns_;
  }
  return x;
}

Correlator::Dev* Correlator::find_dev(const std::string& d) {
  auto it = devs_.find(d);
  return it == devs_.end() ? nullptr : &it->second;
}

Correlator::Dev* Correlator::find_name(const std::string& name) {
  if (name.empty()) return nullptr;
  for (auto& [k, d] : devs_)
    if (d.v.name == name) return &d;
  return nullptr;
}

void Correlator::link(const std::string& upper, const std::string& lower) {
  auto& u = dev(upper).v.lowers;
  if (std::find(u.begin(), u.end(), lower) != u.end()) return;
  invalidate();
  u.push_back(lower);
  auto& l = dev(lower).v.uppers;
  if (std::find(l.begin(), l.end(), upper) == l.end()) l.push_back(upper);
}

std::string Correlator::graph_content() const {
  std::string out;
  for (const auto& [k, d] : devs_) {
    auto lowers = d.v.lowers, uppers = d.v.uppers;
    std::sort(lowers.begin(), lowers.end());
    std::sort(uppers.begin(), uppers.end());
    out += k + "|" + d.v.name + "|" + (d.v.is_dm ? "dm" : "") + "|" + d.v.map_wwid + "|" + (d.v.path_failed ? "f" : "");
    for (const auto& l : lowers) out += "<" + l;
    for (const auto& u : uppers) out += ">" + u;
    if (d.v.scsi) {
      v1::ScsiDevice s = *d.v.scsi;
      s.clear_verified_at_unix_ms();  // when it was checked, not what it is
      out += "|" + s.SerializeAsString();
    }
    out += "\n";
  }
  return out;
}

std::vector<std::string> Correlator::leaves(const std::string& d) const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  std::function<void(const std::string&)> walk = [&](const std::string& x) {
    if (!seen.insert(x).second) return;
    auto it = devs_.find(x);
    if (it == devs_.end() || it->second.v.lowers.empty()) {
      out.push_back(x);
      return;
    }
    for (const auto& l : it->second.v.lowers) walk(l);
  };
  walk(d);
  return out;
}

std::vector<std::string> Correlator::uppers_closure(const std::string& d) const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  std::function<void(const std::string&)> walk = [&](const std::string& x) {
    if (!seen.insert(x).second) return;
    out.push_back(x);
    auto it = devs_.find(x);
    if (it == devs_.end()) return;
    for (const auto& u : it->second.v.uppers) walk(u);
  };
  walk(d);
  return out;
}

Correlator::Identity Correlator::identity_of(const std::string& d) const {
  Identity id;
  id.leaves = leaves(d);
  id.complete = !id.leaves.empty();
  for (const auto& l : id.leaves) {
    auto it = devs_.find(l);
    if (it != devs_.end() && it->second.v.suspect && !it->second.v.path_failed) {
      // A failed re-check is not a pass: unknown until a check succeeds.
      id.complete = false;
      id.unknown.push_back(l);
    }
    if (it == devs_.end() || !it->second.v.verified) {
      id.complete = false;
      continue;
    }
    const auto& w = it->second.v.verified->wwid();
    if (id.wwid.empty()) {
      id.wwid = w;
      id.serial = it->second.v.verified->serial();
    } else if (w != id.wwid) {
      id.mismatch = true;
    }
  }
  return id;
}

}  // namespace lunwatch::detect
