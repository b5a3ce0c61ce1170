// The correlator on event streams shaped like the lab's scenarios: the
// intentional CVE-2023-2088 case, benign churn, host processes, orphans,
// restarts with bound identities, and flows that arrive before any identity.
#include <gtest/gtest.h>

#include <algorithm>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include "detect/correlator.h"
#include "guard/dmqueue.h"
#include "guard/policy.h"

using namespace lunwatch;
using detect::Correlator;
using detect::Output;

namespace {

constexpr const char* kIqn = "iqn.2003-01.org.linux-iscsi.lab:shared";
constexpr const char* kWa = "naa.6001405aa1a1a1a11000400080000000";
constexpr const char* kWb = "naa.6001405bb2b2b2b21000400080000000";
constexpr const char* kVolA = "a1a1a1a1-0000-4000-8000-00000000000a";
constexpr const char* kVolB = "b2b2b2b2-0000-4000-8000-00000000000b";
constexpr const char* kUuidA = "11111111-1111-4111-8111-111111111111";
constexpr const char* kUuidB = "22222222-2222-4222-8222-222222222222";

class Stream {
 public:
  explicit Stream(detect::CorrelatorOptions o = {}) : c_(std::move(o)) {}

  Output feed(v1::Event ev) {
    ts_ += 1'000'000;  // 1 ms apart
    ev.set_ts_ns(ts_);
    ev.set_unix_ms(1'700'000'000'000 + static_cast<int64_t>(ts_ / 1'000'000));
    Output out;
    c_.on_event(ev, out);
    for (const auto& a : out.alerts) alerts_.push_back(a);
    return out;
  }
  void advance(uint64_t ns) { ts_ += ns; }
  uint64_t last_ts() const { return ts_; }  // the ts_ns of the last event fed

  static v1::ScsiDevice sd(const std::string& name, const std::string& dev, uint32_t host, int session,
                           const std::string& portal, const std::string& cached) {
    v1::ScsiDevice s;
    s.set_name(name);
    s.set_dev(dev);
    s.mutable_addr()->set_host(host);
    s.mutable_addr()->set_lun(1);
    s.mutable_addr()->set_hctl(std::to_string(host) + ":0:0:1");
    s.set_state("running");
    s.set_transport(v1::TRANSPORT_ISCSI);
    s.set_session(session);
    s.mutable_target()->set_iqn(kIqn);
    s.mutable_target()->set_portal(portal);
    s.mutable_target()->set_lun(1);
    s.mutable_cached()->set_wwid(cached);
    s.add_holders("dm-0");
    return s;
  }

  // dm-0 (254:0) over sda and sdb
  static void add_map(v1::Topology* t, const std::string& map_wwid) {
    auto* m = t->add_maps();
    m->set_dm("dm-0");
    m->set_dev("254:0");
    m->set_wwid(map_wwid);
    m->add_paths("sda");
    m->add_paths("sdb");
  }

  Output topology(bool with_map = true, const std::string& map_wwid = kWa) {
    v1::Event ev;
    auto* t = ev.mutable_topology();
    *t->add_devices() = sd("sda", "8:0", 0, 1, "127.0.0.1:3260", kWa);
    *t->add_devices() = sd("sdb", "8:16", 1, 2, "127.0.0.2:3260", kWa);
    if (with_map) add_map(t, map_wwid);
    return feed(ev);
  }

  Output identity(const std::string& dev, const std::string& name, const std::string& wwid, const std::string& serial) {
    v1::Event ev;
    auto* c = ev.mutable_identity();
    c->set_dev(dev);
    c->set_dev_name(name);
    c->set_ok(true);
    c->mutable_identity()->set_wwid(wwid);
    c->mutable_identity()->set_serial(serial);
    return feed(ev);
  }
  void identity_both(const std::string& wwid, const std::string& serial) {
    identity("8:0", "sda", wwid, serial);
    identity("8:16", "sdb", wwid, serial);
  }

  static v1::Attachment libvirt_att(const std::string& uuid, const std::string& name, const std::string& vol) {
    v1::Attachment a;
    a.set_source(v1::SOURCE_LIBVIRT);
    a.set_instance_uuid(uuid);
    a.set_instance_name(name);
    a.set_volume_id(vol);
    a.set_status(v1::ATTACHMENT_ATTACHED);
    a.set_device_path("/dev/dm-0");
    a.set_resolved_dev("254:0");
    return a;
  }
  static v1::Attachment cinder_att(const std::string& uuid, const std::string& vol, v1::AttachmentStatus st,
                                   const std::string& id) {
    v1::Attachment a;
    a.set_source(v1::SOURCE_FILE);
    a.set_instance_uuid(uuid);
    a.set_volume_id(vol);
    a.set_attachment_id(id);
    a.set_status(st);
    a.set_transport(v1::TRANSPORT_ISCSI);
    for (const char* p : {"127.0.0.1:3260", "127.0.0.2:3260"}) {
      auto* t = a.add_targets();
      t->set_iqn(kIqn);
      t->set_portal(p);
      t->set_lun(1);
    }
    return a;
  }

  static v1::Instance domain(const std::string& uuid, const std::string& name, uint32_t pid = 0) {
    v1::Instance i;
    i.set_uuid(uuid);
    i.set_name(name);
    i.set_pid(pid);
    return i;
  }
  // libvirt's view: these disks, and the domains (by default one per disk's
  // instance; given, they may list a domain with no disk, or its pid).
  Output libvirt(const std::vector<v1::Attachment>& atts, const std::vector<v1::Instance>& domains = {}) {
    v1::Event ev;
    auto* s = ev.mutable_inventory();
    s->set_kind(v1::SOURCE_LIBVIRT);
    s->set_last_good_unix_ms(1);
    for (const auto& a : atts) *s->add_attachments() = a;
    if (domains.empty())
      for (const auto& a : atts) *s->add_instances() = domain(a.instance_uuid(), a.instance_name());
    for (const auto& d : domains) *s->add_instances() = d;
    return feed(ev);
  }
  Output cinder(const std::vector<v1::Attachment>& atts) {
    v1::Event ev;
    auto* s = ev.mutable_inventory();
    s->set_kind(v1::SOURCE_FILE);
    s->set_last_good_unix_ms(1);
    for (const auto& a : atts) *s->add_attachments() = a;
    return feed(ev);
  }

  Output flow(uint32_t pid, const std::string& comm, const std::string& uuid, const std::string& name,
              const std::string& dev = "254:0") {
    v1::Event ev;
    auto* f = ev.mutable_flow();
    f->set_pid(pid);
    f->set_comm(comm);
    f->set_dev(dev);
    f->set_dev_name(dev == "254:0" ? "dm-0" : "");
    f->set_op(v1::OP_READ);
    f->mutable_instance()->set_uuid(uuid);
    f->mutable_instance()->set_name(name);
    return feed(ev);
  }

  Output scan(uint32_t host) {
    v1::Event ev;
    auto* l = ev.mutable_lifecycle();
    l->set_kind(v1::LC_SCSI_HOST_SCAN);
    l->mutable_addr()->set_host(host);
    l->mutable_addr()->set_channel(0xffffffffu);
    l->mutable_addr()->set_target(0xffffffffu);
    l->mutable_addr()->set_lun(1);
    return feed(ev);
  }

  std::vector<v1::Alert> firing(v1::Rule r) const {
    std::vector<v1::Alert> out;
    for (const auto& a : alerts_)
      if (a.rule() == r && a.state() == v1::ALERT_FIRING) out.push_back(a);
    return out;
  }
  int above_warning() const {
    return static_cast<int>(std::count_if(alerts_.begin(), alerts_.end(), [](const v1::Alert& a) {
      return a.state() == v1::ALERT_FIRING && a.severity() > v1::SEVERITY_WARNING;
    }));
  }
  Correlator& c() { return c_; }
  const std::vector<v1::Alert>& alerts() const { return alerts_; }

 private:
  Correlator c_;
  uint64_t ts_ = 1'000'000'000;
  std::vector<v1::Alert> alerts_;
};

// A attached to volA over two paths, verified and bound, doing I/O.
void attach_a(Stream& s) {
  s.topology();
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)});
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  s.identity_both(kWa, kVolA);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
}

}  // namespace

TEST(Correlator, BindsAnAttachmentOnFirstVerification) {
  Stream s;
  attach_a(s);
  const auto* b = s.c().bindings().find(kUuidA, kVolA);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->wwid(), kWa);
  EXPECT_TRUE(s.alerts().empty()) << s.alerts().front().summary();
}

TEST(Correlator, IntentionalCaseRaisesIdentityChangedThenCrossInstanceAccess) {
  Stream s;
  attach_a(s);
  // The attachment is deleted in Cinder only; volB is mapped at LUN 1 for B.
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  ASSERT_EQ(s.firing(v1::ATTACHMENT_DIVERGENCE).size(), 1u) << "libvirt still has A on volA";
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA),
             Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  auto out = s.scan(0);
  ASSERT_FALSE(out.verify.empty()) << "a LUN scan must trigger verification";
  EXPECT_EQ(out.verify[0].reason, v1::VERIFY_SCAN);

  // The same sd devices now answer as volB.
  s.identity("8:0", "sda", kWb, kVolB);
  auto last = s.identity("8:16", "sdb", kWb, kVolB);
  EXPECT_TRUE(std::find(last.rearm.begin(), last.rearm.end(), "254:0") != last.rearm.end())
      << "dm-0's kernel flows must be re-armed so A's next I/O is seen";
  auto changed = s.firing(v1::IDENTITY_CHANGED);
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(changed[0].instance().name(), "instance-0000000a");
  EXPECT_EQ(changed[0].volume_id(), kVolA);
  EXPECT_EQ(changed[0].expected_wwid(), kWa);
  EXPECT_EQ(changed[0].verified_wwid(), kWb);
  EXPECT_EQ(changed[0].cached_wwid(), kWa) << "sysfs still shows volA";
  EXPECT_EQ(changed[0].severity(), v1::SEVERITY_CRITICAL);
  EXPECT_EQ(changed[0].owner_volume_id(), kVolB);
  ASSERT_EQ(s.firing(v1::MULTIPATH_WWID_MISMATCH).size(), 2u) << "both paths differ from the map's WWID";
  ASSERT_NE(s.c().bindings().find(kUuidB, kVolB), nullptr);
  EXPECT_EQ(s.c().bindings().find(kUuidB, kVolB)->wwid(), kWb);

  // A's next read (a new kernel flow after the re-arm).
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u);
  const auto& a = cross[0];
  EXPECT_EQ(a.instance().name(), "instance-0000000a");
  EXPECT_EQ(a.pid(), 452u);
  EXPECT_EQ(a.owner().name(), "instance-0000000b");
  EXPECT_EQ(a.owner_volume_id(), kVolB);
  EXPECT_EQ(a.volume_id(), kVolA);
  EXPECT_EQ(a.device_name(), "dm-0");
  ASSERT_EQ(a.paths_size(), 2);
  EXPECT_EQ(a.paths(0).addr().hctl(), "0:0:0:1");
  EXPECT_EQ(a.paths(0).target().iqn(), kIqn);
  EXPECT_EQ(a.paths(0).target().lun(), 1u);
  EXPECT_EQ(a.paths(0).cached_wwid(), kWa);
  EXPECT_EQ(a.paths(0).verified_wwid(), kWb);
  EXPECT_TRUE(a.trigger().has_flow());
  EXPECT_EQ(s.firing(v1::STALE_ATTACHMENT_IO).size(), 1u);

  // B reading its own volume is fine; repeats fold into the same alert.
  size_t before = s.alerts().size();
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  EXPECT_EQ(s.alerts().size(), before);
  // divergence, identity changed, 2 path mismatches, cross-instance, stale attachment
  ASSERT_EQ(s.c().active_alerts().size(), 6u);
}

TEST(Correlator, BenignChurnRaisesNothingAboveWarning) {
  Stream s;
  attach_a(s);
  // Clean detach: map flushed, devices deleted, Cinder and libvirt updated.
  v1::Event gone;
  gone.mutable_topology();
  s.feed(gone);
  s.libvirt({});
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DETACHED, "att-a")});
  // Re-attach of another volume at the same LUN for B: new devices, new map.
  s.cinder({Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.libvirt({Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  s.topology(true, kWb);
  s.identity_both(kWb, kVolB);
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  // Connection drop and recovery without a remap: same identity again.
  s.identity_both(kWb, kVolB);
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  EXPECT_EQ(s.above_warning(), 0);
  for (const auto& a : s.alerts()) ADD_FAILURE() << "unexpected: " << a.summary();
}

TEST(Correlator, FlowBeforeIdentityIsJudgedWhenTheAnswerArrives) {
  Stream s;
  s.topology();
  s.libvirt({Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  s.cinder({Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  // A (no attachment at all) reads dm-0 before lunwatch has verified it.
  auto out = s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  ASSERT_EQ(out.verify.size(), 2u);
  EXPECT_EQ(out.verify[0].reason, v1::VERIFY_NEW_FLOW);
  EXPECT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty());
  s.identity_both(kWb, kVolB);
  ASSERT_EQ(s.firing(v1::CROSS_INSTANCE_ACCESS).size(), 1u);
}

TEST(Correlator, SerialNamesTheOwnerBeforeAnyBinding) {
  Stream s;
  s.topology(true, kWb);
  s.cinder({Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.identity_both(kWb, kVolB);  // binds B by target match too
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u);
  EXPECT_EQ(cross[0].owner().uuid(), kUuidB);
}

TEST(Correlator, RestartWithBoundIdentitiesCatchesTheChange) {
  Stream s;
  v1::Event b;
  auto* bb = b.mutable_bindings()->add_bindings();
  bb->set_instance_uuid(kUuidA);
  bb->set_instance_name("instance-0000000a");
  bb->set_volume_id(kVolA);
  bb->set_wwid(kWa);
  s.feed(b);
  s.topology();
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)});
  s.identity_both(kWb, kVolB);  // first verification after the restart
  ASSERT_EQ(s.firing(v1::IDENTITY_CHANGED).size(), 1u);
}

TEST(Correlator, IdentityBackToExpectedResolvesTheAlert) {
  Stream s;
  attach_a(s);
  s.identity_both(kWb, kVolB);
  ASSERT_EQ(s.firing(v1::IDENTITY_CHANGED).size(), 1u);
  s.identity_both(kWa, kVolA);
  auto resolved = std::count_if(s.alerts().begin(), s.alerts().end(), [](const v1::Alert& a) {
    return a.rule() == v1::IDENTITY_CHANGED && a.state() == v1::ALERT_RESOLVED;
  });
  EXPECT_EQ(resolved, 1);
  for (const auto& a : s.c().active_alerts()) EXPECT_NE(a.rule(), v1::IDENTITY_CHANGED);
}

TEST(Correlator, HostProcessAccessHonoursTheAllowlist) {
  Stream s;
  attach_a(s);
  s.flow(900, "multipathd", "", "");
  s.flow(901, "kworker/u4:1", "", "");
  EXPECT_TRUE(s.firing(v1::HOST_PROCESS_ACCESS).empty());
  s.flow(902, "dd", "", "");
  auto h = s.firing(v1::HOST_PROCESS_ACCESS);
  ASSERT_EQ(h.size(), 1u);
  EXPECT_EQ(h[0].comm(), "dd");
  EXPECT_EQ(h[0].severity(), v1::SEVERITY_WARNING);
  // Not a volume device: a local disk.
  s.flow(903, "dd", "", "", "259:0");
  EXPECT_EQ(s.firing(v1::HOST_PROCESS_ACCESS).size(), 1u);
}

TEST(Correlator, OrphanDeviceAfterGraceThenResolvedWhenExplained) {
  detect::CorrelatorOptions o;
  o.orphan_grace_ns = 5'000'000'000ULL;
  Stream s(o);
  s.cinder({});  // a source that has data: no attachments at all
  s.topology();
  EXPECT_TRUE(s.firing(v1::ORPHAN_DEVICE).empty()) << "within the grace period";
  s.advance(6'000'000'000ULL);
  s.topology();
  auto orphans = s.firing(v1::ORPHAN_DEVICE);
  ASSERT_EQ(orphans.size(), 3u) << "sda, sdb and dm-0";
  // The trigger is the topology refresh, named without its device list (each
  // alert would otherwise carry the whole snapshot: 136 KB a line at 256 LUNs).
  EXPECT_TRUE(orphans[0].trigger().has_topology());
  EXPECT_EQ(orphans[0].trigger().topology().devices_size(), 0);
  EXPECT_EQ(orphans[0].trigger().topology().maps_size(), 0);
  EXPECT_GT(orphans[0].trigger().ts_ns(), 0u);
  // Still orphans on later refreshes: counted, not raised again.
  s.advance(1'000'000'000ULL);
  s.topology();
  EXPECT_EQ(s.firing(v1::ORPHAN_DEVICE).size(), 3u);
  for (const auto& a : s.c().active_alerts())
    if (a.rule() == v1::ORPHAN_DEVICE) {
      EXPECT_EQ(a.count(), 2u) << a.id();
    }
  s.cinder({Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  ASSERT_FALSE(s.alerts().empty());
  EXPECT_TRUE(s.alerts().back().trigger().has_inventory()) << "resolved by the record that explains them";
  EXPECT_EQ(s.alerts().back().trigger().inventory().attachments_size(), 0) << "named without its records";
  EXPECT_TRUE(s.c().orphans().empty());
  EXPECT_TRUE(s.c().active_alerts().empty());
}

TEST(Correlator, NoInventoryMeansNoOrphanVerdicts) {
  Stream s;
  s.topology();
  s.advance(120'000'000'000ULL);
  s.topology();
  EXPECT_TRUE(s.firing(v1::ORPHAN_DEVICE).empty());
}

TEST(Correlator, LifecycleEventsAskForVerification) {
  Stream s;
  attach_a(s);
  v1::Event ev;
  ev.mutable_lifecycle()->set_kind(v1::LC_DM_PATH_REINSTATE);
  ev.mutable_lifecycle()->set_dev("254:0");
  ev.mutable_lifecycle()->set_path("8:16");
  auto out = s.feed(ev);
  ASSERT_EQ(out.verify.size(), 1u);
  EXPECT_EQ(out.verify[0].name, "sdb");
  EXPECT_EQ(out.verify[0].reason, v1::VERIFY_PATH_REINSTATE);

  v1::Event ua;
  auto* e = ua.mutable_scsi_error();
  e->set_dev("8:0");
  e->mutable_sense()->set_key(6);
  e->mutable_sense()->set_asc(0x3f);
  e->mutable_sense()->set_ascq(0x0e);
  out = s.feed(ua);
  ASSERT_EQ(out.verify.size(), 1u);
  EXPECT_EQ(out.verify[0].reason, v1::VERIFY_UNIT_ATTENTION);

  out = s.scan(7);  // another host: nothing of ours
  EXPECT_TRUE(out.verify.empty());
}

// Found in the lab (accidental): the portal-2 logout deleted sdb, but the
// stale map's table (and its slaves/ folder) still names it. The map's
// identity must come from the paths that exist, or A's flow is never judged.
TEST(Correlator, APathDeletedUnderTheMapDoesNotHoldTheVerdict) {
  Stream s;
  attach_a(s);
  v1::Event gone;
  auto* t = gone.mutable_topology();
  *t->add_devices() = Stream::sd("sda", "8:0", 0, 1, "127.0.0.1:3260", kWa);
  auto* m = t->add_maps();
  m->set_dm("dm-0");
  m->set_dev("254:0");
  m->set_wwid(kWa);
  m->add_paths("sda");
  m->add_paths("sdb");  // deleted, still in the table
  s.feed(gone);
  v1::Event late;  // a verification asked before the delete answers after it
  late.mutable_identity()->set_dev("8:16");
  late.mutable_identity()->set_dev_name("sdb");
  late.mutable_identity()->set_error("No such device or address");
  s.feed(late);
  s.feed(gone);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.identity("8:0", "sda", kWb, kVolB);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  ASSERT_EQ(s.firing(v1::CROSS_INSTANCE_ACCESS).size(), 1u);
  EXPECT_EQ(s.firing(v1::CROSS_INSTANCE_ACCESS)[0].owner_volume_id(), kVolB);
}

TEST(GuardPolicy, OwnerFollowsTheVerifiedIdentity) {
  Stream s;
  attach_a(s);  // A (pid 452) holds dm-0, bound to volA
  auto p = guard::compute_policy(s.c());
  ASSERT_EQ(p.devices.size(), 1u);
  const auto& dm = p.devices.begin()->second;
  EXPECT_EQ(dm.kdev, (254u << 20) | 0u);
  ASSERT_EQ(dm.owners.size(), 1u);
  EXPECT_EQ(dm.owners[0], 452u);
  ASSERT_EQ(dm.paths.size(), 2u);
  EXPECT_EQ(dm.paths[0].lun, 1u);
  EXPECT_TRUE(p.instance_tgids.count(452));

  // The remap: B holds dm-0 too, and the paths now answer as volB.
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA),
             Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  s.identity_both(kWb, kVolB);
  p = guard::compute_policy(s.c());
  const auto& after = p.devices.begin()->second;
  ASSERT_EQ(after.owners.size(), 1u) << after.reason;
  EXPECT_EQ(after.owners[0], 1022u) << "only B may touch volB; A is refused";
}

// Found in the lab (accidental-guard): Nova detached the disk from A's domain
// before os-brick's disconnect failed, so libvirt lists A with no disk while
// A's qemu still holds the stale map. A must stay under the guard.
TEST(GuardPolicy, AnInstanceListedWithoutDisksIsStillGuarded) {
  Stream s;
  attach_a(s);
  // In the lab's order: Cinder's records, the scan's re-verification, then
  // B's domain and its first I/O.
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.identity_both(kWb, kVolB);
  s.libvirt({Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)},
            {Stream::domain(kUuidA, "instance-0000000a"),  // A: listed, its disk gone from the XML
             Stream::domain(kUuidB, "instance-0000000b")});
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  auto p = guard::compute_policy(s.c());
  EXPECT_TRUE(p.instance_tgids.count(452)) << "A's qemu left the guard's reach when its disk left the XML";
  EXPECT_TRUE(p.instance_tgids.count(1022));
  ASSERT_EQ(p.devices.size(), 1u);
  const auto& dm = p.devices.begin()->second;
  ASSERT_EQ(dm.owners.size(), 1u) << dm.reason;
  EXPECT_EQ(dm.owners[0], 1022u);
}

// A qemu that has done no I/O yet (just started, or restarted under a new
// pid) is known by the pid in its domain's status XML: under the guard, and
// an owner, from its first open.
TEST(GuardPolicy, InstancePidsComeFromLibvirtBeforeAnyIo) {
  Stream s;
  s.topology();
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  s.identity_both(kWa, kVolA);
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)},
            {Stream::domain(kUuidA, "instance-0000000a", 4242),  // <domstatus pid=...>, no flow of it yet
             Stream::domain(kUuidB, "instance-0000000b", 4343)});
  auto p = guard::compute_policy(s.c());
  EXPECT_TRUE(p.instance_tgids.count(4242));
  EXPECT_TRUE(p.instance_tgids.count(4343)) << "B holds nothing yet but must be refused A's volume";
  ASSERT_EQ(p.devices.size(), 1u);
  const auto& dm = p.devices.begin()->second;
  ASSERT_EQ(dm.owners.size(), 1u) << dm.reason;
  EXPECT_EQ(dm.owners[0], 4242u);
}

// Every process in an instance's scope counts as the instance: its helpers,
// and a restarted qemu before its pid is known.
TEST(GuardPolicy, InstanceScopesAreKeyedByCgroupId) {
  Stream s;
  attach_a(s);  // A: pid 452
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA),
             Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  std::map<uint32_t, uint64_t> scopes{{452, 7001}, {1022, 7002}};
  auto p = guard::compute_policy(s.c(), [&](uint32_t pid) { return scopes.count(pid) ? scopes[pid] : 0; });
  EXPECT_EQ(p.instance_cgroups, (std::set<uint64_t>{7001, 7002}));
  ASSERT_EQ(p.devices.size(), 1u);
  const auto& dm = p.devices.begin()->second;
  ASSERT_EQ(dm.owner_cgroups, std::vector<uint64_t>{7001}) << dm.reason;
  auto k = guard::to_kernel(dm, 1);
  ASSERT_EQ(k.n_owner_cgroups, 1u);
  EXPECT_EQ(k.owner_cgroups[0], 7001u);
  // No resolver (or a qemu outside any instance scope): tgids only.
  EXPECT_TRUE(guard::compute_policy(s.c()).instance_cgroups.empty());
}

TEST(GuardPolicy, UnverifiedDevicesAreLeftToTheKernel) {
  Stream s;
  s.topology();
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)});
  EXPECT_TRUE(guard::compute_policy(s.c()).devices.empty());
}

TEST(Correlator, OnePathReinstatedOntoTheRemappedLunIsEnough) {
  Stream s;
  attach_a(s);
  // B's record exists before the LUN is mapped (Cinder creates it first).
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHING, "att-b")});
  // multipathd reinstates sdb alone: it now answers as volB, sda is still down.
  auto out = s.identity("8:16", "sdb", kWb, kVolB);
  EXPECT_EQ(s.firing(v1::IDENTITY_CHANGED).size(), 1u);
  EXPECT_FALSE(s.firing(v1::MULTIPATH_WWID_MISMATCH).empty());
  EXPECT_TRUE(std::find(out.rearm.begin(), out.rearm.end(), "254:0") != out.rearm.end());
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u) << "A's I/O may go through sdb: volB";
  EXPECT_EQ(cross[0].owner_volume_id(), kVolB);
}

namespace {
v1::Event failed_identity(const std::string& dev, const std::string& name) {
  v1::Event ev;
  auto* c = ev.mutable_identity();
  c->set_dev(dev);
  c->set_dev_name(name);
  c->set_ok(false);
  c->set_error("INQUIRY VPD 0x83: status 0x2 sense key 0x5 asc 0x25");
  return ev;
}
v1::Event path_event(v1::LifecycleKind kind, const std::string& path) {
  v1::Event ev;
  auto* l = ev.mutable_lifecycle();
  l->set_kind(kind);
  l->set_dev("254:0");
  l->set_path(path);
  return ev;
}
}  // namespace

// Issue 12 point 8: a failed re-check is not a pass.
TEST(GuardPolicy, AFailedReCheckClosesTheDeviceUntilItAnswers) {
  Stream s;
  attach_a(s);  // verified, A owns dm-0
  ASSERT_EQ(guard::compute_policy(s.c()).devices.begin()->second.state, static_cast<uint32_t>(LW_GUARD_VERIFIED));
  s.feed(failed_identity("8:16", "sdb"));
  auto id = s.c().device_identity("254:0");
  EXPECT_FALSE(id.complete) << "the previous identity must not stand in for a failed check";
  ASSERT_EQ(id.unknown.size(), 1u);
  EXPECT_EQ(id.unknown[0], "8:16");
  auto p = guard::compute_policy(s.c());
  ASSERT_EQ(p.devices.size(), 1u);
  const auto& dm = p.devices.begin()->second;
  EXPECT_EQ(dm.state, static_cast<uint32_t>(LW_GUARD_UNVERIFIED)) << dm.reason;
  EXPECT_TRUE(dm.owners.empty());
  EXPECT_EQ(dm.closed_paths, 2u) << "only sdb (paths[1]) must answer before it re-opens";
  EXPECT_EQ(guard::to_kernel(dm, 1).closed_paths, 2u);
  // dm fails the path: it carries no I/O, sda's identity stands.
  s.feed(path_event(v1::LC_DM_PATH_FAIL, "8:16"));
  EXPECT_TRUE(s.c().device_identity("254:0").complete);
  // reinstated: unknown again until it answers
  s.feed(path_event(v1::LC_DM_PATH_REINSTATE, "8:16"));
  EXPECT_FALSE(s.c().device_identity("254:0").complete);
  s.identity("8:16", "sdb", kWa, kVolA);
  EXPECT_TRUE(s.c().device_identity("254:0").complete);
  const auto& again = guard::compute_policy(s.c()).devices.begin()->second;
  EXPECT_EQ(again.state, static_cast<uint32_t>(LW_GUARD_VERIFIED));
  ASSERT_EQ(again.owners.size(), 1u);
}

TEST(Correlator, AFlowWaitingOnAFailedCheckIsJudgedWhenItAnswersLate) {
  Stream s;
  s.topology();
  s.libvirt({Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  s.cinder({Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  s.feed(failed_identity("8:0", "sda"));
  s.feed(failed_identity("8:16", "sdb"));
  s.advance(60'000'000'000ULL);  // the LUN answers only a minute later
  EXPECT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty());
  s.identity_both(kWb, kVolB);
  EXPECT_EQ(s.firing(v1::CROSS_INSTANCE_ACCESS).size(), 1u) << "the waiting flow was dropped unjudged";
}

TEST(Correlator, ALunGoneErrorMakesTheIdentityUnknownAndAsksAgain) {
  Stream s;
  attach_a(s);
  v1::Event ev;
  auto* e = ev.mutable_scsi_error();
  e->set_dev("8:0");
  e->set_dev_name("sda");
  e->mutable_sense()->set_key(5);
  e->mutable_sense()->set_asc(0x25);
  auto out = s.feed(ev);
  ASSERT_EQ(out.verify.size(), 1u);
  EXPECT_EQ(out.verify[0].dev, "8:0");
  EXPECT_FALSE(s.c().device_identity("254:0").complete);
}

// Issue 12 point 9: I/O queued in dm while a map's identity is in doubt fails.
TEST(QueueHold, AQueueingMapIsSwitchedToFailWhileInDoubtAndRestoredOnceVerified) {
  namespace fs = std::filesystem;
  auto root = fs::temp_directory_path() / ("lw-dmq-" + std::to_string(::getpid()));
  fs::create_directories(root / "dev/block/254:0/dm");
  fs::create_directories(root / "dev/block/254:1/dm");
  std::ofstream(root / "dev/block/254:0/dm/name") << "3600140aa\n";
  std::ofstream(root / "dev/block/254:1/dm/name") << "3600140bb\n";
  std::vector<std::string> calls;
  bool queue0 = true;  // map 0 queues (queue_if_no_path), map 1 does not
  guard::QueueHold::Options o;
  o.state_file = (root / "held").string();
  o.sysfs_root = root.string();
  o.dmsetup = [&](const std::vector<std::string>& a) -> Result<std::string> {
    std::string line;
    for (const auto& x : a) line += (line.empty() ? "" : " ") + x;
    calls.push_back(line);
    if (a[0] == "table")
      return std::string("0 131072 multipath ") + (a[1] == "3600140aa" && queue0 ? "1 queue_if_no_path" : "0") +
             " 0 1 1 service-time 0 2 1 8:0 1 8:16 1\n";
    if (a[0] == "message" && a[1] == "3600140aa") queue0 = a[3] == "queue_if_no_path";
    return std::string();
  };
  {
    guard::QueueHold h(o);
    h.sync({"254:0", "254:1"});
    EXPECT_FALSE(queue0) << "the queueing map must fail queued I/O while in doubt";
    EXPECT_EQ(h.held(), std::set<std::string>{"3600140aa"}) << "a map that does not queue is left alone";
    size_t n = calls.size();
    h.sync({"254:0"});
    EXPECT_EQ(calls.size(), n) << "already switched: nothing to do";
  }
  // a restarted agent remembers what it switched, and restores it once verified
  guard::QueueHold h2(o);
  EXPECT_EQ(h2.held(), std::set<std::string>{"3600140aa"});
  h2.sync({});
  EXPECT_TRUE(queue0) << "the operator's queue_if_no_path is restored";
  EXPECT_TRUE(h2.held().empty());
  EXPECT_EQ(calls.back(), "message 3600140aa 0 queue_if_no_path");
  fs::remove_all(root);
}

TEST(QueueHold, AMapIsInDoubtWhenClosedOrAPathIsUnknown) {
  Stream s;
  attach_a(s);
  std::map<uint32_t, lw_guard_dev> kernel;
  lw_guard_dev g{};
  g.state = LW_GUARD_VERIFIED;
  kernel[(254u << 20) | 0u] = g;
  EXPECT_TRUE(guard::maps_in_doubt(s.c(), kernel).empty());
  s.feed(failed_identity("8:0", "sda"));
  s.feed(path_event(v1::LC_DM_PATH_FAIL, "8:0"));  // failed paths count here: queued I/O waits on them
  EXPECT_EQ(guard::maps_in_doubt(s.c(), kernel), std::set<std::string>{"254:0"});
  s.identity("8:0", "sda", kWa, kVolA);
  EXPECT_TRUE(guard::maps_in_doubt(s.c(), kernel).empty());
  kernel[(254u << 20) | 0u].state = LW_GUARD_UNVERIFIED;  // closed by the kernel (a scan)
  EXPECT_EQ(guard::maps_in_doubt(s.c(), kernel), std::set<std::string>{"254:0"});
}

// Issue 12 point 2: a flow is judged again whenever what decides it changes.
namespace {
constexpr const char* kSerA = "LIO-ARRAY-0000A";  // array serials that are not Cinder volume ids
constexpr const char* kSerB = "LIO-ARRAY-0000B";

// A on dm-0 (serial not a volume id), bound to kWa, doing I/O.
void attach_a_array_serial(Stream& s) {
  s.topology();
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)},
            {Stream::domain(kUuidA, "instance-0000000a", 452), Stream::domain(kUuidB, "instance-0000000b", 1022)});
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  s.identity_both(kWa, kSerA);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
}
}  // namespace

TEST(Correlator, AnOwnerRecordArrivingAfterTheLeakedReadJudgesTheLiveFlowAgain) {
  Stream s;
  attach_a_array_serial(s);
  ASSERT_NE(s.c().bindings().find(kUuidA, kVolA), nullptr);
  // The LUN is remapped to B's volume; Cinder knows nothing of B yet.
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  s.scan(0);
  s.identity("8:0", "sda", kWb, kSerB);
  auto out = s.identity("8:16", "sdb", kWb, kSerB);
  EXPECT_TRUE(std::find(out.rearm.begin(), out.rearm.end(), "254:0") != out.rearm.end());
  EXPECT_EQ(s.firing(v1::IDENTITY_CHANGED).size(), 1u);
  EXPECT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty()) << "the pre-remap flow is no evidence of the leak";
  // A's read of B's volume (a new kernel flow after the re-arm): no owner known.
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  ASSERT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty()) << "no owner of kWb known yet";
  // Same inventory again: nothing changes, nothing fires.
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  ASSERT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty());
  // B's Cinder record arrives: B is bound to kWb, and A's live flow is judged
  // again without any new kernel flow.
  auto rec = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
                       Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  ASSERT_NE(s.c().bindings().find(kUuidB, kVolB), nullptr);
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u);
  EXPECT_EQ(cross[0].instance().uuid(), kUuidA);
  EXPECT_EQ(cross[0].owner().uuid(), kUuidB);
  EXPECT_EQ(cross[0].owner_volume_id(), kVolB);
  EXPECT_EQ(cross[0].count(), 1u);
  ASSERT_TRUE(cross[0].trigger().has_flow());
  EXPECT_EQ(cross[0].trigger().flow().pid(), 452u);
  // The trigger is A's read after the remap, the time is the record's arrival.
  EXPECT_GT(cross[0].trigger().ts_ns(), s.firing(v1::IDENTITY_CHANGED)[0].ts_ns());
  EXPECT_EQ(rec.alerts.size(), 1u);
  EXPECT_EQ(cross[0].unix_ms(), s.alerts().back().unix_ms());
  EXPECT_GT(cross[0].unix_ms(), cross[0].trigger().unix_ms());
  // Another refresh with the same records: no second alert, no extra count.
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  EXPECT_EQ(s.firing(v1::CROSS_INSTANCE_ACCESS).size(), 1u);
  auto active = s.c().active_alerts();
  auto it = std::find_if(active.begin(), active.end(),
                         [](const v1::Alert& a) { return a.rule() == v1::CROSS_INSTANCE_ACCESS; });
  ASSERT_NE(it, active.end());
  EXPECT_EQ(it->count(), 1u) << "a re-judgement is no new I/O";
}

TEST(Correlator, AnAttachmentDeletedWhileItsQemuDoesIoRaisesStaleAttachmentIo) {
  Stream s;
  attach_a_array_serial(s);
  ASSERT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty());
  // Cinder deletes A's attachment; A's qemu keeps its flow (no new kernel flow).
  auto out = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  auto stale = s.firing(v1::STALE_ATTACHMENT_IO);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].instance().uuid(), kUuidA);
  EXPECT_EQ(stale[0].volume_id(), kVolA);
  EXPECT_EQ(stale[0].pid(), 452u);
  EXPECT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty());
}

TEST(Correlator, AFlowWhoseProcessIsNoLongerTheQemuIsNotJudgedAgain) {
  Stream s;
  attach_a_array_serial(s);
  // libvirt: A now runs under another pid (452 exited; the old flow is dead).
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)},
            {Stream::domain(kUuidA, "instance-0000000a", 9999)});
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  EXPECT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty()) << "pid 452 is not A's qemu any more";
  // The new qemu's I/O is judged as ever.
  s.flow(9999, "qemu-system-x86", kUuidA, "instance-0000000a");
  EXPECT_EQ(s.firing(v1::STALE_ATTACHMENT_IO).size(), 1u);
}

TEST(Correlator, BindingsLoadedAfterTheFlowJudgeItAgain) {
  Stream s;
  // A reads dm-0, which answers as kWb with an array serial: no owner known.
  s.topology(true, kWb);
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)});
  s.identity_both(kWb, kSerB);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  ASSERT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty());
  // The binding store names B as kWb's owner (B's record is in Cinder too).
  // (B's record lists no target here, so only the store can bind it.)
  auto rec_b = Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b");
  rec_b.clear_targets();
  s.cinder({rec_b});
  ASSERT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty());
  v1::Event b;
  auto* bb = b.mutable_bindings()->add_bindings();
  bb->set_instance_uuid(kUuidB);
  bb->set_instance_name("instance-0000000b");
  bb->set_volume_id(kVolB);
  bb->set_wwid(kWb);
  auto out = s.feed(b);
  ASSERT_EQ(out.alerts.size(), 1u);
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u) << "the live flow is judged again when the bindings change";
  EXPECT_EQ(cross[0].owner().uuid(), kUuidB);
  EXPECT_EQ(cross[0].trigger().flow().pid(), 452u);
}

// Issue 12 point 6: every rule resolves when its condition clears (or after a
// quiet period), and a recurrence fires again.
namespace {
std::vector<v1::Alert> of_rule(const std::vector<v1::Alert>& all, v1::Rule r, v1::AlertState st) {
  std::vector<v1::Alert> out;
  for (const auto& a : all)
    if (a.rule() == r && a.state() == st) out.push_back(a);
  return out;
}
size_t active_of(Correlator& c, v1::Rule r) {
  auto all = c.active_alerts();
  return static_cast<size_t>(std::count_if(all.begin(), all.end(), [&](const v1::Alert& a) { return a.rule() == r; }));
}
}  // namespace

TEST(AlertLifecycle, CrossInstanceAccessResolvesWhenTheOwnerDetachesAndFiresAgainOnRecurrence) {
  Stream s;
  attach_a_array_serial(s);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  s.identity_both(kWb, kSerB);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  auto with_b = [](v1::AttachmentStatus st) {
    return std::vector<v1::Attachment>{Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
                                       Stream::cinder_att(kUuidB, kVolB, st, "att-b")};
  };
  s.cinder(with_b(v1::ATTACHMENT_ATTACHED));
  ASSERT_EQ(active_of(s.c(), v1::CROSS_INSTANCE_ACCESS), 1u);
  // B detaches: volB has no live owner; A's I/O to it is no cross-instance access.
  auto out = s.cinder(with_b(v1::ATTACHMENT_DETACHED));
  auto resolved = of_rule(out.alerts, v1::CROSS_INSTANCE_ACCESS, v1::ALERT_RESOLVED);
  ASSERT_EQ(resolved.size(), 1u);
  EXPECT_TRUE(resolved[0].trigger().has_inventory()) << "resolved by the record that cleared it";
  EXPECT_EQ(active_of(s.c(), v1::CROSS_INSTANCE_ACCESS), 0u);
  EXPECT_EQ(active_of(s.c(), v1::STALE_ATTACHMENT_IO), 1u) << "A's own attachment is still deleted";
  // B attached again (a recurrence): fires again.
  out = s.cinder(with_b(v1::ATTACHMENT_ATTACHED));
  EXPECT_EQ(of_rule(out.alerts, v1::CROSS_INSTANCE_ACCESS, v1::ALERT_FIRING).size(), 1u);
  EXPECT_EQ(active_of(s.c(), v1::CROSS_INSTANCE_ACCESS), 1u);
  EXPECT_EQ(s.firing(v1::CROSS_INSTANCE_ACCESS).size(), 2u);
}

TEST(AlertLifecycle, StaleAttachmentIoResolvesWhenTheAttachmentIsBack) {
  Stream s;
  attach_a_array_serial(s);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  ASSERT_EQ(active_of(s.c(), v1::STALE_ATTACHMENT_IO), 1u);
  auto out = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_EQ(of_rule(out.alerts, v1::STALE_ATTACHMENT_IO, v1::ALERT_RESOLVED).size(), 1u);
  EXPECT_EQ(active_of(s.c(), v1::STALE_ATTACHMENT_IO), 0u);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  EXPECT_EQ(active_of(s.c(), v1::STALE_ATTACHMENT_IO), 1u);
  EXPECT_EQ(s.firing(v1::STALE_ATTACHMENT_IO).size(), 2u) << "a recurrence fires again";
}

TEST(AlertLifecycle, HostProcessAccessResolvesAfterAQuietPeriodAndFiresAgain) {
  detect::CorrelatorOptions o;
  o.alert_quiet_ns = 10'000'000'000ULL;
  Stream s(o);
  attach_a(s);
  s.flow(777, "dd", "", "");
  ASSERT_EQ(active_of(s.c(), v1::HOST_PROCESS_ACCESS), 1u);
  s.advance(11'000'000'000ULL);
  auto out = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_TRUE(std::find(out.rearm.begin(), out.rearm.end(), "254:0") != out.rearm.end())
      << "first the flow is re-armed: is the process still doing I/O?";
  EXPECT_EQ(active_of(s.c(), v1::HOST_PROCESS_ACCESS), 1u);
  // It is: its next I/O (a new kernel flow) is a repeat, the alert stays.
  s.flow(777, "dd", "", "");
  EXPECT_EQ(s.firing(v1::HOST_PROCESS_ACCESS).size(), 1u);
  // Then it stops: one quiet period re-arms it again, one more without I/O resolves it.
  s.advance(11'000'000'000ULL);
  out = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_TRUE(std::find(out.rearm.begin(), out.rearm.end(), "254:0") != out.rearm.end());
  EXPECT_EQ(active_of(s.c(), v1::HOST_PROCESS_ACCESS), 1u);
  s.advance(11'000'000'000ULL);
  out = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_EQ(of_rule(out.alerts, v1::HOST_PROCESS_ACCESS, v1::ALERT_RESOLVED).size(), 1u);
  EXPECT_EQ(active_of(s.c(), v1::HOST_PROCESS_ACCESS), 0u);
  // A recurrence fires again.
  s.flow(777, "dd", "", "");
  EXPECT_EQ(active_of(s.c(), v1::HOST_PROCESS_ACCESS), 1u);
  EXPECT_EQ(s.firing(v1::HOST_PROCESS_ACCESS).size(), 2u);
}

TEST(AlertLifecycle, GuardDeniedResolvesAfterAQuietPeriod) {
  detect::CorrelatorOptions o;
  o.alert_quiet_ns = 10'000'000'000ULL;
  Stream s(o);
  attach_a(s);
  v1::Event g;
  g.mutable_guard()->set_pid(452);
  g.mutable_guard()->set_comm("qemu-system-x86");
  g.mutable_guard()->set_dev("254:0");
  g.mutable_guard()->set_denied(true);
  g.mutable_guard()->set_state("quarantined");
  g.mutable_guard()->mutable_instance()->set_uuid(kUuidA);
  g.mutable_guard()->mutable_instance()->set_name("instance-0000000a");
  s.feed(g);
  ASSERT_EQ(active_of(s.c(), v1::GUARD_DENIED), 1u);
  s.advance(5'000'000'000ULL);
  s.feed(g);  // a repeat inside the period
  s.advance(6'000'000'000ULL);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_EQ(active_of(s.c(), v1::GUARD_DENIED), 1u) << "10 s since the repeat have not passed";
  s.advance(5'000'000'000ULL);
  auto out = s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_EQ(of_rule(out.alerts, v1::GUARD_DENIED, v1::ALERT_RESOLVED).size(), 1u);
  EXPECT_EQ(active_of(s.c(), v1::GUARD_DENIED), 0u);
  s.feed(g);
  EXPECT_EQ(s.firing(v1::GUARD_DENIED).size(), 2u) << "a recurrence fires again";
}

// ---- issue 12 point 5: this host's attachments vs the cloud-wide list

namespace {
constexpr const char* kUuidC = "33333333-3333-4333-8333-333333333333";  // an instance on another hypervisor
constexpr const char* kVolC = "c3c3c3c3-0000-4000-8000-00000000000c";
constexpr const char* kArraySerial = "ARRAY-SN-000123";  // an array's serial: not a volume id
}  // namespace

TEST(CloudWide, AnotherHostsRecordAtTheSameIqnAndLunNeverExplainsADeviceHere) {
  Stream s;
  s.topology();
  // A runs here; its disk is not in the domain XML yet (Nova attaches after
  // os-brick connected), so only Cinder's records can name the paths.
  s.libvirt({}, {Stream::domain(kUuidA, "instance-0000000a")});
  // Cinder's whole-cloud list: another hypervisor's instance C holds volC at the
  // same IQN and LUN number (arrays number LUNs per host), listed first.
  s.cinder({Stream::cinder_att(kUuidC, kVolC, v1::ATTACHMENT_ATTACHED, "att-c"),
            Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  s.identity_both(kWa, kArraySerial);
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)});
  ASSERT_NE(s.c().bindings().find(kUuidA, kVolA), nullptr) << "the local owner's volume is bound";
  EXPECT_EQ(s.c().bindings().find(kUuidA, kVolA)->wwid(), kWa);
  EXPECT_EQ(s.c().bindings().find(kUuidC, kVolC), nullptr) << "another host's record bound to a device here";
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  EXPECT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty()) << "the rightful local owner accused";
  EXPECT_EQ(s.above_warning(), 0);
  for (const auto& [att, devs] : s.c().attachment_devices())
    if (att.instance_uuid() == kUuidC) {
      EXPECT_TRUE(devs.empty()) << "C's record explains " << devs.size() << " devices";
    }
}

TEST(CloudWide, OtherHostsRecordsDoNotHideALocalLeftover) {
  detect::CorrelatorOptions o;
  o.orphan_grace_ns = 5'000'000'000ULL;
  Stream s(o);
  // This host runs B (no volume); sda, sdb, dm-0 at LUN 1 are a leftover.
  s.libvirt({}, {Stream::domain(kUuidB, "instance-0000000b")});
  s.cinder({Stream::cinder_att(kUuidC, kVolC, v1::ATTACHMENT_ATTACHED, "att-c")});
  s.topology();
  s.advance(6'000'000'000ULL);
  s.topology();
  EXPECT_EQ(s.firing(v1::ORPHAN_DEVICE).size(), 3u) << "sda, sdb and dm-0 are explained by no local attachment";
  // The owner of an identity can still be anywhere: C owns volC's identity.
  s.identity_both(kWb, kVolC);
  s.flow(1022, "qemu-system-x86", kUuidB, "instance-0000000b");
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u) << "a local instance reading another host's volume";
  EXPECT_EQ(cross[0].owner_volume_id(), kVolC);
}

TEST(CloudWide, WithoutALibvirtViewEveryRecordIsThisHosts) {
  detect::CorrelatorOptions o;
  o.orphan_grace_ns = 5'000'000'000ULL;
  Stream s(o);
  s.cinder({Stream::cinder_att(kUuidC, kVolC, v1::ATTACHMENT_ATTACHED, "att-c")});
  s.topology();
  s.advance(6'000'000'000ULL);
  s.topology();
  EXPECT_TRUE(s.firing(v1::ORPHAN_DEVICE).empty()) << "hosts without libvirt: the files are this host's records";
}

TEST(CloudWide, APartialListProvesNothingByOmission) {
  for (bool partial : {true, false}) {
    Stream s;
    attach_a(s);
    // The list now lacks A's record: deleted (complete list) or unseen (partial).
    v1::Event ev;
    auto* snap = ev.mutable_inventory();
    snap->set_kind(v1::SOURCE_FILE);
    snap->set_last_good_unix_ms(2);
    snap->set_partial(partial);
    *snap->add_attachments() = Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b");
    s.feed(ev);
    s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a", "254:0");
    if (partial) {
      EXPECT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty()) << "absence from a partial list taken as a delete";
      EXPECT_TRUE(s.firing(v1::ATTACHMENT_DIVERGENCE).empty());
    } else {
      EXPECT_EQ(s.firing(v1::STALE_ATTACHMENT_IO).size(), 1u) << "control: a complete list's omission is a delete";
    }
  }
}

TEST(CloudWide, AFlushedMapLeavesTheTopologyAndItsOrphanResolves) {
  detect::CorrelatorOptions o;
  o.orphan_grace_ns = 5'000'000'000ULL;
  Stream s(o);
  s.cinder({});
  s.topology();
  s.advance(6'000'000'000ULL);
  s.topology();
  ASSERT_EQ(s.firing(v1::ORPHAN_DEVICE).size(), 3u);
  // multipath -f: the map is gone, its paths stay (still orphans).
  s.topology(false);
  auto left = s.c().orphans();
  EXPECT_EQ(left, (std::vector<std::string>{"8:0", "8:16"})) << "the flushed map is still judged";
  for (const auto& d : s.c().devices()) EXPECT_NE(d.dev, "254:0") << "the flushed map stayed in the topology";
  // Then the sd devices are deleted: nothing is left, every ORPHAN resolves.
  v1::Event gone;
  gone.mutable_topology();
  s.feed(gone);
  EXPECT_TRUE(s.c().orphans().empty());
  EXPECT_TRUE(s.c().active_alerts().empty());
  EXPECT_TRUE(s.c().devices().empty());
}

namespace {
// A's disk in libvirt, with I/O, while Cinder's (complete) list has no record of it.
void disk_libvirt_shows_and_cinder_lacks(Stream& s) {
  s.topology();
  s.cinder({});
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA)},
            {Stream::domain(kUuidA, "instance-0000000a", 452)});
  s.identity_both(kWa, kSerA);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
}
}  // namespace

// A disk that libvirt shows before Cinder's list has its record (the two sources
// refresh apart; Nova creates the attachment first) is not a deleted attachment:
// no STALE_ATTACHMENT_IO within the divergence grace (scenario benign-churn caught
// one 26 ms long between the libvirt and the file refresh).
TEST(Correlator, ADiskLibvirtShowsBeforeCinderListsItIsNotStaleWithinTheGrace) {
  Stream s;
  disk_libvirt_shows_and_cinder_lacks(s);
  EXPECT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty()) << "Cinder's list may be older than the disk";
  s.advance(1'000'000'000ULL);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")});
  EXPECT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty());
}

TEST(Correlator, ADiskCinderNeverListsIsStaleOnceTheGracePasses) {
  Stream s;
  disk_libvirt_shows_and_cinder_lacks(s);
  ASSERT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty());
  s.advance(31'000'000'000ULL);
  s.cinder({});  // a later refresh still lacks it: the flow is judged again
  auto stale = s.firing(v1::STALE_ATTACHMENT_IO);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_EQ(stale[0].pid(), 452u);
  // and a record Cinder marks deleted needs no grace
  Stream t;
  attach_a_array_serial(t);
  t.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a")});
  EXPECT_EQ(t.firing(v1::STALE_ATTACHMENT_IO).size(), 1u);
}

// The idle cost of current verdicts: a refresh that says what the last one said
// (same records, only its times moved) judges no flow again; one that changes a
// record judges each live flow once. The same for a topology refresh.
TEST(Correlator, ARefreshThatChangesNothingJudgesNoFlowAgain) {
  Stream s;
  attach_a_array_serial(s);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");
  const auto base = s.c().rejudged_total();
  const std::vector<v1::Attachment> same = {Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_ATTACHED, "att-a")};
  for (int i = 0; i < 5; ++i) {
    s.advance(5'000'000'000ULL);
    s.cinder(same);
    s.topology();
  }
  EXPECT_EQ(s.c().rejudged_total(), base) << "unchanged refreshes re-judged live flows";
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DETACHED, "att-a")});
  EXPECT_EQ(s.c().rejudged_total(), base + 1) << "a changed record must re-judge the live flow";
  EXPECT_EQ(s.firing(v1::STALE_ATTACHMENT_IO).size(), 1u);
}

// A flow held back by the grace is judged again when the grace ends, on whatever
// event comes next, even when no source changes (Cinder's list never gets it).
TEST(Correlator, AFlowHeldBackByTheGraceIsJudgedWhenItEndsWithoutAnyRefresh) {
  Stream s;
  disk_libvirt_shows_and_cinder_lacks(s);
  ASSERT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty());
  s.scan(7);  // within the grace: still nothing
  EXPECT_TRUE(s.firing(v1::STALE_ATTACHMENT_IO).empty());
  s.advance(31'000'000'000ULL);
  s.scan(7);  // any event after the grace (no source refreshed)
  EXPECT_EQ(s.firing(v1::STALE_ATTACHMENT_IO).size(), 1u);
}

// A verification round that finds every device as it was (the periodic check)
// judges no live flow again; a device answering differently does.
TEST(Correlator, AnIdentityAnswerThatChangesNothingJudgesNoFlowAgain) {
  Stream s;
  attach_a_array_serial(s);
  const auto base = s.c().rejudged_total();
  for (int i = 0; i < 3; ++i) s.identity_both(kWa, kSerA);
  EXPECT_EQ(s.c().rejudged_total(), base) << "unchanged identities re-judged live flows";
  // another device's first answer (new state; a device whose own identity changes
  // is re-armed instead: its flows report afresh)
  s.identity("8:32", "sdc", kWb, kSerB);
  EXPECT_EQ(s.c().rejudged_total(), base + 1) << "a new identity must re-judge the live flow";
}

// Issue 12 points 3 and 6: sd devices removed and re-created under the same
// numbers with another tenant's volume, re-read by the same qemu. The kernel
// reports the re-read as a new flow (a new disk); it is judged against what
// the re-created paths answer, not the removed ones, and the alert's trigger
// and time are that re-read.
TEST(Correlator, AReadOfADeviceRecreatedUnderTheSameNumberIsJudgedAgainstItsNewIdentity) {
  Stream s;
  attach_a(s);
  s.cinder({Stream::cinder_att(kUuidA, kVolA, v1::ATTACHMENT_DELETED, "att-a"),
            Stream::cinder_att(kUuidB, kVolB, v1::ATTACHMENT_ATTACHED, "att-b")});
  s.libvirt({Stream::libvirt_att(kUuidA, "instance-0000000a", kVolA),
             Stream::libvirt_att(kUuidB, "instance-0000000b", kVolB)});
  for (const char* dev : {"8:0", "8:16"}) {
    v1::Event rm;
    rm.mutable_lifecycle()->set_kind(v1::LC_SCSI_DEVICE_REMOVE);
    rm.mutable_lifecycle()->set_dev(dev);
    s.feed(rm);
  }
  s.advance(2'000'000'000ULL);
  s.flow(452, "qemu-system-x86", kUuidA, "instance-0000000a");  // the re-created dm-0 re-read
  const uint64_t reread_ts = s.last_ts();
  EXPECT_TRUE(s.firing(v1::CROSS_INSTANCE_ACCESS).empty()) << "judged against the removed devices' identity";
  s.identity("8:0", "sda", kWb, kVolB);
  s.identity("8:16", "sdb", kWb, kVolB);
  auto cross = s.firing(v1::CROSS_INSTANCE_ACCESS);
  ASSERT_EQ(cross.size(), 1u) << "the re-read of volB was not judged when the new paths answered";
  EXPECT_EQ(cross[0].owner_volume_id(), kVolB);
  EXPECT_TRUE(cross[0].trigger().has_flow());
  EXPECT_EQ(cross[0].ts_ns(), reread_ts) << "the alert's time is the re-read, not A's first flow";
}

// A topology read that caught a path mid-scan (sysfs lists its H:C:T:L, its
// state or block device could not be read) is no removal: the path keeps its
// address, identity and place under the map, and a re-read is asked for. A path
// that stays unreadable for three snapshots in a row is gone after all.
TEST(Correlator, APathReadMidScanKeepsItsViewUntilSysfsSettles) {
  Stream s;
  s.topology();
  s.identity_both(kWa, kVolA);
  auto half = [&] {
    v1::Event ev;
    auto* t = ev.mutable_topology();
    *t->add_devices() = Stream::sd("sda", "8:0", 0, 1, "127.0.0.1:3260", kWa);
    auto* unread = t->add_devices();  // sdb: its address only
    unread->mutable_addr()->set_hctl("1:0:0:1");
    Stream::add_map(t, kWa);
    return s.feed(ev);
  };
  for (int round = 1; round <= 3; ++round) {
    auto out = half();
    EXPECT_TRUE(out.topology_stale) << "round " << round << ": a re-read is due";
    const auto* sdb = s.c().device_view("8:16");
    ASSERT_NE(sdb, nullptr) << "round " << round << ": a transient read removed the path";
    ASSERT_TRUE(sdb->scsi.has_value());
    EXPECT_EQ(sdb->scsi->addr().hctl(), "1:0:0:1");
    ASSERT_TRUE(sdb->verified.has_value()) << "its identity was forgotten";
    const auto* dm = s.c().device_view("254:0");
    ASSERT_NE(dm, nullptr);
    EXPECT_EQ(dm->lowers.size(), 2u) << "round " << round << ": sdb left the map";
  }
  half();  // a fourth unreadable snapshot: removed
  EXPECT_EQ(s.c().device_view("8:16"), nullptr);
  // and one read in full resets the count
  s.topology();
  s.identity_both(kWa, kVolA);
  half();
  EXPECT_NE(s.c().device_view("8:16"), nullptr);
}
