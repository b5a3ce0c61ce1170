#pragma once
// `lunwatch run`: the live pipeline. Kernel events, sysfs topology, SG_IO
// identities and attachment sources all become v1::Event values fed, in
// order, to one correlator; its alerts go to the sinks and its requests
// (verify, re-arm) back to the verifier and the kernel. Single-threaded
// except for SG_IO workers, which never block the loop.
#include <string>
#include <vector>

#include "cli/commands.h"
#include "contain/containment.h"
#include "inventory/cinder.h"

#include <optional>

namespace lunwatch::cli {

struct AgentOptions {
  RunOptions run;
  std::string alerts_file;            // "" -> stdout
  std::string alert_format = "json";  // json | falco
  std::string record_file;            // every correlator input, for `lunwatch replay`
  std::string libvirt_dir = "/run/libvirt/qemu";
  bool libvirt = true;
  std::vector<std::string> attachment_files;  // JSON files or folders of attachment records
  // Host processes (comm prefixes) allowed to do I/O to volume devices, on top
  // of the built-in list (multipathd, udev, kworkers, os-brick helpers...).
  std::vector<std::string> host_allowlist_extra;
  std::string sysfs_root = "/sys";
  std::string state_file = "/var/lib/lunwatch/bindings.json";
  double inventory_interval_s = 10;
  double topology_interval_s = 30;
  double verify_interval_s = 60;
  double orphan_grace_s = 60;
  double verify_timeout_s = 3;
  double verify_max_age_s = 0;  // bound on a held path's last good verification; 0: 3 x interval + timeout
  std::string hostname;
  std::string metrics_listen = "127.0.0.1:9477";
  std::string guard_mode = "monitor";  // off | monitor | enforce
  std::string pin_dir = "/sys/fs/bpf/lunwatch";
  // Forensic captures.
  std::string dump_dir = "/var/lib/lunwatch/dumps";
  std::string dump_severity = "high";  // critical | high | warning | off
  double dump_before_s = 60;
  double dump_after_s = 10;
  size_t dump_max_files = 20;
  uint64_t dump_max_bytes = 512ull << 20;
  uint64_t recorder_max_bytes = 64ull << 20;
  std::string pid_file = "/run/lunwatch/lunwatch.pid";
  std::optional<inventory::KeystoneConfig> cinder;  // [cinder] of the config file
  // Containment on a confirmed leak: "offline", "pause", both ("offline,pause")
  // or "none" (the default); the rest of contain:: settings from [containment].
  std::string contain_actions = "none";
  contain::Options contain;
};

int run_agent(const AgentOptions& options);

}  // namespace lunwatch::cli
