// Rules on an instance's I/O to a volume device: CROSS_INSTANCE_ACCESS,
// STALE_ATTACHMENT_IO and HOST_PROCESS_ACCESS. One judging function decides
// among them (they are exclusive verdicts on the same flow).
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

void Correlator::judge_instance_flow(const v1::Event& ev, Output& out) {
  const auto& f = ev.flow();
  const auto& me = f.instance();
  auto id = identity_of(f.dev());
  if (!id.complete) {
    // Not verified yet: ask, and judge this flow when the answer comes.
    auto& pend = pending_flows_[f.dev()];
    if (pend.size() < 64) pend.push_back(ev);
    request_verify(f.dev(), v1::VERIFY_NEW_FLOW, out);
  } else {
    // Paths that disagree (one reinstated onto a remapped LUN): the I/O may
    // go through any of them, so any path answering as another instance's
    // volume is enough.
    if (id.mismatch)
      for (const auto& l : id.leaves) {
        auto lt = devs_.find(l);
        if (lt == devs_.end() || !lt->second.v.verified) continue;
        auto o = owners_of(lt->second.v.verified->wwid(), lt->second.v.verified->serial());
        bool mine_here = std::any_of(o.begin(), o.end(), [&](const Owner& x) {
          return (!me.uuid().empty() && x.instance_uuid == me.uuid()) ||
                 (!me.name().empty() && x.instance_name == me.name());
        });
        if (!o.empty() && !mine_here) {
          id.wwid = lt->second.v.verified->wwid();
          id.serial = lt->second.v.verified->serial();
          break;
        }
      }
    auto owners = owners_of(id.wwid, id.serial);
    bool mine = std::any_of(owners.begin(), owners.end(), [&](const Owner& o) {
      return (!me.uuid().empty() && o.instance_uuid == me.uuid()) ||
             (!me.name().empty() && o.instance_name == me.name());
    });
    if (!owners.empty() && !mine) {
      const auto& o = owners.front();
      auto a = make_alert(v1::CROSS_INSTANCE_ACCESS, label(me) + "/" + f.dev() + "/" + id.wwid, ev);
      *a.mutable_instance() = me;
      a.set_pid(f.pid());
      a.set_comm(f.comm());
      if (const auto* oi = instance_by_uuid(o.instance_uuid)) {
        *a.mutable_owner() = *oi;
      } else {
        a.mutable_owner()->set_uuid(o.instance_uuid);
        a.mutable_owner()->set_name(o.instance_name);
      }
      a.set_owner_volume_id(o.volume_id);
      a.set_owner_attachment_id(o.attachment_id);
      // The actor's own volume on this device, if it has one.
      for (const auto* att : lookup(index().by_dev, f.dev()))
        if (same_instance(*att, me)) {
          a.set_volume_id(att->volume_id());
          if (const auto* b = bindings_.find(me.uuid(), att->volume_id())) a.set_expected_wwid(b->wwid());
          break;
        }
      describe_device(f.dev(), a);
      a.set_verified_wwid(id.wwid);
      std::string who_owner = !a.owner().name().empty() ? a.owner().name() : o.instance_uuid;
      a.set_summary(label(me) + " (pid " + std::to_string(f.pid()) + ") does " + v1::Op_Name(f.op()) + " I/O to " +
                    (a.device_name().empty() ? f.dev() : a.device_name()) + ", which now answers as volume " +
                    o.volume_id + " (" + id.wwid + ") attached to " + who_owner);
      fire(std::move(a), out);
    }
  }

  // The instance's own attachment on this device: is it still attached in Cinder?
  for (const auto* att : lookup(index().by_dev, f.dev())) {
    if (att->source() != v1::SOURCE_LIBVIRT || !same_instance(*att, me)) continue;  // Nova's view vs Cinder's
    bool known = false;
    auto st = cinder_status(me.uuid(), att->volume_id(), &known);
    if (!known || !gone(st)) continue;
    // A disk libvirt shows and Cinder's list has never had (no record, not even a
    // deleted one) may be newer than the list: Nova creates the attachment before
    // the domain gets the disk, but the two sources refresh apart. Such an absence
    // is a deletion only once the disk has been in libvirt for the divergence
    // grace; the first event after the grace judges this flow again (rejudge_at_ns_).
    // A record the list had and lost is a deletion at once.
    auto pair = BindingStore::key(me.uuid(), att->volume_id());
    if (lookup(index().by_pair, pair).empty() && !cinder_listed_.count(pair)) {
      auto seen = libvirt_seen_.find((att->instance_name().empty() ? att->instance_uuid() : att->instance_name()) +
                                     "/" + att->volume_id());
      if (seen == libvirt_seen_.end()) continue;  // not in libvirt's view yet
      if (now_ns_ - seen->second < opt_.divergence_grace_ns) {
        // Judged again at the end of the grace (the next event after it), even
        // if no source changes meanwhile.
        uint64_t due = seen->second + opt_.divergence_grace_ns;
        if (rejudge_at_ns_ == 0 || due < rejudge_at_ns_) rejudge_at_ns_ = due;
        continue;
      }
    }
    auto a = make_alert(v1::STALE_ATTACHMENT_IO, label(me) + "/" + att->volume_id(), ev);
    *a.mutable_instance() = me;
    a.set_pid(f.pid());
    a.set_comm(f.comm());
    a.set_volume_id(att->volume_id());
    a.set_attachment_id(att->attachment_id());
    describe_device(f.dev(), a);
    a.set_summary(label(me) + " does I/O to volume " + att->volume_id() + " on " +
                  (a.device_name().empty() ? f.dev() : a.device_name()) + " but its attachment is " +
                  v1::AttachmentStatus_Name(st) + " in Cinder");
    fire(std::move(a), out);
  }
}

}  // namespace lunwatch::detect
