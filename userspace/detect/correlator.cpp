// The correlator's front door: events in, in order; each kind goes to its
// handler here, which updates the device graph (device_graph.cpp) and the
// attachment index (attachment_index.cpp) and asks the rules (rules/*.cpp)
// for a verdict; alerts are made in alerts.cpp.
#include "detect/correlator.h"

#include <algorithm>
#include <functional>

#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

const char* rule_name(v1::Rule r) { return v1::Rule_Name(r).c_str(); }

Correlator::Correlator(CorrelatorOptions options) : opt_(std::move(options)) {}

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

// ---------------------------------------------------------------- events

void Correlator::rearm(const std::string& d, Output& out) {
  if (std::find(out.rearm.begin(), out.rearm.end(), d) == out.rearm.end()) out.rearm.push_back(d);
  forget_flows([&](const v1::Event& f) { return f.flow().dev() == d; });
}

void Correlator::forget_flows(const std::function<bool(const v1::Event&)>& pred) {
  for (auto it = live_flows_.begin(); it != live_flows_.end();) {
    if (pred(it->second))
      it = live_flows_.erase(it);
    else
      ++it;
  }
}

void Correlator::rejudge(const v1::Event& decided_by, Output& out) {
  if (live_flows_.empty()) return;
  std::vector<v1::Event> todo;
  for (const auto& [key, f] : live_flows_) {
    auto vit = verdicts_.find(key);
    if (vit != verdicts_.end() && vit->second.gen == gen_) continue;
    if (!identity_of(f.flow().dev()).complete) continue;  // judged when its answer comes
    todo.push_back(f);
  }
  std::sort(todo.begin(), todo.end(), [](const v1::Event& a, const v1::Event& b) { return a.seq() < b.seq(); });
  deciding_ = &decided_by;
  rejudged_ += todo.size();
  for (const auto& f : todo) evaluate_instance_flow(f, out);
  deciding_ = nullptr;
}

void Correlator::on_event(const v1::Event& ev, Output& out) {
  uint64_t gen_before = gen_;
  events_++;
  if (ev.ts_ns() > now_ns_) now_ns_ = ev.ts_ns();
  if (ev.unix_ms() > now_unix_ms_) now_unix_ms_ = ev.unix_ms();
  switch (ev.body_case()) {
    case v1::Event::kFlow: on_flow(ev, out); break;
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
    case v1::Event::kScsiError: on_error(ev, out); break;
    case v1::Event::kLifecycle: on_lifecycle(ev, out); break;
    case v1::Event::kIdentity: on_identity(ev, out); break;
    case v1::Event::kInventory: on_inventory(ev, out); break;
    case v1::Event::kTopology: on_topology(ev, out); break;
    case v1::Event::kBindings:
      bindings_.load(ev.bindings());
      gen_++;
      break;
    case v1::Event::kGuard: on_guard(ev, out); break;
    default: break;
  }
  // A verdict held back by a grace is due again once the grace has passed.
  if (rejudge_at_ns_ != 0 && now_ns_ >= rejudge_at_ns_ && !ev.has_flow()) {
    rejudge_at_ns_ = 0;
    gen_++;
  }
  // What decides a flow's verdict changed: the flows the kernel still holds
  // are judged again now, not only on their next new flow (there may be none).
  if (gen_ != gen_before && !ev.has_flow()) rejudge(ev, out);
  resolve_quiet(ev, out);
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
  a.set_summary("host process " + f.comm() + " (pid " + std::to_string(f.pid()) + ") does " + v1::Op_Name(f.op()) +
                " I/O to volume device " + (d.v.name.empty() ? f.dev() : d.v.name));
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
    // What this flow's previous verdict raised and this one does not has
    // cleared (the owner detached, the attachment is back), unless another
    // live flow's verdict still holds it: resolved, so a recurrence fires again.
    if (vit != verdicts_.end())
      for (const auto& id : vit->second.alert_ids) {
        if (std::find(fired.begin(), fired.end(), id) != fired.end()) continue;
        bool held = false;
        for (const auto& [k, v] : verdicts_)
          if (k != vkey && live_flows_.count(k) &&
              std::find(v.alert_ids.begin(), v.alert_ids.end(), id) != v.alert_ids.end())
            held = true;
        if (!held) resolve(id, deciding_ ? *deciding_ : ev, out);
      }
    if (verdicts_.size() > 65536) verdicts_.clear();
    verdicts_[vkey] = Verdict{gen_, std::move(fired)};
  }
  if (!deciding_ && (live_flows_.size() < 16384 || live_flows_.count(vkey))) live_flows_[vkey] = ev;
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
      // Its number may come back as another disk before the next topology
      // refresh (a LUN re-scanned under the same name): what it answered is
      // no longer known, so I/O on it and on its maps waits for a check
      // (the re-created device's first flow is judged against the new answer).
      if (auto* d = l.dev().empty() ? nullptr : find_dev(l.dev()); d && d->v.verified) {
        d->v.suspect = true;
        gen_++;
      }
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
      each_scsi([&](const v1::ScsiDevice& s) { return s.addr().hctl() == l.addr().hctl(); }, v1::VERIFY_UNIT_ATTENTION);
      break;
    default: break;
  }
}

void Correlator::on_topology(const v1::Event& ev, Output& out) {
  const auto& t = ev.topology();
  // A refresh that finds the stack as it was re-judges nothing: the graph's
  // content before and after decides (link() bumps gen_ while re-linking).
  const auto graph_before = graph_content();
  const uint64_t gen_before = gen_;
  index_.dirty = true;
  std::set<std::string> present, unsettled;  // unsettled: H:C:T:L listed, no device read
  for (const auto& s : t.devices()) {
    if (s.dev().empty()) {
      if (!s.addr().hctl().empty()) unsettled.insert(s.addr().hctl());
      continue;
    }
    present.insert(s.dev());
    bool is_new = devs_.find(s.dev()) == devs_.end() || !devs_[s.dev()].v.scsi;
    auto& d = dev(s.dev());
    d.v.name = s.name();
    d.v.scsi = s;
    d.unsettled_rounds = 0;
    if (is_new || !d.v.verified) request_verify(s.dev(), v1::VERIFY_NEW_DEVICE, out);
  }
  // A disk whose H:C:T:L sysfs still lists but could not be read this time (its
  // state or block device missing while a scan or rebind runs) keeps its view,
  // identity and flows for up to three snapshots, each asked for soon: a
  // transient read is no removal (that would forget the path's identity and
  // put a verified path's address out of the next alert).
  if (!unsettled.empty())
    for (auto& [k, d] : devs_)
      if (!present.count(k) && d.v.scsi && unsettled.count(d.v.scsi->addr().hctl()) && d.unsettled_rounds < 3) {
        d.unsettled_rounds++;
        present.insert(k);
        out.topology_stale = true;
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
  // SCSI devices and multipath maps that sysfs no longer shows are gone: a
  // flushed map is no ORPHAN_DEVICE (a map seen only in kernel events, never
  // in sysfs, has no map_wwid and stays).
  for (auto it = devs_.begin(); it != devs_.end();) {
    bool gone_map = !it->second.v.map_wwid.empty() && !present.count(it->first);
    if (gone_map) {
      for (const auto& l : it->second.v.lowers) {
        auto lt = devs_.find(l);
        if (lt == devs_.end()) continue;
        auto& up = lt->second.v.uppers;
        up.erase(std::remove(up.begin(), up.end(), it->first), up.end());
      }
    }
    if ((it->second.v.scsi || gone_map) && !present.count(it->first)) {
      for (const auto& u : uppers_closure(it->first)) pending_flows_.erase(u);
      forget_flows([&](const v1::Event& f) { return f.flow().dev() == it->first; });
      for (const auto& u : it->second.v.uppers) {
        auto& lw = dev(u).v.lowers;
        lw.erase(std::remove(lw.begin(), lw.end(), it->first), lw.end());
      }
      it = devs_.erase(it);
    } else {
      if (it->second.v.is_dm && !present.count(it->first)) {
        it->second.v.is_dm = false;
        forget_flows([&](const v1::Event& f) { return f.flow().dev() == it->first; });
      }
      ++it;
    }
  }
  index_.dirty = true;  // whatever read it meanwhile read a graph half rebuilt
  gen_ = gen_before;
  if (graph_content() != graph_before) gen_++;
  try_bind_all(out);
  check_orphans(ev, out);
}

namespace {
// A snapshot's content as judging sees it: without the times of its attempts
// and its error text (a source answering the same again changes no verdict).
std::string judged_content(const v1::SourceSnapshot& s) {
  v1::SourceSnapshot c = s;
  c.set_last_good_unix_ms(s.last_good_unix_ms() > 0 ? 1 : 0);
  c.clear_last_attempt_unix_ms();
  c.clear_last_error();
  c.clear_errors_total();
  return c.SerializeAsString();
}
}  // namespace

void Correlator::on_inventory(const v1::Event& ev, Output& out) {
  sources_[ev.inventory().kind()] = ev.inventory();
  index_.dirty = true;  // the index points into sources_
  auto content = judged_content(ev.inventory());
  auto& last = source_content_[ev.inventory().kind()];
  if (content != last) {
    last = std::move(content);
    gen_++;
  }
  if (ev.inventory().kind() == v1::SOURCE_LIBVIRT && ev.inventory().last_good_unix_ms() > 0) {
    // A flow whose process is no longer its instance's qemu (the domain is
    // gone, or runs under another pid) is no longer active: not judged again.
    std::map<std::string, uint32_t> pid_of;
    for (const auto& i : ev.inventory().instances()) pid_of[i.uuid()] = i.pid();
    forget_flows([&](const v1::Event& f) {
      const auto& u = f.flow().instance().uuid();
      if (u.empty()) return false;
      auto it = pid_of.find(u);
      return it == pid_of.end() || (it->second != 0 && it->second != f.flow().pid());
    });
  }
  try_bind_all(out);
  // This host's disks (libvirt) that Cinder's list has had: their later absence
  // from the list is a deletion, not a list older than the disk.
  if (auto lv = sources_.find(v1::SOURCE_LIBVIRT); lv != sources_.end()) {
    std::set<std::string> local;
    for (const auto& a : lv->second.attachments()) {
      auto pair = BindingStore::key(a.instance_uuid(), a.volume_id());
      local.insert(pair);
      if (!lookup(index().by_pair, pair).empty()) cinder_listed_.insert(pair);
    }
    std::erase_if(cinder_listed_, [&](const std::string& k) { return !local.count(k); });
  }
  check_divergence(ev, out);
  check_orphans(ev, out);
  // Forget bindings of (instance, volume) pairs no source mentions any more.
  std::set<std::string> known;
  for (const auto* a : all_attachments()) known.insert(BindingStore::key(a->instance_uuid(), a->volume_id()));
  bool have_sources =
      std::any_of(sources_.begin(), sources_.end(), [](const auto& s) { return s.second.last_good_unix_ms() > 0; });
  if (have_sources && bindings_.erase_unless(known) > 0) {
    out.bindings_changed = true;
    gen_++;
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
  // A periodic check that finds what the last one found changes no verdict:
  // judged again only when the identity is new, different, or was unknown.
  bool same = d->v.verified && !d->v.suspect && d->v.verify_error.empty() &&
              d->v.verified->SerializeAsString() == c.identity().SerializeAsString();
  if (!same) gen_++;
  d->v.verified = c.identity();
  d->v.verified_unix_ms = ev.unix_ms();
  d->v.verify_error.clear();
  d->v.suspect = false;
  bool changed = !old.empty() && old != c.identity().wwid();
  if (changed)
    for (const auto& u : uppers_closure(c.dev())) rearm(u, out);
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

// ---------------------------------------------------------------- views

std::vector<DeviceView> Correlator::devices() const {
  std::vector<DeviceView> out;
  for (const auto& [k, d] : devs_) out.push_back(d.v);
  return out;
}

const DeviceView* Correlator::device_view(const std::string& dev) const {
  auto it = devs_.find(dev);
  return it == devs_.end() ? nullptr : &it->second.v;
}

std::vector<const DeviceView*> Correlator::device_views() const {
  std::vector<const DeviceView*> out;
  out.reserve(devs_.size());
  for (const auto& [k, d] : devs_) out.push_back(&d.v);
  return out;
}

std::vector<Correlator::AttachmentDevices> Correlator::attachment_devices() const {
  std::vector<AttachmentDevices> out;
  auto all = all_attachments();
  out.reserve(all.size());
  for (const auto* a : all) out.push_back({*a, attachment_devs(*a)});
  return out;
}

}  // namespace lunwatch::detect
