// libvirt domain XML -> instances and attachments; the directory source's
// change detection and last-good behaviour.
#include <gtest/gtest.h>

#include <unistd.h>
#include "test_util.h"

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "inventory/libvirt.h"

using namespace lunwatch;
using namespace lunwatch::inventory;
namespace fs = std::filesystem;

namespace {

const std::string kFix = std::string(LUNWATCH_FIXTURES) + "/inventory/libvirt";

using testutil::slurp;

using testutil::TempDir;

const v1::Attachment* by_volume(const std::vector<v1::Attachment>& all, const std::string& volume) {
  for (const auto& a : all) {
    if (a.volume_id() == volume) return &a;
  }
  return nullptr;
}

}  // namespace

TEST(LibvirtParse, LiveXmlWithNova11Metadata) {
  auto d = parse_libvirt_domain(slurp(kFix + "/run/instance-0000002a.xml"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->live);
  EXPECT_EQ(d->state, "running");
  EXPECT_EQ(d->nova_version, "1.1");
  const auto& i = d->instance;
  EXPECT_EQ(i.name(), "instance-0000002a");
  EXPECT_EQ(i.uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11");
  EXPECT_EQ(i.pid(), 4242u);
  EXPECT_EQ(i.display_name(), "web-01");
  EXPECT_EQ(i.user_id(), "0a1b2c3d4e5f40718293a4b5c6d7e8f9");
  EXPECT_EQ(i.project_id(), "aa11bb22cc33dd44ee55ff6677889900");
  EXPECT_EQ(i.resolved_from(), "libvirt");

  // File-backed root disk and the config-drive cdrom are no attachments.
  ASSERT_EQ(d->attachments.size(), 4u);
  for (const auto& a : d->attachments) {
    EXPECT_EQ(a.source(), v1::SOURCE_LIBVIRT);
    EXPECT_EQ(a.status(), v1::ATTACHMENT_ATTACHED);
    EXPECT_EQ(a.instance_uuid(), i.uuid());
    EXPECT_EQ(a.instance_name(), "instance-0000002a");
    EXPECT_EQ(a.project_id(), i.project_id());
  }
  const auto* iscsi = by_volume(d->attachments, "11111111-1111-4111-8111-111111111111");
  ASSERT_NE(iscsi, nullptr);
  EXPECT_EQ(iscsi->transport(), v1::TRANSPORT_ISCSI);
  ASSERT_EQ(iscsi->targets_size(), 1);
  EXPECT_EQ(iscsi->targets(0).iqn(), "iqn.2010-10.org.openstack:volume-11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(iscsi->targets(0).portal(), "192.0.2.10:3260");
  EXPECT_EQ(iscsi->targets(0).lun(), 1u);
  EXPECT_EQ(iscsi->attach_mode(), "rw");

  const auto* dm = by_volume(d->attachments, "22222222-2222-4222-8222-222222222222");
  ASSERT_NE(dm, nullptr);
  EXPECT_EQ(dm->device_path(), "/dev/dm-0");
  EXPECT_EQ(dm->transport(), v1::TRANSPORT_UNKNOWN);
  EXPECT_EQ(dm->targets_size(), 0);

  const auto* lun = by_volume(d->attachments, "33333333-3333-4333-8333-333333333333");
  ASSERT_NE(lun, nullptr);
  EXPECT_EQ(lun->expected_wwid(), "3600a09803830443747244a4f4e6f6e31");
  EXPECT_EQ(lun->attach_mode(), "ro");

  const auto* rbd = by_volume(d->attachments, "44444444-4444-4444-8444-444444444444");
  ASSERT_NE(rbd, nullptr);
  EXPECT_EQ(rbd->transport(), v1::TRANSPORT_OTHER);
  EXPECT_EQ(rbd->device_path(), "rbd:volumes/volume-44444444-4444-4444-8444-444444444444");
}

TEST(LibvirtParse, PersistentXmlWithNova10MatchesNamespaceNotPrefix) {
  auto d = parse_libvirt_domain(slurp(kFix + "/etc/instance-0000002b.xml"));
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_FALSE(d->live);
  EXPECT_EQ(d->instance.pid(), 0u);
  EXPECT_EQ(d->nova_version, "1.0");
  // The "nova:" prefixed element lives in another namespace: ignored.
  EXPECT_EQ(d->instance.display_name(), "db-02");
  EXPECT_EQ(d->instance.project_id(), "cccccccccccc4ccccccccccccccccccc");
  EXPECT_EQ(d->instance.user_id(), "bbbbbbbbbbbb4bbbbbbbbbbbbbbbbbbb");

  ASSERT_EQ(d->attachments.size(), 2u);
  const auto* fc = by_volume(d->attachments, "55555555-5555-4555-8555-555555555555");
  ASSERT_NE(fc, nullptr);
  EXPECT_EQ(fc->transport(), v1::TRANSPORT_FC);
  ASSERT_EQ(fc->targets_size(), 1);
  EXPECT_EQ(fc->targets(0).wwpn(), "500a0981891b8dc5");
  EXPECT_EQ(fc->targets(0).lun(), 7u);
  EXPECT_TRUE(fc->encrypted());
  // An LVM-backed ephemeral disk is still this instance's block device.
  const auto* lvm = by_volume(d->attachments, "");
  ASSERT_NE(lvm, nullptr);
  EXPECT_EQ(lvm->device_path(), "/dev/nova-vg/0b0b0b0b_disk");
}

TEST(LibvirtParse, NamespaceDeclaredOnAnAncestor) {
  auto d = parse_libvirt_domain(R"(<domain xmlns:x="http://openstack.org/xmlns/libvirt/nova/1.1">
      <name>instance-00000001</name><uuid>u</uuid>
      <metadata><x:instance><x:name>outer-ns</x:name></x:instance></metadata></domain>)");
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->instance.display_name(), "outer-ns");
  EXPECT_TRUE(d->attachments.empty());
}

TEST(LibvirtParse, RejectsMalformedWithClearErrors) {
  auto t = parse_libvirt_domain(slurp(kFix + "/bad/truncated.xml"));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, Errc::kParse);
  EXPECT_NE(t.error().message.find("libvirt XML"), std::string::npos);
  EXPECT_NE(t.error().message.find("offset"), std::string::npos);

  auto n = parse_libvirt_domain(slurp(kFix + "/bad/no-name.xml"));
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.error().message.find("without <name>"), std::string::npos);

  auto o = parse_libvirt_domain(slurp(kFix + "/bad/not-a-domain.xml"));
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.error().message.find("<network>"), std::string::npos);

  EXPECT_FALSE(parse_libvirt_domain("").ok());
  EXPECT_FALSE(parse_libvirt_domain("<domstatus pid='12x'><domain><name>a</name></domain></domstatus>").ok());
  EXPECT_FALSE(parse_libvirt_domain("<domstatus pid='1'/>").ok());
}

TEST(LibvirtParse, SurvivesEveryTruncationAndRandomCorruption) {
  const std::string xml = slurp(kFix + "/run/instance-0000002a.xml");
  ASSERT_GT(xml.size(), 1000u);
  size_t ok = 0;
  for (size_t n = 0; n < xml.size(); ++n) {
    auto r = parse_libvirt_domain(std::string_view(xml).substr(0, n));
    if (r.ok()) {
      ++ok;
    } else {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
  // Only cuts inside the trailing whitespace can leave a complete document.
  EXPECT_LE(ok, 2u);
  std::mt19937 rng(20230510);
  for (int round = 0; round < 500; ++round) {
    std::string s = xml;
    for (int k = 0; k < 8; ++k) s[rng() % s.size()] = static_cast<char>(rng() % 256);
    auto r = parse_libvirt_domain(s);
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message.empty());
    }
  }
}

TEST(LibvirtSource, ScansRunDirAndSkipsUnchangedFiles) {
  LibvirtSource src(kFix + "/run");
  EXPECT_EQ(src.kind(), v1::SOURCE_LIBVIRT);
  src.refresh();
  const auto& s = src.snapshot();
  EXPECT_FALSE(s.stale());
  EXPECT_EQ(s.errors_total(), 0u);
  EXPECT_GT(s.last_good_unix_ms(), 0);
  ASSERT_EQ(s.instances_size(), 1);
  EXPECT_EQ(s.instances(0).pid(), 4242u);
  EXPECT_EQ(s.attachments_size(), 4);
  EXPECT_EQ(src.parses(), 1u);
  src.refresh();
  src.refresh();
  EXPECT_EQ(src.parses(), 1u) << "unchanged files must not be re-parsed";
  EXPECT_EQ(s.attachments_size(), 4);
  ASSERT_EQ(src.domains().count("instance-0000002a"), 1u);
}

TEST(LibvirtSource, KeepsLastGoodDomainWhenItsFileTurnsBad) {
  TempDir dir;
  const std::string good_a = slurp(kFix + "/run/instance-0000002a.xml");
  dir.write("instance-0000002a.xml", good_a);
  dir.write("instance-0000002b.xml", slurp(kFix + "/etc/instance-0000002b.xml"));
  LibvirtSource src(dir.path());
  src.refresh();
  ASSERT_EQ(src.snapshot().instances_size(), 2);
  ASSERT_EQ(src.snapshot().attachments_size(), 6);
  EXPECT_FALSE(src.snapshot().stale());

  dir.write("instance-0000002a.xml", good_a.substr(0, 700));  // libvirt crashed mid-write
  src.refresh();
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_NE(src.snapshot().last_error().find("instance-0000002a.xml"), std::string::npos);
  EXPECT_EQ(src.snapshot().instances_size(), 2) << "last good parse of the bad file is kept";
  EXPECT_EQ(src.snapshot().attachments_size(), 6);

  // The same bad file is neither re-parsed nor counted again.
  uint64_t parses = src.parses();
  src.refresh();
  EXPECT_EQ(src.parses(), parses);
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_TRUE(src.snapshot().stale());

  dir.write("instance-0000002a.xml", good_a);
  src.refresh();
  EXPECT_FALSE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().last_error(), "");
  EXPECT_EQ(src.snapshot().errors_total(), 1u);

  // A domain whose file goes away (stopped) leaves the snapshot.
  fs::remove(dir.path() + "/instance-0000002b.xml");
  src.refresh();
  EXPECT_EQ(src.snapshot().instances_size(), 1);
  EXPECT_EQ(src.snapshot().attachments_size(), 4);
}

TEST(LibvirtSource, BadFileWithoutGoodHistoryIsSkippedAndCounted) {
  TempDir dir;
  dir.write("instance-0000002b.xml", slurp(kFix + "/etc/instance-0000002b.xml"));
  dir.write("broken.xml", "<domain><name>x</name>");
  dir.write("notes.txt", "ignored");
  LibvirtSource src(dir.path());
  src.refresh();
  EXPECT_EQ(src.snapshot().instances_size(), 1);
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_TRUE(src.snapshot().stale());
}

TEST(LibvirtSource, PidFileFillsPersistentDomainAndFollowsRestart) {
  TempDir dir;
  dir.write("instance-0000002b.xml", slurp(kFix + "/etc/instance-0000002b.xml"));
  dir.write("instance-0000002b.pid", "31337\n");
  LibvirtSource src(dir.path());
  src.refresh();
  ASSERT_EQ(src.snapshot().instances_size(), 1);
  EXPECT_EQ(src.snapshot().instances(0).pid(), 31337u);
  dir.write("instance-0000002b.pid", "4000");
  src.refresh();
  EXPECT_EQ(src.snapshot().instances(0).pid(), 4000u);
  EXPECT_EQ(src.parses(), 1u) << "a pid change does not re-parse the XML";
}

TEST(LibvirtSource, HugeFileIsRejectedUnread) {
  TempDir dir;
  std::string huge = dir.path() + "/instance-00000099.xml";
  { std::ofstream(huge) << "<domain>"; }
  fs::resize_file(huge, (size_t{16} << 20) + 1);  // sparse: nothing to read if we tried
  LibvirtSource src(dir.path());
  src.refresh();
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_NE(src.snapshot().last_error().find("larger than 16 MiB"), std::string::npos) << src.snapshot().last_error();
}

TEST(LibvirtSource, MissingDirectoryIsAnErrorNotACrash) {
  LibvirtSource src("/nonexistent/lunwatch/libvirt");
  src.refresh();
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_EQ(src.snapshot().attachments_size(), 0);
}
