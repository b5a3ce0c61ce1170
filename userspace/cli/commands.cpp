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
#include "inventory/cgroups.h"
#include "probes/loader.h"
#include "sinks/json.h"
#include "topology/devnames.h"
#include "version.h"

namespace lunwatch::cli {
namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

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

void write_stats(const std::string& path, const probes::Probes& p) {
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

int cmd_run(const RunOptions& o) {
  probes::ProbeOptions po;
  po.disabled_hooks.insert(o.disabled_hooks.begin(), o.disabled_hooks.end());
  po.verbose = o.verbose;
  po.btf_dir = o.btf_dir;
  po.run_stats = o.bpf_stats;
  auto probes = probes::Probes::make(po);
  if (!probes.ok()) {
    log::error(probes.error().message);
    return exit_code(probes.error().code);
  }
  int attached = 0;
  for (const auto& h : probes.value()->hook_states()) {
    if (h.status() == v1::HOOK_ATTACHED) attached++;
    else log::info("hook " + h.name() + ": " + status_word(h.status()) + (h.reason().empty() ? "" : ": " + h.reason()));
  }
  log::info("watching with " + std::to_string(attached) + " hooks attached");

  std::FILE* out = nullptr;
  if (!o.events_file.empty()) {
    out = std::fopen(o.events_file.c_str(), "a");
    if (!out) {
      log::error("cannot open events file " + o.events_file);
      return 1;
    }
  } else if (o.events) {
    out = stdout;
  }
  sinks::JsonLines sink(out ? out : stdout);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  if (!o.ready_file.empty()) std::ofstream(o.ready_file) << getpid() << "\n";

  topology::DeviceNames names;
  inventory::CgroupPaths cgroups;
  detect::Annotator annotator(names, cgroups);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.duration_s);
  probes::EventHandler handler = [&](v1::Event&& ev) {
    annotator.annotate(ev);
    if (out) sink.write(ev);
  };
  while (!g_stop) {
    if (o.duration_s > 0 && std::chrono::steady_clock::now() >= deadline) break;
    int rc = probes.value()->poll(200, handler);
    if (rc < 0) {
      log::error(std::string("ring buffer poll failed: ") + strerror(-rc));
      break;
    }
  }
  // Drain what is left so nothing seen is lost on a clean stop.
  probes.value()->poll(0, handler);
  if (!o.stats_file.empty()) write_stats(o.stats_file, *probes.value());
  if (out && out != stdout) std::fclose(out);
  auto drops = probes.value()->drops();
  uint64_t dropped = 0;
  for (size_t i = 0; i < drops.size(); ++i)
    if (i != LW_DROP_ERROR_RATELIMIT) dropped += drops[i];
  log::info("stopped: " + std::to_string(probes.value()->consumer_stats().events) + " events, " +
            std::to_string(dropped) + " dropped");
  return 0;
}

int cmd_probes(bool json, bool verbose, const std::string& btf_dir) {
  probes::ProbeOptions po;
  po.verbose = verbose;
  po.btf_dir = btf_dir;
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
