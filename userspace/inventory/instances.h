#pragma once
// Process -> instance. The kernel side names a process by tgid; this stage
// says which Nova instance (if any) it is, from the qemu command line, the
// systemd machine scope of its cgroup, and the libvirt domain XML.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "inventory/libvirt.h"
#include "inventory/source.h"
#include "lunwatch.pb.h"

namespace lunwatch::inventory {

// Pure. A qemu argv (argv[0] basename qemu-system-*, qemu-kvm or kvm) ->
// Instance with name (-name guest=instance-0000002a,debug-threads=on or
// -name instance-0000002a) and uuid (-uuid), resolved_from "cmdline".
// nullopt for anything that is not qemu.
std::optional<v1::Instance> parse_qemu_cmdline(const std::vector<std::string>& argv);

// Pure. systemd unescaping of one unit name: "\x2d" -> "-".
std::string unescape_unit_name(std::string_view name);

// Pure. cgroup path -> libvirt domain name, from
// .../machine.slice/machine-qemu\x2d<id>\x2dinstance\x2d0000002a.scope, with or
// without the <id> (libvirt < 2.x) and whatever lies below the scope
// (libvirt >= 7.1: /libvirt/emulator, /libvirt/vcpuN; older: /emulator).
std::optional<std::string> parse_machine_scope(std::string_view cgroup_path);

// Pure. /proc/<pid>/stat -> field 22 (start time in clock ticks since boot);
// the comm in parentheses may itself hold spaces and parentheses.
std::optional<uint64_t> parse_proc_start_time(std::string_view stat);

// Pure. /proc/<pid>/cgroup -> the cgroup v2 path ("0::/path" line), "" if none.
std::string parse_proc_cgroup_v2(std::string_view text);

// Pure. NUL-separated /proc/<pid>/cmdline -> argv.
std::vector<std::string> split_cmdline(std::string_view raw);

struct InstanceResolverStats {
  uint64_t lookups = 0;      // resolve() calls
  uint64_t cache_hits = 0;   // answered from the (tgid, start time) cache
  uint64_t vanished = 0;     // process gone before or during the lookup
  uint64_t host = 0;         // resolved to "host process"
  uint64_t instances = 0;    // resolved to a qemu instance (cache misses only)
  uint64_t pid_reuse = 0;    // cached tgid came back with another start time
  uint64_t read_errors = 0;  // /proc unreadable for another reason than "gone" (EMFILE...)
};

// Reads /proc/<pid>/{stat,cmdline,cgroup,comm} and the libvirt domain XML
// (<run dir>/<name>.xml) of the instance it finds. Never throws: a process
// that exits mid-lookup resolves to the host-process answer (counted in
// stats().vanished). Not thread-safe.
class InstanceResolver {
 public:
  explicit InstanceResolver(std::string proc_root = "/proc", std::string libvirt_run_dir = "/run/libvirt/qemu",
                            size_t max_cached = 8192);

  // kernel_cgroup: the cgroup path the kernel reported with the event (the
  // flow's cgroup id, named): when /proc says nothing (the process is gone, or
  // /proc could not be read) an instance scope there still names the instance.
  v1::Instance resolve(uint32_t tgid, const std::string& kernel_cgroup = "");
  // Drops the cache entry (call on process exit).
  void forget(uint32_t tgid) { cache_.erase(tgid); }
  const InstanceResolverStats& stats() const { return stats_; }

 private:
  // an answer holds while the process is the same one (start time) with the same
  // comm, and a host-process answer until the kernel sees it in an instance
  // scope: a process read between fork and exec, or before it joined its
  // scope, is read again once it is the qemu it became
  struct Cached {
    uint64_t start_time = 0;
    std::string comm;
    v1::Instance instance;
  };
  struct Domain {
    FileSignature sig;
    std::optional<LibvirtDomain> domain;  // nullopt when the file did not parse
  };
  v1::Instance host_process(uint32_t tgid, std::string comm, std::string cgroup);
  v1::Instance vanished(uint32_t tgid, const std::string& kernel_cgroup);
  v1::Instance from_scope(uint32_t tgid, const std::string& cgroup, const std::string& scope_name,
                          std::optional<v1::Instance> inst);
  const LibvirtDomain* domain(const std::string& name);

  std::string proc_;
  std::string run_dir_;
  size_t max_cached_;
  std::unordered_map<uint32_t, Cached> cache_;
  std::map<std::string, Domain> domains_;
  InstanceResolverStats stats_;
  std::chrono::steady_clock::time_point last_error_log_{};
};

}  // namespace lunwatch::inventory
