#include "topology/devnames.h"

#include <fstream>

namespace lunwatch::topology {

namespace {
uint64_t key(DevNum d) { return (uint64_t{d.major} << 32) | d.minor; }
}  // namespace

std::string DeviceNames::name(DevNum dev) {
  auto it = cache_.find(key(dev));
  if (it != cache_.end()) return it->second;
  std::ifstream in(root_ + "/dev/block/" + to_string(dev) + "/uevent");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("DEVNAME=", 0) == 0) {
      auto n = line.substr(8);
      cache_[key(dev)] = n;
      return n;
    }
  }
  return "";
}

void DeviceNames::forget(DevNum dev) { cache_.erase(key(dev)); }

}  // namespace lunwatch::topology
