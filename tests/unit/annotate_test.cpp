#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "detect/annotate.h"

using namespace lunwatch;
namespace fs = std::filesystem;

class AnnotateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("lw-annot-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    add_dev("8:16", "sdb");
    add_dev("253:0", "dm-0");
    fs::create_directories(root_ / "cgroup/machine.slice/machine-qemu\\x2d1\\x2dinstance\\x2d0000000a.scope");
  }
  void TearDown() override { fs::remove_all(root_); }
  void add_dev(const std::string& num, const std::string& name) {
    fs::create_directories(root_ / "sys/dev/block" / num);
    std::ofstream(root_ / "sys/dev/block" / num / "uevent")
        << "MAJOR=x\nMINOR=y\nDEVNAME=" << name << "\nDEVTYPE=disk\n";
  }
  uint64_t ino(const fs::path& p) {
    struct stat st {};
    ::stat(p.c_str(), &st);
    return st.st_ino;
  }
  fs::path root_;
};

TEST_F(AnnotateTest, NamesDevicesAndCgroups) {
  topology::DeviceNames names((root_ / "sys").string());
  inventory::CgroupPaths cgroups((root_ / "cgroup").string());
  detect::Annotator a(names, cgroups);

  v1::Event ev;
  auto* f = ev.mutable_flow();
  f->set_dev("253:0");
  auto scope = root_ / "cgroup/machine.slice/machine-qemu\\x2d1\\x2dinstance\\x2d0000000a.scope";
  f->set_cgroup_id(ino(scope));
  a.annotate(ev);
  EXPECT_EQ(ev.flow().dev_name(), "dm-0");
  EXPECT_EQ(ev.flow().cgroup(), "/machine.slice/machine-qemu\\x2d1\\x2dinstance\\x2d0000000a.scope");

  v1::Event edge;
  edge.mutable_edge()->set_upper("253:0");
  edge.mutable_edge()->set_lower("8:16");
  a.annotate(edge);
  EXPECT_EQ(edge.edge().upper_name(), "dm-0");
  EXPECT_EQ(edge.edge().lower_name(), "sdb");
}

TEST_F(AnnotateTest, UnknownDeviceStaysUnnamedThenResolvesWhenItAppears) {
  topology::DeviceNames names((root_ / "sys").string());
  EXPECT_EQ(names.name({8, 32}), "");
  add_dev("8:32", "sdc");
  EXPECT_EQ(names.name({8, 32}), "sdc");  // a miss is not cached
  inventory::CgroupPaths cgroups((root_ / "cgroup").string());
  EXPECT_EQ(cgroups.path(1ull << 60), "");
}

// A scope created just after a rescan (another miss moments before) is named on
// its first event from the event's own process, not after the next rescan: a
// flow is annotated once, so a miss there is a flow without its cgroup for good.
TEST_F(AnnotateTest, AScopeBornJustAfterARescanIsNamedFromTheEventsProcess) {
  fs::create_directories(root_ / "proc/4242");
  inventory::CgroupPaths cgroups((root_ / "cgroup").string(), (root_ / "proc").string());
  EXPECT_EQ(cgroups.path(1ull << 60), "");  // a miss: the hierarchy was just scanned
  auto scope = root_ / "cgroup/machine.slice/machine-qemu\\x2d2\\x2dinstance\\x2d0000000b.scope";
  fs::create_directories(scope);
  std::ofstream(root_ / "proc/4242/cgroup") << "0::/machine.slice/machine-qemu\\x2d2\\x2dinstance\\x2d0000000b.scope\n";
  EXPECT_EQ(cgroups.path(ino(scope), 4242), "/machine.slice/machine-qemu\\x2d2\\x2dinstance\\x2d0000000b.scope");
  // a process whose cgroup is another directory than the id names nothing
  auto other = root_ / "cgroup/system.slice";
  fs::create_directories(other);
  EXPECT_EQ(cgroups.path(ino(other) + 1000000, 4242), "");
}
