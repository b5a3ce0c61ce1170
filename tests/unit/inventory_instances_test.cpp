// Process -> instance: qemu command lines, machine scopes, /proc/<pid>/stat
// and the resolver over a fixture proc tree (including processes that vanish).
#include <gtest/gtest.h>

#include <unistd.h>
#include "test_util.h"

#include <filesystem>
#include <fstream>

#include "inventory/cgroups.h"
#include "inventory/instances.h"

using namespace lunwatch;
using namespace lunwatch::inventory;
namespace fs = std::filesystem;

namespace {

const std::string kFix = std::string(LUNWATCH_FIXTURES) + "/inventory";

using testutil::TempDir;

std::string stat_line(uint32_t pid, const std::string& comm, uint64_t start) {
  return std::to_string(pid) + " (" + comm + ") S 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 " +
         std::to_string(start) + " 1000 10\n";
}

std::string cmdline(std::initializer_list<std::string> args) {
  std::string out;
  for (const auto& a : args) {
    out += a;
    out += '\0';
  }
  return out;
}

}  // namespace

TEST(QemuCmdline, NameAndUuidForms) {
  auto a = parse_qemu_cmdline({"/usr/bin/qemu-system-x86_64", "-name", "guest=instance-0000002a,debug-threads=on", "-S",
                               "-uuid", "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11"});
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->name(), "instance-0000002a");
  EXPECT_EQ(a->uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11");
  EXPECT_EQ(a->resolved_from(), "cmdline");

  auto b = parse_qemu_cmdline({"qemu-kvm", "-uuid", "u-1", "-name", "instance-0000002b"});
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name(), "instance-0000002b");
  EXPECT_EQ(b->uuid(), "u-1");

  auto c = parse_qemu_cmdline({"/usr/libexec/qemu-system-aarch64", "--name", "process=qemu:x,guest=odd,,name"});
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->name(), "odd,name");  // ",," is a literal comma

  auto d = parse_qemu_cmdline({"/usr/bin/kvm", "-name"});  // dangling option
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->name(), "");
}

TEST(QemuCmdline, NotQemu) {
  EXPECT_FALSE(parse_qemu_cmdline({}).has_value());
  EXPECT_FALSE(parse_qemu_cmdline({"/bin/bash", "-name", "guest=instance-0000002a"}).has_value());
  EXPECT_FALSE(parse_qemu_cmdline({"/usr/bin/qemu-img", "info", "x"}).has_value());
  EXPECT_FALSE(parse_qemu_cmdline({"/usr/bin/kvmtool"}).has_value());
}

TEST(MachineScope, LibvirtLayouts) {
  EXPECT_EQ(parse_machine_scope(R"(/machine.slice/machine-qemu\x2d1\x2dinstance\x2d0000002a.scope)"),
            "instance-0000002a");
  EXPECT_EQ(parse_machine_scope(R"(/machine.slice/machine-qemu\x2d17\x2dinstance\x2d0000002a.scope/libvirt/emulator)"),
            "instance-0000002a");
  EXPECT_EQ(parse_machine_scope(R"(/machine.slice/machine-qemu\x2d17\x2dinstance\x2d0000002a.scope/libvirt/vcpu3)"),
            "instance-0000002a");
  EXPECT_EQ(parse_machine_scope(R"(/machine.slice/machine-qemu\x2d3\x2dinstance\x2d0000002a.scope/emulator)"),
            "instance-0000002a");
  // libvirt before 2.x: no domain id.
  EXPECT_EQ(parse_machine_scope(R"(/machine.slice/machine-qemu\x2dinstance\x2d0000002a.scope)"), "instance-0000002a");
  // cgroup v1 without systemd.
  EXPECT_EQ(parse_machine_scope("/machine/instance-0000002a.libvirt-qemu/emulator"), "instance-0000002a");
  EXPECT_FALSE(parse_machine_scope("/system.slice/nova-compute.service").has_value());
  EXPECT_FALSE(parse_machine_scope(R"(/machine.slice/machine-lxc\x2d1\x2dfoo.scope)").has_value());
  EXPECT_FALSE(parse_machine_scope("/user.slice/user-0.slice/session-3.scope").has_value());
  EXPECT_FALSE(parse_machine_scope("").has_value());
  EXPECT_EQ(unescape_unit_name(R"(a\x2db\x5c\x2)"), R"(a-b\\x2)");
}

TEST(ProcStat, StartTimeWithHostileComm) {
  EXPECT_EQ(parse_proc_start_time(stat_line(1, "qemu-system-x86", 123456)), 123456u);
  EXPECT_EQ(parse_proc_start_time(stat_line(1, "a) S 1 2 3 (b", 42)), 42u);
  EXPECT_FALSE(parse_proc_start_time("1 (x) S 1 2").has_value());
  EXPECT_FALSE(parse_proc_start_time("garbage").has_value());
  EXPECT_EQ(parse_proc_cgroup_v2("12:cpu:/x\n0::/machine.slice/a.scope\n"), "/machine.slice/a.scope");
  EXPECT_EQ(parse_proc_cgroup_v2("1:name=systemd:/x\n"), "");
  EXPECT_EQ(split_cmdline(std::string("a\0b c\0", 6)), (std::vector<std::string>{"a", "b c"}));
}

TEST(InstanceResolver, QemuEnrichedFromLibvirt) {
  InstanceResolver r(kFix + "/proc", kFix + "/libvirt/run");
  v1::Instance i = r.resolve(4242);
  EXPECT_EQ(i.name(), "instance-0000002a");
  EXPECT_EQ(i.uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11");
  EXPECT_EQ(i.display_name(), "web-01");
  EXPECT_EQ(i.project_id(), "aa11bb22cc33dd44ee55ff6677889900");
  EXPECT_EQ(i.user_id(), "0a1b2c3d4e5f40718293a4b5c6d7e8f9");
  EXPECT_EQ(i.pid(), 4242u);
  EXPECT_EQ(i.cgroup(), R"(/machine.slice/machine-qemu\x2d1\x2dinstance\x2d0000002a.scope/libvirt/emulator)");
  EXPECT_EQ(i.resolved_from(), "libvirt");

  v1::Instance again = r.resolve(4242);
  EXPECT_EQ(again.SerializeAsString(), i.SerializeAsString());
  EXPECT_EQ(r.stats().lookups, 2u);
  EXPECT_EQ(r.stats().cache_hits, 1u);
  EXPECT_EQ(r.stats().instances, 1u);
}

// Seen once in the lab: /proc said nothing for a live qemu and 23 instances
// were reported as host processes. The kernel's cgroup of the event still
// names the instance; without it the answer stays "host process".
TEST(InstanceResolver, KernelCgroupNamesTheInstanceWhenProcSaysNothing) {
  InstanceResolver r(kFix + "/proc", kFix + "/libvirt/run");
  const std::string scope = R"(/machine.slice/machine-qemu\x2d1\x2dinstance\x2d0000002a.scope)";
  v1::Instance i = r.resolve(999999, scope);
  EXPECT_EQ(i.name(), "instance-0000002a");
  EXPECT_EQ(i.uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11") << "enriched from libvirt all the same";
  EXPECT_EQ(i.cgroup(), scope);
  EXPECT_EQ(r.resolve(999999).resolved_from(), "host process");
  EXPECT_EQ(r.resolve(999999, "/system.slice/cron.service").resolved_from(), "host process");
}

TEST(InstanceResolver, WithoutLibvirtStillNamesTheInstance) {
  InstanceResolver r(kFix + "/proc", "/nonexistent/libvirt");
  v1::Instance i = r.resolve(4242);
  EXPECT_EQ(i.name(), "instance-0000002a");
  EXPECT_EQ(i.uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11");
  EXPECT_EQ(i.display_name(), "");
  EXPECT_EQ(i.resolved_from(), "cmdline");
}

TEST(InstanceResolver, HelperInMachineScopeResolvesByCgroup) {
  InstanceResolver r(kFix + "/proc", kFix + "/libvirt/run");
  v1::Instance i = r.resolve(999);  // swtpm in the domain's scope
  EXPECT_EQ(i.name(), "instance-0000002a");
  EXPECT_EQ(i.uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11");
  EXPECT_EQ(i.pid(), 999u);
}

TEST(InstanceResolver, HostProcess) {
  InstanceResolver r(kFix + "/proc", kFix + "/libvirt/run");
  v1::Instance i = r.resolve(777);
  EXPECT_EQ(i.uuid(), "");
  EXPECT_EQ(i.name(), "");
  EXPECT_EQ(i.resolved_from(), "host process");
  EXPECT_EQ(i.display_name(), "my (weird) proc");
  EXPECT_EQ(i.pid(), 777u);
  EXPECT_EQ(r.stats().host, 1u);
  EXPECT_EQ(r.stats().vanished, 0u);
}

TEST(InstanceResolver, ProcessThatVanishesMidLookup) {
  InstanceResolver r(kFix + "/proc", kFix + "/libvirt/run");
  // 888: stat readable, cmdline and cgroup already gone.
  v1::Instance i = r.resolve(888);
  EXPECT_EQ(i.resolved_from(), "host process");
  EXPECT_EQ(i.uuid(), "");
  EXPECT_EQ(r.stats().vanished, 1u);
  // Never existed / already reaped.
  v1::Instance j = r.resolve(123456);
  EXPECT_EQ(j.resolved_from(), "host process");
  EXPECT_EQ(j.pid(), 123456u);
  EXPECT_EQ(r.stats().vanished, 2u);
  // Vanished answers are not cached.
  r.resolve(888);
  EXPECT_EQ(r.stats().cache_hits, 0u);
}

TEST(InstanceResolver, PidReuseIsDetectedByStartTime) {
  TempDir proc;
  proc.write("500/stat", stat_line(500, "qemu-system-x86", 1000));
  proc.write("500/cmdline",
             cmdline({"/usr/bin/qemu-system-x86_64", "-name", "guest=instance-00000005", "-uuid", "u5"}));
  proc.write("500/cgroup", "0::/machine.slice/machine-qemu\\x2d5\\x2dinstance\\x2d00000005.scope/libvirt/emulator\n");
  InstanceResolver r(proc.path(), "/nonexistent");
  EXPECT_EQ(r.resolve(500).name(), "instance-00000005");
  EXPECT_EQ(r.resolve(500).name(), "instance-00000005");
  EXPECT_EQ(r.stats().cache_hits, 1u);

  // The guest exits; pid 500 comes back as a shell with a later start time.
  proc.write("500/stat", stat_line(500, "sh", 2000));
  proc.write("500/cmdline", cmdline({"/bin/sh"}));
  proc.write("500/cgroup", "0::/system.slice/cron.service\n");
  v1::Instance i = r.resolve(500);
  EXPECT_EQ(i.resolved_from(), "host process");
  EXPECT_EQ(i.display_name(), "sh");
  EXPECT_EQ(r.stats().pid_reuse, 1u);

  // The process exits after the first read: no crash, counted as vanished.
  fs::remove(proc.path() + "/500/cgroup");
  r.forget(500);
  EXPECT_EQ(r.resolve(500).resolved_from(), "host process");
  EXPECT_EQ(r.stats().vanished, 1u);
}

// libvirt (and the lab) fork, move the child into its scope, then exec qemu: an
// event in that window must not fix "host process" on the pid for its life.
TEST(InstanceResolver, AProcessReadBeforeItsExecOrScopeIsReadAgain) {
  TempDir proc;
  const std::string scope = "/machine.slice/machine-qemu\\x2d6\\x2dinstance\\x2d00000006.scope";
  proc.write("600/stat", stat_line(600, "bash", 3000));
  proc.write("600/cmdline", cmdline({"bash", "-c", "echo $$ > cgroup.procs && exec qemu"}));
  proc.write("600/cgroup", "0::/system.slice/lab.service\n");
  InstanceResolver r(proc.path(), "/nonexistent");
  EXPECT_EQ(r.resolve(600).resolved_from(), "host process");
  EXPECT_EQ(r.resolve(600).resolved_from(), "host process");
  EXPECT_EQ(r.stats().cache_hits, 1u);  // the same process, nothing changed: cached

  // joined its scope (the kernel says so first), still before exec
  proc.write("600/cgroup", "0::" + scope + "\n");
  EXPECT_EQ(r.resolve(600, scope).name(), "instance-00000006");
  // then exec'd: same pid and start time, a new comm and command line
  proc.write("600/stat", stat_line(600, "qemu-system-x86", 3000));
  proc.write("600/cmdline",
             cmdline({"/usr/bin/qemu-system-x86_64", "-name", "guest=instance-00000006", "-uuid", "u6"}));
  EXPECT_EQ(r.resolve(600).uuid(), "u6");
  EXPECT_EQ(r.stats().pid_reuse, 0u);  // not a new process
}

TEST(InstanceResolver, RefusesPathTraversalInDomainNames) {
  TempDir proc;
  proc.write("600/stat", stat_line(600, "qemu-system-x86", 1));
  proc.write("600/cmdline", cmdline({"/tmp/qemu-system-x86_64", "-name", "../../etc/passwd"}));
  proc.write("600/cgroup", "0::/user.slice\n");
  InstanceResolver r(proc.path(), kFix + "/libvirt/run");
  v1::Instance i = r.resolve(600);
  EXPECT_EQ(i.name(), "../../etc/passwd");
  EXPECT_EQ(i.resolved_from(), "cmdline");  // not enriched from any file
}

// The guard keys instance processes by their scope's cgroup id: only a real
// instance scope counts, never the root or a service's cgroup (every process
// there would become an instance process).
TEST(InstanceCgroupId, OnlyInstanceScopes) {
  testutil::TempDir d;
  const std::string scope = "/machine.slice/machine-qemu\\x2d1\\x2dinstance\\x2d0000000a.scope";
  std::filesystem::create_directories(d.path() + "/cg" + scope);
  std::filesystem::create_directories(d.path() + "/cg/system.slice/libvirtd.service");
  d.write("proc/452/cgroup", "0::" + scope + "\n");
  d.write("proc/453/cgroup", "0::/\n");
  d.write("proc/454/cgroup", "0::/system.slice/libvirtd.service\n");
  d.write("proc/455/cgroup", "0::/machine.slice/machine-qemu\\x2d9\\x2dinstance\\x2d00000009.scope\n");  // no such dir
  struct stat st {};
  ASSERT_EQ(::stat((d.path() + "/cg" + scope).c_str(), &st), 0);
  EXPECT_EQ(inventory::instance_cgroup_id(452, d.path() + "/proc", d.path() + "/cg"), st.st_ino);
  EXPECT_EQ(inventory::instance_cgroup_id(453, d.path() + "/proc", d.path() + "/cg"), 0u) << "root cgroup";
  EXPECT_EQ(inventory::instance_cgroup_id(454, d.path() + "/proc", d.path() + "/cg"), 0u) << "a service";
  EXPECT_EQ(inventory::instance_cgroup_id(455, d.path() + "/proc", d.path() + "/cg"), 0u) << "scope gone";
  EXPECT_EQ(inventory::instance_cgroup_id(999, d.path() + "/proc", d.path() + "/cg"), 0u) << "process gone";
}
