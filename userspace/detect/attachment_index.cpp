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

const Correlator::Index& Correlator::index() const {
  if (!index_.dirty) return index_;
  index_.by_dev.clear();
  index_.by_volume.clear();
  index_.by_pair.clear();
  for (const auto* a : all_attachments()) {
    for (const auto& d : attachment_devs(*a)) index_.by_dev[d].push_back(a);
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

bool Correlator::local_attachment(const v1::Attachment& a) const {
  if (a.source() == v1::SOURCE_LIBVIRT) return true;
  auto it = sources_.find(v1::SOURCE_LIBVIRT);
  if (it == sources_.end() || it->second.last_good_unix_ms() <= 0) return true;
  for (const auto& i : it->second.instances())
    if ((!a.instance_uuid().empty() && i.uuid() == a.instance_uuid()) ||
        (a.instance_uuid().empty() && !a.instance_name().empty() && i.name() == a.instance_name()))
      return true;
  return false;
}

// The devices on this host a record explains: only records of instances this
// host runs (local_attachment); the owner of an identity can be anywhere
// (owners_of looks through every record by volume).
std::set<std::string> Correlator::attachment_devs(const v1::Attachment& a) const {
  std::set<std::string> out;
  if (!local_attachment(a)) return out;
  auto add_with_uppers = [&](const std::string& d) {
    for (const auto& u : uppers_closure(d)) out.insert(u);
  };
  if (!a.resolved_dev().empty()) {
    // The device the instance was given, and the paths below it.
    out.insert(a.resolved_dev());
    for (const auto& l : leaves(a.resolved_dev())) out.insert(l);
  }
  for (const auto& t : a.targets()) {
    for (const auto& [k, d] : devs_) {
      if (!d.v.scsi) continue;
      const auto& s = *d.v.scsi;
      const auto& st = s.target();
      bool match = false;
      if (!t.iqn().empty())
        match = st.iqn() == t.iqn() && st.lun() == t.lun() &&
                (t.portal().empty() || st.portal().empty() || st.portal() == t.portal());
      else if (!t.wwpn().empty())
        match = st.wwpn() == t.wwpn() && st.lun() == t.lun();
      if (match) add_with_uppers(k);
    }
  }
  return out;
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
