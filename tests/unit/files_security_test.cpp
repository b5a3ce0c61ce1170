// Files lunwatch writes, like a security tool writes them (issue 13): no
// symlink followed, no file of someone else's written, modes private, atomic
// replace, alerts kept and retried when the disk refuses them, the pin
// directory refused unless it is private and on bpffs, dead flows found.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/pidfile.h"
#include "common/safe_file.h"
#include "probes/flow_sweep.h"
#include "probes/pin_dir.h"
#include "sinks/alerts.h"
#include "sinks/dump.h"
#include "sinks/recording.h"
#include "test_util.h"

using namespace lunwatch;
namespace fs = std::filesystem;

namespace {
std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
mode_t mode_of(const std::string& p) {
  struct stat st {};
  ::lstat(p.c_str(), &st);
  return st.st_mode & 07777;
}
v1::Alert alert(const std::string& id) {
  v1::Alert a;
  a.set_id(id);
  a.set_rule(v1::CROSS_INSTANCE_ACCESS);
  return a;
}
}  // namespace

// A planted symlink made root overwrite another file (alerts, recordings).
TEST(FilesSecurity, WritersRefuseAPlantedSymlink) {
  testutil::TempDir d;
  std::string victim = d.path() + "/victim";
  { std::ofstream(victim) << "precious\n"; }
  fs::create_symlink(victim, d.path() + "/alerts.jsonl");
  auto a = sinks::AlertWriter::open(d.path() + "/alerts.jsonl", sinks::AlertFormat::kJson);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("symlink"), std::string::npos) << a.error().message;
  fs::create_symlink(victim, d.path() + "/r.rec");
  auto r = sinks::RecordWriter::open(d.path() + "/r.rec");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(slurp(victim), "precious\n");
  // A hard link to someone else's file is refused too.
  fs::create_hard_link(victim, d.path() + "/events.jsonl");
  auto h = open_append_safe(d.path() + "/events.jsonl");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("hard links"), std::string::npos) << h.error().message;
}

// Files were created with the umask's mode (0666 under umask 000).
TEST(FilesSecurity, CreatedPrivateWhateverTheUmask) {
  testutil::TempDir d;
  mode_t old = ::umask(0);
  auto a = sinks::AlertWriter::open(d.path() + "/alerts.jsonl", sinks::AlertFormat::kJson);
  auto r = sinks::RecordWriter::open(d.path() + "/r.rec");
  v1::CaptureDump dump;
  auto w = sinks::write_dump(d.path() + "/x.lwdump", dump);
  auto dir = ensure_private_dir(d.path() + "/dumps/sub", 0750);
  ::umask(old);
  ASSERT_TRUE(a.ok() && r.ok() && w.ok() && dir.ok());
  EXPECT_EQ(mode_of(d.path() + "/alerts.jsonl"), 0600u);
  EXPECT_EQ(mode_of(d.path() + "/r.rec"), 0600u);
  EXPECT_EQ(mode_of(d.path() + "/x.lwdump"), 0600u);
  EXPECT_EQ(mode_of(d.path() + "/x.lwdump.sha256"), 0600u);
  EXPECT_EQ(mode_of(d.path() + "/dumps/sub"), 0750u);
  // A directory others can write is refused, not used.
  fs::create_directories(d.path() + "/open");
  ::chmod((d.path() + "/open").c_str(), 0777);
  EXPECT_FALSE(ensure_private_dir(d.path() + "/open").ok());
}

TEST(FilesSecurity, AtomicReplaceNeverWritesThroughASymlink) {
  testutil::TempDir d;
  std::string victim = d.path() + "/victim";
  { std::ofstream(victim) << "precious\n"; }
  fs::create_symlink(victim, d.path() + "/state.json");
  ASSERT_TRUE(write_atomic(d.path() + "/state.json", "new\n").ok());
  EXPECT_EQ(slurp(victim), "precious\n");
  EXPECT_FALSE(fs::is_symlink(d.path() + "/state.json"));
  EXPECT_EQ(slurp(d.path() + "/state.json"), "new\n");
  size_t n = 0;
  for (const auto& e : fs::directory_iterator(d.path()))
    n += e.path().filename().string().find(".tmp") != std::string::npos;
  EXPECT_EQ(n, 0u) << "temporary files left behind";
}

// A full disk lost an alert line silently (counted raised, never written).
// RLIMIT_FSIZE makes the write fail the way ENOSPC does, for this process only.
TEST(FilesSecurity, AlertWriteFailureIsSpooledRetriedAndCounted) {
  testutil::TempDir d;
  std::string path = d.path() + "/alerts.jsonl";
  auto w = sinks::AlertWriter::open(path, sinks::AlertFormat::kJson);
  ASSERT_TRUE(w.ok()) << w.error().message;
  auto& aw = *w.value();
  ASSERT_TRUE(aw.write(alert("first")));
  auto size = fs::file_size(path);
  struct rlimit old {};
  ::getrlimit(RLIMIT_FSIZE, &old);
  auto prev = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old;
  small.rlim_cur = size + 10;  // the next line does not fit
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  bool second = aw.write(alert("second"));
  bool third = aw.write(alert("third"));
  ::setrlimit(RLIMIT_FSIZE, &old);
  ::signal(SIGXFSZ, prev);
  EXPECT_FALSE(second);
  EXPECT_FALSE(third);
  EXPECT_GE(aw.write_failures(), 2u);
  EXPECT_EQ(aw.spooled(), 2u);
  EXPECT_EQ(fs::file_size(path), size) << "a half line was left in the file";
  ASSERT_TRUE(aw.retry());
  EXPECT_EQ(aw.spooled(), 0u);
  std::string text = slurp(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_LT(text.find("\"second\""), text.find("\"third\"")) << "spooled lines out of order: " << text;
}

// logrotate renames the file; SIGHUP reopens it: new lines go to the new file.
TEST(FilesSecurity, AlertReopenFollowsLogrotate) {
  testutil::TempDir d;
  std::string path = d.path() + "/alerts.jsonl";
  auto w = sinks::AlertWriter::open(path, sinks::AlertFormat::kJson);
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(w.value()->write(alert("before")));
  fs::rename(path, path + ".1");
  ASSERT_TRUE(w.value()->reopen().ok());
  ASSERT_TRUE(w.value()->write(alert("after")));
  EXPECT_NE(slurp(path).find("\"after\""), std::string::npos);
  EXPECT_EQ(slurp(path + ".1").find("\"after\""), std::string::npos);
}

// Two agents ran side by side; a stale pid file pointed `dump now` at a stranger.
TEST(FilesSecurity, PidFileIsASingleInstanceLock) {
  testutil::TempDir d;
  std::string pf = d.path() + "/run/lunwatch.pid";
  auto first = lock_pid_file(pf);
  ASSERT_TRUE(first.ok()) << first.error().message;
  pid_t child = ::fork();
  if (child == 0) {  // another process: flock conflicts across open file descriptions
    auto second = lock_pid_file(pf);
    ::_exit(!second.ok() && second.error().code == Errc::kInvalidArgument &&
                    second.error().message.find(std::to_string(::getppid())) != std::string::npos
                ? 0
                : 1);
  }
  int st = 0;
  ::waitpid(child, &st, 0);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << "a second agent got the lock";
  // Locked, but this process is not called lunwatch: not an agent.
  auto who = running_agent_pid(pf);
  ASSERT_FALSE(who.ok());
  EXPECT_NE(who.error().message.find("not a lunwatch agent"), std::string::npos) << who.error().message;
  ::close(first.value());
  auto stale = running_agent_pid(pf);
  ASSERT_FALSE(stale.ok());
  EXPECT_NE(stale.error().message.find("stale"), std::string::npos) << stale.error().message;
}

// An unprivileged user who created the pin directory first could delete the
// guard's pinned maps; a non-bpffs parent got bpffs mounted over it.
TEST(FilesSecurity, PinDirMustBePrivateAndOnBpffs) {
  testutil::TempDir d;
  auto r = probes::prepare_pin_dir(d.path() + "/lunwatch", "/nonexistent-standard");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
  EXPECT_NE(r.error().message.find("is not bpffs"), std::string::npos) << r.error().message;
  EXPECT_FALSE(fs::exists(d.path() + "/lunwatch")) << "created the pin dir on a non-bpffs parent";
  EXPECT_FALSE(probes::prepare_pin_dir("relative/pin").ok());
}

// Flows of exited processes stayed in the map for good: a new process on the
// same pid was invisible on devices the old one had touched.
TEST(FilesSecurity, DeadAndReusedPidFlowsAreFound) {
  std::vector<probes::FlowOwner> flows = {
      {100, 5'000'000'000},  // live, started before its flow
      {200, 5'000'000'000},  // gone
      {300, 5'000'000'000},  // pid reused: the process started after the flow
      {100, 9'000'000'000},  // second flow of the live one
  };
  auto start = [](uint32_t tgid) -> std::optional<uint64_t> {
    if (tgid == 100) return 1'000'000'000;
    if (tgid == 300) return 7'000'000'000;
    return std::nullopt;
  };
  EXPECT_EQ(probes::dead_flows(flows, start), (std::vector<size_t>{1, 2}));
  // The real /proc: this process is alive and started before now.
  auto self = probes::process_start_mono_ns(static_cast<uint32_t>(::getpid()));
  ASSERT_TRUE(self.has_value());
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  EXPECT_LE(*self, static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + now.tv_nsec);
  EXPECT_TRUE(probes::dead_flows({{static_cast<uint32_t>(::getpid()), *self + 1}}).empty());
  EXPECT_FALSE(probes::process_start_mono_ns(0x3fffff).has_value());
}
