// The lunwatch binary refuses bad configuration at start-up (one clear line,
// exit 2, never a secret), never aborts on a file it reads, and its file
// commands check what they touch (issue 13). No root or BPF needed: every case
// ends before the probes would load.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "sinks/dump.h"
#include "test_util.h"

using namespace lunwatch;
namespace fs = std::filesystem;

namespace {

struct Run {
  int rc = -1;
  std::string err;  // stdout + stderr
};

Run run(const std::string& args) {
  FILE* p = ::popen((std::string(LUNWATCH_BIN) + " " + args + " 2>&1").c_str(), "r");
  Run r;
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) r.err.append(buf, n);
  int st = p ? ::pclose(p) : -1;
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  return r;
}

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

constexpr const char* kSecret = "Planted-Cinder-Pa55w0rd-9f2";

}  // namespace

// Each config below was accepted (or silently half-applied) before.
TEST(CliStrict, BadConfigIsOneLineAndExit2) {
  testutil::TempDir d;
  struct Case {
    const char* name;
    std::string text;
    const char* expect;  // in the message
  };
  const std::string cinder = std::string("[cinder]\nauth_url = http://127.0.0.1:1/v3\npassword = ") + kSecret + "\n";
  const Case cases[] = {
      {"unknown-key", "[agent]\ngaurd = enforce\n", "unknown key 'gaurd'"},
      {"unknown-section", "[agnet]\nguard = enforce\n", "unknown section [agnet]"},
      {"nan", "[agent]\ninventory_interval = nan\n", "inventory_interval is not a number"},
      {"inf", "[agent]\nverify_interval = inf\n", "verify_interval is not a number"},
      {"unit", "[agent]\ninventory_interval = 10s\n", "inventory_interval is not a number"},
      {"negative", "[agent]\ninventory_interval = -5\n", "inventory_interval must be more than 0"},
      {"zero", "[agent]\ntopology_interval = 0\n", "topology_interval must be more than 0"},
      {"huge", "[agent]\norphan_grace = 1e300\n", "orphan_grace must be at least 0 and at most"},
      {"quiet", "[agent]\nalert_quiet = -1\n", "alert_quiet must be at least 0 and at most"},
      {"severity", "[agent]\ndump_severity = loud\n", "dump_severity must be"},
      {"ring-small", "[agent]\nring_buffer_kib = 2\n", "ring_buffer_kib must be at least 4 and at most 1048576 KiB"},
      {"ring-odd", "[agent]\nring_buffer_kib = 96\n", "ring_buffer_kib must be a power of two"},
      {"format", "[agent]\nalert_format = xml\n", "alert_format must be json or falco"},
      {"listen", "[agent]\nmetrics_listen = garbage\n", "metrics_listen must be host:port"},
      {"bool", "[agent]\nlibvirt = maybe\n", "libvirt must be true or false"},
      {"cinder-timeout", cinder + "timeout = 1e300\n", "[cinder] timeout must be more than 0"},
      {"password-dollar", "[cinder]\nauth_url = http://127.0.0.1:1/v3\npassword = ab$" + std::string(kSecret) + "\n",
       "password: cannot be interpolated"},
      {"password-continuation", cinder + "\n    " + kSecret + "-continued\n", "continuation line"},
  };
  for (const auto& c : cases) {
    d.write(std::string(c.name) + ".conf", c.text);
    auto r = run("run --duration 1 --config " + d.path() + "/" + c.name + ".conf");
    EXPECT_EQ(r.rc, 2) << c.name << ": " << r.err;
    EXPECT_EQ(lines(r.err), 1) << c.name << ": " << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.name << ": " << r.err;
    EXPECT_EQ(r.err.find(kSecret), std::string::npos) << c.name << " leaked the secret: " << r.err;
  }
  // Flags are held to the same rules.
  d.write("empty.conf", "");
  auto f = run("run --duration 1 --config " + d.path() + "/empty.conf --inventory-interval nan");
  EXPECT_EQ(f.rc, 2) << f.err;
  EXPECT_NE(f.err.find("nterval"), std::string::npos) << f.err;  // ours or CLI11's refusal, either names it
  auto m = run("run --duration 1 --metrics-listen garbage --config " + d.path() + "/empty.conf");
  EXPECT_EQ(m.rc, 2) << m.err;
  EXPECT_NE(m.err.find("metrics_listen must be host:port"), std::string::npos) << m.err;
  auto ok = run("run --check-config --config " + d.path() + "/empty.conf");
  EXPECT_EQ(ok.rc, 0) << ok.err;
  auto ring = run("run --check-config --ring-buffer-kib 4096 --config " + d.path() + "/empty.conf");
  EXPECT_EQ(ring.rc, 0) << ring.err;
  auto ring_bad = run("run --duration 1 --ring-buffer-kib 3000 --config " + d.path() + "/empty.conf");
  EXPECT_EQ(ring_bad.rc, 2) << ring_bad.err;
  EXPECT_NE(ring_bad.err.find("ring_buffer_kib must be a power of two"), std::string::npos) << ring_bad.err;
}

// --config=FILE (with '=') was ignored: the default config applied instead.
TEST(CliStrict, ConfigWithEqualsIsHonoured) {
  testutil::TempDir d;
  d.write("bad.conf", "[agent]\ngaurd = off\n");
  auto r = run("run --duration 1 --config=" + d.path() + "/bad.conf");
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_NE(r.err.find("unknown key 'gaurd'"), std::string::npos) << r.err;
  auto missing = run("run --duration 1 --config=" + d.path() + "/missing.conf");
  EXPECT_EQ(missing.rc, 2) << missing.err;
  EXPECT_NE(missing.err.find("missing.conf"), std::string::npos) << missing.err;
}

// A config the caller cannot read: uncaught std::filesystem_error (abort)
// before, even for `run --help`.
TEST(CliStrict, UnreadableConfigDirIsAClearError) {
  testutil::TempDir d;
  fs::create_directories(d.path() + "/locked");
  d.write("locked/lunwatch.conf", "[agent]\n");
  ::chmod((d.path() + "/locked").c_str(), 0);
  ::chmod(d.path().c_str(), 0755);
  std::string prefix = ::geteuid() == 0 ? "setpriv --reuid=65534 --regid=65534 --clear-groups " : "";
  FILE* p = ::popen(
      (prefix + LUNWATCH_BIN + " run --duration 1 --config " + d.path() + "/locked/lunwatch.conf 2>&1").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while (p && (n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = ::pclose(p);
  ::chmod((d.path() + "/locked").c_str(), 0700);
  ASSERT_TRUE(WIFEXITED(st)) << "killed by a signal: " << out;
  EXPECT_EQ(WEXITSTATUS(st), 2) << out;
  EXPECT_NE(out.find("Permission denied"), std::string::npos) << out;
  EXPECT_EQ(lines(out), 1) << out;
  auto help = run("run --help --config " + d.path() + "/locked/lunwatch.conf");
  EXPECT_EQ(help.rc, 0) << help.err;
}

// `dump show` of a capture from a newer lunwatch (an enum value this build
// does not know) aborted in substr().
TEST(CliStrict, DumpWithUnknownEnumValuesShows) {
  testutil::TempDir d;
  v1::CaptureDump dump;
  dump.set_format_version(sinks::kDumpVersion);
  dump.mutable_trigger()->set_rule(v1::CROSS_INSTANCE_ACCESS);
  dump.mutable_trigger()->set_severity(static_cast<v1::Severity>(77));
  auto* e = dump.add_events();
  e->mutable_flow()->set_op(static_cast<v1::Op>(999));
  auto* l = dump.add_events();
  l->mutable_lifecycle()->set_kind(static_cast<v1::LifecycleKind>(998));
  std::string path = d.path() + "/new.lwdump";
  ASSERT_TRUE(sinks::write_dump(path, dump).ok());
  auto r = run("dump show " + path);
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("UNKNOWN(999)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("UNKNOWN(77)"), std::string::npos) << r.err;
}

// An edited dump whose sidecar was deleted was reported "verified".
TEST(CliStrict, DumpVerifyNeedsItsChecksum) {
  testutil::TempDir d;
  v1::CaptureDump dump;  // a complete capture: verified while its sidecar is there
  dump.set_format_version(sinks::kDumpVersion);
  dump.mutable_trigger()->set_rule(v1::CROSS_INSTANCE_ACCESS);
  dump.mutable_trigger()->set_id("CROSS_INSTANCE_ACCESS/x");
  dump.mutable_host()->set_hostname("hv1");
  dump.mutable_host()->set_agent_version("0.1.0");
  std::string path = d.path() + "/a.lwdump";
  ASSERT_TRUE(sinks::write_dump(path, dump).ok());
  auto good = run("dump verify " + path);
  EXPECT_EQ(good.rc, 0) << good.err;
  fs::remove(path + ".sha256");
  auto r = run("dump verify " + path);
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("NOT verified"), std::string::npos) << r.err;
}

// `dump now` with a stale pid file signalled whatever process had the pid
// (SIGUSR1 kills most programs).
TEST(CliStrict, DumpNowSignalsOnlyALunwatchAgent) {
  testutil::TempDir d;
  pid_t victim = ::fork();
  if (victim == 0) {
    ::execlp("sleep", "sleep", "30", nullptr);
    ::_exit(127);
  }
  d.write("lunwatch.pid", std::to_string(victim) + "\n");
  auto r = run("dump now --timeout 1 --pid-file " + d.path() + "/lunwatch.pid --dump-dir " + d.path());
  EXPECT_EQ(r.rc, 1) << r.err;
  EXPECT_NE(r.err.find("not signalling"), std::string::npos) << r.err;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  int st = 0;
  EXPECT_EQ(::waitpid(victim, &st, WNOHANG), 0) << "the unrelated process was signalled";
  ::kill(victim, SIGKILL);
  ::waitpid(victim, &st, 0);
}

// A recording cut inside a length varint replayed as complete.
TEST(CliStrict, ReplayRejectsATruncatedRecording) {
  testutil::TempDir d;
  std::string magic = "LUNWATCH-RECORDING 1\n";
  d.write("cut.rec", magic + std::string("\x00", 1) + std::string("\x80", 1));
  auto r = run("replay " + d.path() + "/cut.rec");
  EXPECT_NE(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
}

// The sample config in README.md is one the agent accepts (its inline
// "# comments" used to be part of the values, and its section lines did not parse).
TEST(CliStrict, ReadmeSampleConfigIsAccepted) {
  std::ifstream in(std::string(LUNWATCH_FIXTURES) + "/../../README.md");
  std::string line, ini;
  bool inside = false, found = false;
  while (std::getline(in, line)) {
    if (!inside && line == "```ini") {
      inside = true;
      ini.clear();
      continue;
    }
    if (inside && line == "```") {
      inside = false;
      if (ini.find("[agent]") != std::string::npos) {
        found = true;
        break;
      }
      continue;
    }
    if (inside) ini += line + "\n";
  }
  ASSERT_TRUE(found) << "no ```ini block with [agent] in README.md";
  testutil::TempDir d;
  d.write("readme.conf", ini);
  auto r = run("run --check-config --config " + d.path() + "/readme.conf");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.err.find("config ok"), std::string::npos) << r.err;
}
