// Capture dumps: the file format survives a round trip and every kind of
// damage is refused with a clear message; the flight recorder keeps a window
// plus the state that fell out of it, so a dump replays to the same alert.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "detect/correlator.h"
#include "sinks/dump.h"
#include "sinks/recorder.h"

using namespace lunwatch;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path p = fs::temp_directory_path() / ("lw-dump-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  TempDir() { fs::create_directories(p); }
  ~TempDir() { fs::remove_all(p); }
  static inline int n = 0;
};

v1::CaptureDump sample() {
  v1::CaptureDump d;
  d.set_format_version(sinks::kDumpVersion);
  d.set_reason("alert");
  d.mutable_trigger()->set_rule(v1::CROSS_INSTANCE_ACCESS);
  d.mutable_trigger()->set_id("CROSS_INSTANCE_ACCESS/x");
  d.set_trigger_seq(7);
  for (int i = 5; i < 10; ++i) {
    auto* e = d.add_events();
    e->set_seq(i);
    e->mutable_flow()->set_pid(100 + i);
  }
  d.mutable_host()->set_agent_version("0.1.0");
  return d;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}
void write_all(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

}  // namespace

TEST(Dump, RoundTripWithChecksumAndPrivateMode) {
  TempDir t;
  auto path = (t.p / "a.lwdump").string();
  auto w = sinks::write_dump(path, sample());
  ASSERT_TRUE(w.ok()) << w.error().message;
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all, fs::perms::owner_read | fs::perms::owner_write);
  sinks::DumpCheck check;
  auto d = sinks::read_dump(path, &check);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->events_size(), 5);
  EXPECT_TRUE(check.checksum_present);
  EXPECT_TRUE(check.checksum_ok);
  EXPECT_TRUE(check.problems.empty());
}

TEST(Dump, DamageIsRefusedWithAClearMessage) {
  TempDir t;
  auto path = (t.p / "a.lwdump").string();
  ASSERT_TRUE(sinks::write_dump(path, sample()).ok());
  std::string good = read_all(path);

  write_all(t.p / "trunc.lwdump", good.substr(0, good.size() - 10));
  auto r = sinks::read_dump((t.p / "trunc.lwdump").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTruncated);
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos);

  std::string badver = good;
  badver[sizeof(sinks::kDumpMagic) - 1] = 9;
  write_all(t.p / "ver.lwdump", badver);
  r = sinks::read_dump((t.p / "ver.lwdump").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("version 9"), std::string::npos) << r.error().message;

  write_all(t.p / "magic.lwdump", "LUNWATCH-RECORDING 1\nxxxxxxxxxxxxxxxxxxxx");
  r = sinks::read_dump((t.p / "magic.lwdump").string());
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a lunwatch capture dump"), std::string::npos);

  std::string corrupt = good;
  for (size_t i = sizeof(sinks::kDumpMagic) - 1 + 12; i < corrupt.size(); ++i) corrupt[i] = '\xff';
  write_all(t.p / "corrupt.lwdump", corrupt);
  r = sinks::read_dump((t.p / "corrupt.lwdump").string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kParse);

  // A flipped byte that still decodes: the checksum catches it.
  std::string flipped = good;
  flipped.back() ^= 0x01;
  write_all(path, flipped);
  sinks::DumpCheck check;
  auto f = sinks::read_dump(path, &check);
  if (f.ok()) {
    EXPECT_TRUE(check.checksum_present);
    EXPECT_FALSE(check.checksum_ok);
  }

  // Oversized: refused unread (sparse file).
  auto big = t.p / "big.lwdump";
  { std::ofstream o(big); }
  fs::resize_file(big, sinks::kDumpMaxBytes + 1);
  r = sinks::read_dump(big.string());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kInvalidArgument);
}

TEST(Dump, StructureProblemsAreReported) {
  TempDir t;
  auto d = sample();
  d.set_trigger_seq(42);  // not among the events
  std::swap(*d.mutable_events(0), *d.mutable_events(3));
  auto path = (t.p / "s.lwdump").string();
  ASSERT_TRUE(sinks::write_dump(path, d).ok());
  sinks::DumpCheck check;
  ASSERT_TRUE(sinks::read_dump(path, &check).ok());
  EXPECT_EQ(check.problems.size(), 2u);
}

TEST(Dump, RetentionKeepsTheNewest) {
  TempDir t;
  for (int i = 0; i < 5; ++i) {
    auto p = (t.p / ("d" + std::to_string(i) + ".lwdump")).string();
    ASSERT_TRUE(sinks::write_dump(p, sample()).ok());
    fs::last_write_time(p, fs::file_time_type::clock::now() - std::chrono::hours(10 - i));
  }
  EXPECT_EQ(sinks::enforce_retention(t.p.string(), 3, 1ull << 30), 2);
  EXPECT_FALSE(fs::exists(t.p / "d0.lwdump"));
  EXPECT_FALSE(fs::exists(t.p / "d0.lwdump.sha256"));
  EXPECT_TRUE(fs::exists(t.p / "d4.lwdump"));
  EXPECT_EQ(sinks::enforce_retention(t.p.string(), 10, 1), 3) << "the byte bound applies too";
}

TEST(Dump, UnwritableFolderIsAnErrorNotACrash) {
  auto w = sinks::write_dump("/proc/lunwatch-no/x.lwdump", sample());
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.error().code, Errc::kIo);
}

TEST(Recorder, WindowPlusBaselineReplaysToTheSameAlert) {
  sinks::FlightRecorder::Options o;
  o.keep_ms = 1000;
  sinks::FlightRecorder rec(o);
  detect::Correlator live;
  uint64_t seq = 0;
  int64_t t = 1'000'000;
  std::vector<v1::Alert> live_alerts;
  auto feed = [&](v1::Event ev, int64_t dt_ms) {
    t += dt_ms;
    ev.set_seq(++seq);
    ev.set_unix_ms(t);
    ev.set_ts_ns(static_cast<uint64_t>(t) * 1'000'000);
    rec.add(ev);
    detect::Output out;
    live.on_event(ev, out);
    for (auto& a : out.alerts) live_alerts.push_back(a);
  };
  // State set long before the window: a dm map over one path, an attachment of B, B's identity.
  v1::Event topo;
  auto* d = topo.mutable_topology()->add_devices();
  d->set_name("sda");
  d->set_dev("8:0");
  d->set_transport(v1::TRANSPORT_ISCSI);
  d->mutable_target()->set_iqn("iqn.x");
  d->mutable_target()->set_lun(1);
  feed(topo, 0);
  v1::Event inv;
  inv.mutable_inventory()->set_kind(v1::SOURCE_FILE);
  inv.mutable_inventory()->set_last_good_unix_ms(1);
  auto* a = inv.mutable_inventory()->add_attachments();
  a->set_source(v1::SOURCE_FILE);
  a->set_instance_uuid("uuid-b");
  a->set_volume_id("vol-b");
  a->set_status(v1::ATTACHMENT_ATTACHED);
  auto* tl = a->add_targets();
  tl->set_iqn("iqn.x");
  tl->set_lun(1);
  feed(inv, 0);
  v1::Event id;
  id.mutable_identity()->set_dev("8:0");
  id.mutable_identity()->set_dev_name("sda");
  id.mutable_identity()->set_ok(true);
  id.mutable_identity()->mutable_identity()->set_wwid("naa.b");
  feed(id, 0);
  // Much later (the state has left the window): A reads sda.
  for (int i = 0; i < 20; ++i) {
    v1::Event noise;
    noise.mutable_lifecycle()->set_kind(v1::LC_DM_PATH_FAIL);
    feed(noise, 500);
  }
  v1::Event flow;
  flow.mutable_flow()->set_pid(452);
  flow.mutable_flow()->set_dev("8:0");
  flow.mutable_flow()->mutable_instance()->set_uuid("uuid-a");
  flow.mutable_flow()->mutable_instance()->set_name("instance-a");
  feed(flow, 10);
  ASSERT_EQ(live_alerts.size(), 1u);
  EXPECT_EQ(live_alerts[0].rule(), v1::CROSS_INSTANCE_ACCESS);

  auto window = rec.window();
  ASSERT_LT(window.size(), 10u) << "old events must leave the window";
  detect::Correlator replay;
  std::vector<v1::Alert> again;
  auto base = rec.baseline();
  ASSERT_EQ(base.size(), 3u) << "topology, inventory and identity kept as baseline";
  for (const auto* part : {&base, &window})
    for (const auto& e : *part) {
      detect::Output out;
      replay.on_event(e, out);
      for (auto& x : out.alerts) again.push_back(x);
    }
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].id(), live_alerts[0].id());
}
