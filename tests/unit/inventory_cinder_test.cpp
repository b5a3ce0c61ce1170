// Cinder connection_info shapes, attachment pages, Keystone token bodies and
// catalog lookup, and the promise that secrets never come out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"

#include <fstream>
#include <sstream>

#include "inventory/cinder.h"
#include "inventory/targets.h"

using namespace lunwatch;
using namespace lunwatch::inventory;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

const std::string kFix = std::string(LUNWATCH_FIXTURES) + "/inventory/cinder";
const std::vector<std::string> kSecrets = {"CHAP-SECRET-pa55w0rd-7f3a", "CHAP-USER-zq9", "DISCOVERY-SECRET-81b2",
                                           "DISCOVERY-USER-k2"};

using testutil::slurp;

json fixture(const std::string& name) { return json::parse(slurp(kFix + "/" + name)); }

void expect_no_secret(const std::string& text) {
  for (const auto& s : kSecrets) EXPECT_THAT(text, Not(HasSubstr(s)));
}

}  // namespace

TEST(Targets, Normalisation) {
  EXPECT_EQ(normalise_wwpn("0x500A0981891B8DC5"), "500a0981891b8dc5");
  EXPECT_EQ(normalise_wwpn("50:0a:09:81:89:1b:8d:c5"), "500a0981891b8dc5");
  EXPECT_FALSE(normalise_wwpn("500a0981891b8dc").has_value());
  EXPECT_FALSE(normalise_wwpn("500a0981891b8dcz").has_value());
  EXPECT_EQ(normalise_portal("192.0.2.1"), "192.0.2.1:3260");
  EXPECT_EQ(normalise_portal("192.0.2.1:3261"), "192.0.2.1:3261");
  EXPECT_EQ(normalise_portal("[2001:db8::1]:3260"), "[2001:db8::1]:3260");
  EXPECT_EQ(normalise_portal("2001:db8::1"), "[2001:db8::1]:3260");
  EXPECT_FALSE(normalise_portal("").has_value());
  EXPECT_EQ(parse_lun("0x0001000000000000"), 0x0001000000000000u);
  EXPECT_FALSE(parse_lun("-1").has_value());
  auto p = target_from_by_path("/dev/disk/by-path/ip-[2001:db8::1]:3260-iscsi-iqn.2003-01.a:b-c-lun-12");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->transport, v1::TRANSPORT_ISCSI);
  EXPECT_EQ(p->target.portal(), "[2001:db8::1]:3260");
  EXPECT_EQ(p->target.iqn(), "iqn.2003-01.a:b-c");
  EXPECT_EQ(p->target.lun(), 12u);
  EXPECT_FALSE(target_from_by_path("/dev/sdb").has_value());
  EXPECT_FALSE(target_from_by_path("/dev/disk/by-path/pci-0000:00:1f.2-ata-1").has_value());
}

TEST(ConnectionInfo, IscsiFlatShape) {
  auto ci = parse_connection_info(fixture("iscsi_flat.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  EXPECT_EQ(ci->transport, v1::TRANSPORT_ISCSI);
  ASSERT_EQ(ci->targets.size(), 1u);
  EXPECT_EQ(ci->targets[0].iqn(), "iqn.2010-10.org.openstack:volume-11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(ci->targets[0].portal(), "192.0.2.10:3260");
  EXPECT_EQ(ci->targets[0].lun(), 1u);
  EXPECT_EQ(ci->volume_id, "11111111-1111-4111-8111-111111111111");
  EXPECT_EQ(ci->access_mode, "rw");
  EXPECT_FALSE(ci->encrypted);
}

TEST(ConnectionInfo, IscsiNovaDataShape) {
  auto ci = parse_connection_info(fixture("iscsi_data.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  ASSERT_EQ(ci->targets.size(), 1u);
  EXPECT_EQ(ci->targets[0].portal(), "192.0.2.10:3260");  // port added
  EXPECT_EQ(ci->targets[0].lun(), 1u);                    // "1" as a string
  EXPECT_EQ(ci->device_path, "/dev/dm-0");
  EXPECT_EQ(ci->expected_wwid, "3600140511111111111111111111111aa");
  EXPECT_TRUE(ci->encrypted);
  // The same data as a JSON string (how some records store it).
  auto s = parse_connection_info(json(fixture("iscsi_data.json").dump()));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->targets.size(), 1u);
}

TEST(ConnectionInfo, IscsiMultipathDeduplicates) {
  auto ci = parse_connection_info(fixture("iscsi_multipath.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  ASSERT_EQ(ci->targets.size(), 2u);
  EXPECT_EQ(ci->targets[0].iqn(), "iqn.1992-08.com.netapp:sn.1");
  EXPECT_EQ(ci->targets[1].iqn(), "iqn.1992-08.com.netapp:sn.2");
  EXPECT_EQ(ci->targets[1].portal(), "198.51.100.11:3260");
  EXPECT_EQ(ci->targets[1].lun(), 3u);

  json bad = fixture("iscsi_multipath.json");
  bad["data"]["target_luns"] = {3, 3};
  auto e = parse_connection_info(bad);
  ASSERT_FALSE(e.ok());
  EXPECT_THAT(e.error().message, HasSubstr("differ in length"));
  expect_no_secret(e.error().message);
}

TEST(ConnectionInfo, FcSingleStringWwn) {
  auto ci = parse_connection_info(fixture("fc_string.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  EXPECT_EQ(ci->transport, v1::TRANSPORT_FC);
  ASSERT_EQ(ci->targets.size(), 1u);
  EXPECT_EQ(ci->targets[0].wwpn(), "500a0981891b8dc5");
  EXPECT_EQ(ci->targets[0].lun(), 7u);
}

TEST(ConnectionInfo, FcListWwnAndInitiatorTargetMap) {
  auto ci = parse_connection_info(fixture("fc_list.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  ASSERT_EQ(ci->targets.size(), 2u);
  EXPECT_EQ(ci->targets[0].wwpn(), "500a0981891b8dc5");
  EXPECT_EQ(ci->targets[1].wwpn(), "500a0981991b8dc5");
  for (const auto& t : ci->targets) EXPECT_EQ(t.lun(), 2u);
  ASSERT_EQ(ci->initiator_target_map.size(), 2u);
  EXPECT_EQ(ci->initiator_target_map.at("21000024ff7c6f01"), (std::vector<std::string>{"500a0981891b8dc5"}));
  EXPECT_EQ(ci->initiator_target_map.at("21000024ff7c6f02"),
            (std::vector<std::string>{"500a0981991b8dc5", "500a0981891b8dc5"}));
}

TEST(ConnectionInfo, FcPairedWwnsAndLuns) {
  auto ci = parse_connection_info(fixture("fc_wwns_luns.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  ASSERT_EQ(ci->targets.size(), 2u);
  EXPECT_EQ(ci->targets[0].lun(), 4u);
  EXPECT_EQ(ci->targets[1].wwpn(), "500a0981991b8dc5");
  EXPECT_EQ(ci->targets[1].lun(), 5u);
}

TEST(ConnectionInfo, FcTargetsFromInitiatorTargetMapOnly) {
  auto ci = parse_connection_info(fixture("fc_itmap_only.json"));
  ASSERT_TRUE(ci.ok()) << ci.error().message;
  ASSERT_EQ(ci->targets.size(), 2u);
  EXPECT_EQ(ci->targets[0].wwpn(), "5000000000000a01");
  EXPECT_EQ(ci->targets[1].lun(), 9u);
}

TEST(ConnectionInfo, OtherTransportsEmptyAndErrors) {
  auto rbd = parse_connection_info(json{{"driver_volume_type", "rbd"}, {"data", {{"name", "volumes/v"}}}});
  ASSERT_TRUE(rbd.ok());
  EXPECT_EQ(rbd->transport, v1::TRANSPORT_OTHER);
  EXPECT_TRUE(rbd->targets.empty());

  auto reserved = parse_connection_info(json(nullptr));
  ASSERT_TRUE(reserved.ok());
  EXPECT_EQ(reserved->transport, v1::TRANSPORT_UNKNOWN);
  EXPECT_TRUE(parse_connection_info(json::object()).ok());

  EXPECT_FALSE(parse_connection_info(json{{"data", json::object()}}).ok());
  EXPECT_FALSE(parse_connection_info(json::array()).ok());
  EXPECT_FALSE(parse_connection_info(json("{not json")).ok());
  auto no_lun =
      parse_connection_info(json{{"driver_volume_type", "fibre_channel"}, {"target_wwn", "500a0981891b8dc5"}});
  ASSERT_FALSE(no_lun.ok());
  EXPECT_THAT(no_lun.error().message, HasSubstr("target_lun"));
  auto bad_wwn = parse_connection_info(
      json{{"driver_volume_type", "fibre_channel"}, {"target_wwn", {"500a0981891b8dc5", 7}}, {"target_lun", 1}});
  ASSERT_FALSE(bad_wwn.ok());
  EXPECT_THAT(bad_wwn.error().message, HasSubstr("target_wwn[1]"));
  auto neg = parse_connection_info(json{
      {"driver_volume_type", "iscsi"}, {"target_iqn", "iqn.x"}, {"target_portal", "192.0.2.1"}, {"target_lun", -1}});
  EXPECT_FALSE(neg.ok());
}

TEST(ConnectionInfo, SecretsNeverInErrorsOrOutput) {
  // Every way a secret-bearing connection_info can fail, with the secrets
  // placed where a careless error message would quote them.
  std::vector<json> inputs;
  json flat = fixture("iscsi_flat.json");
  inputs.push_back(flat);
  json no_iqn = flat;
  no_iqn.erase("target_iqn");
  inputs.push_back(no_iqn);
  json secret_as_portal = flat;
  secret_as_portal["target_portal"] = json::array({"CHAP-SECRET-pa55w0rd-7f3a"});
  inputs.push_back(secret_as_portal);
  json secret_as_lun = flat;
  secret_as_lun["target_lun"] = "CHAP-SECRET-pa55w0rd-7f3a";
  inputs.push_back(secret_as_lun);
  json secret_as_type = flat;
  secret_as_type["driver_volume_type"] = json::object({{"auth_password", "CHAP-SECRET-pa55w0rd-7f3a"}});
  inputs.push_back(secret_as_type);
  json secret_as_wwn = {
      {"driver_volume_type", "fibre_channel"}, {"target_wwn", "CHAP-SECRET-pa55w0rd-7f3a"}, {"target_lun", 1}};
  inputs.push_back(secret_as_wwn);
  json secret_as_itmap = {{"driver_volume_type", "fibre_channel"},
                          {"initiator_target_map", {{"CHAP-SECRET-pa55w0rd-7f3a", {"x"}}}},
                          {"target_lun", 1}};
  inputs.push_back(secret_as_itmap);
  inputs.push_back(json(flat.dump().substr(0, 300)));  // truncated JSON string holding secrets
  int failures = 0;
  for (const auto& in : inputs) {
    auto ci = parse_connection_info(in);
    if (!ci.ok()) {
      ++failures;
      expect_no_secret(ci.error().message);
      continue;
    }
    for (const auto& t : ci->targets) expect_no_secret(t.DebugString());
    expect_no_secret(ci->device_path + ci->volume_id + ci->expected_wwid + ci->access_mode);
  }
  EXPECT_EQ(failures, 7);
}

TEST(AttachmentsPage, ParsesMixedPageAndNextMarker) {
  std::string body = slurp(kFix + "/attachments_page.json");
  auto page = parse_attachments_page(body);
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->attachments.size(), 4u);
  EXPECT_TRUE(page->has_next);
  EXPECT_EQ(page->next_marker, "a9999999-9999-4999-8999-999999999999");

  const auto& a = page->attachments[0];
  EXPECT_EQ(a.source(), v1::SOURCE_CINDER);
  EXPECT_EQ(a.attachment_id(), "a1111111-1111-4111-8111-111111111111");
  EXPECT_EQ(a.instance_uuid(), "6f2e5a9c-1b7d-4e0a-9a43-2f5f0c1d9e11");
  EXPECT_EQ(a.status(), v1::ATTACHMENT_ATTACHED);
  EXPECT_EQ(a.transport(), v1::TRANSPORT_ISCSI);
  EXPECT_EQ(a.attached_at_unix(), 1683720005);
  EXPECT_EQ(a.detached_at_unix(), 0);
  EXPECT_EQ(a.attach_mode(), "rw");
  ASSERT_EQ(a.targets_size(), 1);

  const auto& fc = page->attachments[1];
  EXPECT_EQ(fc.transport(), v1::TRANSPORT_FC);
  EXPECT_EQ(fc.targets(0).wwpn(), "500a0981891b8dc5");
  EXPECT_EQ(fc.attached_at_unix(), 1609456200);  // 00:10+01:00 = 23:10Z the day before
  EXPECT_EQ(fc.attach_mode(), "ro");
  EXPECT_TRUE(fc.encrypted());

  const auto& reserved = page->attachments[2];
  EXPECT_EQ(reserved.status(), v1::ATTACHMENT_RESERVED);
  EXPECT_EQ(reserved.instance_uuid(), "");
  EXPECT_EQ(reserved.transport(), v1::TRANSPORT_UNKNOWN);

  // Unusable connection_info: kept (status and owner still matter), warned.
  const auto& err = page->attachments[3];
  EXPECT_EQ(err.status(), v1::ATTACHMENT_ERROR_ATTACHING);
  EXPECT_EQ(err.transport(), v1::TRANSPORT_UNKNOWN);
  ASSERT_EQ(page->warnings.size(), 1u);
  EXPECT_THAT(page->warnings[0], HasSubstr("a9999999"));

  for (const auto& att : page->attachments) expect_no_secret(att.SerializeAsString() + att.DebugString());
  for (const auto& w : page->warnings) expect_no_secret(w);
}

TEST(AttachmentsPage, LastPageAndMarkerFallback) {
  auto last = parse_attachments_page(R"({"attachments": []})");
  ASSERT_TRUE(last.ok());
  EXPECT_FALSE(last->has_next);
  auto nomarker = parse_attachments_page(
      R"({"attachments": [{"id": "x1", "volume_id": "v", "status": "attached"}],
          "attachments_links": [{"rel": "next", "href": "http://c/v3/p/attachments/detail?limit=1"}]})");
  ASSERT_TRUE(nomarker.ok());
  EXPECT_TRUE(nomarker->has_next);
  EXPECT_EQ(nomarker->next_marker, "x1");
  auto encoded = parse_attachments_page(
      R"({"attachments": [], "attachments_links": [{"rel": "next", "href": "http://c/x?marker=a%2Fb&limit=2"}]})");
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->next_marker, "a/b");
}

TEST(AttachmentsPage, RejectsGarbageAndLyingResponses) {
  for (const char* body : {"", "<html>502 Bad Gateway</html>", "[]", R"({"volumes": []})", R"({"attachments": {}})",
                           R"({"attachments": [42]})", R"({"attachments": [{"volume_id": "v", "status": "attached"}]})",
                           R"({"attachments": [{"id": "i", "status": "attached"}]})",
                           R"({"attachments": [{"id": "i", "volume_id": "v"}]})",
                           R"({"attachments": [{"id": 7, "volume_id": "v", "status": "attached"}]})"}) {
    auto r = parse_attachments_page(body);
    EXPECT_FALSE(r.ok()) << body;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::kParse);
    }
  }
  // nlohmann's own messages quote the input near the error: ours must not.
  // Cut the body inside and right after each secret.
  std::string full = slurp(kFix + "/attachments_page.json");
  for (const auto& secret : kSecrets) {
    size_t at = full.find(secret);
    if (at == std::string::npos) continue;
    for (size_t cut : {at + 5, at + secret.size(), at + secret.size() + 1}) {
      auto r = parse_attachments_page(std::string_view(full).substr(0, cut));
      ASSERT_FALSE(r.ok());
      expect_no_secret(r.error().message);
    }
    // A stray byte right after the secret: the parse error is at the secret.
    std::string broken = full;
    broken.insert(at + secret.size() + 1, "}");
    auto r = parse_attachments_page(broken);
    ASSERT_FALSE(r.ok());
    expect_no_secret(r.error().message);
  }
}

TEST(CinderTime, Formats) {
  EXPECT_EQ(parse_cinder_time("1970-01-01T00:00:00"), 0);
  EXPECT_EQ(parse_cinder_time("2023-05-10T12:00:05.000000"), 1683720005);
  EXPECT_EQ(parse_cinder_time("2023-05-10 12:00:05"), 1683720005);
  EXPECT_EQ(parse_cinder_time("2023-05-10T12:00:05Z"), 1683720005);
  EXPECT_EQ(parse_cinder_time("2023-05-10T14:00:05+02:00"), 1683720005);
  EXPECT_FALSE(parse_cinder_time("yesterday").has_value());
  EXPECT_FALSE(parse_cinder_time("2023-13-10T12:00:05").has_value());
}

TEST(Keystone, TokenBodyAndCatalog) {
  auto info = parse_keystone_token(R"({"token": {"expires_at": "2030-01-01T00:00:00.000000Z",
      "project": {"id": "p1", "name": "admin"},
      "catalog": [
        {"type": "compute", "endpoints": [{"interface": "internal", "region_id": "R1", "url": "http://nova"}]},
        {"type": "volumev3", "endpoints": [
          {"interface": "public", "region_id": "R1", "url": "https://cinder.pub/v3/p1"},
          {"interface": "internal", "region_id": "R2", "url": "http://cinder.r2:8776/v3/p1"},
          {"interface": "internal", "region_id": "R1", "url": "http://cinder.r1:8776/v3/p1"}]},
        {"type": "block-storage", "endpoints": [
          {"interface": "public", "region": "R1", "url": "https://bs.pub/"}]}]}})");
  ASSERT_TRUE(info.ok()) << info.error().message;
  EXPECT_EQ(info->project_id, "p1");
  ASSERT_TRUE(info->expires_at.has_value());
  EXPECT_EQ(select_volume_endpoint(info->catalog, "internal", "R1").value(), "http://cinder.r1:8776/v3/p1");
  EXPECT_EQ(select_volume_endpoint(info->catalog, "internal", "R2").value(), "http://cinder.r2:8776/v3/p1");
  EXPECT_EQ(select_volume_endpoint(info->catalog, "public", "R1").value(), "https://bs.pub/");  // block-storage first
  EXPECT_FALSE(select_volume_endpoint(info->catalog, "admin", "").ok());
  EXPECT_FALSE(parse_keystone_token("{}").ok());
  EXPECT_FALSE(parse_keystone_token("nope").ok());
}

TEST(Keystone, CinderBaseUrl) {
  EXPECT_EQ(cinder_base_url("http://c:8776/v3/p1", "p1"), "http://c:8776/v3/p1");
  EXPECT_EQ(cinder_base_url("http://c:8776/v3/%(project_id)s", "p1"), "http://c:8776/v3/p1");
  EXPECT_EQ(cinder_base_url("http://c:8776/v3/$(tenant_id)s/", "p1"), "http://c:8776/v3/p1");
  EXPECT_EQ(cinder_base_url("http://c:8776/v3/{project_id}", "p1"), "http://c:8776/v3/p1");
  EXPECT_EQ(cinder_base_url("https://bs.pub/", "p1"), "https://bs.pub/v3/p1");
  EXPECT_EQ(cinder_base_url("http://h/volume/v3", "p1"), "http://h/volume/v3/p1");
  EXPECT_EQ(cinder_base_url("http://h/volume/v3", ""), "http://h/volume/v3");
}

TEST(Http, DisplayUrlDropsCredentialsAndQuery) {
  EXPECT_EQ(url_for_display("https://user:pw@keystone:5000/v3/auth/tokens?x=1"),
            "https://keystone:5000/v3/auth/tokens");
  EXPECT_EQ(url_for_display("http://h"), "http://h");
}

TEST(SecretType, RedactsAndWipes) {
  Secret s("hunter2-long");
  EXPECT_EQ(redact("token=hunter2-long; again hunter2-long\n", {&s}), "token=***; again ***?");
  Secret moved(std::move(s));
  EXPECT_TRUE(s.empty());  // NOLINT(bugprone-use-after-move): moved-from secrets are wiped
  EXPECT_EQ(moved.reveal(), "hunter2-long");
}
