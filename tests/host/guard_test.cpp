// The guard's BPF LSM programs on this machine's own kernel: a denied reader,
// an allowed owner, non-block files untouched, and a policy that keeps
// enforcing while the agent is gone. Skips, saying why, where the kernel does
// not run BPF LSM programs.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "guard/maps.h"
#include "loopdev.h"
#include "probes/loader.h"

using namespace lunwatch;

namespace {

std::string g_skip;

std::unique_ptr<probes::Probes> load_guard() {
  probes::ProbeOptions o;
  o.guard = true;
  auto p = probes::Probes::make(o);
  if (!p.ok()) {
    g_skip = p.error().message;
    return nullptr;
  }
  for (const auto& h : p.value()->hook_states())
    if (h.subsystem() == "guard" && h.status() != v1::HOOK_ATTACHED) {
      g_skip = "kernel feature missing: " + h.name() + ": " + h.reason();
      return nullptr;
    }
  return std::move(p.value());
}

// Child that waits for "go", reads 4 KiB of path with O_DIRECT, exits 0 on
// success, 1 on EPERM, 2 on any other failure.
pid_t reader(const std::string& path, int* go_fd) {
  int p[2];
  if (::pipe(p) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(p[1]);
    char c;
    if (::read(p[0], &c, 1) != 1) ::_exit(3);
    int fd = ::open(path.c_str(), O_RDONLY | (path.rfind("/dev/", 0) == 0 ? O_DIRECT : 0));
    if (fd < 0) ::_exit(errno == EPERM ? 1 : 2);
    void* buf = nullptr;
    if (::posix_memalign(&buf, 4096, 4096) != 0) ::_exit(2);
    ssize_t n = ::pread(fd, buf, 4096, 0);
    ::_exit(n == 4096 ? 0 : (n < 0 && errno == EPERM ? 1 : 2));
  }
  ::close(p[0]);
  *go_fd = p[1];
  return pid;
}

int finish(pid_t pid, int go_fd) {
  (void)!::write(go_fd, "g", 1);
  ::close(go_fd);
  int st = 0;
  ::waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 100;
}

}  // namespace

TEST(Guard, DeniesNonOwnersAllowsOwnerAndSurvivesAgentRestart) {
  ASSERT_EQ(::geteuid(), 0u);
  auto probes = load_guard();
  if (!probes) {
    std::printf("SKIP Guard: %s\n", g_skip.c_str());
    GTEST_SKIP() << g_skip;
  }
  auto maps = guard::GuardMaps::open();
  ASSERT_TRUE(maps.ok()) << maps.error().message;
  auto& m = maps.value();
  ASSERT_TRUE(m.set_mode(LW_GUARD_ENFORCE).ok());
  ASSERT_TRUE(guard::pin_links(probes->guard_links()).ok());

  hosttest::LoopDevice loop(4 << 20);
  int go_owner = -1, go_other = -1, go_file = -1;
  pid_t owner = reader(loop.path(), &go_owner);
  pid_t other = reader(loop.path(), &go_other);
  std::string plain = "/tmp/lunwatch-guard-plain-" + std::to_string(::getpid());
  {
    int fd = ::open(plain.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
    char b[4096] = {};
    (void)!::write(fd, b, sizeof b);
    ::close(fd);
  }
  pid_t other_plain = reader(plain, &go_file);

  lw_guard_dev d{};
  d.generation = 1;
  d.state = LW_GUARD_VERIFIED;
  d.n_owners = 1;
  d.owners[0] = static_cast<uint32_t>(owner);
  uint32_t kdev = to_kernel_dev(loop.dev());
  ASSERT_TRUE(m.put_device(kdev, d).ok());
  ASSERT_TRUE(
      m.set_procs({static_cast<uint32_t>(owner), static_cast<uint32_t>(other), static_cast<uint32_t>(other_plain)})
          .ok());

  // The agent goes away: the pinned links and maps keep enforcing.
  probes.reset();
  EXPECT_EQ(finish(owner, go_owner), 0) << "the owner must keep access";
  EXPECT_EQ(finish(other, go_other), 1) << "another instance must get EPERM";
  EXPECT_EQ(finish(other_plain, go_file), 0) << "non-block files are untouched";
  EXPECT_GE(m.stats()[LW_GSTAT_DENIED], 1u);

  // Quarantine refuses the owner too; release lets everyone through.
  d.state = LW_GUARD_QUARANTINE;
  ASSERT_TRUE(m.put_device(kdev, d).ok());
  pid_t owner2 = reader(loop.path(), &go_owner);
  ASSERT_TRUE(m.set_procs({static_cast<uint32_t>(owner2)}).ok());
  EXPECT_EQ(finish(owner2, go_owner), 1);
  ASSERT_TRUE(m.remove_device(kdev).ok());
  pid_t other2 = reader(loop.path(), &go_other);
  EXPECT_EQ(finish(other2, go_other), 0);

  EXPECT_TRUE(m.set_mode(LW_GUARD_OFF).ok());
  EXPECT_TRUE(guard::unpin_links().ok());
  ::unlink(plain.c_str());
}
