#include "detect/correlator.h"

#include <algorithm>
#include <functional>

#include "topology/vpd.h"

namespace lunwatch::detect {
namespace {


bool gone(v1::AttachmentStatus s) {
  return s == v1::ATTACHMENT_DELETED || s == v1::ATTACHMENT_DETACHED || s == v1::ATTACHMENT_ERROR_DETACHING;
}

bool is_uuid_like(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
  }
  return true;
}

std::string label(const v1::Instance& i) {
  if (!i.name().empty()) return i.name();
  if (!i.uuid().empty()) return i.uuid();
  return "host process";
}

// Records that say "this instance has this device open": libvirt's view, or
// a file record with a device path that is not detached (hosts without Nova).
bool holder_record(const v1::Attachment& a) {
  if (a.source() == v1::SOURCE_LIBVIRT) return true;
  return a.source() == v1::SOURCE_FILE && !a.resolved_dev().empty() && !gone(a.status());
}

bool same_instance(const v1::Attachment& a, const v1::Instance& i) {
  if (!a.instance_uuid().empty() && !i.uuid().empty()) return a.instance_uuid() == i.uuid();
  return !a.instance_name().empty() && a.instance_name() == i.name();
}

}  // namespace

const char* rule_name(v1::Rule r) { return v1::Rule_Name(r).c_str(); }

v1::Severity rule_severity(v1::Rule r) {
  switch (r) {
    case v1::CROSS_INSTANCE_ACCESS:
    case v1::IDENTITY_CHANGED:
      return v1::SEVERITY_CRITICAL;
    case v1::STALE_ATTACHMENT_IO:
    case v1::MULTIPATH_WWID_MISMATCH:
    case v1::GUARD_DENIED:
      return v1::SEVERITY_HIGH;
    case v1::ORPHAN_DEVICE:
    case v1::HOST_PROCESS_ACCESS:
    case v1::ATTACHMENT_DIVERGENCE:
      return v1::SEVERITY_WARNING;
    default:
      return v1::SEVERITY_INFO;
  }
}

Correlator::Correlator(CorrelatorOptions options) : opt_(std::move(options)) {}

// ---------------------------------------------------------------- state helpers

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

const Correlator::Index& Correlator::index() const {
  if (!index_.dirty) return index_;
  index_.by_dev.clear();
  index_.by_volume.clear();
  index_.by_pair.clear();
  for (const auto* a : all_attachments()) {
    for (const auto& d : attachment_devs(*a)) index_.by_dev[d].push_back(a);
    if (!a->volume_id().empty()) index_.by_volume[a->volume_id()].push_back(a);
    if (a->source() != v1::SOURCE_LIBVIRT) index_.by_pair[BindingStore::key(a->instance_uuid(), a->volume_id())].push_back(a);
  }
  index_.dirty = false;
  return index_;
}

namespace {
const std::vector<const v1::Attachment*>& lookup(const std::map<std::string, std::vector<const v1::Attachment*>>& m,
                                                 const std::string& k) {
  static const std::vector<const v1::Attachment*> kEmpty;
  auto it = m.find(k);
  return it == m.end() ? kEmpty : it->second;
}
}  // namespace

std::vector<const v1::Attachment*> Correlator::all_attachments() const {
  std::vector<const v1::Attachment*> out;
  for (const auto& [kind, snap] : sources_)
    for (const auto& a : snap.attachments()) out.push_back(&a);
  return out;
}

std::set<std::string> Correlator::attachment_devs(const v1::Attachment& a) const {
  std::set<std::string> out;
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
        match = st.iqn() == t.iqn() && st.lun() == t.lun() && (t.portal().empty() || st.portal().empty() ||
                                                                st.portal() == t.portal());
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
  bool any_source = false;
  for (const auto& [kind, snap] : sources_)
    if (kind != v1::SOURCE_LIBVIRT && snap.last_good_unix_ms() > 0) any_source = true;
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

void Correlator::request_verify(const std::string& d, v1::VerifyReason why, Output& out) {
  auto it = devs_.find(d);
  if (it == devs_.end()) return;
  if (!it->second.v.lowers.empty()) {  // a map: its paths answer INQUIRY
    for (const auto& l : leaves(d)) request_verify(l, why, out);
    return;
  }
  if (!it->second.v.scsi && it->second.v.name.rfind("sd", 0) != 0) return;  // not SCSI
  for (const auto& r : out.verify)
    if (r.dev == d) return;
  out.verify.push_back({it->second.v.name, d, why});
}

// ---------------------------------------------------------------- alerts

v1::Alert Correlator::make_alert(v1::Rule rule, const std::string& subject, const v1::Event& trigger) const {
  v1::Alert a;
  a.set_id(v1::Rule_Name(rule) + "/" + subject);
  a.set_rule(rule);
  a.set_severity(rule_severity(rule));
  a.set_state(v1::ALERT_FIRING);
  a.set_unix_ms(trigger.unix_ms() ? trigger.unix_ms() : now_unix_ms_);
  a.set_ts_ns(trigger.ts_ns());
  a.set_count(1);
  a.set_hostname(opt_.hostname);
  *a.mutable_trigger() = trigger;
  return a;
}

void Correlator::describe_device(const std::string& d, v1::Alert& a) const {
  a.set_device(d);
  auto it = devs_.find(d);
  if (it != devs_.end()) {
    a.set_device_name(it->second.v.name);
    if (!it->second.v.map_wwid.empty() && a.expected_wwid().empty()) a.set_expected_wwid(it->second.v.map_wwid);
  }
  for (const auto& l : leaves(d)) {
    auto lt = devs_.find(l);
    if (lt == devs_.end() || l == d) continue;
    const auto& v = lt->second.v;
    auto* p = a.add_paths();
    p->set_name(v.name);
    p->set_dev(l);
    if (v.scsi) {
      *p->mutable_addr() = v.scsi->addr();
      *p->mutable_target() = v.scsi->target();
      p->set_state(v.scsi->state());
      p->set_cached_wwid(v.scsi->cached().wwid());
      if (a.cached_wwid().empty()) a.set_cached_wwid(v.scsi->cached().wwid());
    }
    if (v.verified) {
      p->set_verified_wwid(v.verified->wwid());
      p->set_verified_serial(v.verified->serial());
    }
  }
  if (a.paths_size() == 0 && it != devs_.end() && it->second.v.scsi) {  // an sd itself
    const auto& v = it->second.v;
    auto* p = a.add_paths();
    p->set_name(v.name);
    p->set_dev(d);
    *p->mutable_addr() = v.scsi->addr();
    *p->mutable_target() = v.scsi->target();
    p->set_state(v.scsi->state());
    p->set_cached_wwid(v.scsi->cached().wwid());
    a.set_cached_wwid(v.scsi->cached().wwid());
    if (v.verified) p->set_verified_wwid(v.verified->wwid());
  }
  auto id = identity_of(d);
  if (!id.wwid.empty()) a.set_verified_wwid(id.wwid);
}

void Correlator::fire(v1::Alert a, Output& out) {
  if (collecting_) collecting_->push_back(a.id());
  auto it = active_.find(a.id());
  if (it != active_.end()) {
    it->second.set_count(it->second.count() + 1);
    return;
  }
  active_[a.id()] = a;
  out.alerts.push_back(std::move(a));
}

void Correlator::resolve(const std::string& id, const v1::Event& trigger, Output& out) {
  auto it = active_.find(id);
  if (it == active_.end()) return;
  v1::Alert a = it->second;
  a.set_state(v1::ALERT_RESOLVED);
  a.set_unix_ms(trigger.unix_ms() ? trigger.unix_ms() : now_unix_ms_);
  a.set_ts_ns(trigger.ts_ns());
  *a.mutable_trigger() = trigger;
  a.set_summary("resolved: " + a.summary());
  active_.erase(it);
  out.alerts.push_back(std::move(a));
}

std::vector<v1::Alert> Correlator::active_alerts() const {
  std::vector<v1::Alert> out;
  for (const auto& [id, a] : active_) out.push_back(a);
  return out;
}

// ---------------------------------------------------------------- events

void Correlator::on_event(const v1::Event& ev, Output& out) {
  events_++;
  if (ev.ts_ns() > now_ns_) now_ns_ = ev.ts_ns();
  if (ev.unix_ms() > now_unix_ms_) now_unix_ms_ = ev.unix_ms();
  switch (ev.body_case()) {
    case v1::Event::kFlow:
      on_flow(ev, out);
      break;
    case v1::Event::kEdge:
      link(ev.edge().upper(), ev.edge().lower());
      if (!ev.edge().upper_name().empty()) dev(ev.edge().upper()).v.name = ev.edge().upper_name();
      if (!ev.edge().lower_name().empty()) dev(ev.edge().lower()).v.name = ev.edge().lower_name();
      break;
    case v1::Event::kScsiBind: {
      const auto& b = ev.scsi_bind();
      auto& d = dev(b.dev());
      if (!b.dev_name().empty()) d.v.name = b.dev_name();
      if (!d.v.scsi) d.v.scsi.emplace();
      *d.v.scsi->mutable_addr() = b.addr();
      d.v.scsi->set_name(d.v.name);
      d.v.scsi->set_dev(b.dev());
      request_verify(b.dev(), b.has_previous() ? v1::VERIFY_REBIND : v1::VERIFY_NEW_DEVICE, out);
      out.topology_stale = true;
      break;
    }
    case v1::Event::kScsiError:
      on_error(ev, out);
      break;
    case v1::Event::kLifecycle:
      on_lifecycle(ev, out);
      break;
    case v1::Event::kIdentity:
      on_identity(ev, out);
      break;
    case v1::Event::kInventory:
      on_inventory(ev, out);
      break;
    case v1::Event::kTopology:
      on_topology(ev, out);
      break;
    case v1::Event::kBindings:
      bindings_.load(ev.bindings());
      gen_++;
      break;
    case v1::Event::kGuard:
      on_guard(ev, out);
      break;
    default:
      break;
  }
}

void Correlator::on_flow(const v1::Event& ev, Output& out) {
  const auto& f = ev.flow();
  auto& d = dev(f.dev());
  if (!f.dev_name().empty()) d.v.name = f.dev_name();
  if (!f.instance().uuid().empty() || !f.instance().name().empty()) {
    auto& pids = instance_pids_[f.instance().uuid().empty() ? f.instance().name() : f.instance().uuid()];
    if (pids.size() < 64) pids.insert(f.pid());
    evaluate_instance_flow(ev, out);
    return;
  }
  // A host process: fine unless it touches a volume device and is not allowlisted.
  for (const auto& prefix : opt_.host_allowlist)
    if (f.comm().rfind(prefix, 0) == 0) return;
  if (!is_volume_device(f.dev())) return;
  auto a = make_alert(v1::HOST_PROCESS_ACCESS, f.comm() + "/" + f.dev(), ev);
  a.set_pid(f.pid());
  a.set_comm(f.comm());
  *a.mutable_instance() = f.instance();
  describe_device(f.dev(), a);
  a.set_summary("host process " + f.comm() + " (pid " + std::to_string(f.pid()) + ") does " +
                v1::Op_Name(f.op()) + " I/O to volume device " + (d.v.name.empty() ? f.dev() : d.v.name));
  fire(std::move(a), out);
}

void Correlator::evaluate_instance_flow(const v1::Event& ev, Output& out) {
  const auto& f = ev.flow();
  const auto& me = f.instance();
  std::string vkey = (me.uuid().empty() ? me.name() : me.uuid()) + "|" + f.dev();
  auto vit = verdicts_.find(vkey);
  if (vit != verdicts_.end() && vit->second.gen == gen_) {
    for (const auto& id : vit->second.alert_ids) {
      auto a = active_.find(id);
      if (a != active_.end()) a->second.set_count(a->second.count() + 1);
    }
    return;
  }
  std::vector<std::string> fired;
  collecting_ = &fired;
  judge_instance_flow(ev, out);
  collecting_ = nullptr;
  if (identity_of(f.dev()).complete) {  // an unverified device is judged again when its answer comes
    if (verdicts_.size() > 65536) verdicts_.clear();
    verdicts_[vkey] = Verdict{gen_, std::move(fired)};
  }
}

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
          return (!me.uuid().empty() && x.instance_uuid == me.uuid()) || (!me.name().empty() && x.instance_name == me.name());
        });
        if (!o.empty() && !mine_here) {
          id.wwid = lt->second.v.verified->wwid();
          id.serial = lt->second.v.verified->serial();
          break;
        }
      }
    auto owners = owners_of(id.wwid, id.serial);
    bool mine = std::any_of(owners.begin(), owners.end(), [&](const Owner& o) {
      return (!me.uuid().empty() && o.instance_uuid == me.uuid()) || (!me.name().empty() && o.instance_name == me.name());
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

// The guard refused (or would refuse) I/O: no bio was submitted, so this is
// the only sign of the attempt. Judge it like a flow, and say it was refused.
void Correlator::on_guard(const v1::Event& ev, Output& out) {
  const auto& g = ev.guard();
  v1::Event as_flow = ev;
  auto* f = as_flow.mutable_flow();
  f->set_pid(g.pid());
  f->set_tid(g.pid());
  f->set_comm(g.comm());
  f->set_dev(g.dev());
  f->set_dev_name(g.dev_name());
  f->set_op(g.write() ? v1::OP_WRITE : v1::OP_READ);
  *f->mutable_instance() = g.instance();
  size_t before = out.alerts.size();
  if (!g.instance().uuid().empty() || !g.instance().name().empty()) evaluate_instance_flow(as_flow, out);
  for (size_t i = before; i < out.alerts.size(); ++i) {
    out.alerts[i].set_denied(g.denied());
    *out.alerts[i].mutable_trigger() = ev;
    active_[out.alerts[i].id()].set_denied(g.denied());
  }
  const auto& me = g.instance();
  // A device closed by the kernel (a scan, a reinstated path) refuses its own
  // holder until re-verified: expected and brief, counted in the guard's
  // metrics, not an alert. Refusals of a verified or quarantined device are.
  if (g.state() == "unverified") return;
  auto a = make_alert(v1::GUARD_DENIED, label(me) + "/" + g.dev(), ev);
  *a.mutable_instance() = me;
  a.set_pid(g.pid());
  a.set_comm(g.comm());
  a.set_denied(g.denied());
  describe_device(g.dev(), a);
  a.set_summary(std::string(g.denied() ? "guard refused " : "guard would refuse (monitor) ") +
                (g.write() ? "a write" : "a read") + " by " + label(me) + " (pid " + std::to_string(g.pid()) +
                ", " + g.comm() + ") on " + (g.dev_name().empty() ? g.dev() : g.dev_name()) + " (" + g.state() + ")");
  fire(std::move(a), out);
}

void Correlator::on_error(const v1::Event& ev, Output& out) {
  const auto& e = ev.scsi_error();
  if (e.dev().empty()) return;
  auto& d = dev(e.dev());
  if (!e.dev_name().empty()) d.v.name = e.dev_name();
  const auto& s = e.sense();
  if (s.key() == 5 && (s.asc() == 0x25 || s.asc() == 0x68)) {  // LUN gone: unknown until a check says what is there
    d.v.suspect = true;
    request_verify(e.dev(), v1::VERIFY_ERROR_RECOVERY, out);
  }
  if (s.key() == 6 && (s.asc() == 0x3f || (s.asc() == 0x2a && s.ascq() == 0x09))) {
    d.v.suspect = true;
    request_verify(e.dev(), v1::VERIFY_UNIT_ATTENTION, out);
  }
}

void Correlator::on_lifecycle(const v1::Event& ev, Output& out) {
  const auto& l = ev.lifecycle();
  constexpr uint32_t kWild = 0xffffffffU;
  auto each_scsi = [&](const std::function<bool(const v1::ScsiDevice&)>& pred, v1::VerifyReason why) {
    for (auto& [k, d] : devs_)
      if (d.v.scsi && pred(*d.v.scsi)) request_verify(k, why, out);
  };
  switch (l.kind()) {
    case v1::LC_SCSI_HOST_SCAN:
      each_scsi(
          [&](const v1::ScsiDevice& s) {
            return s.addr().host() == l.addr().host() &&
                   (l.addr().lun() == ~0ULL || l.addr().lun() == kWild || s.addr().lun() == l.addr().lun()) &&
                   (l.addr().target() == kWild || s.addr().target() == l.addr().target());
          },
          v1::VERIFY_SCAN);
      out.topology_stale = true;
      break;
    case v1::LC_SCSI_DEVICE_ADD:
    case v1::LC_SCSI_DEVICE_RESCAN:
      each_scsi([&](const v1::ScsiDevice& s) { return s.addr().hctl() == l.addr().hctl(); },
                l.kind() == v1::LC_SCSI_DEVICE_ADD ? v1::VERIFY_NEW_DEVICE : v1::VERIFY_RESCAN);
      out.topology_stale = true;
      break;
    case v1::LC_SCSI_DEVICE_REMOVE:
      out.topology_stale = true;
      break;
    case v1::LC_ISCSI_SESSION_UNBLOCK:
      each_scsi([&](const v1::ScsiDevice& s) { return s.session() == l.session(); }, v1::VERIFY_SESSION_UNBLOCK);
      break;
    case v1::LC_DM_PATH_REINSTATE:
      if (!l.path().empty()) {
        if (!l.dev().empty()) link(l.dev(), l.path());
        dev(l.path()).v.path_failed = false;
        gen_++;
        request_verify(l.path(), v1::VERIFY_PATH_REINSTATE, out);
      }
      break;
    case v1::LC_DM_PATH_FAIL:
      if (!l.path().empty() && !l.dev().empty()) link(l.dev(), l.path());
      if (!l.path().empty()) {
        dev(l.path()).v.path_failed = true;
        gen_++;
      }
      break;
    case v1::LC_SCSI_DEVICE_EVENT:
      each_scsi([&](const v1::ScsiDevice& s) { return s.addr().hctl() == l.addr().hctl(); },
                v1::VERIFY_UNIT_ATTENTION);
      break;
    default:
      break;
  }
}

void Correlator::on_topology(const v1::Event& ev, Output& out) {
  const auto& t = ev.topology();
  invalidate();
  std::set<std::string> present;
  for (const auto& s : t.devices()) {
    if (s.dev().empty()) continue;
    present.insert(s.dev());
    bool is_new = devs_.find(s.dev()) == devs_.end() || !devs_[s.dev()].v.scsi;
    auto& d = dev(s.dev());
    d.v.name = s.name();
    d.v.scsi = s;
    if (is_new || !d.v.verified) request_verify(s.dev(), v1::VERIFY_NEW_DEVICE, out);
  }
  for (const auto& m : t.maps()) {
    if (m.dev().empty()) continue;
    present.insert(m.dev());
    auto& d = dev(m.dev());
    d.v.name = m.dm();
    d.v.is_dm = true;
    d.v.map_wwid = m.wwid();
    // Only paths sysfs still shows: a deleted sd device can linger in the
    // map's table (and as a dangling slaves/ link) and must not hold the
    // map's identity unverifiable forever.
    std::vector<std::string> paths;
    for (const auto& p : m.paths())
      if (auto* x = find_name(p); x && present.count(x->v.dev)) paths.push_back(x->v.dev);
    // The map's current paths replace what we knew (paths come and go).
    for (const auto& old : d.v.lowers) {
      auto& up = dev(old).v.uppers;
      up.erase(std::remove(up.begin(), up.end(), m.dev()), up.end());
    }
    devs_[m.dev()].v.lowers.clear();
    for (const auto& p : paths) link(m.dev(), p);
  }
  // SCSI devices that sysfs no longer shows are gone.
  for (auto it = devs_.begin(); it != devs_.end();) {
    if (it->second.v.scsi && !present.count(it->first)) {
      for (const auto& u : uppers_closure(it->first)) pending_flows_.erase(u);
      for (const auto& u : it->second.v.uppers) {
        auto& lw = dev(u).v.lowers;
        lw.erase(std::remove(lw.begin(), lw.end(), it->first), lw.end());
      }
      it = devs_.erase(it);
    } else {
      if (it->second.v.is_dm && !present.count(it->first)) it->second.v.is_dm = false;
      ++it;
    }
  }
  try_bind_all(out);
  check_orphans(ev, out);
}

void Correlator::on_inventory(const v1::Event& ev, Output& out) {
  sources_[ev.inventory().kind()] = ev.inventory();
  invalidate();
  try_bind_all(out);
  check_divergence(ev, out);
  check_orphans(ev, out);
  // Forget bindings of (instance, volume) pairs no source mentions any more.
  std::set<std::string> known;
  for (const auto* a : all_attachments()) known.insert(BindingStore::key(a->instance_uuid(), a->volume_id()));
  bool have_sources = std::any_of(sources_.begin(), sources_.end(),
                                  [](const auto& s) { return s.second.last_good_unix_ms() > 0; });
  if (have_sources) {
    auto all = bindings_.snapshot();
    for (const auto& b : all.bindings())
      if (!known.count(BindingStore::key(b.instance_uuid(), b.volume_id())))
        if (bindings_.erase(b.instance_uuid(), b.volume_id())) {
          out.bindings_changed = true;
          gen_++;
        }
  }
}

void Correlator::on_identity(const v1::Event& ev, Output& out) {
  const auto& c = ev.identity();
  auto* d = find_dev(c.dev());
  if (!d && !c.ok()) return;  // a failed answer for a device already gone: nothing to keep
  if (!d) d = &dev(c.dev());
  if (!c.dev_name().empty()) d->v.name = c.dev_name();
  if (!c.ok()) {
    d->v.verify_error = c.error();
    d->v.suspect = true;  // unknown, not the last good identity: the verifier retries it
    gen_++;
    return;
  }
  std::string old = d->v.verified ? d->v.verified->wwid() : "";
  gen_++;
  d->v.verified = c.identity();
  d->v.verified_unix_ms = ev.unix_ms();
  d->v.verify_error.clear();
  d->v.suspect = false;
  bool changed = !old.empty() && old != c.identity().wwid();
  if (changed)
    for (const auto& u : uppers_closure(c.dev())) out.rearm.push_back(u);
  try_bind_all(out);  // first, so a new owner is known when the old holder's change is reported
  for (const auto& x : uppers_closure(c.dev())) check_device(x, ev, out);

  // Flows that waited for this identity.
  std::vector<v1::Event> ready;
  for (const auto& x : uppers_closure(c.dev())) {
    auto it = pending_flows_.find(x);
    if (it == pending_flows_.end() || !identity_of(x).complete) continue;
    // Every waiting flow is judged, however long its answer took (a device
    // removed meanwhile dropped its waiting flows with it, in on_topology).
    for (auto& f : it->second) ready.push_back(std::move(f));
    pending_flows_.erase(it);
  }
  for (const auto& f : ready) evaluate_instance_flow(f, out);
}

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
    std::string subject = (att->instance_name().empty() ? att->instance_uuid() : att->instance_name()) + "/" +
                          att->volume_id() + "/" + x;
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
    a.set_summary(label(a.instance()) + " holds " + (v.name.empty() ? x : v.name) + " for volume " +
                  att->volume_id() + " (" + b->wwid() + ") but it now answers as " + id.wwid +
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
      if (const auto* inst = instance_by_uuid(a.instance_uuid())) *al.mutable_instance() = *inst;
      else al.mutable_instance()->set_uuid(a.instance_uuid());
      al.set_volume_id(a.volume_id());
      if (!a.resolved_dev().empty()) describe_device(a.resolved_dev(), al);
      al.set_summary("libvirt says " + label(al.instance()) + " has volume " + a.volume_id() + " at " +
                     a.device_path() + (absent ? " but Cinder has no attachment record for it"
                                               : " but Cinder says the attachment is " + v1::AttachmentStatus_Name(st)));
      fire(std::move(al), out);
    }
  }
  std::vector<std::string> to_resolve;
  for (const auto& [id, a] : active_)
    if (a.rule() == v1::ATTACHMENT_DIVERGENCE && !firing.count(id)) to_resolve.push_back(id);
  for (const auto& id : to_resolve) resolve(id, trigger, out);
}

std::vector<std::string> Correlator::orphans() const {
  std::vector<std::string> out;
  bool have_inventory = std::any_of(sources_.begin(), sources_.end(),
                                    [](const auto& s) { return s.second.last_good_unix_ms() > 0; });
  if (!have_inventory) return out;
  std::set<std::string> explained;
  for (const auto* a : all_attachments()) {
    if (gone(a->status())) continue;
    for (const auto& d : attachment_devs(*a)) explained.insert(d);
  }
  for (const auto& [k, d] : devs_) {
    bool candidate = (d.v.scsi && (d.v.scsi->transport() == v1::TRANSPORT_ISCSI ||
                                   d.v.scsi->transport() == v1::TRANSPORT_FC)) ||
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
      resolve("ORPHAN_DEVICE/" + it->first, trigger, out);
      it = orphan_since_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& d : now_orphans) {
    auto [it, inserted] = orphan_since_.emplace(d, now_ns_);
    if (now_ns_ - it->second < opt_.orphan_grace_ns) continue;
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

// ---------------------------------------------------------------- views

std::vector<DeviceView> Correlator::devices() const {
  std::vector<DeviceView> out;
  for (const auto& [k, d] : devs_) out.push_back(d.v);
  return out;
}

std::vector<std::pair<v1::Attachment, std::vector<std::string>>> Correlator::attachment_devices() const {
  std::vector<std::pair<v1::Attachment, std::vector<std::string>>> out;
  for (const auto* a : all_attachments()) {
    auto s = attachment_devs(*a);
    out.emplace_back(*a, std::vector<std::string>(s.begin(), s.end()));
  }
  return out;
}

}  // namespace lunwatch::detect
