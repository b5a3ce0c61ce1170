#pragma once
// cgroup v2 id (what bpf_get_current_cgroup_id returns: the cgroup
// directory's inode number) -> path below the cgroup2 mount, e.g.
// "/machine.slice/machine-qemu\x2d1\x2dinstance\x2d0000000a.scope".
#include <chrono>
#include <cstdint>
#include <string>
#include <unordered_map>

namespace lunwatch::inventory {

class CgroupPaths {
 public:
  explicit CgroupPaths(std::string mount = "/sys/fs/cgroup", std::string proc_root = "/proc")
      : mount_(std::move(mount)), proc_root_(std::move(proc_root)) {}
  // "" when unknown. A miss asks the process the id came from first (pid: its
  // /proc/PID/cgroup, taken only when that directory's inode is the id), then
  // rescans the hierarchy, at most once a second: a scope created just after a
  // rescan is still named on its first event.
  std::string path(uint64_t cgroup_id, uint32_t pid = 0);

 private:
  void rescan();
  bool from_pid(uint64_t cgroup_id, uint32_t pid);
  std::string mount_, proc_root_;
  std::unordered_map<uint64_t, std::string> by_id_;
  std::chrono::steady_clock::time_point last_scan_{};
  bool scanned_ = false;
};

// The cgroup v2 id of an instance process's own scope (libvirt's
// machine-qemu-N-NAME.scope, or NAME.libvirt-qemu): 0 when the process is
// gone or its cgroup is not an instance scope (a qemu left in the root or a
// shared cgroup must not make every process there an instance process).
uint64_t instance_cgroup_id(uint32_t pid, const std::string& proc_root = "/proc",
                            const std::string& cgroup_root = "/sys/fs/cgroup");

}  // namespace lunwatch::inventory
