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
  explicit CgroupPaths(std::string mount = "/sys/fs/cgroup") : mount_(std::move(mount)) {}
  // "" when unknown. A miss triggers a rescan of the hierarchy at most once a second.
  std::string path(uint64_t cgroup_id);

 private:
  void rescan();
  std::string mount_;
  std::unordered_map<uint64_t, std::string> by_id_;
  std::chrono::steady_clock::time_point last_scan_{};
  bool scanned_ = false;
};

}  // namespace lunwatch::inventory
