#include "agent/agent.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>

#include <bpf/libbpf.h>

#include "agent/dispatcher.h"
#include "agent/guard_sync.h"
#include "agent/pipeline.h"
#include "agent/stats_file.h"
#include "agent/timers.h"
#include "agent/verify_health.h"
#include "audit/audit.h"
#include "audit/isolated.h"
#include "common/devt.h"
#include "common/log.h"
#include "common/pidfile.h"
#include "common/safe_file.h"
#include "detect/annotate.h"
#include "guard/dmqueue.h"
#include "guard/maps.h"
#include "inventory/cgroups.h"
#include "inventory/file_source.h"
#include "inventory/instances.h"
#include "inventory/libvirt.h"
#include "inventory/refresher.h"
#include "probes/loader.h"
#include "sinks/alerts.h"
#include "sinks/dump.h"
#include "sinks/json.h"
#include "sinks/metrics.h"
#include "sinks/recorder.h"
#include "sinks/recording.h"
#include "topology/devnames.h"
#include "topology/sgio.h"
#include "topology/sysfs.h"
#include "version.h"

namespace lunwatch::agent {
namespace {

using Clock = std::chrono::steady_clock;
std::atomic<bool> g_stop{false};
std::atomic<bool> g_dump_now{false};
void on_signal(int) { g_stop = true; }
void on_usr1(int) { g_dump_now = true; }
std::atomic<bool> g_reopen{false};  // SIGHUP: reopen the alerts file (logrotate)
void on_hup(int) { g_reopen = true; }

v1::Severity severity_threshold(const std::string& s) {
  if (s == "critical") return v1::SEVERITY_CRITICAL;
  if (s == "high") return v1::SEVERITY_HIGH;
  if (s == "warning") return v1::SEVERITY_WARNING;
  return static_cast<v1::Severity>(99);  // off
}

std::string slurp(const std::string& path, size_t cap) {
  std::ifstream in(path, std::ios::binary);
  std::string s(cap, '\0');
  in.read(s.data(), static_cast<std::streamsize>(cap));
  s.resize(static_cast<size_t>(in.gcount()));
  return s;
}

v1::ProcessInfo process_info(uint32_t pid, const v1::Instance& inst, const std::string& libvirt_dir) {
  v1::ProcessInfo p;
  p.set_pid(pid);
  *p.mutable_instance() = inst;
  std::string base = "/proc/" + std::to_string(pid);
  std::string comm = slurp(base + "/comm", 64);
  if (comm.empty()) {
    p.set_gone(true);
    return p;
  }
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  p.set_comm(comm);
  std::string cmd = slurp(base + "/cmdline", 16384);
  size_t start = 0;
  for (size_t i = 0; i <= cmd.size(); ++i)
    if (i == cmd.size() || cmd[i] == '\0') {
      if (i > start) p.add_cmdline(cmd.substr(start, i - start));
      start = i + 1;
    }
  std::string cg = slurp(base + "/cgroup", 4096);
  if (auto pos = cg.find("0::"); pos != std::string::npos) {
    auto end = cg.find('\n', pos);
    p.set_cgroup(cg.substr(pos + 3, end == std::string::npos ? std::string::npos : end - pos - 3));
  }
  if (DIR* d = ::opendir((base + "/fd").c_str())) {
    while (auto* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      std::string fdpath = base + "/fd/" + e->d_name;
      struct stat st {};
      if (::stat(fdpath.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) continue;
      char target[512] = {};
      ssize_t n = ::readlink(fdpath.c_str(), target, sizeof target - 1);
      auto* o = p.add_open_block_devices();
      o->set_fd(std::atoi(e->d_name));
      o->set_path(n > 0 ? std::string(target, static_cast<size_t>(n)) : "");
      o->set_dev(to_string(from_user_dev(st.st_rdev)));
    }
    ::closedir(d);
  }
  if (!inst.name().empty() && inst.name().find('/') == std::string::npos)
    p.set_libvirt_domain_xml(slurp(libvirt_dir + "/" + inst.name() + ".xml", 64 * 1024));
  return p;
}

uint64_t mono_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}
int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::FILE* open_out(const std::string& path) {
  auto f = fopen_append_safe(path);  // O_NOFOLLOW, 0600, ours
  if (!f) log::error(f.error().message);
  return f ? f.value() : nullptr;
}

}  // namespace

struct Agent::Impl {
  explicit Impl(const AgentOptions& o) : o_(o) {}
  ~Impl() {
    if (events_file_ && events_file_ != stdout) std::fclose(events_file_);
  }
  Result<void> init();
  int run();

  detect::Correlator& correlator() { return pipeline_->correlator(); }
  void feed(v1::Event ev) {
    detect::Output out;
    pipeline_->feed(std::move(ev), out);
    dispatcher_->dispatch(out);
  }
  void on_kernel_event(v1::Event&& ev) {
    detect::Output out;
    pipeline_->on_kernel_event(std::move(ev), out);
    dispatcher_->dispatch(out);
  }
  void carry(const std::vector<probes::FlowRecord>& flows) {
    for (const auto& f : flows) {
      auto& c = carried_[{f.key.tgid, f.key.dev}];
      c.first += f.val.bytes[0];
      c.second += f.val.bytes[1];
    }
  }
  DispatchTargets dispatch_targets();
  void refresh_topology();
  void refresh_inventory();
  void apply_inventory();
  void verify_all(v1::VerifyReason why);
  void drain_verifier();
  void update_metrics();
  void sync_guard();
  void maybe_capture(const v1::Alert& a);
  void write_capture();
  void run_audit();
  void audit_done(const audit::Report& report);
  void drain_containment();

  const AgentOptions o_;
  detect::CorrelatorOptions correlator_options_;
  std::unique_ptr<probes::Probes> probes_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<topology::IdentityVerifier> verifier_;
  // Sources refresh in worker threads (inventory/refresher.h); the loop
  // holds the last snapshot each handed over.
  std::unique_ptr<inventory::AsyncRefresher> refresher_;
  std::vector<v1::SourceSnapshot> snapshots_;
  struct SourceTrust {
    uint32_t suspect_streak = 0;  // consecutive lists refused as suspect
    uint64_t suspect_total = 0;
  };
  std::vector<SourceTrust> trust_;
  std::unique_ptr<sinks::RecordWriter> recorder_;
  std::unique_ptr<sinks::JsonLines> events_out_;
  std::unique_ptr<sinks::AlertWriter> alerts_out_;
  sinks::Metrics metrics_;
  std::unique_ptr<topology::DeviceNames> names_;
  std::unique_ptr<inventory::CgroupPaths> cgroups_;
  std::unique_ptr<detect::Annotator> annotator_;
  std::unique_ptr<inventory::InstanceResolver> instances_;
  v1::Topology last_topology_;
  std::unique_ptr<guard::GuardMaps> guard_;
  std::unique_ptr<GuardSync> guard_sync_;
  std::unique_ptr<guard::QueueHold> dmhold_;
  audit::IsolatedAudit audit_job_;
  bool starting_ = true;         // until every device's first check after start has answered
  std::optional<int> pid_lock_;  // single instance: held until we exit
  std::unique_ptr<contain::Runner> contain_;
  uint32_t guard_mode_ = LW_GUARD_OFF;
  std::FILE* events_file_ = nullptr;
  std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, uint64_t>> carried_;  // bytes of re-armed flows
  std::map<std::pair<std::string, std::string>, std::pair<uint64_t, uint64_t>>
      retired_;  // (who, volume): swept flows' bytes
  Timers timers_;
  LoopWork work_;
  std::map<std::string, Timers::Clock::time_point> slow_logged_;
  // Lost kernel events (a full ring): the count last acted on, when, how often.
  uint64_t ring_full_seen_ = 0;
  Timers::Clock::time_point last_resync_{}, resync_logged_{};
  uint64_t resyncs_ = 0;
  void resync_if_events_lost();
  uint64_t alerts_total_ = 0;
  uint64_t vanished_total_ = 0;
  std::unique_ptr<sinks::FlightRecorder> recorder_mem_;
  std::optional<v1::Alert> pending_capture_;
  Clock::time_point capture_at_{};
  uint64_t dumps_written_ = 0;
};

// The correlator's output, carried out.
DispatchTargets Agent::Impl::dispatch_targets() {
  DispatchTargets t;
  t.alert = [this](const v1::Alert& a) {
    alerts_total_++;
    alerts_out_->write(a);
    metrics_.on_alert(a);
    maybe_capture(a);
    if (contain_) contain_->start(a, mono_ns());
  };
  t.alerts_changed = [this] { metrics_.set_active_alerts(correlator().active_alerts()); };
  t.verify = [this](const detect::VerifyRequest& r, DevNum d) {
    return verifier_->submit(r.name, d, r.reason);  // queued: deduplicated, never dropped
  };
  t.rearm = [this](const std::set<uint32_t>& devs) {
    if (probes_) carry(probes_->rearm_flows(devs));
  };
  t.bindings_changed = [this] {
    if (o_.state_file.empty()) return;
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(o_.state_file).parent_path(), ec);
    auto w = detect::BindingStore::write_file(o_.state_file, correlator().bindings().snapshot());
    if (!w.ok()) log::warn(w.error().message + " (bindings kept in memory)");
  };
  t.topology_stale = [this] { timers_.expedite("topology", std::chrono::milliseconds(100)); };
  return t;
}

void Agent::Impl::sync_guard() {
  if (!guard_sync_) return;
  detect::Output again;
  again.verify = guard_sync_->sync(correlator(), last_topology_, mono_ns(), starting_);
  dispatcher_->dispatch(again);
  // enforce: I/O queued in dm (queue_if_no_path) on a map in doubt fails
  // rather than reach whatever LUN answers next (guard/dmqueue.h).
  if (dmhold_) dmhold_->sync(guard::maps_in_doubt(correlator(), guard_->devices()));
}

// Alerts whose containment actions all have a result: written again (same
// id) with the results, counted, and carried into a capture still pending.
void Agent::Impl::drain_containment() {
  if (!contain_ || !contain_->busy()) return;
  for (auto& a : contain_->poll(mono_ns())) {
    for (const auto& c : a.containment()) metrics_.containment(c);
    alerts_out_->write(a);
    if (pending_capture_ && pending_capture_->id() == a.id()) *pending_capture_ = a;
  }
}

void Agent::Impl::refresh_topology() {
  topology::ReadStats stats;
  v1::Event ev;
  *ev.mutable_topology() = topology::read_topology(o_.sysfs_root, &stats);
  // Devices that disappeared: the kernel side must report their successors afresh.
  std::set<std::string> now_present;
  for (const auto& d : ev.topology().devices()) now_present.insert(d.dev());
  for (const auto& m : ev.topology().maps()) now_present.insert(m.dev());
  auto forget = [&](const std::string& dev) {
    if (now_present.count(dev)) return;
    if (auto n = parse_devnum(dev)) carry(probes_->forget_device(to_kernel_dev(*n)));
  };
  for (const auto& d : last_topology_.devices()) forget(d.dev());
  for (const auto& m : last_topology_.maps()) forget(m.dev());
  if (stats.vanished) metrics_.set_input_errors("sysfs_vanished", vanished_total_ += stats.vanished);
  last_topology_ = ev.topology();
  feed(std::move(ev));
}

// Asks every idle source for a refresh and returns at once: a slow or hung
// Cinder, Keystone, virsh or file read never holds the event loop.
void Agent::Impl::refresh_inventory() { refresher_->request(); }

// Finished refreshes, applied in the loop. A cloud-wide list that suddenly
// lacks every attachment of the instances this host runs is kept out (the
// last good view stays) until two more lists say the same.
void Agent::Impl::apply_inventory() {
  for (auto& u : refresher_->take()) {
    auto& tr = trust_[u.index];
    if (u.snapshot.kind() != v1::SOURCE_LIBVIRT) {
      const v1::SourceSnapshot* libvirt = nullptr;
      for (const auto& s : snapshots_)
        if (s.kind() == v1::SOURCE_LIBVIRT) libvirt = &s;
      if (libvirt && inventory::lacks_every_local_attachment(snapshots_[u.index], u.snapshot, *libvirt)) {
        if (tr.suspect_streak < 2) {
          if (tr.suspect_streak == 0)
            log::warn("attachment source " + u.snapshot.name() + ": the new list lacks every attachment of the " +
                      "instances this host runs (" + std::to_string(snapshots_[u.index].attachments_size()) + " -> " +
                      std::to_string(u.snapshot.attachments_size()) +
                      " records); keeping the last good view (lunwatch_attachment_source_suspect)");
          tr.suspect_streak++;
          tr.suspect_total++;
          continue;
        }
        log::warn("attachment source " + u.snapshot.name() +
                  ": three lists in a row lack this host's attachments; applying it");
      }
    }
    tr.suspect_streak = 0;
    snapshots_[u.index] = u.snapshot;
    v1::Event ev;
    *ev.mutable_inventory() = std::move(u.snapshot);
    feed(std::move(ev));
  }
}

void Agent::Impl::maybe_capture(const v1::Alert& a) {
  if (a.state() != v1::ALERT_FIRING || a.severity() < severity_threshold(o_.dump_severity)) return;
  if (pending_capture_) {
    // One capture covers alerts raised inside its window; it is named for the worst of them.
    if (a.severity() > pending_capture_->severity()) pending_capture_ = a;
    return;
  }
  pending_capture_ = a;
  capture_at_ =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.dump_after_s));
}

void Agent::Impl::write_capture() {
  v1::Alert trigger = *pending_capture_;
  pending_capture_.reset();
  v1::CaptureDump d;
  d.set_format_version(sinks::kDumpVersion);
  d.set_created_unix_ms(unix_ms());
  d.set_reason(trigger.rule() == v1::RULE_UNKNOWN ? "on demand" : "alert");
  *d.mutable_trigger() = trigger;
  d.set_trigger_seq(trigger.trigger().seq());
  d.set_window_before_ms(static_cast<int64_t>(o_.dump_before_s * 1000));
  d.set_window_after_ms(static_cast<int64_t>(o_.dump_after_s * 1000));
  auto window = recorder_mem_->window();
  uint64_t first = window.empty() ? UINT64_MAX : window.front().seq();
  for (auto& e : recorder_mem_->baseline())
    if (e.seq() < first) *d.add_baseline() = std::move(e);
  for (auto& e : window) *d.add_events() = std::move(e);
  // Topology now, with what SG_IO last said about each device.
  *d.mutable_topology() = last_topology_;
  std::map<std::string, detect::DeviceView> views;
  for (const auto& v : correlator().devices()) views[v.dev] = v;
  for (auto& dev : *d.mutable_topology()->mutable_devices()) {
    auto it = views.find(dev.dev());
    if (it == views.end()) continue;
    if (it->second.verified) *dev.mutable_verified() = *it->second.verified;
    dev.set_verified_at_unix_ms(it->second.verified_unix_ms);
    dev.set_verify_error(it->second.verify_error);
  }
  for (const auto& s : snapshots_) *d.add_sources() = s;
  *d.mutable_bindings() = correlator().bindings().snapshot();
  // The processes involved: the actor and every process of the instances named.
  std::set<uint32_t> pids;
  if (trigger.pid()) pids.insert(trigger.pid());
  for (const auto* uuid : {&trigger.instance().uuid(), &trigger.owner().uuid()}) {
    auto it = correlator().instance_pids().find(*uuid);
    if (!uuid->empty() && it != correlator().instance_pids().end()) pids.insert(it->second.begin(), it->second.end());
  }
  for (uint32_t pid : pids) *d.add_processes() = process_info(pid, instances_->resolve(pid), o_.libvirt_dir);
  auto* h = d.mutable_host();
  h->set_hostname(trigger.hostname());
  struct utsname u {};
  uname(&u);
  h->set_kernel(u.release);
  h->set_agent_version(LUNWATCH_VERSION);
  h->set_libbpf(std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
  for (const auto& hs : probes_->hook_states()) *h->add_probes() = hs;
  h->set_guard_mode(guard_ ? guard::mode_name(guard_mode_) : "off");
  auto& cfg = *h->mutable_config();  // settings only: lunwatch holds no secret in its flags
  cfg["libvirt_dir"] = o_.libvirt_dir;
  cfg["sysfs_root"] = o_.sysfs_root;
  cfg["state_file"] = o_.state_file;
  cfg["attachments"] = std::to_string(o_.attachment_files.size()) + " source(s)";
  cfg["guard"] = o_.guard_mode;
  cfg["containment"] = contain_ ? contain::actions_string(contain_->options()) : "none";
  cfg["dump_severity"] = o_.dump_severity;
  cfg["verify_interval_s"] = std::to_string(o_.verify_interval_s);
  cfg["orphan_grace_s"] = std::to_string(o_.orphan_grace_s);
  cfg["alert_quiet_s"] = std::to_string(o_.alert_quiet_s);

  if (auto dir = ensure_private_dir(o_.dump_dir, 0750); !dir) {  // never into a folder others can write
    metrics_.dump_error("unsafe_dir");
    log::error("capture not written: " + dir.error().message);
    return;
  }
  std::string stamp = sinks::rfc3339_ms(unix_ms());
  for (auto& c : stamp)
    if (c == ':') c = '-';
  std::string rule = trigger.rule() == v1::RULE_UNKNOWN ? "on-demand" : v1::Rule_Name(trigger.rule());
  std::string path = o_.dump_dir + "/lunwatch-" + stamp + "-" + rule + ".lwdump";
  auto w = sinks::write_dump(path, d);
  if (!w.ok()) {
    bool full = w.error().message.find("No space") != std::string::npos;
    metrics_.dump_error(full ? "full" : "io");
    log::error("capture not written: " + w.error().message);
    return;
  }
  dumps_written_++;
  metrics_.dump_written(w.value());
  sinks::enforce_retention(o_.dump_dir, o_.dump_max_files, o_.dump_max_bytes);
  log::info("capture written: " + path + " (" + std::to_string(w.value()) + " bytes, " +
            std::to_string(d.baseline_size()) + " baseline + " + std::to_string(d.events_size()) + " events)");
}

void Agent::Impl::update_metrics() {
  metrics_.set_probes(probes_->hook_states());
  std::vector<sinks::ProgramCounters> progs;
  for (const auto& p : probes_->program_stats()) progs.push_back({p.program, p.hook, p.run_cnt, p.run_time_ns});
  metrics_.set_programs(progs);
  std::map<std::string, uint64_t> drops;
  auto d = probes_->drops();
  for (size_t i = 0; i < d.size(); ++i) drops[probes::drop_cause_name(static_cast<int>(i))] = d[i];
  metrics_.set_drops(drops);
  const auto& cs = probes_->consumer_stats();
  metrics_.set_input_errors("kernel_records", cs.decode_truncated + cs.decode_unknown + cs.decode_bad_size);

  // Bytes by (instance, volume): the kernel's flows, named by the resolver
  // (cached) and the attachment the device carries.
  std::map<std::string, std::string> volume_of;
  for (const auto& [att, devs] : correlator().attachment_devices())
    if (att.source() == v1::SOURCE_LIBVIRT && !att.resolved_dev().empty())
      volume_of[att.resolved_dev()] = att.volume_id();
  std::map<std::pair<std::string, std::string>, sinks::FlowBytes> agg;
  auto flows = probes_->flows();
  // Exited processes' flows would hide a reused pid and fill the map: removed
  // from the kernel, their bytes kept in retired_ so the counters never drop.
  auto dead = probes_->sweep_dead_flows(flows);
  std::vector<bool> is_dead(flows.size(), false);
  for (size_t i : dead) is_dead[i] = true;
  for (size_t i = 0; i < flows.size(); ++i) {
    const auto& f = flows[i];
    auto inst = instances_->resolve(f.key.tgid);
    std::string who = inst.name().empty() ? "host" : inst.name();
    std::string dev = to_string(from_kernel_dev(f.key.dev));
    auto vit = volume_of.find(dev);
    std::string vol = vit == volume_of.end() ? "" : vit->second;
    if (who == "host" && vol.empty()) continue;  // keep label sets bounded: volumes and instances only
    uint64_t rb = f.val.bytes[0] + carried_[{f.key.tgid, f.key.dev}].first;
    uint64_t wb = f.val.bytes[1] + carried_[{f.key.tgid, f.key.dev}].second;
    if (is_dead[i]) {  // counted from retired_ below, this time and every time after
      retired_[{who, vol}].first += rb;
      retired_[{who, vol}].second += wb;
      carried_.erase({f.key.tgid, f.key.dev});
      continue;
    }
    auto& a = agg[{who, vol}];
    a.instance = who;
    a.volume = vol;
    a.read_bytes += rb;
    a.write_bytes += wb;
  }
  for (const auto& [k, v] : retired_) {
    auto& a = agg[k];
    a.instance = k.first;
    a.volume = k.second;
    a.read_bytes += v.first;
    a.write_bytes += v.second;
  }
  std::vector<sinks::FlowBytes> out;
  for (auto& [k, v] : agg) out.push_back(v);
  metrics_.set_flows(out, flows.size() - dead.size());
  metrics_.set_topology(last_topology_);
  metrics_.set_verify_queue(
      verify_health(correlator(), *verifier_,
                    o_.verify_max_age_s > 0 ? o_.verify_max_age_s : 3 * o_.verify_interval_s + o_.verify_timeout_s));
  metrics_.set_sources(snapshots_, unix_ms());
  std::vector<sinks::Metrics::SourceRefresh> refresh;
  for (const auto& st : refresher_->states()) {
    sinks::Metrics::SourceRefresh r;
    r.kind = st.kind;
    r.running_s = st.busy ? static_cast<double>(st.busy_for.count()) / 1000.0 : 0;
    r.skipped = st.skipped;
    refresh.push_back(r);
  }
  for (size_t i = 0; i < refresh.size() && i < snapshots_.size(); ++i) {
    refresh[i].partial = snapshots_[i].partial();
    refresh[i].suspect = trust_[i].suspect_streak > 0;
    refresh[i].suspect_total = trust_[i].suspect_total;
  }
  metrics_.set_source_refresh(refresh);
  std::vector<sinks::Metrics::LoopWork> loop;
  for (const auto& [name, w] : work_.works()) loop.push_back({name, w.seconds, w.longest_s});
  metrics_.set_loop_work(loop);
  if (guard_) {
    auto st = guard_->stats();
    metrics_.set_guard(guard::mode_name(guard_mode_), st[LW_GSTAT_DENIED], st[LW_GSTAT_WOULD_DENY],
                       guard_->devices().size());
  } else {
    metrics_.set_guard("off", 0, 0, 0);
  }
}

void Agent::Impl::run_audit() {  // in a child with a deadline: its crash or hang costs a finding, never the agent
  if (!audit_job_.running()) audit_job_.start(audit::AuditOptions{}, std::chrono::minutes(5));
}

void Agent::Impl::audit_done(const audit::Report& report) {
  std::map<std::pair<std::string, std::string>, int> by;
  for (const auto& f : report.findings) by[{f.id, audit::severity_name(f.severity)}]++;
  metrics_.set_audit_findings(by);
}

// A full ring loses lifecycle, SCSI and error events for good (flows and stack
// edges report again on their next I/O: they enter their maps only with their
// event). What they would have triggered is done from the sources of truth
// instead: sysfs re-read, every device's identity asked again. At most every
// 5 s while the ring keeps overflowing.
void Agent::Impl::resync_if_events_lost() {
  uint64_t full = probes_->drops()[LW_DROP_RINGBUF_FULL];
  auto now = Timers::Clock::now();
  if (full <= ring_full_seen_ || (resyncs_ > 0 && now - last_resync_ < std::chrono::seconds(5))) return;
  uint64_t lost = full - ring_full_seen_;
  ring_full_seen_ = full;
  last_resync_ = now;
  metrics_.set_resyncs(++resyncs_);
  if (resyncs_ == 1 || now - resync_logged_ >= std::chrono::minutes(1)) {
    resync_logged_ = now;
    log::warn("kernel ring buffer full: " + std::to_string(lost) +
              " events lost; re-reading the topology and re-verifying every device (resync " +
              std::to_string(resyncs_) + "; ring_buffer_kib sets the ring's size)");
  }
  refresh_topology();
  verify_all(v1::VERIFY_LOST_EVENTS);
}

void Agent::Impl::verify_all(v1::VerifyReason why) {
  detect::Output out;
  for (const auto* d : correlator().device_views())
    if (d->scsi && !d->name.empty()) out.verify.push_back({d->name, d->dev, why});
  dispatcher_->dispatch(out);
}

void Agent::Impl::drain_verifier() {
  auto answers = verifier_->take();
  if (answers.empty()) return;
  for (auto& o : answers) {
    v1::Event ev = topology::identity_event(o);
    ev.mutable_identity()->set_reason(o.reason);
    if (!o.ok) log::warn("identity of " + o.name + " not verified: " + o.error);
    if (!o.ok && guard_sync_) guard_sync_->verify_failed(to_string(o.dev), o.asked_ns);
    if (o.ok) {
      if (guard_sync_) guard_sync_->verified(to_string(o.dev), o.asked_ns);
      for (const auto& d : last_topology_.devices())
        if (d.name() == o.name) metrics_.identity_checked(d.dev(), d.cached().wwid(), o.identity.wwid());
    }
    feed(std::move(ev));
  }
  // The guard follows every answer of the batch at once (no kernel event is
  // judged in between): one policy computation for a verification round of
  // hundreds of devices, not one per answer.
  sync_guard();
}

Result<void> Agent::Impl::init() {
  const auto& r = o_.run;
  if (!o_.pid_file.empty()) {                // single instance: the lock is held until we exit
    auto lock = lock_pid_file(o_.pid_file);  // not root: the BPF load below says so, with its exit code
    if (lock)
      pid_lock_ = lock.value();
    else if (lock.error().code == Errc::kInvalidArgument || ::geteuid() == 0)
      return make_error(Errc::kIo, lock.error().message);
  }
  // Settings first: a bad one is a usage error before anything is loaded.
  {
    contain::Options co = o_.contain;  // containment on confirmed leaks (off unless configured)
    std::string err;
    if (!contain::parse_actions(o_.contain_actions, co, &err)) return make_error(Errc::kInvalidArgument, err);
    if (!(co.timeout_s > 0)) return make_error(Errc::kInvalidArgument, "containment timeout must be > 0 seconds");
    co.sysfs_root = o_.sysfs_root;
    contain_ = std::make_unique<contain::Runner>(co);
    if (contain_->enabled())
      log::warn("containment on a confirmed leak: " + contain::actions_string(co) +
                (co.pause_domain ? " (virsh -c " + co.libvirt_uri + ")" : ""));
  }
  auto mode = guard::parse_mode(o_.guard_mode);
  if (!mode)
    return make_error(Errc::kInvalidArgument, "unknown guard mode " + o_.guard_mode + " (off, monitor, enforce)");
  guard_mode_ = *mode;
  probes::ProbeOptions po;
  po.disabled_hooks.insert(r.disabled_hooks.begin(), r.disabled_hooks.end());
  po.verbose = r.verbose;
  po.btf_dir = r.btf_dir;
  po.run_stats = r.bpf_stats;
  po.pin_dir = o_.pin_dir;
  po.guard = guard_mode_ != LW_GUARD_OFF;
  po.ring_bytes = static_cast<uint32_t>(o_.ring_buffer_kib) * 1024;
  auto probes = probes::Probes::make(po);
  if (!probes.ok()) return probes.error();
  probes_ = std::move(probes.value());
  ring_full_seen_ = probes_->drops()[LW_DROP_RINGBUF_FULL];  // what a previous agent lost is not ours to resync
  metrics_.set_resyncs(0);
  int attached = 0;
  for (const auto& h : probes_->hook_states()) {
    if (h.status() == v1::HOOK_ATTACHED)
      attached++;
    else
      log::info("hook " + h.name() + ": " + v1::HookStatus_Name(h.status()) +
                (h.reason().empty() ? "" : ": " + h.reason()));
  }
  log::info("watching with " + std::to_string(attached) + " hooks attached");

  // Guard: mode into the pinned config, the agent itself allowed, links pinned
  // so the policy keeps enforcing while the agent restarts.
  auto links = probes_->guard_links();
  if (guard_mode_ != LW_GUARD_OFF) {
    std::string why;
    for (const auto& h : probes_->hook_states())
      if (h.subsystem() == "guard" && h.status() != v1::HOOK_ATTACHED) why = h.reason();
    auto maps = guard::GuardMaps::open(o_.pin_dir);
    if (!why.empty() || links.size() < 2 || !maps.ok()) {
      log::warn("guard unavailable (" +
                (why.empty() ? std::string(maps.ok() ? "LSM programs not attached" : maps.error().message) : why) +
                "): detection only");
    } else {
      guard_ = std::make_unique<guard::GuardMaps>(std::move(maps.value()));
      if (auto m = guard_->set_mode(guard_mode_); !m.ok()) log::warn("guard: " + m.error().message);
      if (auto a = guard_->set_allow({static_cast<uint32_t>(getpid())}); !a.ok())
        log::warn("guard: " + a.error().message);
      guard_sync_ = std::make_unique<GuardSync>(*guard_);
      if (guard_mode_ == LW_GUARD_ENFORCE) {
        guard::QueueHold::Options qo;
        qo.sysfs_root = o_.sysfs_root;
        dmhold_ = std::make_unique<guard::QueueHold>(qo);
      }
      auto pinned = guard::pin_links(links, o_.pin_dir);
      if (!pinned.ok()) log::warn(pinned.error().message + " (guard stops with the agent)");
      log::info(std::string("guard: ") + guard::mode_name(guard_mode_));
    }
  } else {
    auto maps = guard::GuardMaps::open(o_.pin_dir);
    if (maps.ok())
      if (auto m = maps.value().set_mode(LW_GUARD_OFF); !m.ok()) log::warn("guard: " + m.error().message);
    if (auto u = guard::unpin_links(o_.pin_dir); !u.ok()) log::warn(u.error().message);
  }

  // Sinks.
  if (r.events || !r.events_file.empty()) {
    events_file_ = open_out(r.events_file);
    if (!events_file_) return make_error(Errc::kIo, "cannot open events file " + r.events_file);
    events_out_ = std::make_unique<sinks::JsonLines>(events_file_);
  }
  auto aw = sinks::AlertWriter::open(
      o_.alerts_file, o_.alert_format == "falco" ? sinks::AlertFormat::kFalco : sinks::AlertFormat::kJson);
  if (!aw) return make_error(Errc::kIo, aw.error().message);
  alerts_out_ = std::move(aw.value());
  if (!o_.record_file.empty()) {
    auto rec = sinks::RecordWriter::open(o_.record_file);
    if (!rec.ok()) return make_error(Errc::kIo, rec.error().message);
    recorder_ = std::move(rec.value());
  }

  // Stages.
  correlator_options_ = correlator_options(o_);
  pipeline_ = std::make_unique<Pipeline>(Pipeline::Options{correlator_options_, true});
  dispatcher_ = std::make_unique<Dispatcher>(dispatch_targets());
  sinks::FlightRecorder::Options ro;
  ro.keep_ms = static_cast<int64_t>((o_.dump_before_s + o_.dump_after_s) * 1000);
  ro.max_bytes = o_.recorder_max_bytes;
  recorder_mem_ = std::make_unique<sinks::FlightRecorder>(ro);
  // Record: every stamped event, before the correlator sees it.
  if (recorder_) pipeline_->add_tap([this](const v1::Event& ev) { recorder_->write(ev); });
  pipeline_->add_tap([this](const v1::Event& ev) { recorder_mem_->add(ev); });
  if (events_out_)
    pipeline_->add_tap([this](const v1::Event& ev) {
      if (!ev.has_topology() && !ev.has_inventory() && !ev.has_bindings()) events_out_->write(ev);
    });
  pipeline_->add_tap([this](const v1::Event& ev) { metrics_.on_event(ev); });
  topology::IdentityVerifier::Options vo;
  vo.timeout = std::chrono::milliseconds(static_cast<int64_t>(o_.verify_timeout_s * 1000));
  verifier_ = std::make_unique<topology::IdentityVerifier>(vo);
  std::vector<std::unique_ptr<inventory::AttachmentSource>> sources;
  if (o_.libvirt) sources.push_back(std::make_unique<inventory::LibvirtSource>(o_.libvirt_dir));
  for (const auto& f : o_.attachment_files) sources.push_back(std::make_unique<inventory::FileSource>(f));
  if (o_.cinder) {
    auto client = std::make_unique<inventory::CinderClient>(*o_.cinder);
    log::info("attachment source: Cinder via " + client->describe());
    sources.push_back(std::make_unique<inventory::CinderSource>(std::move(client)));
  }
  for (const auto& s : sources) {  // empty until the first refresh answers
    v1::SourceSnapshot snap;
    snap.set_kind(s->kind());
    snap.set_name(s->name());
    snapshots_.push_back(snap);
  }
  trust_.resize(snapshots_.size());
  refresher_ = std::make_unique<inventory::AsyncRefresher>(std::move(sources), [](v1::SourceSnapshot& snap) {
    for (auto& a : *snap.mutable_attachments())  // stat() of device paths: in the worker too
      if (a.resolved_dev().empty()) a.set_resolved_dev(block_device_of(a.device_path()));
  });

  names_ = std::make_unique<topology::DeviceNames>(o_.sysfs_root);
  cgroups_ = std::make_unique<inventory::CgroupPaths>();
  instances_ = std::make_unique<inventory::InstanceResolver>("/proc", o_.libvirt_dir);
  annotator_ = std::make_unique<detect::Annotator>(*names_, *cgroups_);
  pipeline_->set_annotator(annotator_.get());
  pipeline_->set_resolver(instances_.get());

  struct utsname u {};
  uname(&u);
  metrics_.build_info(LUNWATCH_VERSION, u.release,
                      std::to_string(libbpf_major_version()) + "." + std::to_string(libbpf_minor_version()));
  if (!o_.metrics_listen.empty()) {
    auto served = metrics_.serve(o_.metrics_listen);
    if (!served.ok())
      log::error(served.error().message + " (running without metrics)");
    else
      log::info("metrics on http://" + o_.metrics_listen + "/metrics");
  }
  return {};
}

int Agent::Impl::run() {
  const auto& r = o_.run;
  if (!o_.state_file.empty()) {
    auto b = detect::BindingStore::read_file(o_.state_file);
    if (b.ok()) {
      v1::Event ev;
      *ev.mutable_bindings() = b.value();
      feed(std::move(ev));
    } else {
      log::warn(b.error().message + " (starting with no bound identities)");
    }
  }
  // The first view of every source, for a bounded time: a source that does
  // not answer within it (a hung Cinder) is applied whenever it does.
  refresh_inventory();
  if (!refresher_->wait_all(std::chrono::seconds(3)))
    log::warn("attachment sources: not every first refresh answered within 3 s; starting with what did");
  apply_inventory();
  refresh_topology();
  sync_guard();

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  struct sigaction su {};
  su.sa_handler = on_usr1;
  sigaction(SIGUSR1, &su, nullptr);
  struct sigaction sh {};
  sh.sa_handler = on_hup;
  sigaction(SIGHUP, &sh, nullptr);

  // A single work item that holds the loop for seconds holds the stop, the
  // timers and the ring with it: logged (once per work per 10 minutes) and
  // counted in lunwatch_loop_work_seconds_total.
  work_.on_slow = [this](const std::string& work, double s) {
    auto now = Timers::Clock::now();
    auto it = slow_logged_.find(work);
    if (it != slow_logged_.end() && now - it->second < std::chrono::minutes(10)) return;
    slow_logged_[work] = now;
    char buf[160];
    std::snprintf(buf, sizeof buf, "the event loop spent %.1f s in one run of \"%s\" (stop, timers and events waited)",
                  s, work.c_str());
    log::warn(buf);
  };

  // Periodic work, in the order it runs when several are due.
  auto start = Clock::now();
  timers_.add(
      "topology", seconds(o_.topology_interval_s), [this] { refresh_topology(); }, start);
  timers_.add(
      "inventory", seconds(o_.inventory_interval_s), [this] { refresh_inventory(); }, start);
  timers_.add(
      "guard and metrics", std::chrono::seconds(2),
      [this] {
        alerts_out_->retry();
        metrics_.set_alert_output(alerts_out_->write_failures(), alerts_out_->spooled(), alerts_out_->dropped());
        sync_guard();
        update_metrics();
        // Containment retries a failed action while its alert fires (the
        // runner's backoff decides when; done actions are not repeated).
        if (contain_ && contain_->enabled())
          for (const auto& a : correlator().active_alerts())
            if (a.rule() == v1::CROSS_INSTANCE_ACCESS) contain_->start(a, mono_ns());
      },
      start, Clock::duration::zero());
  // The posture audit reads dpkg status and Python metadata: not on the way to
  // watching. First run shortly after the probes are live, then hourly.
  timers_.add(
      "audit", std::chrono::hours(1), [this] { run_audit(); }, start, std::chrono::seconds(20));
  timers_.add(
      "verify", seconds(o_.verify_interval_s), [this] { verify_all(v1::VERIFY_PERIODIC); }, start);
  timers_.add(
      "lost events", std::chrono::seconds(1), [this] { resync_if_events_lost(); }, start);
  // Hooks of modules loaded after start (probes/loader.h attach_new_modules).
  timers_.add(
      "late modules", std::chrono::seconds(1),
      [this] {
        if (probes_->attach_new_modules() > 0) update_metrics();
      },
      start);
  // Ready (and the guard's instance lists trusted) once every device's first
  // check since start has answered, or after one check's deadline and a bit.
  auto startup_deadline = start + std::chrono::milliseconds(static_cast<int64_t>(o_.verify_timeout_s * 1000) + 2000);

  probes::EventHandler handler = [&](v1::Event&& ev) {
    // Identity answers that have arrived are applied before the next kernel
    // event is judged: an I/O is never judged against an identity the agent
    // already knows to be stale. The same holds within a burst (a remap's
    // unit attentions, would-deny reports of closed devices), so the devices
    // re-open and the burst ends.
    if (verifier_->has_answers()) work_.run("identity answers", [&] { drain_verifier(); });
    work_.run("kernel events", [&] { on_kernel_event(std::move(ev)); });
  };
  while (!g_stop) {
    auto now = Clock::now();
    if (r.duration_s > 0 && now - start >= std::chrono::duration<double>(r.duration_s)) break;
    int rc = probes_->poll(verifier_->in_flight() ? 5 : 50, handler);
    if (rc < 0) {
      log::error(std::string("ring buffer poll failed: ") + strerror(-rc));
      break;
    }
    work_.run("identity answers", [&] { drain_verifier(); });
    work_.run("attachment sources", [&] { apply_inventory(); });
    drain_containment();
    now = Clock::now();
    if (starting_ && (verifier_->in_flight() == 0 || now >= startup_deadline)) {
      starting_ = false;
      sync_guard();
      log::info("ready: first verification of " + std::to_string(correlator().devices().size()) + " devices done in " +
                std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - start).count()) + " ms");
      if (!r.ready_file.empty()) std::ofstream(r.ready_file) << getpid() << "\n";
    }
    if (g_reopen.exchange(false))
      if (auto ro = alerts_out_->reopen(); !ro) log::error(ro.error().message + " (alerts go to the old file)");
    if (auto rep = audit_job_.poll()) audit_done(*rep);
    if (g_dump_now.exchange(false)) {
      v1::Alert on_demand;
      on_demand.set_summary("capture on demand (SIGUSR1 / lunwatch dump now)");
      on_demand.set_unix_ms(unix_ms());
      on_demand.set_hostname(correlator_options_.hostname);
      pending_capture_ = on_demand;
      capture_at_ = now;
    }
    if (pending_capture_ && now >= capture_at_) write_capture();
    timers_.run_due(now, &work_);
  }
  probes_->poll(0, handler);
  drain_verifier();
  drain_containment();
  if (pending_capture_) write_capture();  // do not lose a capture on a clean stop
  if (!r.stats_file.empty()) write_stats_file(r.stats_file, *probes_, &work_);
  log::info("stopped: " + std::to_string(probes_->consumer_stats().events) + " kernel events, " +
            std::to_string(alerts_total_) + " alerts");
  return 0;
}

Agent::Agent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Agent::~Agent() = default;

Result<std::unique_ptr<Agent>> Agent::make(const AgentOptions& options) {
  auto impl = std::make_unique<Impl>(options);
  if (auto r = impl->init(); !r.ok()) return r.error();
  return std::unique_ptr<Agent>(new Agent(std::move(impl)));
}

int Agent::run() { return impl_->run(); }

}  // namespace lunwatch::agent
