// Rule ATTACHMENT_DIVERGENCE: libvirt and Cinder disagree about an attachment.
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

void Correlator::check_divergence(const v1::Event& trigger, Output& out) {
  auto lv = sources_.find(v1::SOURCE_LIBVIRT);
  std::set<std::string> firing;
  if (lv != sources_.end()) {
    for (const auto& a : lv->second.attachments()) {
      if (a.volume_id().empty() || a.instance_uuid().empty()) continue;
      bool known = false;
      auto st = cinder_status(a.instance_uuid(), a.volume_id(), &known);
      std::string subject = (a.instance_name().empty() ? a.instance_uuid() : a.instance_name()) + "/" + a.volume_id();
      auto [seen, fresh] = libvirt_seen_.emplace(subject, now_ns_);
      if (!known || !gone(st)) continue;
      bool absent = lookup(index().by_pair, BindingStore::key(a.instance_uuid(), a.volume_id())).empty();
      // A disk that just appeared may not be in Cinder's list yet: give the sources a refresh.
      if (absent && now_ns_ - seen->second < opt_.divergence_grace_ns) continue;
      firing.insert("ATTACHMENT_DIVERGENCE/" + subject);
      auto al = make_alert(v1::ATTACHMENT_DIVERGENCE, subject, trigger);
      if (const auto* inst = instance_by_uuid(a.instance_uuid()))
        *al.mutable_instance() = *inst;
      else
        al.mutable_instance()->set_uuid(a.instance_uuid());
      al.set_volume_id(a.volume_id());
      if (!a.resolved_dev().empty()) describe_device(a.resolved_dev(), al);
      al.set_summary("libvirt says " + label(al.instance()) + " has volume " + a.volume_id() + " at " +
                     a.device_path() +
                     (absent ? " but Cinder has no attachment record for it"
                             : " but Cinder says the attachment is " + v1::AttachmentStatus_Name(st)));
      fire(std::move(al), out);
    }
  }
  std::vector<std::string> to_resolve;
  for (const auto& [id, a] : active_)
    if (a.rule() == v1::ATTACHMENT_DIVERGENCE && !firing.count(id)) to_resolve.push_back(id);
  for (const auto& id : to_resolve) resolve(id, trigger, out);
}

}  // namespace lunwatch::detect
