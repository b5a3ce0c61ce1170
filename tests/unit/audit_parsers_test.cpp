// The audit's small parsers: multipath.conf, Cinder policy files and rules,
// Glance image lists, package metadata and dpkg status.
#include <gtest/gtest.h>

#include "audit/finding.h"
#include "audit/images.h"
#include "audit/multipath_conf.h"
#include "audit/packages.h"
#include "audit/policy.h"

using namespace lunwatch;
using namespace lunwatch::audit;

TEST(AuditMultipathConf, BlocksOptionsAndComments) {
  auto r = parse_multipath_conf(
      "# comment\n"
      "defaults {\n"
      "    user_friendly_names yes   # trailing comment\n"
      "    recheck_wwid \"yes\"\n"
      "}\n"
      "blacklist { devnode \"^sda\" }\n"
      "devices {\n"
      "    device {\n"
      "        vendor \"PURE\"\n"
      "        product \"FlashArray\"\n"
      "        ! bang comment\n"
      "    }\n"
      "}\n"
      "overrides\n"
      "{\n"
      "    recheck_wwid no\n"
      "}\n",
      "m.conf");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->blocks.size(), 4u);
  const MpathBlock& d = r->blocks[0];
  EXPECT_EQ(d.name, "defaults");
  ASSERT_NE(d.find("recheck_wwid"), nullptr);
  EXPECT_EQ(d.find("recheck_wwid")->value, "yes");
  EXPECT_EQ(d.find("recheck_wwid")->line, 4);
  EXPECT_EQ(d.find("user_friendly_names")->value, "yes");
  EXPECT_EQ(r->blocks[1].find("devnode")->value, "^sda");
  ASSERT_EQ(r->blocks[2].blocks.size(), 1u);
  EXPECT_EQ(r->blocks[2].blocks[0].find("product")->value, "FlashArray");
  EXPECT_EQ(r->blocks[3].name, "overrides");  // '{' on the next line
  EXPECT_EQ(r->blocks[3].find("recheck_wwid")->value, "no");
}

TEST(AuditMultipathConf, MalformedSaysWhere) {
  auto a = parse_multipath_conf("defaults {\n  recheck_wwid yes\n", "m.conf");
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error().message, "m.conf:1: block 'defaults' is never closed");
  auto b = parse_multipath_conf("defaults {\n}\n}\n", "m.conf");
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().message, "m.conf:3: '}' without an open block");
  auto c = parse_multipath_conf("recheck_wwid yes\n", "m.conf");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().message, "m.conf:1: option 'recheck_wwid' outside any block");
  auto d = parse_multipath_conf("defaults {\n  x \"open\n}\n", "m.conf");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().message, "m.conf:2: unterminated quoted string");
}

TEST(AuditPolicy, YamlForms) {
  auto p = parse_policy(
      "# comment\n"
      "\"is_service\": \"role:service or service_user_id:abc\"\n"
      "'single': 'it''s'\n"
      "volume:attachment_delete: rule:a and\n"
      "  rule:is_service\n"
      "\"folded\": >\n"
      "  rule:x\n"
      "  and rule:y\n"
      "\"empty\": \"\"\n",
      "policy.yaml");
  ASSERT_TRUE(p.ok()) << p.error().message;
  EXPECT_EQ(p->find("is_service")->expr, "role:service or service_user_id:abc");
  EXPECT_EQ(p->find("single")->expr, "it's");
  EXPECT_EQ(p->find("volume:attachment_delete")->expr, "rule:a and rule:is_service");
  EXPECT_EQ(p->find("volume:attachment_delete")->line, 4);
  EXPECT_EQ(p->find("folded")->expr, "rule:x and rule:y");
  EXPECT_EQ(p->find("empty")->expr, "");
  auto bad = parse_policy("\"a\": \"x\"\nnot a mapping\n", "policy.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("policy.yaml:2:", 0), 0u) << bad.error().message;
}

TEST(AuditPolicy, JsonWithLines) {
  auto p = parse_policy("{\n  \"a\": \"@\",\n  \"b\": \"!\"\n}\n", "policy.json");
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->find("b")->line, 3);
  auto bad = parse_policy("{\n  \"a\": \"@\",\n  \"b\" \"!\"\n}\n", "policy.json");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("policy.json:3: invalid JSON", 0), 0u) << bad.error().message;
}

TEST(AuditPolicy, WhoPassesWithoutTheServiceRole) {
  auto p = parse_policy(
      "\"is_service\": \"role:service or service_user_id:abc\"\n"
      "\"member\": \"role:member and project_id:%(project_id)s\"\n"
      "\"loop\": \"rule:loop\"\n",
      "p.yaml");
  ASSERT_TRUE(p.ok());
  auto v = [&](const char* e) { return evaluate_expr_for_non_service(*p, e).non_service_passes; };
  EXPECT_EQ(v("rule:member and rule:is_service"), Tri::kFalse);
  EXPECT_EQ(v("(rule:member or role:admin) and role:service"), Tri::kFalse);
  EXPECT_EQ(v("rule:member or rule:is_service"), Tri::kUnknown);
  EXPECT_EQ(v("!"), Tri::kFalse);
  EXPECT_EQ(v("@"), Tri::kTrue);
  EXPECT_EQ(v(""), Tri::kTrue);
  EXPECT_EQ(v("not rule:is_service"), Tri::kTrue);
  EXPECT_EQ(v("rule:member and not role:service"), Tri::kUnknown);
  EXPECT_EQ(v("role:SERVICE"), Tri::kFalse);
  auto undefined = evaluate_expr_for_non_service(*p, "rule:nowhere and rule:is_service");
  EXPECT_EQ(undefined.non_service_passes, Tri::kFalse);  // the and still needs service
  ASSERT_FALSE(undefined.notes.empty());
  EXPECT_NE(undefined.notes[0].find("rule:nowhere is not defined"), std::string::npos);
  auto loop = evaluate_expr_for_non_service(*p, "rule:loop");
  EXPECT_EQ(loop.non_service_passes, Tri::kUnknown);
  // An absent rule means Cinder's default: not restricted.
  EXPECT_EQ(evaluate_for_non_service(*p, "volume:attachment_delete").non_service_passes, Tri::kUnknown);
}

TEST(AuditImages, GlanceApiShape) {
  auto r = parse_image_list(
      R"({"images":[{"id":"i1","name":"n","status":"active","disk_format":"raw","visibility":"private",
          "instance_uuid":"u1","cinder_encryption_key_id":"k","cinder_encryption_key_deletion_policy":"on_image_deletion"},
         {"id":"i2","disk_format":"qcow2"}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 2u);
  EXPECT_TRUE((*r)[0].has_properties);
  EXPECT_TRUE((*r)[0].looks_like_snapshot());
  EXPECT_TRUE((*r)[0].deletes_key());
  EXPECT_TRUE((*r)[1].has_properties);  // API rows always carry their properties
  EXPECT_FALSE((*r)[1].deletes_key());
}

TEST(AuditImages, OpenstackClientShapes) {
  auto list = parse_image_list(R"([{"ID":"a","Name":"x","Status":"active","Disk Format":"raw"}])");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ((*list)[0].id, "a");
  EXPECT_FALSE((*list)[0].has_properties);  // `image list --long` has no properties column
  auto show = parse_image_list(
      R"({"id":"s","properties":"cinder_encryption_key_deletion_policy='on_image_deletion', image_type='snapshot', x='a, b'"})");
  ASSERT_TRUE(show.ok());
  EXPECT_TRUE((*show)[0].deletes_key());
  EXPECT_EQ((*show)[0].image_type, "snapshot");
  EXPECT_FALSE(parse_image_list("{\"nope\": 1}").ok());
  EXPECT_FALSE(parse_image_list("[1, 2]").ok());
  EXPECT_FALSE(parse_image_list("not json").ok());
}

TEST(AuditPackages, MetadataAndDpkgStatus) {
  auto [name, version] =
      parse_metadata_headers("Metadata-Version: 2.1\r\nName: os_brick\r\nVersion: 6.2.2\r\n\r\nVersion: 9\n");
  EXPECT_EQ(name, "os_brick");
  EXPECT_EQ(version, "6.2.2");
  EXPECT_EQ(normalize_dist_name("os_brick"), "os-brick");
  EXPECT_EQ(normalize_dist_name("Glance.Store"), "glance-store");
  EXPECT_EQ(normalize_dist_name("glance__store"), "glance-store");
  auto pk = parse_dpkg_status(
      "Package: python3-nova\nStatus: install ok installed\nDescription: x\n more\nVersion: 2:25.1.0-0ubuntu1\n\n"
      "Package: python-nova\nStatus: deinstall ok config-files\nVersion: 2:20.6.0-0ubuntu1\n");
  ASSERT_EQ(pk.size(), 2u);
  EXPECT_EQ(pk[0].version, "2:25.1.0-0ubuntu1");
  EXPECT_TRUE(pk[0].installed());
  EXPECT_FALSE(pk[1].installed());
}

TEST(AuditRedaction, SecretsNeverShown) {
  EXPECT_EQ(redact("password", "hunter2"), "<redacted>");
  EXPECT_EQ(redact("application_credential_secret", "s"), "<redacted>");
  EXPECT_EQ(redact("transport_url", "rabbit://openstack:rabbitpass@10.0.0.1:5672/"),
            "rabbit://openstack:<redacted>@10.0.0.1:5672/");
  EXPECT_EQ(redact("connection", "mysql+pymysql://nova:dbpass@db/nova"), "mysql+pymysql://nova:<redacted>@db/nova");
  EXPECT_EQ(redact("send_service_user_token", "true"), "true");
  EXPECT_EQ(redact("service_token_roles_required", "true"), "true");
  EXPECT_EQ(redact("auth_url", "https://keystone:5000/v3"), "https://keystone:5000/v3");
}
