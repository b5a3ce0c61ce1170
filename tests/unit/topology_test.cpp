// Topology: VPD decoding, WWID spellings, a sysfs tree like the lab's after the
// CVE-2023-2088 remap, and the SG_IO verifier's handling of hung LUNs.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include "topology/sgio.h"
#include "topology/sysfs.h"
#include "topology/vpd.h"

using namespace lunwatch;
namespace fs = std::filesystem;

namespace {

// A VPD 0x83 page as LIO answers it: NAA IEEE Registered Extended (16 bytes),
// a T10 vendor ID, and a target-port designator (association 1) to ignore.
std::vector<uint8_t> lio_vpd83(uint8_t fill) {
  std::vector<uint8_t> naa = {0x60, 0x01, 0x40, 0x5a, fill, fill, fill, fill, 0x10, 0, 0x40, 0, 0x80, 0, 0, 0};
  std::string t10 = "LIO-ORG fileio  00000000-0000-0000";
  std::vector<uint8_t> body;
  body.insert(body.end(), {0x01, 0x03, 0x00, static_cast<uint8_t>(naa.size())});
  body.insert(body.end(), naa.begin(), naa.end());
  body.insert(body.end(), {0x02, 0x01, 0x00, static_cast<uint8_t>(t10.size())});
  body.insert(body.end(), t10.begin(), t10.end());
  body.insert(body.end(), {0x61, 0x94, 0x00, 0x04, 0, 0, 0, 1});  // relative target port, assoc 1
  std::vector<uint8_t> page = {0x00, 0x83, static_cast<uint8_t>(body.size() >> 8), static_cast<uint8_t>(body.size())};
  page.insert(page.end(), body.begin(), body.end());
  return page;
}

std::vector<uint8_t> vpd80(const std::string& serial) {
  std::vector<uint8_t> p = {0x00, 0x80, 0, static_cast<uint8_t>(serial.size())};
  for (char c : serial) p.push_back(static_cast<uint8_t>(c));
  return p;
}

}  // namespace

TEST(Vpd, PrefersNaaOfTheLogicalUnit) {
  auto w = topology::parse_vpd83(lio_vpd83(0xa1));
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(w.value(), "naa.6001405aa1a1a1a11000400080000000");
}

TEST(Vpd, FallsBackToT10AndRejectsGarbage) {
  std::string t10 = "LIO-ORG disk";
  std::vector<uint8_t> p = {0x00, 0x83, 0, static_cast<uint8_t>(4 + t10.size()),
                            0x02, 0x01, 0, static_cast<uint8_t>(t10.size())};
  p.insert(p.end(), t10.begin(), t10.end());
  auto w = topology::parse_vpd83(p);
  ASSERT_TRUE(w.ok());
  EXPECT_EQ(w.value(), "t10.LIO-ORG disk");

  EXPECT_FALSE(topology::parse_vpd83(std::vector<uint8_t>{0, 0x80, 0, 0}).ok());    // wrong page
  EXPECT_FALSE(topology::parse_vpd83(std::vector<uint8_t>{0, 0x83}).ok());          // short
  std::vector<uint8_t> overrun = {0, 0x83, 0, 8, 0x01, 0x03, 0, 0x40, 1, 2, 3, 4};  // designator says 64 bytes
  EXPECT_FALSE(topology::parse_vpd83(overrun).ok());
  std::vector<uint8_t> only_port = {0, 0x83, 0, 8, 0x61, 0x94, 0, 4, 0, 0, 0, 1};
  auto none = topology::parse_vpd83(only_port);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().code, Errc::kNotFound);
}

TEST(Vpd, SerialAndWwidSpellings) {
  auto s = topology::parse_vpd80(vpd80("b2b2b2b2-0000-4000-8000-00000000000b  "));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s.value(), "b2b2b2b2-0000-4000-8000-00000000000b");
  EXPECT_EQ(topology::normalize_wwid("mpath-36001405A1A1"), "naa.6001405a1a1");
  EXPECT_EQ(topology::normalize_wwid("36001405a1a1"), "naa.6001405a1a1");
  EXPECT_EQ(topology::normalize_wwid("naa.6001405A1A1\n"), "naa.6001405a1a1");
  EXPECT_EQ(topology::normalize_wwid("2002538b6"), "eui.002538b6");
  EXPECT_EQ(topology::normalize_wwid("1LIO-ORG x"), "t10.LIO-ORG x");
}

class SysfsTree : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("lw-sysfs-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    // Two iSCSI sessions to one target over two portals, LUN 1 on each: sda, sdb under dm-0.
    add_session(1, 0, "127.0.0.1");
    add_session(2, 1, "127.0.0.2");
    add_disk(0, 1, "sda", "8:0");
    add_disk(1, 2, "sdb", "8:16");
    auto dm = root_ / "block/dm-0";
    fs::create_directories(dm / "dm");
    fs::create_directories(dm / "slaves/sda");
    fs::create_directories(dm / "slaves/sdb");
    write(dm / "dm/uuid", "mpath-36001405aa1a1a1a10100400080000000\n");
    write(dm / "dm/name", "36001405aa1a1a1a10100400080000000\n");
    write(dm / "dev", "254:0\n");
  }
  void TearDown() override { fs::remove_all(root_); }
  static void write(const fs::path& p, const std::string& s) {
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << s;
  }
  void add_session(int sid, int host, const std::string& ip) {
    auto real = root_ / "devices/platform" / ("host" + std::to_string(host)) / ("session" + std::to_string(sid));
    fs::create_directories(real);
    auto cls = root_ / "class/iscsi_session" / ("session" + std::to_string(sid));
    fs::create_directories(cls);
    fs::create_directory_symlink(real, cls / "device");
    write(cls / "targetname", "iqn.2003-01.org.linux-iscsi.lab:shared\n");
    write(cls / "state", "LOGGED_IN\n");
    auto conn = root_ / "class/iscsi_connection" / ("connection" + std::to_string(sid) + ":0");
    write(conn / "persistent_address", ip + "\n");
    write(conn / "persistent_port", "3260\n");
  }
  void add_disk(int host, int sid, const std::string& name, const std::string& dev) {
    std::string hctl = std::to_string(host) + ":0:0:1";
    auto real = root_ / "devices/platform" / ("host" + std::to_string(host)) / ("session" + std::to_string(sid)) /
                ("target" + std::to_string(host) + ":0:0") / hctl;
    fs::create_directories(real / "block" / name);
    write(real / "state", "running\n");
    write(real / "vendor", "LIO-ORG \n");
    write(real / "model", "volA\n");
    write(real / "wwid", "naa.6001405aa1a1a1a10100400080000000\n");  // volA's, cached at probe time
    auto p80 = vpd80("a1a1a1a1-0000-4000-8000-00000000000a");
    write(real / "vpd_pg80", std::string(p80.begin(), p80.end()));
    auto cls = root_ / "class/scsi_device" / hctl;
    fs::create_directories(cls);
    fs::create_directory_symlink(real, cls / "device");
    write(root_ / "class/block" / name / "dev", dev + "\n");
    fs::create_directories(root_ / "block" / name / "holders/dm-0");
  }
  fs::path root_;
};

TEST_F(SysfsTree, ReadsDevicesSessionsAndMaps) {
  topology::ReadStats stats;
  auto t = topology::read_topology(root_.string(), &stats);
  ASSERT_EQ(t.sessions_size(), 2);
  EXPECT_EQ(t.sessions(0).portal(), "127.0.0.1:3260");
  EXPECT_EQ(t.sessions(1).host(), 1u);
  ASSERT_EQ(t.devices_size(), 2);
  const auto& sda = t.devices(0);
  EXPECT_EQ(sda.addr().hctl(), "0:0:0:1");
  EXPECT_EQ(sda.name(), "sda");
  EXPECT_EQ(sda.dev(), "8:0");
  EXPECT_EQ(sda.state(), "running");
  EXPECT_EQ(sda.transport(), v1::TRANSPORT_ISCSI);
  EXPECT_EQ(sda.session(), 1);
  EXPECT_EQ(sda.target().iqn(), "iqn.2003-01.org.linux-iscsi.lab:shared");
  EXPECT_EQ(sda.target().portal(), "127.0.0.1:3260");
  EXPECT_EQ(sda.target().lun(), 1u);
  EXPECT_EQ(sda.cached().wwid(), "naa.6001405aa1a1a1a10100400080000000");
  EXPECT_EQ(sda.cached().serial(), "a1a1a1a1-0000-4000-8000-00000000000a");
  ASSERT_EQ(sda.holders_size(), 1);
  EXPECT_EQ(sda.holders(0), "dm-0");
  EXPECT_EQ(t.devices(1).target().portal(), "127.0.0.2:3260");
  ASSERT_EQ(t.maps_size(), 1);
  EXPECT_EQ(t.maps(0).dm(), "dm-0");
  EXPECT_EQ(t.maps(0).wwid(), "naa.6001405aa1a1a1a10100400080000000");
  ASSERT_EQ(t.maps(0).paths_size(), 2);
  EXPECT_EQ(stats.vanished, 0u);
}

// A device listed but unreadable is counted and reported by its address alone
// (no device number, no state), for the correlator to tell from a removal.
TEST_F(SysfsTree, ADeviceThatVanishesIsCountedAndReportedByItsAddressOnly) {
  fs::remove_all(root_ / "devices/platform/host1/session2/target1:0:0/1:0:0:1");  // link now dangles
  topology::ReadStats stats;
  auto t = topology::read_topology(root_.string(), &stats);
  ASSERT_EQ(t.devices_size(), 2);
  int readable = 0;
  for (const auto& d : t.devices()) {
    if (d.addr().hctl() == "1:0:0:1") {
      EXPECT_EQ(d.dev(), "");
      EXPECT_EQ(d.name(), "");
      EXPECT_EQ(d.state(), "");
    } else {
      EXPECT_EQ(d.name(), "sda");
      readable++;
    }
  }
  EXPECT_EQ(readable, 1);
  EXPECT_EQ(stats.vanished, 1u);
}

TEST(Verifier, DeliversAnswersAndTimesOutAHungLunWithoutBlocking) {
  std::atomic<bool> release{false};
  topology::IdentityVerifier::Options o;
  o.dev_dir = "/dev";
  o.private_dir = (fs::temp_directory_path() / ("lw-nodes-" + std::to_string(::getpid()))).string();
  o.timeout = std::chrono::milliseconds(100);
  o.inquire = [&](const std::string& node, std::chrono::milliseconds) -> Result<v1::Identity> {
    if (node.find("1_3") != std::string::npos || node.find("null") != std::string::npos) {
      v1::Identity id;
      id.set_wwid("naa.600a");
      return id;
    }
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(5));  // a hung LUN
    return make_error(Errc::kIo, "late");
  };
  topology::IdentityVerifier v(o);
  // /dev/null is char, not block: the verifier makes a private block node 1:3.
  ASSERT_TRUE(v.submit("null", {1, 3}));
  ASSERT_TRUE(v.submit("hung", {1, 5}));
  EXPECT_TRUE(v.submit("hung", {1, 5})) << "a second request for a pending LUN is merged, not refused";
  auto t0 = std::chrono::steady_clock::now();
  auto got = v.wait_all(std::chrono::seconds(5));
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(waited, std::chrono::seconds(3)) << "the hung LUN blocked the caller";
  ASSERT_EQ(got.size(), 2u);
  int ok = 0, timed_out = 0;
  for (const auto& g : got) {
    if (g.ok) {
      ok++;
      EXPECT_EQ(g.identity.wwid(), "naa.600a");
    }
    if (g.timed_out) timed_out++;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(timed_out, 1);
  EXPECT_EQ(v.timeouts_total(), 1u);
  v.submit("hung", {1, 5});
  EXPECT_EQ(v.stats().hung, 1u) << "still stuck: not asked again";
  EXPECT_EQ(v.in_flight(), 0u) << "a hung LUN does not count as in flight";
  release = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::vector<topology::VerifyOutcome> late;
  while (late.empty() && std::chrono::steady_clock::now() < deadline) {
    late = v.take();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(late.size(), 1u);
  EXPECT_FALSE(late[0].ok);
  EXPECT_EQ(late[0].error, "late");
  EXPECT_EQ(v.stats().hung, 0u);
  EXPECT_EQ(v.stats().retry_wait, 1u) << "a failed answer is retried after a backoff";
  fs::remove_all(o.private_dir);
}

namespace {
// A fake array for the queue tests: answers by device name, counts calls and
// the highest concurrency seen; names in `hang` block until released.
struct FakeArray {
  std::mutex mu;
  std::map<std::string, int> calls;
  std::map<std::string, std::string> wwid;  // name -> answer; missing: an error
  std::set<std::string> hang;
  std::atomic<bool> release{false};
  std::atomic<int> running{0}, max_running{0};
  std::chrono::milliseconds service{5};
  topology::IdentityVerifier::Options options() {
    topology::IdentityVerifier::Options o;
    o.timeout = std::chrono::seconds(5);  // the hung-LUN test sets a short one
    o.max_in_flight = 4;
    o.retry_base = std::chrono::milliseconds(20);
    o.retry_max = std::chrono::milliseconds(80);
    o.max_attempts = 4;
    o.node = [](const std::string& name, DevNum) -> Result<std::string> { return "/fake/" + name; };
    o.inquire = [this](const std::string& node, std::chrono::milliseconds) -> Result<v1::Identity> {
      std::string name = node.substr(6);
      int now = ++running;
      for (int m = max_running; now > m && !max_running.compare_exchange_weak(m, now);) {
      }
      bool hung, known;
      std::string w;
      {
        std::lock_guard<std::mutex> l(mu);
        calls[name]++;
        hung = hang.count(name) > 0;
        known = wwid.count(name) > 0;
        if (known) w = wwid[name];
      }
      std::this_thread::sleep_for(service);
      while (hung && !release) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      --running;
      if (!known) return make_error(Errc::kIo, "INQUIRY VPD 0x83: status 0x2");
      v1::Identity id;
      id.set_wwid(w);
      return id;
    };
    return o;
  }
  int count(const std::string& n) {
    std::lock_guard<std::mutex> l(mu);
    return calls[n];
  }
};

// Takes outcomes until pred holds or the deadline passes.
template <typename Pred>
std::vector<topology::VerifyOutcome> take_until(topology::IdentityVerifier& v, Pred pred,
                                                std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  std::vector<topology::VerifyOutcome> all;
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!pred(all) && std::chrono::steady_clock::now() < deadline) {
    for (auto& o : v.take()) all.push_back(std::move(o));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return all;
}
}  // namespace

TEST(VerifyQueue, EveryDeviceIsCheckedWithBoundedConcurrency) {
  FakeArray a;
  a.service = std::chrono::milliseconds(20);  // long enough that workers overlap on a busy machine
  for (int i = 0; i < 100; ++i) a.wwid["sd" + std::to_string(i)] = "naa.6" + std::to_string(i);
  topology::IdentityVerifier v(a.options());
  for (int i = 0; i < 100; ++i)
    ASSERT_TRUE(v.submit("sd" + std::to_string(i), {8, static_cast<uint32_t>(i)}, v1::VERIFY_SCAN));
  auto st = v.stats();
  EXPECT_EQ(st.running + st.queued, 100u) << "nothing refused or dropped";
  EXPECT_LE(st.running, 4u);
  auto got = take_until(v, [](const auto& all) { return all.size() >= 100; });
  ASSERT_EQ(got.size(), 100u);
  std::set<std::string> names;
  for (const auto& o : got) {
    EXPECT_TRUE(o.ok) << o.name << ": " << o.error;
    EXPECT_EQ(o.reason, v1::VERIFY_SCAN);
    EXPECT_GT(o.asked_ns, 0u);
    names.insert(o.name);
  }
  EXPECT_EQ(names.size(), 100u);
  EXPECT_LE(a.max_running.load(), 4) << "more checks ran at once than max_in_flight";
  EXPECT_GE(a.max_running.load(), 2) << "the queue did not run checks concurrently";
  EXPECT_EQ(v.stats().queued, 0u);
  EXPECT_EQ(v.stats().oldest_age_s, 0.0);
}

TEST(VerifyQueue, DeduplicatesAndRerunsARequestThatArrivedDuringItsCheck) {
  FakeArray a;
  a.wwid["sda"] = "naa.61";
  a.wwid["sdb"] = "naa.62";
  a.service = std::chrono::milliseconds(50);
  auto o = a.options();
  o.max_in_flight = 1;
  topology::IdentityVerifier v(o);
  v.submit("sda", {8, 0}, v1::VERIFY_PERIODIC);   // starts at once
  v.submit("sdb", {8, 16}, v1::VERIFY_PERIODIC);  // queued
  for (int i = 0; i < 10; ++i) v.submit("sdb", {8, 16}, v1::VERIFY_PERIODIC);
  v.submit("sdb", {8, 16}, v1::VERIFY_SCAN);
  EXPECT_EQ(v.stats().queued, 1u) << "sdb queued once";
  v.submit("sda", {8, 0}, v1::VERIFY_SCAN);  // during sda's check: one more after it
  auto got = take_until(v, [](const auto& all) { return all.size() >= 3; });
  take_until(
      v, [](const auto&) { return false; }, std::chrono::milliseconds(300));  // nothing more comes
  EXPECT_EQ(a.count("sdb"), 1);
  EXPECT_EQ(a.count("sda"), 2) << "a request made while a check ran must get an answer asked after it";
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].name, "sdb") << "fair: sdb was queued before sda's re-run";
  EXPECT_EQ(got[1].reason, v1::VERIFY_SCAN) << "the specific reason wins over periodic";
  EXPECT_EQ(got[2].name, "sda");
  EXPECT_GT(got[2].asked_ns, got[0].asked_ns);
}

TEST(VerifyQueue, HungLunsAreIsolatedAndDoNotStallOthers) {
  FakeArray a;
  for (int i = 0; i < 20; ++i) a.wwid["sd" + std::to_string(i)] = "naa.6" + std::to_string(i);
  a.hang = {"sd0", "sd1", "sd2", "sd3", "sd4", "sd5"};  // more hung LUNs than workers
  auto o = a.options();
  o.timeout = std::chrono::milliseconds(200);
  topology::IdentityVerifier v(o);
  for (int i = 0; i < 20; ++i) v.submit("sd" + std::to_string(i), {8, static_cast<uint32_t>(i)}, v1::VERIFY_PERIODIC);
  auto got = take_until(v, [](const auto& all) {
    return std::count_if(all.begin(), all.end(), [](const auto& o) { return o.ok; }) >= 14 &&
           std::count_if(all.begin(), all.end(), [](const auto& o) { return o.timed_out; }) >= 6;
  });
  std::set<std::string> ok, timed_out;
  for (const auto& o : got) (o.ok ? ok : timed_out).insert(o.name);
  EXPECT_EQ(ok.size(), 14u) << "every healthy device answered despite 6 hung LUNs and 4 workers";
  for (const auto& h : a.hang) EXPECT_TRUE(timed_out.count(h)) << h << " not reported as timed out";
  EXPECT_EQ(v.stats().hung, 6u);
  for (int i = 0; i < 3; ++i) v.submit("sd0", {8, 0}, v1::VERIFY_SCAN);
  take_until(
      v, [](const auto&) { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(a.count("sd0"), 1) << "a hung LUN is not asked again while stuck";
  EXPECT_GT(v.stats().oldest_age_s, 0.2) << "the hung requests are the oldest unanswered";
  a.release = true;
  auto late = take_until(v, [](const auto& all) { return all.size() >= 6; });
  EXPECT_GE(late.size(), 6u);
  // sd0 was asked for again while stuck: answered ok, so it is asked once more.
  take_until(v, [&](const auto&) { return a.count("sd0") >= 2; });
  EXPECT_EQ(a.count("sd0"), 2);
}

TEST(VerifyQueue, FailuresAreRetriedWithBackoffThenGivenUp) {
  FakeArray a;  // "bad" has no answer: every INQUIRY fails
  a.wwid["good"] = "naa.61";
  topology::IdentityVerifier v(a.options());
  auto t0 = std::chrono::steady_clock::now();
  v.submit("bad", {8, 0}, v1::VERIFY_SCAN);
  v.submit("good", {8, 16}, v1::VERIFY_SCAN);
  auto got = take_until(v, [](const auto& all) {
    return std::count_if(all.begin(), all.end(), [](const auto& o) { return o.name == "bad"; }) >= 4;
  });
  auto took = std::chrono::steady_clock::now() - t0;
  std::vector<topology::VerifyOutcome> bad;
  for (const auto& o : got)
    if (o.name == "bad") bad.push_back(o);
  ASSERT_EQ(bad.size(), 4u);
  for (size_t i = 0; i < bad.size(); ++i) {
    EXPECT_FALSE(bad[i].ok);
    EXPECT_EQ(bad[i].attempt, i + 1);
  }
  EXPECT_EQ(bad[1].reason, v1::VERIFY_ERROR_RECOVERY);
  // Backoff 20, 40, 80 ms between the four tries.
  EXPECT_GE(std::chrono::nanoseconds(bad[3].asked_ns - bad[0].asked_ns), std::chrono::milliseconds(140));
  EXPECT_GE(took, std::chrono::milliseconds(140));
  take_until(
      v, [](const auto&) { return false; }, std::chrono::milliseconds(300));
  EXPECT_EQ(a.count("bad"), 4) << "given up after max_attempts";
  EXPECT_EQ(a.count("good"), 1);
  EXPECT_EQ(v.stats().retries_total, 3u);
  ASSERT_TRUE(v.since_good("good"));
  ASSERT_TRUE(v.since_good("bad"));
  EXPECT_GT(*v.since_good("bad"), *v.since_good("good")) << "never good: its age runs from the first request";
  EXPECT_FALSE(v.since_good("never"));
  // A periodic request starts a new streak.
  v.submit("bad", {8, 0}, v1::VERIFY_PERIODIC);
  take_until(v, [&](const auto&) { return a.count("bad") >= 5; });
  EXPECT_EQ(a.count("bad"), 5);
  v.forget("bad");
  EXPECT_FALSE(v.since_good("bad"));
}

TEST(VerifyQueue, AGoneDeviceIsNotRetried) {
  FakeArray a;
  auto o = a.options();
  o.inquire = [](const std::string&, std::chrono::milliseconds) -> Result<v1::Identity> {
    return make_error(Errc::kNotFound, "cannot open /dev/sdz: No such device or address");
  };
  topology::IdentityVerifier v(o);
  v.submit("sdz", {8, 0}, v1::VERIFY_SCAN);
  auto got = take_until(v, [](const auto& all) { return !all.empty(); });
  ASSERT_EQ(got.size(), 1u);
  EXPECT_TRUE(got[0].gone);
  EXPECT_EQ(v.stats().retry_wait, 0u);
}
