#include "inventory/cgroups.h"

#include <sys/stat.h>

#include <filesystem>
#include <optional>

#include "inventory/instances.h"
#include "inventory/source.h"

namespace lunwatch::inventory {

void CgroupPaths::rescan() {
  namespace fs = std::filesystem;
  by_id_.clear();
  struct stat st {};
  if (::stat(mount_.c_str(), &st) == 0)
    by_id_.emplace(st.st_ino, std::string(1, '/'));  // not = "/": GCC 12 -Wrestrict false positive
  std::error_code ec;
  fs::recursive_directory_iterator it(mount_, fs::directory_options::skip_permission_denied, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    if (!it->is_directory(ec)) continue;
    if (::stat(it->path().c_str(), &st) != 0) continue;
    by_id_[st.st_ino] = it->path().string().substr(mount_.size());
  }
  last_scan_ = std::chrono::steady_clock::now();
  scanned_ = true;
}

namespace {
// A process's cgroup v2 path and that directory's inode (its cgroup id); none
// when the process is gone or the directory is.
struct PidCgroup {
  std::string path;
  uint64_t id = 0;
};
std::optional<PidCgroup> cgroup_of_pid(uint32_t pid, const std::string& proc_root, const std::string& cgroup_root) {
  auto text = read_file_capped(proc_root + "/" + std::to_string(pid) + "/cgroup", 65536);
  std::string path = text ? parse_proc_cgroup_v2(*text) : "";
  struct stat st {};
  if (path.empty() || ::stat((cgroup_root + path).c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return std::nullopt;
  return PidCgroup{std::move(path), st.st_ino};
}
}  // namespace

bool CgroupPaths::from_pid(uint64_t id, uint32_t pid) {
  auto cg = cgroup_of_pid(pid, proc_root_, mount_);
  if (!cg || cg->id != id) return false;
  by_id_[id] = std::move(cg->path);
  return true;
}

std::string CgroupPaths::path(uint64_t id, uint32_t pid) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) return it->second;
  if (pid != 0 && from_pid(id, pid)) return by_id_[id];
  if (!scanned_ || std::chrono::steady_clock::now() - last_scan_ > std::chrono::seconds(1)) {
    rescan();
    it = by_id_.find(id);
    if (it != by_id_.end()) return it->second;
  }
  return "";
}

uint64_t instance_cgroup_id(uint32_t pid, const std::string& proc_root, const std::string& cgroup_root) {
  auto cg = cgroup_of_pid(pid, proc_root, cgroup_root);
  return cg && parse_machine_scope(cg->path) ? cg->id : 0;
}

}  // namespace lunwatch::inventory
