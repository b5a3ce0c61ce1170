// `lunwatch dump show|verify|now` and dump-aware `replay`.
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "agent/replay.h"
#include "cli/commands.h"
#include "common/enum_name.h"
#include "common/log.h"
#include "common/pidfile.h"
#include "contain/containment.h"
#include "detect/correlator.h"
#include "sinks/alerts.h"
#include "sinks/dump.h"
#include "sinks/json.h"

namespace lunwatch::cli {
namespace {

std::string describe(const v1::Event& e) {
  char buf[512];
  switch (e.body_case()) {
    case v1::Event::kFlow: {
      const auto& f = e.flow();
      std::string who = f.instance().name().empty() ? "host process" : f.instance().name();
      std::snprintf(buf, sizeof buf, "I/O    pid %u (%s, %s) first %s on %s", f.pid(), f.comm().c_str(), who.c_str(),
                    enum_suffix(v1::Op_Name(f.op()), 3, f.op()).c_str(),
                    (f.dev_name().empty() ? f.dev() : f.dev_name()).c_str());
      return buf;
    }
    case v1::Event::kEdge:
      return "stack  " + (e.edge().upper_name().empty() ? e.edge().upper() : e.edge().upper_name()) + " -> " +
             (e.edge().lower_name().empty() ? e.edge().lower() : e.edge().lower_name());
    case v1::Event::kScsiBind:
      return "bind   " + (e.scsi_bind().dev_name().empty() ? e.scsi_bind().dev() : e.scsi_bind().dev_name()) + " at " +
             e.scsi_bind().addr().hctl();
    case v1::Event::kScsiError: {
      const auto& x = e.scsi_error();
      return "error  " + x.dev_name() + " " + x.addr().hctl() + " " + x.opcode_name() + " " + x.status() + " " +
             x.sense().key_name() + " " + x.sense().description();
    }
    case v1::Event::kLifecycle: {
      const auto& l = e.lifecycle();
      std::string kind = enum_suffix(v1::LifecycleKind_Name(l.kind()), 3, l.kind());
      std::string s = "scsi   " + kind + " " + l.addr().hctl();
      if (l.session() >= 0) s += " session " + std::to_string(l.session());
      if (!l.path().empty()) s += " path " + (l.path_name().empty() ? l.path() : l.path_name());
      if (!l.dev_name().empty()) s += " on " + l.dev_name();
      if (!l.code_name().empty()) s += " (" + l.code_name() + ")";
      return s;
    }
    case v1::Event::kIdentity: {
      const auto& c = e.identity();
      return "verify " + c.dev_name() + " " +
             (c.ok() ? c.identity().wwid() + " serial " + c.identity().serial() : "failed: " + c.error()) + " (" +
             enum_suffix(v1::VerifyReason_Name(c.reason()), 7, c.reason()) + ")";
    }
    case v1::Event::kInventory:
      return "source " + e.inventory().name() + ": " + std::to_string(e.inventory().attachments_size()) +
             " attachments" + (e.inventory().stale() ? " (stale)" : "");
    case v1::Event::kTopology:
      return "sysfs  " + std::to_string(e.topology().devices_size()) + " SCSI devices, " +
             std::to_string(e.topology().maps_size()) + " multipath maps";
    case v1::Event::kBindings: return "state  " + std::to_string(e.bindings().bindings_size()) + " bound identities";
    case v1::Event::kGuard: {
      const auto& g = e.guard();
      return std::string("guard  ") + (g.denied() ? "REFUSED " : "would refuse ") + (g.write() ? "write" : "read") +
             " by pid " + std::to_string(g.pid()) + " (" + g.comm() + ") on " + g.dev_name();
    }
    default: return "other";
  }
}

int replay_events(const std::vector<v1::Event>& events, const std::string& format, bool print, std::string* want_id,
                  bool* reproduced, const agent::AgentOptions& config) {
  sinks::AlertWriter w(stdout, format == "falco" ? sinks::AlertFormat::kFalco : sinks::AlertFormat::kJson);
  agent::ReplaySinks out;
  out.alert = [&](const v1::Alert& a) {
    if (print) w.write(a);
    if (want_id && a.id() == *want_id && a.state() == v1::ALERT_FIRING) *reproduced = true;
  };
  return static_cast<int>(agent::replay_events(events, agent::correlator_options(config), out));
}

std::vector<v1::Event> all_events(const v1::CaptureDump& d) {
  std::vector<v1::Event> out(d.baseline().begin(), d.baseline().end());
  out.insert(out.end(), d.events().begin(), d.events().end());
  return out;
}

}  // namespace

bool is_dump_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(sizeof(sinks::kDumpMagic) - 1, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  return head == sinks::kDumpMagic;
}

int replay_dump(const std::string& path, const std::string& format, const agent::AgentOptions& config) {
  auto d = sinks::read_dump(path);
  if (!d.ok()) return log::error(d.error().message), 1;
  std::string want = d->trigger().id();
  bool reproduced = false;
  int n = replay_events(all_events(d.value()), format, true, &want, &reproduced, config);
  if (d->reason() == "on demand") {
    log::info("replayed an on-demand capture: " + std::to_string(n) + " alerts");
    return 0;
  }
  log::info("replayed " + std::to_string(d->baseline_size() + d->events_size()) + " events: " + std::to_string(n) +
            " alerts; trigger " + want + (reproduced ? " reproduced" : " NOT reproduced"));
  return reproduced ? 0 : 1;
}

int cmd_dump(const DumpCommand& o) {
  if (o.action == "now") {
    auto agent = running_agent_pid(o.pid_file);  // locked by a live lunwatch, never a stale pid
    if (!agent) return log::error(agent.error().message), 1;
    int pid = agent.value();
    auto before = std::chrono::system_clock::now();
    if (::kill(pid, SIGUSR1) != 0) return log::error("cannot signal lunwatch pid " + std::to_string(pid)), 1;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(o.dump_dir, ec)) {
        if (e.path().extension() != ".lwdump" || e.path().string().find("on-demand") == std::string::npos) continue;
        auto t = std::chrono::file_clock::to_sys(e.last_write_time(ec));
        if (t >= before - std::chrono::seconds(1)) {
          std::printf("%s\n", e.path().c_str());
          return 0;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return log::error("lunwatch (pid " + std::to_string(pid) + ") wrote no capture in " + o.dump_dir), 1;
  }

  sinks::DumpCheck check;
  auto d = sinks::read_dump(o.file, &check);
  if (!d.ok()) return log::error(d.error().message), 1;
  const auto& dump = d.value();
  if (o.action == "verify") {
    // Without its sidecar nothing says the file is what the agent wrote.
    bool ok = check.problems.empty() && check.checksum_present && check.checksum_ok;
    std::printf("%s: format version %u, %d baseline + %d events, %d processes\n", o.file.c_str(), dump.format_version(),
                dump.baseline_size(), dump.events_size(), dump.processes_size());
    std::printf("checksum: %s\n", !check.checksum_present ? "no .sha256 sidecar"
                                  : check.checksum_ok     ? "ok"
                                                          : "MISMATCH");
    for (const auto& p : check.problems) std::printf("problem: %s\n", p.c_str());
    std::printf("%s\n", ok ? "verified" : "NOT verified");
    return ok ? 0 : 1;
  }
  // show
  if (o.json) {
    std::cout << sinks::to_json(dump) << "\n";
    return 0;
  }
  const auto& t = dump.trigger();
  std::printf("capture of %s, %s (%s)\n", dump.host().hostname().c_str(),
              sinks::rfc3339_ms(dump.created_unix_ms()).c_str(), dump.reason().c_str());
  std::printf("agent %s, kernel %s, libbpf %s, guard %s\n", dump.host().agent_version().c_str(),
              dump.host().kernel().c_str(), dump.host().libbpf().c_str(), dump.host().guard_mode().c_str());
  if (t.rule() != v1::RULE_UNKNOWN) {
    std::printf("\nTRIGGER  %s %s at %s\n  %s\n", v1::Rule_Name(t.rule()).c_str(),
                enum_suffix(v1::Severity_Name(t.severity()), 9, t.severity()).c_str(),
                sinks::rfc3339_ms(t.unix_ms()).c_str(), t.summary().c_str());
    if (!t.instance().name().empty())
      std::printf("  instance %s (%s) pid %u\n", t.instance().name().c_str(), t.instance().uuid().c_str(), t.pid());
    if (!t.owner_volume_id().empty())
      std::printf("  device now answers as volume %s of %s\n", t.owner_volume_id().c_str(),
                  t.owner().name().empty() ? t.owner().uuid().c_str() : t.owner().name().c_str());
    for (const auto& p : t.paths())
      std::printf("  path %s %s %s@%s lun %llu cached %s verified %s\n", p.name().c_str(), p.addr().hctl().c_str(),
                  p.target().iqn().c_str(), p.target().portal().c_str(),
                  static_cast<unsigned long long>(p.target().lun()), p.cached_wwid().c_str(),
                  p.verified_wwid().c_str());
    for (const auto& c : t.containment())
      std::printf("  containment %s %s %s (+%u ms): %s\n", contain::kind_name(c.kind()), c.target().c_str(),
                  contain::result_name(c.result()), c.took_ms(), c.detail().c_str());
  }
  std::printf("\nTIMELINE (ms relative to the trigger; %d baseline state events not shown)\n", dump.baseline_size());
  int64_t t0 = t.unix_ms() ? t.unix_ms() : dump.created_unix_ms();
  for (const auto& e : dump.events()) {
    bool trig = dump.trigger_seq() && e.seq() == dump.trigger_seq();
    std::printf("%s %+9lld  %s\n", trig ? ">>>" : "   ", static_cast<long long>(e.unix_ms() - t0), describe(e).c_str());
  }
  std::printf("\nPROCESSES\n");
  for (const auto& p : dump.processes()) {
    std::string devs;
    for (const auto& o2 : p.open_block_devices()) devs += " fd" + std::to_string(o2.fd()) + "=" + o2.path();
    std::printf("  pid %u %s%s %s cgroup %s open:%s\n", p.pid(), p.comm().c_str(), p.gone() ? " (gone)" : "",
                p.instance().name().c_str(), p.cgroup().c_str(), devs.empty() ? " none" : devs.c_str());
  }
  std::printf("\nSTATE  %d SCSI devices, %d maps, %d sources, %d bound identities\n", dump.topology().devices_size(),
              dump.topology().maps_size(), dump.sources_size(), dump.bindings().bindings_size());
  for (const auto& dev : dump.topology().devices())
    std::printf("  %s %s cached %s verified %s%s\n", dev.name().c_str(), dev.addr().hctl().c_str(),
                dev.cached().wwid().c_str(), dev.verified().wwid().c_str(),
                dev.has_verified() && dev.verified().wwid() != dev.cached().wwid() ? "  <-- stale sysfs cache" : "");
  return 0;
}

}  // namespace lunwatch::cli
