// Containment: the plan (pure) and the runner against a fake sysfs and fake
// virsh scripts. The real thing (a real SCSI device offlined, a real libvirt
// domain paused) is the lab scenario "containment".
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <thread>

#include <nlohmann/json.hpp>

#include "contain/containment.h"
#include "sinks/alerts.h"
#include "sinks/json.h"
#include "test_util.h"

using namespace lunwatch;
namespace v1 = lunwatch::v1;

namespace {

constexpr const char* kUuidA = "11111111-1111-4111-8111-111111111111";
constexpr const char* kWb = "naa.6001405bb2b2b2b21000400080000000";
constexpr const char* kWa = "naa.6001405aa1a1a1a11000400080000000";

v1::Alert leak() {
  v1::Alert a;
  a.set_id("CROSS_INSTANCE_ACCESS/instance-0000000a/254:0/" + std::string(kWb));
  a.set_rule(v1::CROSS_INSTANCE_ACCESS);
  a.set_state(v1::ALERT_FIRING);
  a.mutable_instance()->set_uuid(kUuidA);
  a.mutable_instance()->set_name("instance-0000000a");
  a.set_verified_wwid(kWb);
  for (auto [name, hctl] : {std::pair{"sda", "0:0:0:1"}, std::pair{"sdb", "1:0:0:1"}}) {
    auto* p = a.add_paths();
    p->set_name(name);
    p->mutable_addr()->set_hctl(hctl);
    p->set_verified_wwid(kWb);
  }
  return a;
}

contain::Options both() {
  contain::Options o;
  o.offline_scsi_device = true;
  o.pause_domain = true;
  return o;
}

uint64_t now_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

// Polls the runner until it hands back an alert, or the deadline passes.
std::vector<v1::Alert> wait_results(contain::Runner& r, double deadline_s = 10) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(deadline_s);
  while (std::chrono::steady_clock::now() < end) {
    auto got = r.poll(now_ns());
    if (!got.empty()) return got;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return {};
}

std::string fake_virsh(const testutil::TempDir& d, const std::string& body) {
  d.write("virsh", "#!/bin/sh\n" + body + "\n");
  std::string path = d.path() + "/virsh";
  ::chmod(path.c_str(), 0755);
  return path;
}

// One leak through a runner that only pauses, with this virsh; its results.
std::vector<v1::Alert> pause_once(const std::string& virsh, double timeout_s = 15) {
  contain::Options o;
  o.pause_domain = true;
  o.virsh = virsh;
  o.timeout_s = timeout_s;
  contain::Runner r(o);
  r.start(leak(), now_ns());
  return wait_results(r);
}

void scsi_device(const testutil::TempDir& d, const std::string& hctl, const std::string& state) {
  d.write("sys/class/scsi_device/" + hctl + "/device/state", state + "\n");
}

}  // namespace

TEST(ContainmentPlan, OnlyAConfirmedLeakTheGuardDidNotRefuse) {
  auto o = both();
  EXPECT_EQ(contain::plan(leak(), o).size(), 3u);  // two paths + the domain

  auto denied = leak();
  denied.set_denied(true);
  EXPECT_TRUE(contain::plan(denied, o).empty()) << "the guard already refused it";
  auto resolved = leak();
  resolved.set_state(v1::ALERT_RESOLVED);
  EXPECT_TRUE(contain::plan(resolved, o).empty());
  auto other = leak();
  other.set_rule(v1::IDENTITY_CHANGED);
  EXPECT_TRUE(contain::plan(other, o).empty()) << "identity changes alone do not pause anybody";
  EXPECT_TRUE(contain::plan(leak(), contain::Options{}).empty()) << "off by default";
}

TEST(ContainmentPlan, OfflinesOnlyPathsAnsweringAsTheLeakedVolume) {
  auto a = leak();
  a.mutable_paths(1)->set_verified_wwid(kWa);  // this path still answers as A's own volume
  auto* wild = a.add_paths();                  // not a device address
  wild->mutable_addr()->set_hctl("2:-:-:1");
  contain::Options o;
  o.offline_scsi_device = true;
  auto steps = contain::plan(a, o);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].kind, v1::CONTAIN_OFFLINE_SCSI_DEVICE);
  EXPECT_EQ(steps[0].target, "0:0:0:1");
  EXPECT_EQ(steps[0].label, "sda");
}

// Lab scenario containment (fresh-clone run, 2026-12-02): the leak was judged
// while one path was failed in dm with the LUN remapped; that path's last good
// answer was still A's own volume. Offlining only the other path let
// dm-multipath reinstate it onto B's volume. A path whose identity is unknown
// is offlined too.
TEST(ContainmentPlan, APathWhoseIdentityIsUnknownIsOfflinedToo) {
  auto a = leak();
  a.mutable_paths(1)->set_verified_wwid(kWa);      // its last good answer...
  a.mutable_paths(1)->set_identity_unknown(true);  // ...which may no longer hold
  contain::Options o;
  o.offline_scsi_device = true;
  auto steps = contain::plan(a, o);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_EQ(steps[1].target, a.paths(1).addr().hctl());
}

TEST(ContainmentPlan, PausesTheActorByUuidAndNeverAnUnknownProcess) {
  contain::Options o;
  o.pause_domain = true;
  auto steps = contain::plan(leak(), o);
  ASSERT_EQ(steps.size(), 1u);
  EXPECT_EQ(steps[0].kind, v1::CONTAIN_PAUSE_DOMAIN);
  EXPECT_EQ(steps[0].target, kUuidA);
  auto host = leak();
  host.clear_instance();
  EXPECT_TRUE(contain::plan(host, o).empty());
}

TEST(ContainmentPlan, ParsesTheActionList) {
  contain::Options o;
  std::string err;
  ASSERT_TRUE(contain::parse_actions("offline, pause", o, &err)) << err;
  EXPECT_TRUE(o.offline_scsi_device && o.pause_domain);
  EXPECT_EQ(contain::actions_string(o), "offline_scsi_device,pause_domain");
  ASSERT_TRUE(contain::parse_actions("none", o, &err));
  EXPECT_FALSE(o.offline_scsi_device || o.pause_domain);
  EXPECT_EQ(contain::actions_string(o), "none");
  EXPECT_FALSE(contain::parse_actions("offline,reboot", o, &err));
  EXPECT_NE(err.find("reboot"), std::string::npos);
  EXPECT_FALSE(contain::parse_actions("none,pause", o, &err));
}

TEST(ContainmentRunner, OfflinesTheDevicesOnceAndSaysHowToUndo) {
  testutil::TempDir d;
  scsi_device(d, "0:0:0:1", "running");
  scsi_device(d, "1:0:0:1", "offline");
  contain::Options o;
  o.offline_scsi_device = true;
  o.sysfs_root = d.path() + "/sys";
  contain::Runner r(o);
  r.start(leak(), now_ns());
  auto got = wait_results(r);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].containment_size(), 2);
  EXPECT_EQ(got[0].id(), leak().id()) << "written again under the same id";
  const auto& a = got[0].containment(0);
  EXPECT_EQ(a.kind(), v1::CONTAIN_OFFLINE_SCSI_DEVICE);
  EXPECT_EQ(a.result(), v1::CONTAIN_DONE) << a.detail();
  EXPECT_NE(a.detail().find("echo running >"), std::string::npos) << a.detail();
  // exactly what the kernel's store_state_field accepts: the name and a newline
  EXPECT_EQ(testutil::slurp(d.path() + "/sys/class/scsi_device/0:0:0:1/device/state"), "offline\n");
  EXPECT_EQ(got[0].containment(1).result(), v1::CONTAIN_ALREADY);

  r.start(leak(), now_ns());  // the alert again: nothing more to do
  EXPECT_FALSE(r.busy());
}

TEST(ContainmentRunner, AVanishedDeviceIsAFailureThatIsRetriedLater) {
  testutil::TempDir d;
  contain::Options o;
  o.offline_scsi_device = true;
  o.sysfs_root = d.path() + "/sys";
  o.retry_after_s = 3600;
  contain::Runner r(o);
  r.start(leak(), now_ns());
  auto got = wait_results(r);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].containment_size(), 2);
  EXPECT_EQ(got[0].containment(0).result(), v1::CONTAIN_FAILED);
  EXPECT_NE(got[0].containment(0).detail().find("not readable"), std::string::npos);
  r.start(leak(), now_ns());
  EXPECT_FALSE(r.busy()) << "not retried before retry_after_s";
}

TEST(ContainmentRunner, AFailedActionIsRetriedWithBoundedBackoff) {
  testutil::TempDir d;
  contain::Options o;
  o.offline_scsi_device = true;
  o.sysfs_root = d.path() + "/sys";  // no such device: every offline fails
  o.retry_after_s = 1;
  o.retry_max_s = 3;
  contain::Runner r(o);
  const uint64_t s = 1'000'000'000ULL, t0 = 100 * s;
  auto attempts = [&](uint64_t at) {
    r.start(leak(), at);
    auto got = r.poll(at);
    return got.empty() ? 0 : got[0].containment_size();
  };
  ASSERT_EQ(attempts(t0), 2) << "both paths tried, both failed";
  EXPECT_EQ(attempts(t0 + s / 2), 0) << "1 s after the first failure";
  EXPECT_EQ(attempts(t0 + s), 2) << "retried after retry_after_s";
  EXPECT_EQ(attempts(t0 + 2 * s + s / 2), 0) << "then 2 s";
  EXPECT_EQ(attempts(t0 + 3 * s), 2);
  EXPECT_EQ(attempts(t0 + 6 * s - 1), 0) << "then 4 s, capped at retry_max_s (3 s)";
  EXPECT_EQ(attempts(t0 + 6 * s), 2);
  EXPECT_EQ(attempts(t0 + 9 * s), 2) << "the cap holds";
  // The device appears: the next retry succeeds and is never repeated.
  scsi_device(d, "0:0:0:1", "running");
  scsi_device(d, "1:0:0:1", "running");
  r.start(leak(), t0 + 12 * s);
  auto got = r.poll(t0 + 12 * s);
  ASSERT_EQ(got.size(), 1u);
  for (const auto& c : got[0].containment()) EXPECT_EQ(c.result(), v1::CONTAIN_DONE) << c.detail();
  EXPECT_EQ(attempts(t0 + 100 * s), 0) << "done: not repeated";
}

TEST(ContainmentRunner, PausesThroughVirshWithTheUriAndUuid) {
  testutil::TempDir d;
  contain::Options o;
  o.pause_domain = true;
  o.libvirt_uri = "qemu:///system";
  o.virsh = fake_virsh(d, "echo \"$@\" > " + d.path() + "/args; echo \"Domain '$5' suspended\"");
  contain::Runner r(o);
  r.start(leak(), now_ns());
  EXPECT_TRUE(r.busy());
  auto got = wait_results(r);
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].containment_size(), 1);
  const auto& c = got[0].containment(0);
  EXPECT_EQ(c.result(), v1::CONTAIN_DONE) << c.detail();
  EXPECT_EQ(c.target(), kUuidA);
  EXPECT_NE(c.detail().find("suspended"), std::string::npos) << c.detail();
  EXPECT_EQ(testutil::slurp(d.path() + "/args"), std::string("-q -c qemu:///system suspend ") + kUuidA + "\n");
}

TEST(ContainmentRunner, AHungVirshIsKilledAtTheDeadline) {
  testutil::TempDir d;
  auto t0 = std::chrono::steady_clock::now();
  auto got = pause_once(fake_virsh(d, "exec sleep 30"), 0.3);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].containment(0).result(), v1::CONTAIN_TIMEOUT) << got[0].containment(0).detail();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(10)) << "not waited for sleep 30";
}

TEST(ContainmentRunner, AFailingOrMissingVirshIsReportedWithItsOutput) {
  testutil::TempDir d;
  auto got = pause_once(fake_virsh(d, "echo 'error: failed to get domain' >&2; exit 1"));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].containment(0).result(), v1::CONTAIN_FAILED);
  EXPECT_NE(got[0].containment(0).detail().find("failed to get domain"), std::string::npos);

  got = pause_once(d.path() + "/no-such-virsh");
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].containment(0).result(), v1::CONTAIN_FAILED);
  EXPECT_NE(got[0].containment(0).detail().find("cannot run"), std::string::npos) << got[0].containment(0).detail();
}

TEST(ContainmentRunner, ResultsReachBothAlertFormats) {
  testutil::TempDir d;
  auto got = pause_once(fake_virsh(d, "exit 0"));
  ASSERT_EQ(got.size(), 1u);
  auto falco = nlohmann::json::parse(sinks::to_falco_json(got[0]));
  EXPECT_EQ(falco["output_fields"]["lunwatch.containment"], std::string("pause_domain ") + kUuidA + " done");
  auto json = nlohmann::json::parse(sinks::to_json(got[0]));
  ASSERT_EQ(json["containment"].size(), 1u);
  EXPECT_EQ(json["containment"][0]["kind"], "CONTAIN_PAUSE_DOMAIN");
  EXPECT_EQ(json["containment"][0]["result"], "CONTAIN_DONE");
  EXPECT_EQ(json["id"], leak().id());
}
