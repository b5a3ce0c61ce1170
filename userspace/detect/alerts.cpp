// Alerts: made, described (device, paths, identities), fired once by id and
// resolved.
#include <algorithm>
#include <functional>

#include "detect/correlator.h"
#include "detect/correlator_internal.h"
#include "topology/vpd.h"

namespace lunwatch::detect {

using namespace internal;  // NOLINT(google-build-using-namespace)

namespace {
// The event an alert names as its trigger, as the alert carries it: a source's
// or the topology's snapshot without its records (which, copied into every
// alert, made each ORPHAN_DEVICE line at 256 LUNs 136 KB). Its seq finds the
// whole event in the recording and in a capture dump.
void set_trigger(v1::Alert& a, const v1::Event& ev) {
  auto* t = a.mutable_trigger();
  *t = ev;
  if (t->has_inventory()) {
    t->mutable_inventory()->clear_attachments();
    t->mutable_inventory()->clear_instances();
  } else if (t->has_topology()) {
    t->mutable_topology()->clear_devices();
    t->mutable_topology()->clear_maps();
    t->mutable_topology()->clear_sessions();
  } else if (t->has_bindings()) {
    t->mutable_bindings()->clear_bindings();
  }
}
}  // namespace

std::string Correlator::alert_id(v1::Rule rule, const std::string& subject) {
  return v1::Rule_Name(rule) + "/" + subject;
}

v1::Alert Correlator::make_alert(v1::Rule rule, const std::string& subject, const v1::Event& trigger) const {
  v1::Alert a;
  a.set_id(alert_id(rule, subject));
  a.set_rule(rule);
  a.set_severity(rule_severity(rule));
  a.set_state(v1::ALERT_FIRING);
  a.set_unix_ms(trigger.unix_ms() ? trigger.unix_ms() : now_unix_ms_);
  a.set_ts_ns(trigger.ts_ns());
  if (deciding_) {
    // A flow judged again: the I/O stays the trigger, the time is when the
    // change that decided the verdict arrived.
    a.set_unix_ms(deciding_->unix_ms() ? deciding_->unix_ms() : now_unix_ms_);
    a.set_ts_ns(deciding_->ts_ns() ? deciding_->ts_ns() : now_ns_);
  }
  a.set_count(1);
  a.set_hostname(opt_.hostname);
  set_trigger(a, trigger);
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
    p->set_identity_unknown(v.suspect);
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
    p->set_identity_unknown(v.suspect);
  }
  auto id = identity_of(d);
  if (!id.wwid.empty()) a.set_verified_wwid(id.wwid);
}

void Correlator::hit(const std::string& id) {
  if (collecting_) collecting_->push_back(id);
  if (!deciding_) {
    last_hit_ns_[id] = now_ns_;
    probing_.erase(id);
  }
}

bool Correlator::refire(const std::string& id) {
  auto it = active_.find(id);
  if (it == active_.end()) return false;
  hit(id);
  if (!deciding_) it->second.set_count(it->second.count() + 1);  // a re-judgement is no new I/O
  return true;
}

void Correlator::fire(v1::Alert a, Output& out) {
  if (refire(a.id())) return;
  hit(a.id());
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
  set_trigger(a, trigger);
  a.set_summary("resolved: " + a.summary());
  active_.erase(it);
  last_hit_ns_.erase(id);
  probing_.erase(id);
  out.alerts.push_back(std::move(a));
}

// Alerts on single attempts (a host process's I/O, a guard refusal) have no
// condition that clears: they resolve after a quiet period without a repeat.
// The kernel reports a flow once, so a quiet HOST_PROCESS_ACCESS first has
// its flow re-armed: I/O in the next period is a repeat (count), none
// resolves it; a recurrence after that fires again.
void Correlator::resolve_quiet(const v1::Event& trigger, Output& out) {
  if (opt_.alert_quiet_ns == 0 || now_ns_ < quiet_checked_ns_ + 1'000'000'000ULL) return;
  quiet_checked_ns_ = now_ns_;
  std::vector<std::pair<std::string, std::string>> quiet;  // id, device
  for (const auto& [id, a] : active_) {
    if (a.rule() != v1::HOST_PROCESS_ACCESS && a.rule() != v1::GUARD_DENIED) continue;
    auto h = last_hit_ns_.find(id);
    uint64_t last = h == last_hit_ns_.end() ? a.ts_ns() : h->second;
    if (now_ns_ >= last + opt_.alert_quiet_ns)
      quiet.emplace_back(id, a.rule() == v1::HOST_PROCESS_ACCESS ? a.device() : "");
  }
  for (const auto& [id, d] : quiet) {
    if (!d.empty() && !probing_.count(id)) {
      probing_.insert(id);
      last_hit_ns_[id] = now_ns_;
      if (std::find(out.rearm.begin(), out.rearm.end(), d) == out.rearm.end()) out.rearm.push_back(d);
      continue;
    }
    resolve(id, trigger, out);
  }
}

std::vector<v1::Alert> Correlator::active_alerts() const {
  std::vector<v1::Alert> out;
  for (const auto& [id, a] : active_) out.push_back(a);
  return out;
}

}  // namespace lunwatch::detect
