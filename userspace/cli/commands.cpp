#include "cli/commands.h"

#include <bpf/libbpf.h>
#include <poll.h>
#include <sys/utsname.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "common/log.h"
#include "detect/annotate.h"
#include "detect/correlator.h"
#include "sinks/alerts.h"
#include "sinks/recording.h"
#include "inventory/cgroups.h"
#include "probes/loader.h"
#include "sinks/json.h"
#include "sinks/metrics.h"
#include <nlohmann/json.hpp>
#include "topology/devnames.h"
#include "version.h"

namespace lunwatch::cli {
namespace {

std::string kernel_release() {
  struct utsname u {};
  uname(&u);
  return u.release;
}

const char* status_word(v1::HookStatus s) {
  switch (s) {
    case v1::HOOK_ATTACHED: return "attached";
    case v1::HOOK_NOT_PRESENT: return "not present";
    case v1::HOOK_FAILED: return "failed";
    case v1::HOOK_DISABLED: return "disabled";
    default: return "planned";
  }
}

}  // namespace

void write_stats_file(const std::string& path, const probes::Probes& p) {
  std::ofstream out(path);
  out << "{\"flows\":[";
  bool first = true;
  for (const auto& f : p.flows()) {
    out << (first ? "" : ",") << "{\"pid\":" << f.key.tgid << ",\"dev\":\"" << to_string(from_kernel_dev(f.key.dev))
        << "\",\"read_bytes\":" << f.val.bytes[0] << ",\"write_bytes\":" << f.val.bytes[1]
        << ",\"read_ios\":" << f.val.ios[0] << ",\"write_ios\":" << f.val.ios[1] << "}";
    first = false;
  }
  out << "],\"drops\":{";
  auto drops = p.drops();
  for (size_t i = 0; i < drops.size(); ++i)
    out << (i ? "," : "") << "\"" << probes::drop_cause_name(static_cast<int>(i)) << "\":" << drops[i];
  auto stats = p.stats();
  out << "},\"io_seen\":" << stats[LW_STAT_IO_SEEN] << ",\"flow_repeat\":" << stats[LW_STAT_FLOW_REPEAT]
      << ",\"events_emitted\":{";
  for (int t = 1; t < LW_EV_MAX; ++t)
    out << (t > 1 ? "," : "") << "\"" << t << "\":" << stats[LW_STAT_EVENTS_BASE + t];
  out << "},\"programs\":[";
  first = true;
  for (const auto& s : p.program_stats()) {
    out << (first ? "" : ",") << "{\"program\":\"" << s.program << "\",\"hook\":\"" << s.hook
        << "\",\"run_cnt\":" << s.run_cnt << ",\"run_time_ns\":" << s.run_time_ns << "}";
    first = false;
  }
  const auto& c = p.consumer_stats();
  out << "],\"consumer\":{\"events\":" << c.events << ",\"truncated\":" << c.decode_truncated
      << ",\"unknown\":" << c.decode_unknown << ",\"bad_size\":" << c.decode_bad_size << "}}\n";
}

int exit_code(Errc code) {
  switch (code) {
    case Errc::kOk: return 0;
    case Errc::kNotRoot: return 3;
    case Errc::kNoBtf: return 4;
    case Errc::kBpfNotPermitted: return 5;
    case Errc::kMemlock: return 6;
    case Errc::kInvalidArgument: return 2;
    default: return 1;
  }
}

int cmd_replay(const std::string& path, const std::string& format, bool events) {
  if (is_dump_file(path)) return replay_dump(path, format);
  detect::Correlator correlator;
  sinks::AlertWriter alerts(stdout, format == "falco" ? sinks::AlertFormat::kFalco : sinks::AlertFormat::kJson);
  sinks::JsonLines ev_out(stdout);
  uint64_t n_alerts = 0;
  auto r = sinks::read_recording(path, [&](v1::Event&& ev) {
    if (events && !ev.has_topology() && !ev.has_inventory()) ev_out.write(ev);
    detect::Output out;
    correlator.on_event(ev, out);
    for (const auto& a : out.alerts) {
      alerts.write(a);
      n_alerts++;
    }
  });
  if (!r.ok()) {
    log::error(r.error().message);
    return 1;
  }
  log::info("replayed " + std::to_string(r.value()) + " events: " + std::to_string(n_alerts) + " alerts");
  return 0;
}

int cmd_probes(bool json, bool verbose, const std::string& btf_dir, const std::vector<std::string>& disabled_hooks) {
  probes::ProbeOptions po;
  po.disabled_hooks.insert(disabled_hooks.begin(), disabled_hooks.end());
  po.verbose = verbose;
  po.btf_dir = btf_dir;
  po.guard = true;  // report whether the guard's LSM programs load here (mode stays as pinned)
  std::vector<v1::HookState> states;
  std::string note;
  auto probes = probes::Probes::make(po);
  if (probes.ok()) {
    states = probes.value()->hook_states();
  } else {
    note = probes.error().message;
    states = probes::Probes::plan(po);
  }
  if (json) {
    v1::ProbeReport report;
    report.set_kernel(kernel_release());
    for (auto& s : states) *report.add_hooks() = s;
    std::cout << sinks::to_json(report) << "\n";
  } else {
    std::printf("kernel %s\n", kernel_release().c_str());
    if (!note.empty()) std::printf("not loaded (%s): showing the plan only\n", note.c_str());
    std::printf("%-24s %-6s %-12s %-7s %-26s %s\n", "HOOK", "AREA", "STATE", "ATTACH", "TARGET", "DETAIL");
    for (const auto& s : states) {
      std::string detail = s.reason();
      if (detail.empty() && !s.module().empty()) detail = "module " + s.module();
      std::printf("%-24s %-6s %-12s %-7s %-26s %s\n", s.name().c_str(), s.subsystem().c_str(),
                  status_word(s.status()), s.attach().c_str(), s.target().c_str(), detail.c_str());
    }
  }
  if (!probes.ok()) return exit_code(probes.error().code);
  return 0;
}

int cmd_version() {
  std::printf("lunwatch %s (libbpf %d.%d, kernel %s)\n", LUNWATCH_VERSION, libbpf_major_version(),
              libbpf_minor_version(), kernel_release().c_str());
  return 0;
}

}  // namespace lunwatch::cli

namespace lunwatch::cli {

int cmd_metrics(bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : sinks::metric_catalog())
      out.push_back({{"name", m.name}, {"type", m.type}, {"help", m.help}, {"labels", m.labels}});
    std::cout << out.dump(1) << "\n";
    return 0;
  }
  for (const auto& m : sinks::metric_catalog()) {
    std::string labels;
    for (const auto& l : m.labels) labels += (labels.empty() ? "" : ",") + l;
    std::printf("%-52s %-8s {%s} %s\n", m.name.c_str(), m.type.c_str(), labels.c_str(), m.help.c_str());
  }
  return 0;
}

}  // namespace lunwatch::cli
