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

#include <nlohmann/json.hpp>
#include "agent/replay.h"
#include "common/log.h"
#include "detect/annotate.h"
#include "detect/correlator.h"
#include "inventory/cgroups.h"
#include "probes/loader.h"
#include "sinks/alerts.h"
#include "sinks/json.h"
#include "sinks/metrics.h"
#include "sinks/recording.h"
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

int cmd_replay(const std::string& path, const std::string& format, bool events, const agent::AgentOptions& config) {
  if (is_dump_file(path)) return replay_dump(path, format, config);
  sinks::AlertWriter alerts(stdout, format == "falco" ? sinks::AlertFormat::kFalco : sinks::AlertFormat::kJson);
  sinks::JsonLines ev_out(stdout);
  uint64_t n_alerts = 0;
  agent::ReplaySinks out;
  out.alert = [&](const v1::Alert& a) {
    alerts.write(a);
    n_alerts++;
  };
  if (events)
    out.event = [&](const v1::Event& ev) {
      if (!ev.has_topology() && !ev.has_inventory()) ev_out.write(ev);
    };
  auto r = agent::replay_recording(path, agent::correlator_options(config), out);
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
      std::printf("%-24s %-6s %-12s %-7s %-26s %s\n", s.name().c_str(), s.subsystem().c_str(), status_word(s.status()),
                  s.attach().c_str(), s.target().c_str(), detail.c_str());
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
