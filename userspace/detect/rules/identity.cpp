// Rules IDENTITY_CHANGED and MULTIPATH_WWID_MISMATCH, and the bindings they
// judge against (attachment -> WWID, made on first verification).
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

// Identity rules for one device: its map's paths agree with the map, and the
// attachments it carries still answer with the identity bound to them.
void Correlator::check_device(const std::string& x, const v1::Event& trigger, Output& out) {
  auto it = devs_.find(x);
  if (it == devs_.end()) return;
  const auto& v = it->second.v;
  auto id = identity_of(x);

  if (!v.map_wwid.empty()) {
    for (const auto& l : id.leaves) {
      auto lt = devs_.find(l);
      if (lt == devs_.end() || !lt->second.v.verified) continue;
      std::string aid = "MULTIPATH_WWID_MISMATCH/" + x + "/" + l;
      if (lt->second.v.verified->wwid() != v.map_wwid) {
        auto a = make_alert(v1::MULTIPATH_WWID_MISMATCH, x + "/" + l, trigger);
        describe_device(x, a);
        a.set_expected_wwid(v.map_wwid);
        a.set_verified_wwid(lt->second.v.verified->wwid());
        a.set_summary("multipath map " + v.name + " (" + v.map_wwid + ") has path " + lt->second.v.name +
                      " answering as " + lt->second.v.verified->wwid());
        fire(std::move(a), out);
      } else {
        resolve(aid, trigger, out);
      }
    }
  }

  if (!id.complete) return;
  for (const auto* att : lookup(index().by_dev, x)) {
    if (!holder_record(*att) || att->resolved_dev() != x) continue;
    const auto* b = bindings_.find(att->instance_uuid(), att->volume_id());
    if (!b) continue;
    if (id.mismatch) {
      // Paths disagree: the one answering with another identity is the news.
      for (const auto& l : id.leaves) {
        auto lt = devs_.find(l);
        if (lt != devs_.end() && lt->second.v.verified && lt->second.v.verified->wwid() != b->wwid()) {
          id.wwid = lt->second.v.verified->wwid();
          id.serial = lt->second.v.verified->serial();
          break;
        }
      }
    }
    std::string subject =
        (att->instance_name().empty() ? att->instance_uuid() : att->instance_name()) + "/" + att->volume_id() + "/" + x;
    if (b->wwid() == id.wwid) {
      resolve("IDENTITY_CHANGED/" + subject, trigger, out);
      continue;
    }
    auto a = make_alert(v1::IDENTITY_CHANGED, subject, trigger);
    if (const auto* inst = instance_by_uuid(att->instance_uuid())) {
      *a.mutable_instance() = *inst;
    } else {
      a.mutable_instance()->set_uuid(att->instance_uuid());
      a.mutable_instance()->set_name(att->instance_name());
    }
    a.set_volume_id(att->volume_id());
    a.set_attachment_id(att->attachment_id());
    describe_device(x, a);
    a.set_expected_wwid(b->wwid());
    a.set_verified_wwid(id.wwid);
    auto owners = owners_of(id.wwid, id.serial);
    for (const auto& o : owners) {
      if (o.instance_uuid == att->instance_uuid()) continue;
      a.mutable_owner()->set_uuid(o.instance_uuid);
      a.mutable_owner()->set_name(o.instance_name);
      a.set_owner_volume_id(o.volume_id);
      a.set_owner_attachment_id(o.attachment_id);
      break;
    }
    a.set_summary(label(a.instance()) + " holds " + (v.name.empty() ? x : v.name) + " for volume " + att->volume_id() +
                  " (" + b->wwid() + ") but it now answers as " + id.wwid +
                  (a.owner_volume_id().empty() ? "" : " (volume " + a.owner_volume_id() + ")"));
    fire(std::move(a), out);
  }
}

// Remember attachment -> WWID the first time an attachment's device is
// verified, unless that WWID already belongs to another live attachment
// (binding then would bless the leak).
void Correlator::try_bind_all(Output& out) {
  for (const auto* att : all_attachments()) {
    if (att->instance_uuid().empty() || att->volume_id().empty() || gone(att->status())) continue;
    if (bindings_.find(att->instance_uuid(), att->volume_id())) continue;
    if (att->source() != v1::SOURCE_LIBVIRT) {
      bool known = false;
      auto st = cinder_status(att->instance_uuid(), att->volume_id(), &known);
      if (known && gone(st)) continue;
    }
    std::string top;
    if (!att->resolved_dev().empty()) {
      top = att->resolved_dev();
    } else {
      for (const auto& d : attachment_devs(*att)) {
        auto it = devs_.find(d);
        if (it != devs_.end() && it->second.v.uppers.empty()) top = d;
      }
    }
    if (top.empty()) continue;
    auto id = identity_of(top);
    if (!id.complete || id.mismatch) continue;
    bool taken = false;
    for (const auto& o : owners_of(id.wwid, id.serial))
      if (o.instance_uuid != att->instance_uuid()) taken = true;
    if (taken) continue;
    v1::Binding b;
    b.set_instance_uuid(att->instance_uuid());
    b.set_instance_name(att->instance_name());
    b.set_volume_id(att->volume_id());
    b.set_attachment_id(att->attachment_id());
    b.set_wwid(id.wwid);
    b.set_bound_unix_ms(now_unix_ms_);
    if (bindings_.put(b)) {
      out.bindings_changed = true;
      gen_++;
    }
  }
}

}  // namespace lunwatch::detect
