// Root-only tests of the block probes on this machine's own kernel: real bios
// on a loop device over /dev/shm, from a child whose pid we know.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <thread>

#include "../unit/test_util.h"
#include "loopdev.h"
#include "probes/hooks.h"
#include "probes/loader.h"
#include "sinks/json.h"

using namespace lunwatch;
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kBlock = 4096;

// A child that waits for "go" on a pipe, then does `reads` and `writes`
// O_DIRECT 4 KiB I/Os on path, and exits 0 on success. With rounds > 1 it
// does so once per "go", opening the path afresh each time, and reports
// each round's end (round_done()).
class IoChild {
 public:
  IoChild(const std::string& path, int reads, int writes, const char* comm, int rounds = 1) {
    int p[2], d[2];
    if (::pipe(p) != 0 || ::pipe(d) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(p[1]);
      ::close(d[0]);
      // Only its pipes: an inherited descriptor (a test's loop device) would
      // hold the device open in the parent's stead.
      for (int fd = 3; fd < 1024; ++fd)
        if (fd != p[0] && fd != d[1]) ::close(fd);
      ::prctl(PR_SET_NAME, comm);
      for (int r = 0; r < rounds; ++r) {
        char c;
        if (::read(p[0], &c, 1) != 1) ::_exit(10);
        int rc = one_round(path, reads, writes);
        if (rc != 0) ::_exit(rc);
        if (::write(d[1], "d", 1) != 1) ::_exit(15);
      }
      ::_exit(0);
    }
    ::close(p[0]);
    ::close(d[1]);
    go_fd_ = p[1];
    done_fd_ = d[0];
  }
  ~IoChild() {
    if (go_fd_ >= 0) ::close(go_fd_);
    if (done_fd_ >= 0) ::close(done_fd_);
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  pid_t pid() const { return pid_; }
  void go() { ASSERT_EQ(::write(go_fd_, "g", 1), 1); }
  // The current round's I/O is done (false: the child failed or exited).
  bool round_done() {
    char c;
    return ::read(done_fd_, &c, 1) == 1;
  }
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100 + WTERMSIG(status);
  }

 private:
  static int one_round(const std::string& path, int reads, int writes) {
    int fd = ::open(path.c_str(), O_RDWR | O_DIRECT);
    if (fd < 0) return 11;
    void* buf = nullptr;
    if (::posix_memalign(&buf, kBlock, kBlock) != 0) return 12;
    std::memset(buf, 0x5a, kBlock);
    for (int i = 0; i < writes; ++i)
      if (::pwrite(fd, buf, kBlock, static_cast<off_t>((i % 256) * kBlock)) != static_cast<ssize_t>(kBlock)) return 13;
    for (int i = 0; i < reads; ++i)
      if (::pread(fd, buf, kBlock, static_cast<off_t>((i % 256) * kBlock)) != static_cast<ssize_t>(kBlock)) return 14;
    ::close(fd);
    std::free(buf);
    return 0;
  }
  pid_t pid_ = -1;
  int go_fd_ = -1;
  int done_fd_ = -1;
  bool reaped_ = false;
};

// Polls until pred holds or the deadline passes.
bool wait_for(probes::Probes& p, std::chrono::milliseconds limit, std::vector<v1::Event>& seen,
              const std::function<bool()>& pred) {
  auto deadline = Clock::now() + limit;
  probes::EventHandler h = [&](v1::Event&& ev) { seen.push_back(std::move(ev)); };
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    p.poll(50, h);
  }
  return true;
}

class BlockProbes : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(::geteuid(), 0u) << "host tests load BPF and need root";
    auto p = probes::Probes::make({});
    ASSERT_TRUE(p.ok()) << p.error().message;
    shared_probes = std::move(p.value()).release();
  }
  static void TearDownTestSuite() {
    delete shared_probes;
    shared_probes = nullptr;
  }
  static probes::Probes* shared_probes;
};
probes::Probes* BlockProbes::shared_probes = nullptr;

std::string kernel_dev_string(DevNum d) { return to_string(d); }

}  // namespace

TEST_F(BlockProbes, BlockHooksAttach) {
  for (const auto& h : shared_probes->hook_states()) {
    if (h.subsystem() == "block") {
      EXPECT_EQ(h.status(), v1::HOOK_ATTACHED) << h.name() << ": " << h.reason();
    } else if (h.status() != v1::HOOK_ATTACHED) {
      EXPECT_FALSE(h.reason().empty()) << h.name() << " is not attached and does not say why";
    }
  }
}

TEST_F(BlockProbes, NewFlowEventAndExactByteCounters) {
  hosttest::LoopDevice loop(16 << 20);
  const int reads = 37, writes = 21;
  IoChild child(loop.path(), reads, writes, "lw-io-child");
  child.go();
  ASSERT_EQ(child.wait(), 0) << "child I/O failed";

  std::vector<v1::Event> seen;
  const std::string dev = kernel_dev_string(loop.dev());
  auto flow_from_child = [&]() -> const v1::FlowNew* {
    for (const auto& e : seen)
      if (e.has_flow() && e.flow().pid() == static_cast<uint32_t>(child.pid()) && e.flow().dev() == dev)
        return &e.flow();
    return nullptr;
  };
  ASSERT_TRUE(wait_for(*shared_probes, std::chrono::seconds(10), seen, [&] { return flow_from_child() != nullptr; }))
      << "no new-flow event for pid " << child.pid() << " on " << dev << " after 10 s (" << seen.size()
      << " other events)";
  const auto* f = flow_from_child();
  EXPECT_EQ(f->comm(), "lw-io-child");
  EXPECT_EQ(f->tid(), static_cast<uint32_t>(child.pid()));
  EXPECT_EQ(f->op(), v1::OP_WRITE);  // writes come first
  EXPECT_EQ(f->bytes(), kBlock);
  EXPECT_NE(f->cgroup_id(), 0u);

  bool found = false;
  for (const auto& r : shared_probes->flows()) {
    if (r.key.tgid != static_cast<uint32_t>(child.pid()) || r.key.dev != to_kernel_dev(loop.dev())) continue;
    found = true;
    EXPECT_EQ(r.val.bytes[0], reads * kBlock);
    EXPECT_EQ(r.val.bytes[1], writes * kBlock);
    EXPECT_EQ(r.val.ios[0], static_cast<uint64_t>(reads));
    EXPECT_EQ(r.val.ios[1], static_cast<uint64_t>(writes));
    EXPECT_LE(r.val.first_ns, r.val.last_ns);
  }
  EXPECT_TRUE(found) << "no kernel flow entry for the child";
}

// The agent's loop must get control back while events stream in (its stop flag,
// timers, identity answers): one poll hands over at most its budget, and what is
// left stays in the ring for the next poll, none lost.
TEST_F(BlockProbes, PollStopsAtItsBudgetAndLosesNothing) {
  hosttest::LoopDevice loop(16 << 20);
  std::vector<v1::Event> seen;
  probes::EventHandler keep = [&](v1::Event&& ev) { seen.push_back(std::move(ev)); };
  while (shared_probes->poll(0, keep) > 0) {
  }
  seen.clear();
  constexpr int kChildren = 6;
  std::set<uint32_t> pids;
  for (int i = 0; i < kChildren; ++i) {
    IoChild child(loop.path(), 1, 0, "lw-io-budget");
    child.go();
    ASSERT_EQ(child.wait(), 0);
    pids.insert(static_cast<uint32_t>(child.pid()));
  }
  // Every child's flow is in the ring now (the ring is consumed only here).
  EXPECT_EQ(shared_probes->poll(0, keep, 2), 2) << "a poll handed over more than its budget of 2";
  EXPECT_EQ(seen.size(), 2u);
  auto children_seen = [&] {
    std::set<uint32_t> got;
    for (const auto& e : seen)
      if (e.has_flow() && pids.count(e.flow().pid())) got.insert(e.flow().pid());
    return got.size();
  };
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (children_seen() < pids.size() && Clock::now() < deadline) shared_probes->poll(50, keep, 2);
  EXPECT_EQ(children_seen(), pids.size()) << "flows lost after budget-limited polls";
}

// A device removed and re-created under the same number (here a loop device
// removed and added again, over another file: the same dev_t and name) is another
// disk to a process that reads it again: a new flow event on its first bio,
// the counters of the (tgid, dev) flow kept.
TEST_F(BlockProbes, ADiskRecreatedUnderTheSameNumberIsANewFlow) {
  hosttest::LoopDevice loop(16 << 20);
  IoChild child(loop.path(), 3, 0, "lw-io-recreate", 2);
  child.go();
  ASSERT_TRUE(child.round_done()) << "first round of I/O failed: " << child.wait();
  const std::string dev = kernel_dev_string(loop.dev());
  const auto pid = static_cast<uint32_t>(child.pid());
  std::vector<v1::Event> seen;
  auto flows_of_child = [&] {
    size_t n = 0;
    for (const auto& e : seen)
      if (e.has_flow() && e.flow().pid() == pid && e.flow().dev() == dev) n++;
    return n;
  };
  ASSERT_TRUE(wait_for(*shared_probes, std::chrono::seconds(10), seen, [&] { return flows_of_child() >= 1; }));
  ASSERT_TRUE(loop.recreate(16 << 20)) << "cannot re-create " << loop.path() << ": " << std::strerror(errno);
  child.go();
  ASSERT_TRUE(child.round_done()) << "second round of I/O failed: " << child.wait();
  EXPECT_TRUE(wait_for(*shared_probes, std::chrono::seconds(10), seen, [&] { return flows_of_child() >= 2; }))
      << "no new flow event after " << loop.path() << " was re-created under the same number";
  EXPECT_EQ(child.wait(), 0);
  for (const auto& r : shared_probes->flows())
    if (r.key.tgid == pid && r.key.dev == to_kernel_dev(loop.dev())) {
      EXPECT_EQ(r.val.ios[0], 6u) << "both rounds' reads counted in the one (tgid, dev) flow";
    }
}

TEST_F(BlockProbes, RepeatIoWritesNoFurtherEvents) {
  hosttest::LoopDevice loop(16 << 20);
  const int reads = 10'000;
  auto before = shared_probes->stats();
  IoChild child(loop.path(), reads, 0, "lw-io-repeat");
  child.go();
  ASSERT_EQ(child.wait(), 0);

  std::vector<v1::Event> seen;
  const auto pid = static_cast<uint32_t>(child.pid());
  auto count_child = [&] {
    int n = 0;
    for (const auto& e : seen)
      if (e.has_flow() && e.flow().pid() == pid) n++;
    return n;
  };
  ASSERT_TRUE(wait_for(*shared_probes, std::chrono::seconds(10), seen, [&] { return count_child() >= 1; }));
  // Drain whatever else is queued, then count again.
  probes::EventHandler h = [&](v1::Event&& ev) { seen.push_back(std::move(ev)); };
  while (shared_probes->poll(100, h) > 0) {
  }
  EXPECT_EQ(count_child(), 1) << "repeat I/O of one flow must not reach the ring buffer";
  for (const auto& e : seen) {
    if (e.has_edge()) {
      EXPECT_NE(e.edge().pid(), pid);
    }
  }

  auto after = shared_probes->stats();
  uint64_t repeats = after[LW_STAT_FLOW_REPEAT] - before[LW_STAT_FLOW_REPEAT];
  uint64_t emitted = 0;
  for (int t = 1; t < LW_EV_MAX; ++t) emitted += after[LW_STAT_EVENTS_BASE + t] - before[LW_STAT_EVENTS_BASE + t];
  EXPECT_GE(repeats, static_cast<uint64_t>(reads - 1));
  // Other processes may start flows meanwhile, but nowhere near one per I/O.
  EXPECT_LT(emitted, 100u) << "ring-buffer events during 10,000 repeat I/Os";
  auto drops = shared_probes->drops();
  EXPECT_EQ(drops[LW_DROP_RINGBUF_FULL], 0u);

  for (const auto& r : shared_probes->flows())
    if (r.key.tgid == pid && r.key.dev == to_kernel_dev(loop.dev())) {
      EXPECT_EQ(r.val.ios[0], static_cast<uint64_t>(reads));
      EXPECT_EQ(r.val.bytes[0], reads * kBlock);
    }
}

// The agent binary end to end: `lunwatch run --events` prints the child's flow.
TEST(AgentBinary, RunEventsPrintsFlowJson) {
  ASSERT_EQ(::geteuid(), 0u);
  hosttest::LoopDevice loop(16 << 20);
  auto dir = std::filesystem::temp_directory_path() / ("lw-agent-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto ready = dir / "ready", out = dir / "events.jsonl", stats = dir / "stats.json";
  pid_t agent = ::fork();
  if (agent == 0) {
    ::execl(LUNWATCH_BIN, LUNWATCH_BIN, "run", "--events-file", out.c_str(), "--ready-file", ready.c_str(),
            "--stats-file", stats.c_str(), "--duration", "60", nullptr);
    ::_exit(127);
  }
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (!std::filesystem::exists(ready) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ASSERT_TRUE(std::filesystem::exists(ready)) << "agent not ready within 30 s";

  IoChild child(loop.path(), 5, 5, "lw-agent-child");
  child.go();
  ASSERT_EQ(child.wait(), 0);
  std::string needle = "\"pid\":" + std::to_string(child.pid()) + ",";
  std::string line_found;
  deadline = Clock::now() + std::chrono::seconds(10);
  while (line_found.empty() && Clock::now() < deadline) {
    std::ifstream in(out);
    std::string line;
    while (std::getline(in, line))
      if (line.find(needle) != std::string::npos && line.find("\"flow\"") != std::string::npos) line_found = line;
    if (line_found.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(agent, SIGTERM);
  int status = 0;
  ::waitpid(agent, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "agent exit status " << status;
  ASSERT_FALSE(line_found.empty()) << "no flow JSON line for pid " << child.pid();
  EXPECT_NE(line_found.find("\"comm\":\"lw-agent-child\""), std::string::npos) << line_found;
  EXPECT_NE(line_found.find("\"dev_name\":\"" + loop.name() + "\""), std::string::npos) << line_found;
  EXPECT_NE(line_found.find("\"dev\":\"" + to_string(loop.dev()) + "\""), std::string::npos) << line_found;

  std::ifstream sin(stats);
  std::stringstream ss;
  ss << sin.rdbuf();
  std::string expect = "{\"pid\":" + std::to_string(child.pid()) + ",\"dev\":\"" + to_string(loop.dev()) +
                       "\",\"read_bytes\":" + std::to_string(5 * kBlock) +
                       ",\"write_bytes\":" + std::to_string(5 * kBlock);
  EXPECT_NE(ss.str().find(expect), std::string::npos) << ss.str();
  std::filesystem::remove_all(dir);
}

TEST(AgentBinary, ProbesJsonReportsEveryHook) {
  ASSERT_EQ(::geteuid(), 0u);
  std::string cmd = std::string(LUNWATCH_BIN) + " probes --json";
  FILE* p = ::popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = ::pclose(p);
  EXPECT_EQ(WEXITSTATUS(rc), 0) << out;
  for (const auto& hook : probes::hook_specs())
    EXPECT_NE(out.find("\"name\":\"" + hook.name + "\""), std::string::npos) << hook.name;
  EXPECT_NE(out.find(R"("name":"block_bio_queue","subsystem":"block")"), std::string::npos) << out;
  EXPECT_EQ(out.find("HOOK_FAILED"), std::string::npos) << out;
}

namespace {
// Runs a shell command, returns (exit status, combined output).
std::pair<int, std::string> run_cmd(const std::string& cmd) {
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = p ? ::pclose(p) : -1;
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, out};
}
}  // namespace

TEST(AgentBinary, ExitCodesSayWhatIsMissing) {
  ASSERT_EQ(::geteuid(), 0u);
  auto [rc_btf, out_btf] = run_cmd(std::string(LUNWATCH_BIN) + " --btf-dir /nonexistent run --duration 1");
  EXPECT_EQ(rc_btf, 4) << out_btf;
  EXPECT_NE(out_btf.find("kernel BTF missing"), std::string::npos) << out_btf;

  // An unprivileged user (setpriv drops every capability).
  auto [rc_user, out_user] = run_cmd("setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all " +
                                     std::string(LUNWATCH_BIN) + " run --duration 1");
  EXPECT_EQ(rc_user, 3) << out_user;
  EXPECT_NE(out_user.find("needs root"), std::string::npos) << out_user;

  auto [rc_usage, out_usage] = run_cmd(std::string(LUNWATCH_BIN) + " run --no-such-flag");
  EXPECT_EQ(rc_usage, 2) << out_usage;
}

// New settings of this change: a bad value is one clear line and exit 2, before
// any probe is loaded; a secret in the same file never reaches that line.
TEST(AgentBinary, BadContainmentAndAllowlistSettingsAreUsageErrors) {
  ASSERT_EQ(::geteuid(), 0u);
  lunwatch::testutil::TempDir d;
  d.write("bad-timeout.conf",
          "[containment]\nactions = pause\ntimeout = soon\n"
          "[cinder]\nauth_url = http://127.0.0.1:1/v3\npassword = s3cr3t-pw\n");
  auto [rc_t, out_t] =
      run_cmd(std::string(LUNWATCH_BIN) + " run --duration 1 --config " + d.path() + "/bad-timeout.conf");
  EXPECT_EQ(rc_t, 2) << out_t;
  EXPECT_NE(out_t.find("[containment] timeout is not a number: soon"), std::string::npos) << out_t;
  EXPECT_EQ(out_t.find("s3cr3t-pw"), std::string::npos) << out_t;

  auto [rc_a, out_a] = run_cmd(std::string(LUNWATCH_BIN) + " run --duration 1 --contain offline,reboot");
  EXPECT_EQ(rc_a, 2) << out_a;
  EXPECT_NE(out_a.find("unknown containment action 'reboot'"), std::string::npos) << out_a;
  EXPECT_EQ(out_a.find("watching with"), std::string::npos) << "refused before loading probes: " << out_a;

  d.write("zero.conf", "[containment]\nactions = offline\ntimeout = 0\n");
  auto [rc_z, out_z] = run_cmd(std::string(LUNWATCH_BIN) + " run --duration 1 --config " + d.path() + "/zero.conf");
  EXPECT_EQ(rc_z, 2) << out_z;
  EXPECT_NE(out_z.find("containment timeout must be > 0"), std::string::npos) << out_z;

  // An allowlist entry is a free-form comm prefix: blanks and empties are dropped,
  // the agent runs.
  d.write("allow.conf", "[agent]\nhost_allowlist = , backup-agent ,, \nmetrics_listen =\n");
  auto [rc_ok, out_ok] =
      run_cmd(std::string(LUNWATCH_BIN) + " run --duration 1 --dump-severity off --state-file " + d.path() +
              "/b.json --pid-file " + d.path() + "/pid --config " + d.path() + "/allow.conf");
  EXPECT_EQ(rc_ok, 0) << out_ok;
}

// A flow entered the kernel map before its ring-buffer event was reserved: a
// process whose first I/O met a full ring was never reported, however much
// I/O it did afterwards (0 events for 101 reads). Now the flow enters the map
// only with its event, so the first I/O after the ring drains reports it.
TEST(FlowMap, FirstIoOnAFullRingIsReportedOnceTheRingDrains) {
  ASSERT_EQ(::geteuid(), 0u);
  hosttest::LoopDevice loop(16 << 20);
  probes::ProbeOptions po;
  po.ring_bytes = 4096;  // one page: a few dozen events fill it
  po.pin_dir = "/sys/fs/bpf/lunwatch";
  auto made = probes::Probes::make(po);
  ASSERT_TRUE(made.ok()) << made.error().message;
  auto& p = *made.value();
  uint32_t kdev = to_kernel_dev(loop.dev());
  // Fill the ring without reading it: new flows from short-lived children.
  uint64_t full_before = p.drops()[LW_DROP_RINGBUF_FULL];
  for (int i = 0; i < 400 && p.drops()[LW_DROP_RINGBUF_FULL] == full_before; ++i) {
    IoChild filler(loop.path(), 1, 0, "lw-ring-filler");
    filler.go();
    ASSERT_EQ(filler.wait(), 0);
  }
  ASSERT_GT(p.drops()[LW_DROP_RINGBUF_FULL], full_before) << "the ring never filled";

  // The process under test: 50 reads while the ring is full, then (on a
  // second "go") 51 more after the ring was drained.
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(go[1]);
    ::prctl(PR_SET_NAME, "lw-late-flow");
    int fd = ::open(loop.path().c_str(), O_RDONLY | O_DIRECT);
    void* buf = nullptr;
    if (fd < 0 || ::posix_memalign(&buf, kBlock, kBlock) != 0) ::_exit(11);
    char c;
    for (int phase = 0; phase < 2; ++phase) {
      if (::read(go[0], &c, 1) != 1) ::_exit(10);
      for (int i = 0; i < (phase ? 51 : 50); ++i)
        if (::pread(fd, buf, kBlock, static_cast<off_t>(i * kBlock)) != static_cast<ssize_t>(kBlock)) ::_exit(12);
    }
    ::_exit(0);
  }
  ::close(go[0]);
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  // Wait (without consuming events) until its 50 reads were seen by the kernel.
  uint64_t full_mid = p.drops()[LW_DROP_RINGBUF_FULL];
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (p.drops()[LW_DROP_RINGBUF_FULL] < full_mid + 50 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_GE(p.drops()[LW_DROP_RINGBUF_FULL], full_mid + 50) << "its reads did not meet the full ring";
  bool in_map = false;
  for (const auto& r : p.flows()) in_map |= r.key.tgid == static_cast<uint32_t>(pid) && r.key.dev == kdev;
  EXPECT_FALSE(in_map) << "a flow is in the map whose event was never sent";

  std::vector<v1::Event> seen;
  auto is_ours = [&] {
    for (const auto& e : seen)
      if (e.has_flow() && e.flow().pid() == static_cast<uint32_t>(pid)) return true;
    return false;
  };
  probes::EventHandler drain = [&](v1::Event&& ev) { seen.push_back(std::move(ev)); };
  while (p.poll(0, drain) > 0) {
  }
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  int st = 0;
  ::waitpid(pid, &st, 0);
  ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "reader failed: " << st;
  EXPECT_TRUE(wait_for(p, std::chrono::seconds(10), seen, is_ours))
      << "no flow event for pid " << pid << " after 101 reads";
}
