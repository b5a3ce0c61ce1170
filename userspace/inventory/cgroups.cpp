#include "inventory/cgroups.h"

#include <sys/stat.h>

#include <filesystem>

namespace lunwatch::inventory {

void CgroupPaths::rescan() {
  namespace fs = std::filesystem;
  by_id_.clear();
  struct stat st {};
  if (::stat(mount_.c_str(), &st) == 0) by_id_.emplace(st.st_ino, std::string(1, '/'));  // not = "/": GCC 12 -Wrestrict false positive
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

std::string CgroupPaths::path(uint64_t id) {
  auto it = by_id_.find(id);
  if (it != by_id_.end()) return it->second;
  if (!scanned_ || std::chrono::steady_clock::now() - last_scan_ > std::chrono::seconds(1)) {
    rescan();
    it = by_id_.find(id);
    if (it != by_id_.end()) return it->second;
  }
  return "";
}

}  // namespace lunwatch::inventory
