#include "sinks/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/exposer.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <mutex>

#include "rules.h"

namespace lunwatch::sinks {

const std::vector<MetricInfo>& metric_catalog() {
  static const std::vector<MetricInfo> c = {
      {"lunwatch_build_info", "gauge", "Always 1; labels say what is running", {"version", "kernel", "libbpf"}},
      {"lunwatch_alerts_total", "counter", "Alerts raised (firing transitions)", {"rule", "severity"}},
      {"lunwatch_alerts_resolved_total", "counter", "Alerts that resolved", {"rule", "severity"}},
      {"lunwatch_alerts_active", "gauge", "Alerts firing now (unresolved)", {"rule", "severity"}},
      {"lunwatch_events_total", "counter", "Events consumed by the correlator, by type", {"type"}},
      {"lunwatch_kernel_drops_total", "counter", "Events or updates lost in the kernel, by cause", {"cause"}},
      {"lunwatch_kernel_resyncs_total",
       "counter",
       "Full re-reads of the topology and every identity after the kernel's ring buffer was full",
       {}},
      {"lunwatch_probe_state",
       "gauge",
       "1 for each hook's current state (attached, not_present, failed, disabled)",
       {"hook", "subsystem", "state"}},
      {"lunwatch_probe_runs_total", "counter", "BPF program runs (kernel.bpf_stats)", {"program", "hook"}},
      {"lunwatch_probe_run_seconds_total", "counter", "BPF program run time (kernel.bpf_stats)", {"program", "hook"}},
      {"lunwatch_flows_active", "gauge", "(process, device) flows the kernel is counting", {}},
      {"lunwatch_flow_bytes_total",
       "counter",
       "Bytes of block I/O by Nova instance (domain name, \"host\" for host processes) and volume",
       {"nova_instance", "volume", "op"}},
      {"lunwatch_scsi_devices", "gauge", "SCSI devices by state", {"state", "transport"}},
      {"lunwatch_multipath_maps", "gauge", "dm-multipath maps", {}},
      {"lunwatch_multipath_paths", "gauge", "Paths under multipath maps by SCSI device state", {"state"}},
      {"lunwatch_iscsi_sessions", "gauge", "iSCSI sessions by state", {"state"}},
      {"lunwatch_identity_verifications_total",
       "counter",
       "SG_IO identity verifications by result (ok, error, timeout)",
       {"result"}},
      {"lunwatch_identity_verify_queue",
       "gauge",
       "SG_IO identity checks by state: queued, running, retry_wait (failed, backing off), hung (past the deadline)",
       {"state"}},
      {"lunwatch_identity_verify_oldest_request_age_seconds",
       "gauge",
       "Age of the oldest identity check asked for and not answered yet (0 when none)",
       {}},
      {"lunwatch_identity_verify_retries_total",
       "counter",
       "Identity checks retried after a failed or timed-out one",
       {}},
      {"lunwatch_identity_held_paths", "gauge", "SCSI paths under devices that instances hold (libvirt)", {}},
      {"lunwatch_identity_held_last_good_age_max_seconds",
       "gauge",
       "Seconds since the least recently verified held path last answered with an identity",
       {}},
      {"lunwatch_identity_held_overdue_paths",
       "gauge",
       "Held paths whose last good verification is older than the configured bound",
       {}},
      {"lunwatch_identity_max_age_seconds",
       "gauge",
       "The configured bound on a held path's last good verification (verify_max_age)",
       {}},
      {"lunwatch_identity_unknown_devices",
       "gauge",
       "SCSI devices whose last identity check failed: identity unknown until one succeeds",
       {}},
      {"lunwatch_identity_mismatches_total",
       "counter",
       "Verified WWIDs that differ from the sysfs cache (the identity trap)",
       {}},
      {"lunwatch_iscsi_events_total", "counter", "iSCSI session and connection events", {"kind"}},
      {"lunwatch_path_events_total", "counter", "dm-multipath path events (fail, reinstate)", {"kind"}},
      {"lunwatch_scsi_events_total",
       "counter",
       "SCSI lifecycle events (scan, add, remove, rescan, unit attention)",
       {"kind"}},
      {"lunwatch_scsi_errors_total",
       "counter",
       "SCSI command errors reported by the kernel, by sense key",
       {"sense_key"}},
      {"lunwatch_attachment_records", "gauge", "Attachment records in each source's last good snapshot", {"source"}},
      {"lunwatch_attachment_source_errors_total", "counter", "Failed refreshes of an attachment source", {"source"}},
      {"lunwatch_attachment_source_last_success_age_seconds",
       "gauge",
       "Seconds since the source's last good refresh (staleness)",
       {"source"}},
      {"lunwatch_attachment_source_stale", "gauge", "1 when the source's last refresh failed", {"source"}},
      {"lunwatch_input_errors_total",
       "counter",
       "Malformed input rejected and counted (kept last good state)",
       {"source"}},
      {"lunwatch_attachment_source_refresh_running_seconds",
       "gauge",
       "Age of the attachment refresh in progress (0 when idle); refreshes run off the event loop",
       {"source"}},
      {"lunwatch_attachment_source_refresh_skipped_total",
       "counter",
       "Refresh ticks skipped because the source's previous refresh was still running (a slow or hung API)",
       {"source"}},
      {"lunwatch_attachment_source_partial",
       "gauge",
       "1 when the source's list covers only some projects (Cinder user without admin): absence in it proves nothing",
       {"source"}},
      {"lunwatch_attachment_source_suspect",
       "gauge",
       "1 when the source's last list was not applied: it lacked every attachment of the instances this host runs",
       {"source"}},
      {"lunwatch_attachment_source_suspect_total", "counter", "Attachment lists refused as suspect", {"source"}},
      {"lunwatch_loop_work_seconds_total",
       "counter",
       "Seconds the agent's event loop spent in each kind of work (kernel events, identity answers, attachment "
       "sources, each timer); the loop serves stop, timers and the ring buffer in turn",
       {"work"}},
      {"lunwatch_loop_work_longest_seconds",
       "gauge",
       "The longest single run of each kind of work since start (the longest the loop was held)",
       {"work"}},
      {"lunwatch_alert_write_failures_total",
       "counter",
       "Alert lines that could not be written (disk full, I/O error); each is kept and retried",
       {}},
      {"lunwatch_alerts_spooled", "gauge", "Alert lines held in memory until the alerts file takes them again", {}},
      {"lunwatch_alerts_dropped_total", "counter", "Alert lines lost: the in-memory spool was full", {}},
      {"lunwatch_dumps_written_total", "counter", "Forensic capture dumps written", {}},
      {"lunwatch_dump_bytes_total", "counter", "Bytes of capture dumps written", {}},
      {"lunwatch_dump_errors_total", "counter", "Capture dumps that could not be written", {"cause"}},
      {"lunwatch_guard_mode", "gauge", "1 for the guard's current mode (off, monitor, enforce)", {"mode"}},
      {"lunwatch_guard_denials_total", "counter", "I/O refused by the guard (enforce)", {}},
      {"lunwatch_guard_would_deny_total", "counter", "I/O the guard would refuse (monitor)", {}},
      {"lunwatch_guard_armed_devices", "gauge", "Block devices under guard policy", {}},
      {"lunwatch_audit_findings", "gauge", "Findings of the last posture audit", {"id", "severity"}},
      {"lunwatch_containment_actions_total",
       "counter",
       "Containment actions on confirmed leaks (offline SCSI device, pause domain), by result",
       {"action", "result"}},
  };
  return c;
}

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<prometheus::Exposer> exposer;
  std::map<std::string, prometheus::Family<prometheus::Counter>*> counters;
  std::map<std::string, prometheus::Family<prometheus::Gauge>*> gauges;
  std::map<std::string, uint64_t> last;     // absolute sources mirrored into counters
  std::map<std::string, bool> mismatching;  // device -> verified != cached at its last check
  std::mutex mu;

  Impl() {
    for (const auto& m : metric_catalog()) {
      if (m.type == "counter")
        counters[m.name] = &prometheus::BuildCounter().Name(m.name).Help(m.help).Register(*registry);
      else
        gauges[m.name] = &prometheus::BuildGauge().Name(m.name).Help(m.help).Register(*registry);
    }
  }
  prometheus::Counter& c(const std::string& name, const prometheus::Labels& l = {}) {
    return counters.at(name)->Add(l);
  }
  prometheus::Gauge& g(const std::string& name, const prometheus::Labels& l = {}) { return gauges.at(name)->Add(l); }
  // Mirror an absolute count (kernel counters, source error totals) into a counter.
  void mirror(const std::string& name, const prometheus::Labels& l, uint64_t value) {
    std::string key = name;
    for (const auto& [k, v] : l) key += "|" + k + "=" + v;
    uint64_t& prev = last[key];
    auto& ctr = c(name, l);
    if (value > prev) ctr.Increment(static_cast<double>(value - prev));
    prev = value;
  }
  void reset_family(const std::string& name) {
    // Zero every series of a gauge family whose label sets come and go.
    for (const auto& mf : registry->Collect())
      if (mf.name == name)
        for (const auto& m : mf.metric) {
          prometheus::Labels l;
          for (const auto& lp : m.label) l[lp.name] = lp.value;
          g(name, l).Set(0);
        }
  }
};

namespace {
std::string lower_enum(const std::string& s, const std::string& prefix) {
  std::string out = s.rfind(prefix, 0) == 0 ? s.substr(prefix.size()) : s;
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}
std::string severity_label(v1::Severity s) { return lower_enum(v1::Severity_Name(s), "SEVERITY_"); }
prometheus::Labels containment_labels(v1::ContainmentKind k, v1::ContainmentResult r) {
  return {{"action", lower_enum(v1::ContainmentKind_Name(k), "CONTAIN_")},
          {"result", lower_enum(v1::ContainmentResult_Name(r), "CONTAIN_")}};
}
}  // namespace

Metrics::Metrics() : impl_(std::make_unique<Impl>()) {
  // Series that exist from the start at 0, so increase() sees the first event.
  for (int r = v1::Rule_MIN; r <= v1::Rule_MAX; ++r) {
    auto rule = static_cast<v1::Rule>(r);
    if (rule == v1::RULE_UNKNOWN) continue;
    prometheus::Labels lab{{"rule", v1::Rule_Name(rule)}, {"severity", severity_label(rule_severity(rule))}};
    impl_->c("lunwatch_alerts_total", lab);
    impl_->c("lunwatch_alerts_resolved_total", lab);
  }
  for (const char* r : {"ok", "error", "timeout"}) impl_->c("lunwatch_identity_verifications_total", {{"result", r}});
  impl_->c("lunwatch_identity_mismatches_total");
  impl_->c("lunwatch_dumps_written_total");
  impl_->c("lunwatch_dump_bytes_total");
  for (const char* c : {"io", "full", "encode"}) impl_->c("lunwatch_dump_errors_total", {{"cause", c}});
  impl_->c("lunwatch_guard_denials_total");
  impl_->c("lunwatch_guard_would_deny_total");
  for (int k = v1::ContainmentKind_MIN; k <= v1::ContainmentKind_MAX; ++k)
    for (int r = v1::ContainmentResult_MIN; r <= v1::ContainmentResult_MAX; ++r)
      if (k != v1::CONTAIN_UNKNOWN && r != v1::CONTAIN_RESULT_UNKNOWN)
        impl_->c("lunwatch_containment_actions_total",
                 containment_labels(static_cast<v1::ContainmentKind>(k), static_cast<v1::ContainmentResult>(r)));
}
Metrics::~Metrics() = default;

Result<void> Metrics::serve(const std::string& listen) {
  try {
    impl_->exposer = std::make_unique<prometheus::Exposer>(listen);
    impl_->exposer->RegisterCollectable(impl_->registry);
  } catch (const std::exception& e) {
    return make_error(Errc::kIo, "cannot serve metrics on " + listen + ": " + e.what());
  }
  return {};
}

void Metrics::build_info(const std::string& version, const std::string& kernel, const std::string& libbpf) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->g("lunwatch_build_info", {{"version", version}, {"kernel", kernel}, {"libbpf", libbpf}}).Set(1);
}

void Metrics::on_event(const v1::Event& ev) {
  std::lock_guard<std::mutex> l(impl_->mu);
  std::string type;
  switch (ev.body_case()) {
    case v1::Event::kFlow: type = "flow_new"; break;
    case v1::Event::kEdge: type = "stack_edge"; break;
    case v1::Event::kScsiBind: type = "scsi_bind"; break;
    case v1::Event::kScsiError: {
      type = "scsi_error";
      std::string key = ev.scsi_error().sense().key_name();
      impl_->c("lunwatch_scsi_errors_total", {{"sense_key", key.empty() ? "none" : lower_enum(key, "")}}).Increment();
      break;
    }
    case v1::Event::kLifecycle: {
      type = "lifecycle";
      auto k = ev.lifecycle().kind();
      std::string kind = lower_enum(v1::LifecycleKind_Name(k), "LC_");
      if (kind.rfind("iscsi_", 0) == 0)
        impl_->c("lunwatch_iscsi_events_total", {{"kind", kind.substr(6)}}).Increment();
      else if (kind.rfind("dm_path_", 0) == 0)
        impl_->c("lunwatch_path_events_total", {{"kind", kind.substr(8)}}).Increment();
      else
        impl_->c("lunwatch_scsi_events_total", {{"kind", kind.rfind("scsi_", 0) == 0 ? kind.substr(5) : kind}})
            .Increment();
      break;
    }
    case v1::Event::kIdentity: {
      type = "identity";
      const auto& c = ev.identity();
      impl_
          ->c("lunwatch_identity_verifications_total",
              {{"result", c.ok() ? "ok" : (c.timed_out() ? "timeout" : "error")}})
          .Increment();
      break;
    }
    case v1::Event::kInventory: type = "inventory"; break;
    case v1::Event::kTopology: type = "topology"; break;
    case v1::Event::kBindings: type = "bindings"; break;
    default: type = "other"; break;
  }
  impl_->c("lunwatch_events_total", {{"type", type}}).Increment();
}

void Metrics::on_alert(const v1::Alert& a) {
  std::lock_guard<std::mutex> l(impl_->mu);
  prometheus::Labels lab{{"rule", v1::Rule_Name(a.rule())}, {"severity", severity_label(a.severity())}};
  if (a.state() == v1::ALERT_RESOLVED)
    impl_->c("lunwatch_alerts_resolved_total", lab).Increment();
  else
    impl_->c("lunwatch_alerts_total", lab).Increment();
}

void Metrics::set_active_alerts(const std::vector<v1::Alert>& active) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->reset_family("lunwatch_alerts_active");
  std::map<std::pair<std::string, std::string>, int> n;
  for (const auto& a : active) n[{v1::Rule_Name(a.rule()), severity_label(a.severity())}]++;
  for (const auto& [k, v] : n) impl_->g("lunwatch_alerts_active", {{"rule", k.first}, {"severity", k.second}}).Set(v);
}

void Metrics::set_probes(const std::vector<v1::HookState>& hooks) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& h : hooks)
    for (const char* st : {"attached", "not_present", "failed", "disabled"}) {
      std::string cur = lower_enum(v1::HookStatus_Name(h.status()), "HOOK_");
      impl_->g("lunwatch_probe_state", {{"hook", h.name()}, {"subsystem", h.subsystem()}, {"state", st}})
          .Set(cur == st ? 1 : 0);
    }
}

void Metrics::set_programs(const std::vector<ProgramCounters>& programs) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& p : programs) {
    prometheus::Labels lab{{"program", p.program}, {"hook", p.hook}};
    impl_->mirror("lunwatch_probe_runs_total", lab, p.run_cnt);
    // Seconds as a counter: mirror nanoseconds, increment in seconds.
    std::string key = "runtime|" + p.program;
    uint64_t& prev = impl_->last[key];
    if (p.run_time_ns > prev)
      impl_->c("lunwatch_probe_run_seconds_total", lab).Increment(static_cast<double>(p.run_time_ns - prev) / 1e9);
    prev = p.run_time_ns;
  }
}

void Metrics::set_drops(const std::map<std::string, uint64_t>& by_cause) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& [cause, v] : by_cause) impl_->mirror("lunwatch_kernel_drops_total", {{"cause", cause}}, v);
}

void Metrics::set_resyncs(uint64_t n) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->mirror("lunwatch_kernel_resyncs_total", {}, n);
}

void Metrics::set_flows(const std::vector<FlowBytes>& flows, size_t active) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->g("lunwatch_flows_active").Set(static_cast<double>(active));
  for (const auto& f : flows) {
    impl_->mirror("lunwatch_flow_bytes_total", {{"nova_instance", f.instance}, {"volume", f.volume}, {"op", "read"}},
                  f.read_bytes);
    impl_->mirror("lunwatch_flow_bytes_total", {{"nova_instance", f.instance}, {"volume", f.volume}, {"op", "write"}},
                  f.write_bytes);
  }
}

void Metrics::set_topology(const v1::Topology& t) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->reset_family("lunwatch_scsi_devices");
  impl_->reset_family("lunwatch_multipath_paths");
  impl_->reset_family("lunwatch_iscsi_sessions");
  std::map<std::pair<std::string, std::string>, int> devs;
  std::map<std::string, const v1::ScsiDevice*> by_name;
  for (const auto& d : t.devices()) {
    devs[{d.state().empty() ? "unknown" : d.state(), lower_enum(v1::Transport_Name(d.transport()), "TRANSPORT_")}]++;
    by_name[d.name()] = &d;
  }
  for (const auto& [k, v] : devs)
    impl_->g("lunwatch_scsi_devices", {{"state", k.first}, {"transport", k.second}}).Set(v);
  impl_->g("lunwatch_multipath_maps").Set(t.maps_size());
  std::map<std::string, int> paths;
  for (const auto& m : t.maps())
    for (const auto& p : m.paths()) {
      auto it = by_name.find(p);
      paths[it == by_name.end() || it->second->state().empty() ? "unknown" : it->second->state()]++;
    }
  for (const auto& [k, v] : paths) impl_->g("lunwatch_multipath_paths", {{"state", k}}).Set(v);
  std::map<std::string, int> sess;
  for (const auto& s : t.sessions()) sess[s.state().empty() ? "unknown" : s.state()]++;
  for (const auto& [k, v] : sess) impl_->g("lunwatch_iscsi_sessions", {{"state", k}}).Set(v);
}

void Metrics::identity_checked(const std::string& dev, const std::string& cached, const std::string& verified) {
  std::lock_guard<std::mutex> l(impl_->mu);
  bool mismatch = !cached.empty() && !verified.empty() && cached != verified;
  bool& was = impl_->mismatching[dev];
  if (mismatch && !was) impl_->c("lunwatch_identity_mismatches_total").Increment();
  was = mismatch;
}

void Metrics::set_sources(const std::vector<v1::SourceSnapshot>& sources, int64_t now_ms) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& s : sources) {
    std::string src = lower_enum(v1::SourceKind_Name(s.kind()), "SOURCE_");
    impl_->g("lunwatch_attachment_records", {{"source", src}}).Set(s.attachments_size());
    impl_->mirror("lunwatch_attachment_source_errors_total", {{"source", src}}, s.errors_total());
    double age = s.last_good_unix_ms() > 0 ? static_cast<double>(now_ms - s.last_good_unix_ms()) / 1000.0 : -1;
    impl_->g("lunwatch_attachment_source_last_success_age_seconds", {{"source", src}}).Set(age);
    impl_->g("lunwatch_attachment_source_stale", {{"source", src}}).Set(s.stale() ? 1 : 0);
  }
}

void Metrics::set_source_refresh(const std::vector<SourceRefresh>& sources) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& s : sources) {
    std::string src = lower_enum(v1::SourceKind_Name(s.kind), "SOURCE_");
    impl_->g("lunwatch_attachment_source_refresh_running_seconds", {{"source", src}}).Set(s.running_s);
    impl_->mirror("lunwatch_attachment_source_refresh_skipped_total", {{"source", src}}, s.skipped);
    impl_->g("lunwatch_attachment_source_partial", {{"source", src}}).Set(s.partial ? 1 : 0);
    impl_->g("lunwatch_attachment_source_suspect", {{"source", src}}).Set(s.suspect ? 1 : 0);
    impl_->mirror("lunwatch_attachment_source_suspect_total", {{"source", src}}, s.suspect_total);
  }
}

void Metrics::set_verify_queue(const VerifyHealth& h) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->g("lunwatch_identity_verify_queue", {{"state", "queued"}}).Set(static_cast<double>(h.queued));
  impl_->g("lunwatch_identity_verify_queue", {{"state", "running"}}).Set(static_cast<double>(h.running));
  impl_->g("lunwatch_identity_verify_queue", {{"state", "retry_wait"}}).Set(static_cast<double>(h.retry_wait));
  impl_->g("lunwatch_identity_verify_queue", {{"state", "hung"}}).Set(static_cast<double>(h.hung));
  impl_->g("lunwatch_identity_verify_oldest_request_age_seconds").Set(h.oldest_request_age_s);
  impl_->mirror("lunwatch_identity_verify_retries_total", {}, h.retries_total);
  impl_->g("lunwatch_identity_held_paths").Set(static_cast<double>(h.held_paths));
  impl_->g("lunwatch_identity_held_last_good_age_max_seconds").Set(h.held_age_max_s);
  impl_->g("lunwatch_identity_held_overdue_paths").Set(static_cast<double>(h.held_overdue));
  impl_->g("lunwatch_identity_max_age_seconds").Set(h.max_age_s);
  impl_->g("lunwatch_identity_unknown_devices").Set(static_cast<double>(h.unknown_devices));
}

void Metrics::set_input_errors(const std::string& source, uint64_t total) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->mirror("lunwatch_input_errors_total", {{"source", source}}, total);
}

void Metrics::set_loop_work(const std::vector<LoopWork>& works) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const auto& w : works) {
    auto& c = impl_->c("lunwatch_loop_work_seconds_total", {{"work", w.work}});
    if (w.seconds > c.Value()) c.Increment(w.seconds - c.Value());
    impl_->g("lunwatch_loop_work_longest_seconds", {{"work", w.work}}).Set(w.longest_s);
  }
}

void Metrics::set_alert_output(uint64_t failures, size_t spooled, uint64_t dropped) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->mirror("lunwatch_alert_write_failures_total", {}, failures);
  impl_->g("lunwatch_alerts_spooled").Set(static_cast<double>(spooled));
  impl_->mirror("lunwatch_alerts_dropped_total", {}, dropped);
}

void Metrics::dump_written(uint64_t bytes) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->c("lunwatch_dumps_written_total").Increment();
  impl_->c("lunwatch_dump_bytes_total").Increment(static_cast<double>(bytes));
}

void Metrics::containment(const v1::ContainmentAction& a) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->c("lunwatch_containment_actions_total", containment_labels(a.kind(), a.result())).Increment();
}

void Metrics::dump_error(const std::string& cause) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->c("lunwatch_dump_errors_total", {{"cause", cause}}).Increment();
}

void Metrics::set_guard(const std::string& mode, uint64_t denials, uint64_t would_deny, size_t armed) {
  std::lock_guard<std::mutex> l(impl_->mu);
  for (const char* m : {"off", "monitor", "enforce"}) impl_->g("lunwatch_guard_mode", {{"mode", m}}).Set(mode == m);
  impl_->mirror("lunwatch_guard_denials_total", {}, denials);
  impl_->mirror("lunwatch_guard_would_deny_total", {}, would_deny);
  impl_->g("lunwatch_guard_armed_devices").Set(static_cast<double>(armed));
}

void Metrics::set_audit_findings(const std::map<std::pair<std::string, std::string>, int>& f) {
  std::lock_guard<std::mutex> l(impl_->mu);
  impl_->reset_family("lunwatch_audit_findings");
  for (const auto& [k, v] : f) impl_->g("lunwatch_audit_findings", {{"id", k.first}, {"severity", k.second}}).Set(v);
}

std::string Metrics::render() const {
  std::lock_guard<std::mutex> l(impl_->mu);
  return prometheus::TextSerializer().Serialize(impl_->registry->Collect());
}

}  // namespace lunwatch::sinks
