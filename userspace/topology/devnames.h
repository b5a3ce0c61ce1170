#pragma once
// Block device number -> kernel name ("sda", "dm-0", "loop3") from sysfs
// (/sys/dev/block/M:m/uevent DEVNAME), cached; the sysfs root is a parameter
// so tests can point it at a fixture tree.
#include <string>
#include <unordered_map>

#include "common/devt.h"

namespace lunwatch::topology {

class DeviceNames {
 public:
  explicit DeviceNames(std::string sysfs_root = "/sys") : root_(std::move(sysfs_root)) {}
  // "" when the device is gone or unknown. Misses are retried on the next
  // call (devices appear), hits are cached until forget().
  std::string name(DevNum dev);
  void forget(DevNum dev);

 private:
  std::string root_;
  std::unordered_map<uint64_t, std::string> cache_;
};

}  // namespace lunwatch::topology
