#pragma once
// Settings of the live agent (`lunwatch run`, [agent] of the config file),
// and the one place the correlator's options are derived from them: run,
// replay, dump replay and topology all call correlator_options(), so a replay
// judges with the allowlist and grace periods the live agent used.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "contain/containment.h"
#include "detect/correlator.h"
#include "inventory/cinder.h"

namespace lunwatch::agent {

struct RunOptions {
  bool events = false;
  std::string events_file;
  double duration_s = 0;
  std::vector<std::string> disabled_hooks;
  std::string ready_file;
  std::string stats_file;
  std::string btf_dir = "/sys/kernel/btf";
  bool bpf_stats = true;
  bool verbose = false;
};

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
  double alert_quiet_s = 300;  // HOST_PROCESS_ACCESS / GUARD_DENIED resolve after this long without a repeat
  double verify_timeout_s = 3;
  double verify_max_age_s = 0;  // bound on a held path's last good verification; 0: 3 x interval + timeout
  // the kernel's event ring buffer (KiB, a power of two >= 4): 1024 suits hundreds
  // of paths; a full ring loses nothing for good (the maps are the truth), it
  // only delays a report until the next I/O
  double ring_buffer_kib = 1024;
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

// The correlator's options for these settings (hostname: this host's when
// not set).
detect::CorrelatorOptions correlator_options(const AgentOptions& o);

}  // namespace lunwatch::agent
