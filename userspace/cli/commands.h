#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "agent/options.h"
#include "common/result.h"

namespace lunwatch::probes {
class Probes;
}

namespace lunwatch::cli {

using agent::RunOptions;

// Replays a recording (or a capture dump) with the correlator options of the
// agent's config, so it reaches the live run's verdicts.
int cmd_replay(const std::string& path, const std::string& format, bool events, const agent::AgentOptions& config);
struct TopologyOptions {
  bool json = false;
  bool verify = true;
  double verify_timeout_s = 3;
  std::string sysfs_root = "/sys";
  std::string libvirt_dir = "/run/libvirt/qemu";
  bool libvirt = true;
  std::vector<std::string> attachment_files;
  std::string state_file = "/var/lib/lunwatch/bindings.json";
};

// Exit status: 0 nothing wrong, 1 findings.
int cmd_topology(const TopologyOptions& options, const agent::AgentOptions& config);
int cmd_probes(bool json, bool verbose, const std::string& btf_dir,
               const std::vector<std::string>& disabled_hooks = {});
int cmd_version();

struct GuardCommand {
  std::string action = "status";  // status, mode, release, quarantine
  std::string arg;
  std::string pin_dir = "/sys/fs/bpf/lunwatch";
  std::vector<uint32_t> owners;     // arm: processes allowed
  std::vector<uint32_t> instances;  // arm: further processes the guard applies to
};
int cmd_guard(const GuardCommand& g);

struct DumpCommand {
  std::string action = "show";  // show, verify, now
  std::string file;
  bool json = false;
  std::string pid_file = "/run/lunwatch/lunwatch.pid";
  std::string dump_dir = "/var/lib/lunwatch/dumps";
  double timeout_s = 10;
};
int cmd_dump(const DumpCommand& d);
bool is_dump_file(const std::string& path);
// Replays a capture dump; exit 0 when the trigger alert is raised again.
int replay_dump(const std::string& path, const std::string& format, const agent::AgentOptions& config);
int cmd_metrics(bool json);

// Process exit code for an error that stops a command.
int exit_code(Errc code);

}  // namespace lunwatch::cli
