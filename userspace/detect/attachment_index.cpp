// The attachment index: every source's attachment records, by device, by
// volume and by instance|volume, rebuilt lazily when sources or the device
// stack change; and the questions asked of it (owners of an identity,
// Cinder's status of an attachment).
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

struct Correlator::DevLookup {
  std::unordered_map<std::string, std::vector<std::string>> by_target;  // "iqn|lun" or "wwpn|lun" -> devices
  std::set<std::string> instance_uuids, instance_names;                 // libvirt's domains
  bool have_libvirt = false;
  static std::string target_key(const std::string& id, uint64_t lun) { return id + "|" + std::to_string(lun); }
};

const Correlator::Index& Correlator::index() const {
  if (!index_.dirty) return index_;
  index_.by_dev.clear();
  index_.by_volume.clear();
  index_.by_pair.clear();
  index_.devs_of.clear();
  DevLookup look;
  for (const auto& [k, d] : devs_) {
    if (!d.v.scsi) continue;
    const auto& t = d.v.scsi->target();
    if (!t.iqn().empty()) look.by_target[DevLookup::target_key(t.iqn(), t.lun())].push_back(k);
    if (!t.wwpn().empty()) look.by_target[DevLookup::target_key(t.wwpn(), t.lun())].push_back(k);
  }
  if (auto it = sources_.find(v1::SOURCE_LIBVIRT); it != sources_.end() && it->second.last_good_unix_ms() > 0) {
    look.have_libvirt = true;
    for (const auto& i : it->second.instances()) {
      if (!i.uuid().empty()) look.instance_uuids.insert(i.uuid());
      if (!i.name().empty()) look.instance_names.insert(i.name());
    }
  }
  for (const auto* a : all_attachments()) {
    auto& devs = index_.devs_of[a] = compute_attachment_devs(*a, look);
    for (const auto& d : devs) index_.by_dev[d].push_back(a);
    if (!a->volume_id().empty()) index_.by_volume[a->volume_id()].push_back(a);
    if (a->source() != v1::SOURCE_LIBVIRT)
      index_.by_pair[BindingStore::key(a->instance_uuid(), a->volume_id())].push_back(a);
  }
  index_.dirty = false;
  return index_;
}

std::vector<const v1::Attachment*> Correlator::all_attachments() const {
  std::vector<const v1::Attachment*> out;
  for (const auto& [kind, snap] : sources_)
    for (const auto& a : snap.attachments()) out.push_back(&a);
  return out;
}

// The devices on this host a record explains: only records of instances this
// host runs (libvirt's domains; every record while no libvirt view exists, as
// on hosts without libvirt whose attachment files are this host's); the owner of an identity can be anywhere
// (owners_of looks through every record by volume).
std::vector<std::string> Correlator::compute_attachment_devs(const v1::Attachment& a, const DevLookup& look) const {
  std::set<std::string> out;
  bool local =
      a.source() == v1::SOURCE_LIBVIRT || !look.have_libvirt ||
      (!a.instance_uuid().empty() ? look.instance_uuids.count(a.instance_uuid()) > 0
                                  : !a.instance_name().empty() && look.instance_names.count(a.instance_name()));
  if (!local) return {};
  if (!a.resolved_dev().empty()) {
    // The device the instance was given, and the paths below it.
    out.insert(a.resolved_dev());
    for (const auto& l : leaves(a.resolved_dev())) out.insert(l);
  }
  for (const auto& t : a.targets()) {
    const std::string& id = !t.iqn().empty() ? t.iqn() : t.wwpn();
    if (id.empty()) continue;
    auto it = look.by_target.find(DevLookup::target_key(id, t.lun()));
    if (it == look.by_target.end()) continue;
    for (const auto& k : it->second) {
      const auto& st = devs_.at(k).v.scsi->target();
      // iSCSI: the portal, when both sides name one, must agree too
      if (!t.iqn().empty() &&
          (st.iqn() != t.iqn() || !(t.portal().empty() || st.portal().empty() || st.portal() == t.portal())))
        continue;
      if (t.iqn().empty() && st.wwpn() != t.wwpn()) continue;
      for (const auto& u : uppers_closure(k)) out.insert(u);
    }
  }
  return {out.begin(), out.end()};
}

const std::vector<std::string>& Correlator::attachment_devs(const v1::Attachment& a) const {
  static const std::vector<std::string> none;
  const auto& idx = index();
  auto it = idx.devs_of.find(&a);
  return it == idx.devs_of.end() ? none : it->second;
}

std::vector<Correlator::Owner> Correlator::owners_of(const std::string& wwid, const std::string& serial) const {
  std::vector<Owner> out;
  std::set<std::string> seen;
  for (const auto* b : bindings_.by_wwid(wwid)) {
    bool known = false;
    auto st = cinder_status(b->instance_uuid(), b->volume_id(), &known);
    if (known && gone(st)) continue;  // a detached owner no longer owns it
    if (seen.insert(b->instance_uuid() + "|" + b->volume_id()).second)
      out.push_back({b->instance_uuid(), b->instance_name(), b->volume_id(), b->attachment_id()});
  }
  // Arrays that report the Cinder volume id as the unit serial (LIO does)
  // name the owner even before any binding.
  if (is_uuid_like(serial)) {
    for (const auto* a : lookup(index().by_volume, serial)) {
      if (gone(a->status()) || a->instance_uuid().empty()) continue;
      if (seen.insert(a->instance_uuid() + "|" + a->volume_id()).second)
        out.push_back({a->instance_uuid(), a->instance_name(), a->volume_id(), a->attachment_id()});
    }
  }
  return out;
}

v1::AttachmentStatus Correlator::cinder_status(const std::string& instance_uuid, const std::string& volume_id,
                                               bool* known) const {
  *known = false;
  v1::AttachmentStatus best = v1::ATTACHMENT_STATUS_UNKNOWN;
  // Absence means deleted only in a complete list: a partial one (a Cinder
  // user without admin sees its own project) proves nothing by omission.
  bool any_source = false;
  for (const auto& [kind, snap] : sources_)
    if (kind != v1::SOURCE_LIBVIRT && snap.last_good_unix_ms() > 0 && !snap.partial()) any_source = true;
  for (const auto* a : lookup(index().by_pair, BindingStore::key(instance_uuid, volume_id))) {
    // An attached record anywhere wins over deleted ones (re-attach keeps old rows).
    if (!gone(a->status())) return *known = true, a->status();
    best = a->status();
  }
  if (!any_source) return v1::ATTACHMENT_STATUS_UNKNOWN;
  *known = true;
  return best == v1::ATTACHMENT_STATUS_UNKNOWN ? v1::ATTACHMENT_DELETED : best;  // absent: deleted
}

const v1::Instance* Correlator::instance_by_uuid(const std::string& uuid) const {
  auto it = sources_.find(v1::SOURCE_LIBVIRT);
  if (it == sources_.end() || uuid.empty()) return nullptr;
  for (const auto& i : it->second.instances())
    if (i.uuid() == uuid) return &i;
  return nullptr;
}

bool Correlator::is_volume_device(const std::string& d) const {
  for (const auto& l : leaves(d)) {
    auto it = devs_.find(l);
    if (it != devs_.end() && it->second.v.scsi &&
        (it->second.v.scsi->transport() == v1::TRANSPORT_ISCSI || it->second.v.scsi->transport() == v1::TRANSPORT_FC))
      return true;
  }
  return index().by_dev.count(d) > 0;
}

}  // namespace lunwatch::detect
