// agent/: the pipeline (stamp -> taps -> correlator), the dispatcher, the
// timer table, and replay: a recording the live pipeline made with a
// non-default allowlist, replayed with the options of the same config,
// reaches the same alerts.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "agent/dispatcher.h"
#include "agent/options.h"
#include "agent/pipeline.h"
#include "agent/replay.h"
#include "agent/timers.h"
#include "sinks/recording.h"
#include "test_util.h"

namespace lunwatch::agent {
namespace {

constexpr const char* kWa = "naa.6001405aa1a1a1a11000400080000000";
constexpr const char* kVolA = "a1a1a1a1-0000-4000-8000-00000000000a";
constexpr const char* kUuidA = "11111111-1111-4111-8111-111111111111";
constexpr const char* kUuidB = "22222222-2222-4222-8222-222222222222";

v1::Event topology() {
  v1::Event ev;
  auto* t = ev.mutable_topology();
  int i = 0;
  for (auto [name, dev] : {std::pair{"sda", "8:0"}, std::pair{"sdb", "8:16"}}) {
    auto* s = t->add_devices();
    s->set_name(name);
    s->set_dev(dev);
    s->mutable_addr()->set_host(static_cast<uint32_t>(i));
    s->mutable_addr()->set_lun(1);
    s->set_state("running");
    s->set_transport(v1::TRANSPORT_ISCSI);
    s->set_session(i + 1);
    s->mutable_target()->set_iqn("iqn.2003-01.org.linux-iscsi.lab:shared");
    s->mutable_target()->set_portal(i ? "127.0.0.2:3260" : "127.0.0.1:3260");
    s->mutable_target()->set_lun(1);
    s->mutable_cached()->set_wwid(kWa);
    s->add_holders("dm-0");
    ++i;
  }
  auto* m = t->add_maps();
  m->set_dm("dm-0");
  m->set_dev("254:0");
  m->set_wwid(kWa);
  m->add_paths("sda");
  m->add_paths("sdb");
  return ev;
}

v1::Event libvirt() {
  v1::Event ev;
  auto* s = ev.mutable_inventory();
  s->set_kind(v1::SOURCE_LIBVIRT);
  s->set_last_good_unix_ms(1);
  auto* a = s->add_attachments();
  a->set_source(v1::SOURCE_LIBVIRT);
  a->set_instance_uuid(kUuidA);
  a->set_instance_name("instance-0000000a");
  a->set_volume_id(kVolA);
  a->set_status(v1::ATTACHMENT_ATTACHED);
  a->set_device_path("/dev/dm-0");
  a->set_resolved_dev("254:0");
  auto* i = s->add_instances();
  i->set_uuid(kUuidA);
  i->set_name("instance-0000000a");
  auto* j = s->add_instances();
  j->set_uuid(kUuidB);
  j->set_name("instance-0000000b");
  return ev;
}

v1::Event identity(const std::string& dev, const std::string& name) {
  v1::Event ev;
  auto* c = ev.mutable_identity();
  c->set_dev(dev);
  c->set_dev_name(name);
  c->set_ok(true);
  c->mutable_identity()->set_wwid(kWa);
  c->mutable_identity()->set_serial(kVolA);
  return ev;
}

v1::Event flow(uint32_t pid, const std::string& comm, const std::string& uuid, const std::string& name) {
  v1::Event ev;
  auto* f = ev.mutable_flow();
  f->set_pid(pid);
  f->set_comm(comm);
  f->set_dev("254:0");
  f->set_dev_name("dm-0");
  f->set_op(v1::OP_READ);
  f->mutable_instance()->set_uuid(uuid);
  f->mutable_instance()->set_name(name);
  return ev;
}

// The live run: stamped by the pipeline (fixed clocks), recorded by a tap.
struct Live {
  explicit Live(const AgentOptions& config) : pipeline(Pipeline::Options{correlator_options(config), true}) {
    pipeline.set_clocks([this] { return 1'700'000'000'000ull + (t += 1); },
                        [this] { return 1'000'000'000ull + t * 1'000'000; });
    DispatchTargets d;
    d.alert = [this](const v1::Alert& a) { alerts.push_back(a); };
    dispatcher = std::make_unique<Dispatcher>(d);
  }
  void feed(v1::Event ev) {
    detect::Output out;
    pipeline.feed(std::move(ev), out);
    dispatcher->dispatch(out);
  }
  void kernel(v1::Event ev) {
    detect::Output out;
    pipeline.on_kernel_event(std::move(ev), out);
    dispatcher->dispatch(out);
  }
  uint64_t t = 0;
  Pipeline pipeline;
  std::unique_ptr<Dispatcher> dispatcher;
  std::vector<v1::Alert> alerts;
};

std::vector<std::string> shapes(const std::vector<v1::Alert>& alerts) {
  std::vector<std::string> out;
  for (const auto& a : alerts) out.push_back(a.SerializeAsString());
  return out;
}

// The scenario: A attached and verified; A's qemu, a host backup tool the
// operator allowed, dd on the host, and instance B all read A's volume.
std::vector<v1::Alert> live_run(const AgentOptions& config, const std::string& record_to) {
  Live live(config);
  auto rec = sinks::RecordWriter::open(record_to);
  EXPECT_TRUE(rec.ok());
  live.pipeline.add_tap([&](const v1::Event& ev) { rec.value()->write(ev); });
  live.feed(topology());
  live.feed(libvirt());
  live.feed(identity("8:0", "sda"));
  live.feed(identity("8:16", "sdb"));
  live.kernel(flow(452, "qemu-system-x86", kUuidA, "instance-0000000a"));
  live.kernel(flow(900, "backupd", "", ""));
  live.kernel(flow(902, "dd", "", ""));
  live.kernel(flow(777, "qemu-system-x86", kUuidB, "instance-0000000b"));
  rec.value().reset();  // flushed and closed
  return live.alerts;
}

std::vector<v1::Alert> replayed(const std::string& path, const AgentOptions& config, uint64_t* events = nullptr) {
  std::vector<v1::Alert> alerts;
  ReplaySinks sinks;
  sinks.alert = [&](const v1::Alert& a) { alerts.push_back(a); };
  auto r = replay_recording(path, correlator_options(config), sinks);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  if (events && r.ok()) *events = r.value();
  return alerts;
}

size_t count(const std::vector<v1::Alert>& alerts, v1::Rule rule, const std::string& comm = "") {
  size_t n = 0;
  for (const auto& a : alerts)
    if (a.rule() == rule && a.state() == v1::ALERT_FIRING && (comm.empty() || a.comm() == comm)) n++;
  return n;
}

TEST(AgentReplay, RecordingWithANonDefaultAllowlistReplaysToTheLiveAlerts) {
  testutil::TempDir dir;
  std::string path = dir.path() + "/run.lwrec";
  AgentOptions config;
  config.host_allowlist_extra = {"backupd"};
  config.hostname = "hv-lab-1";
  config.orphan_grace_s = 5;
  auto live = live_run(config, path);
  // The live verdicts: dd and B flagged, the allowed backup tool not.
  EXPECT_EQ(count(live, v1::HOST_PROCESS_ACCESS, "dd"), 1u);
  EXPECT_EQ(count(live, v1::HOST_PROCESS_ACCESS, "backupd"), 0u);
  EXPECT_EQ(count(live, v1::CROSS_INSTANCE_ACCESS), 1u);

  uint64_t events = 0;
  auto again = replayed(path, config, &events);
  EXPECT_EQ(events, 8u);
  EXPECT_EQ(shapes(again), shapes(live));  // same alerts, byte for byte (ids, times, hostname)

  // The check has teeth: judged with the defaults (as replay did before it
  // shared the agent's options), the backup tool is flagged.
  AgentOptions defaults;
  defaults.hostname = "hv-lab-1";
  auto with_defaults = replayed(path, defaults);
  EXPECT_EQ(count(with_defaults, v1::HOST_PROCESS_ACCESS, "backupd"), 1u);
  EXPECT_NE(shapes(with_defaults), shapes(live));
}

TEST(AgentReplay, EventsReplayKeepsTheRecordedStamps) {
  AgentOptions config;
  config.hostname = "hv";
  std::vector<v1::Event> events = {topology(), libvirt(), identity("8:0", "sda"), identity("8:16", "sdb"),
                                   flow(902, "dd", "", "")};
  uint64_t seq = 40;
  for (auto& e : events) {
    e.set_seq(++seq);
    e.set_ts_ns(seq * 1'000'000);
    e.set_unix_ms(static_cast<int64_t>(1'700'000'000'000 + seq));
  }
  std::vector<v1::Alert> alerts;
  ReplaySinks sinks;
  sinks.alert = [&](const v1::Alert& a) { alerts.push_back(a); };
  std::vector<uint64_t> seen;
  sinks.event = [&](const v1::Event& e) { seen.push_back(e.seq()); };
  EXPECT_EQ(replay_events(events, correlator_options(config), sinks), 1u);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].trigger().seq(), 45u);
  EXPECT_EQ(alerts[0].hostname(), "hv");
  EXPECT_EQ(seen, (std::vector<uint64_t>{41, 42, 43, 44, 45}));
}

TEST(AgentPipeline, StampsTapsThenCorrelatesInOrder) {
  AgentOptions config;
  Live live(config);
  std::vector<std::pair<uint64_t, uint64_t>> tapped;  // seq, events the correlator had seen then
  live.pipeline.add_tap([&](const v1::Event& ev) {
    tapped.push_back({ev.seq(), live.pipeline.correlator().events_seen()});
  });
  v1::Event pre = topology();
  pre.set_ts_ns(42);  // a stamp already there is kept
  live.feed(pre);
  live.kernel(flow(902, "dd", "", ""));
  ASSERT_EQ(tapped.size(), 2u);
  EXPECT_EQ(tapped[0], (std::pair<uint64_t, uint64_t>{1, 0}));
  EXPECT_EQ(tapped[1], (std::pair<uint64_t, uint64_t>{2, 1}));
  EXPECT_EQ(live.pipeline.correlator().events_seen(), 2u);
  EXPECT_EQ(live.pipeline.events(), 2u);
}

TEST(AgentOptions, CorrelatorOptionsComeFromTheConfig) {
  AgentOptions config;
  config.host_allowlist_extra = {"backupd", "zfs"};
  config.orphan_grace_s = 2.5;
  config.alert_quiet_s = 42;
  config.hostname = "hv9";
  auto co = correlator_options(config);
  detect::CorrelatorOptions defaults;
  EXPECT_EQ(co.host_allowlist.size(), defaults.host_allowlist.size() + 2);
  EXPECT_EQ(co.host_allowlist.back(), "zfs");
  EXPECT_EQ(co.orphan_grace_ns, 2'500'000'000ull);
  EXPECT_EQ(co.alert_quiet_ns, 42'000'000'000ull);
  EXPECT_EQ(co.hostname, "hv9");
  config.hostname.clear();
  EXPECT_FALSE(correlator_options(config).hostname.empty());  // this host's name
}

TEST(AgentDispatcher, CarriesOutEachKindOfRequest) {
  std::vector<std::string> log;
  DispatchTargets t;
  t.alert = [&](const v1::Alert& a) { log.push_back("alert " + a.id()); };
  t.alerts_changed = [&] { log.push_back("gauge"); };
  t.verify = [&](const detect::VerifyRequest& r, DevNum d) {
    log.push_back("verify " + r.name + " " + to_string(d));
    return r.name != "sdz";  // the verifier is busy with sdz
  };
  t.rearm = [&](const std::set<uint32_t>& devs) {
    for (uint32_t d : devs) log.push_back("rearm " + std::to_string(d));
  };
  t.bindings_changed = [&] { log.push_back("bindings"); };
  t.topology_stale = [&] { log.push_back("stale"); };
  Dispatcher d(t);
  detect::Output out;
  v1::Alert a;
  a.set_id("x1");
  out.alerts.push_back(a);
  out.verify = {{"sda", "8:0", v1::VERIFY_PERIODIC},
                {"", "8:16", v1::VERIFY_PERIODIC},
                {"sdb", "bad", v1::VERIFY_PERIODIC},
                {"sdz", "65:144", v1::VERIFY_PERIODIC}};
  out.rearm = {"8:16", "nonsense"};
  out.bindings_changed = true;
  out.topology_stale = true;
  d.dispatch(out);
  EXPECT_EQ(log, (std::vector<std::string>{"alert x1", "gauge", "verify sda 8:0", "verify sdz 65:144",
                                           "rearm " + std::to_string((8u << 20) | 16), "bindings", "stale"}));
  EXPECT_EQ(d.stats().alerts, 1u);
  EXPECT_EQ(d.stats().verify_submitted, 1u);
  EXPECT_EQ(d.stats().verify_dropped, 3u);

  Dispatcher replay_only(DispatchTargets{});  // no targets: nothing to call, nothing breaks
  replay_only.dispatch(out);
  EXPECT_EQ(replay_only.stats().alerts, 1u);
}

TEST(AgentTimers, RunInTableOrderAtTheirIntervalsAndCanBeBroughtForward) {
  using namespace std::chrono;
  Timers timers;
  std::vector<std::string> ran;
  auto t0 = Timers::Clock::time_point{} + hours(1);
  timers.add(
      "topology", seconds(30), [&] { ran.push_back("topology"); }, t0);
  timers.add(
      "metrics", seconds(2), [&] { ran.push_back("metrics"); }, t0, Timers::Clock::duration::zero());
  timers.add(
      "audit", hours(1), [&] { ran.push_back("audit"); }, t0, seconds(20));
  timers.run_due(t0);
  EXPECT_EQ(ran, (std::vector<std::string>{"metrics"}));
  ran.clear();
  timers.run_due(t0 + seconds(1));
  EXPECT_TRUE(ran.empty());
  timers.run_due(t0 + seconds(20));
  EXPECT_EQ(ran, (std::vector<std::string>{"metrics", "audit"}));
  ran.clear();
  // sysfs changed: topology within 100 ms of its last run, not before.
  timers.expedite("topology", milliseconds(100));
  timers.run_due(t0 + seconds(21));
  EXPECT_EQ(ran, (std::vector<std::string>{"topology"}));
  ran.clear();
  timers.expedite("topology", milliseconds(100));  // again, 50 ms after it ran: not yet
  timers.run_due(t0 + seconds(21) + milliseconds(50));
  EXPECT_TRUE(ran.empty());
  timers.run_due(t0 + seconds(21) + milliseconds(150));
  EXPECT_EQ(ran, (std::vector<std::string>{"topology"}));
  ran.clear();
  timers.run_due(t0 + seconds(30));  // topology's next run moved to 21.15 s + 30 s
  EXPECT_EQ(ran, (std::vector<std::string>{"metrics"}));
  ran.clear();
  timers.run_due(t0 + seconds(52));
  EXPECT_EQ(ran, (std::vector<std::string>{"topology", "metrics"}));
  EXPECT_EQ(timers.size(), 3u);
}

// The loop's time by kind of work (lunwatch_loop_work_seconds_total): each
// timer's runs are booked under its name, and a single run of slow_s or more
// is reported (the agent logs it).
TEST(AgentTimers, EachWorksTimeIsBookedAndASlowRunIsReported) {
  using namespace std::chrono;
  Timers timers;
  LoopWork work;
  std::vector<std::pair<std::string, double>> slow;
  work.on_slow = [&](const std::string& w, double s) { slow.emplace_back(w, s); };
  work.slow_s = 0.05;
  auto t0 = Timers::Clock::now();
  timers.add(
      "quick", seconds(1), [] {}, t0, Timers::Clock::duration::zero());
  timers.add(
      "sleepy", seconds(1), [] { std::this_thread::sleep_for(milliseconds(80)); }, t0, Timers::Clock::duration::zero());
  timers.run_due(t0, &work);
  timers.run_due(t0 + seconds(1), &work);
  work.run("kernel events", [] {});
  const auto& w = work.works();
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w.at("quick").runs, 2u);
  EXPECT_EQ(w.at("sleepy").runs, 2u);
  EXPECT_GE(w.at("sleepy").seconds, 0.16);  // it slept 80 ms twice: at least that
  EXPECT_GE(w.at("sleepy").longest_s, 0.08);
  EXPECT_EQ(w.at("kernel events").runs, 1u);
  // (a quick run may be reported too on a machine busy enough to stall it 50 ms)
  auto sleepy = std::count_if(slow.begin(), slow.end(), [](const auto& x) { return x.first == "sleepy"; });
  EXPECT_EQ(sleepy, 2) << "each run of 80 ms is at least slow_s (50 ms) and is reported";
  for (const auto& [name, sec] : slow)
    if (name == "sleepy") {
      EXPECT_GE(sec, 0.08);
    }
}

}  // namespace
}  // namespace lunwatch::agent
