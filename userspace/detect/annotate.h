#pragma once
// Adds what the kernel record cannot carry: device names and cgroup paths.
// The first stage after decoding; the correlator builds on it.
#include "inventory/cgroups.h"
#include "lunwatch.pb.h"
#include "topology/devnames.h"

namespace lunwatch::detect {

class Annotator {
 public:
  Annotator(topology::DeviceNames& names, inventory::CgroupPaths& cgroups) : names_(names), cgroups_(cgroups) {}
  void annotate(v1::Event& ev);

 private:
  std::string name_of(const std::string& dev);
  topology::DeviceNames& names_;
  inventory::CgroupPaths& cgroups_;
};

}  // namespace lunwatch::detect
