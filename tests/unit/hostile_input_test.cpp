// Input an attacker or a clumsy operator can put on a hypervisor: every parser
// answers with an Error, within bounds, and never throws, recurses without
// limit or echoes a secret (issue 13). Each case crashed, hung or leaked before.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "audit/images.h"
#include "audit/isolated.h"
#include "audit/multipath_conf.h"
#include "audit/policy.h"
#include "common/ini.h"
#include "common/json_input.h"
#include "inventory/cinder.h"
#include "inventory/file_source.h"
#include "sinks/recording.h"
#include "test_util.h"
#include "topology/vpd.h"

using namespace lunwatch;

namespace {

std::string nested(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

// nlohmann throws out_of_range (not parse_error) for 1e400: it used to escape
// every parser that caught only parse_error and kill the agent.
TEST(HostileInput, HugeJsonNumberIsAnErrorNotAThrow) {
  const std::string att = R"({"attachments": [{"attachment_id": "a", "size": 1e400}]})";
  auto a = inventory::parse_attachment_file(att);
  ASSERT_FALSE(a.ok());
  EXPECT_NE(a.error().message.find("out of range"), std::string::npos) << a.error().message;
  auto i = audit::parse_image_list(R"({"images": [{"id": "x", "size": 1e400}]})");
  ASSERT_FALSE(i.ok());
  EXPECT_NE(i.error().message.find("out of range"), std::string::npos) << i.error().message;
  auto p = audit::parse_policy(R"({"volume:delete": "rule:admin", "x": 1e400})", "policy.json");
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.error().message.find("out of range"), std::string::npos) << p.error().message;
}

// Deep nesting overflowed the stack when the document was re-serialised.
TEST(HostileInput, DeepJsonNestingIsRefused) {
  const std::string deep = nested(200000);
  EXPECT_FALSE(parse_json(deep).ok());
  EXPECT_FALSE(inventory::parse_attachment_file(deep).ok());
  EXPECT_FALSE(audit::parse_image_list(deep).ok());
  EXPECT_FALSE(audit::parse_policy("{\"a\": " + deep + "}", "policy.json").ok());
  EXPECT_FALSE(inventory::parse_attachments_page(R"({"attachments": )" + deep + "}").ok());
  EXPECT_FALSE(inventory::parse_keystone_token(R"({"token": )" + deep + "}").ok());
  // connection_info as a JSON string holding deep JSON
  auto page = inventory::parse_attachments_page(
      R"({"attachments": [{"id": "a", "volume_id": "v", "status": "attached", "connection_info": ")" + nested(100000) +
      "\"}]}");
  ASSERT_TRUE(page.ok()) << page.error().message;
  ASSERT_EQ(page->warnings.size(), 1u);
  // Within the limit still parses.
  EXPECT_TRUE(parse_json(nested(60)).ok());
  EXPECT_EQ(json_depth(R"({"a": "[[[[", "b": [1, {"c": "\"]"}]})"), 3);
}

TEST(HostileInput, DeepMultipathConfIsRefused) {
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "b {\n";
  for (int i = 0; i < 100000; ++i) text += "}\n";
  auto r = audit::parse_multipath_conf(text, "multipath.conf");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nested deeper"), std::string::npos) << r.error().message;
  // Real files nest two deep.
  EXPECT_TRUE(audit::parse_multipath_conf("devices {\n device {\n vendor X\n }\n}\n", "m").ok());
}

TEST(HostileInput, LongInterpolationChainIsBounded) {
  std::string text = "[DEFAULT]\n";
  for (int i = 0; i < 100000; ++i) text += "a" + std::to_string(i) + " = $a" + std::to_string(i + 1) + "\n";
  text += "a100000 = end\n";
  auto c = ini::Config::parse(text, "nova.conf");
  ASSERT_TRUE(c.ok());
  auto r = c->resolved("DEFAULT", "a0");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("nested deeper"), std::string::npos) << r.error().message;
  // A short chain still resolves.
  auto ok = c->resolved("DEFAULT", "a99990");
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  EXPECT_EQ(ok.value(), "end");
}

TEST(HostileInput, ExponentialInterpolationIsBoundedInTimeAndSize) {
  std::string text = "[DEFAULT]\n";
  for (int i = 0; i < 40; ++i)
    text += "a" + std::to_string(i) + " = $a" + std::to_string(i + 1) + "$a" + std::to_string(i + 1) + "\n";
  text += "a40 = x\n";
  // And the empty variant: no output growth, only work.
  text += "[e]\n";
  for (int i = 0; i < 12; ++i) {
    text += "e" + std::to_string(i) + " =";
    for (int k = 0; k < 10; ++k) text += " $e" + std::to_string(i + 1);
    text += "\n";
  }
  text += "e12 =\n";
  auto c = ini::Config::parse(text, "nova.conf");
  ASSERT_TRUE(c.ok());
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(c->resolved("DEFAULT", "a0").ok());
  EXPECT_FALSE(c->resolved("e", "e0").ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST(HostileInput, ConfigPathThatNeverEndsIsRefused) {
  auto r = ini::Config::load("/dev/zero");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a regular file"), std::string::npos) << r.error().message;
}

// A password followed (after a blank line) by an indented line: the error
// quoted the line, and so the secret, into logs and the audit report.
TEST(HostileInput, IniErrorsNeverQuoteValues) {
  const std::string secret = "S3cret-Pa55-continued";
  auto r = ini::Config::parse("[keystone_authtoken]\npassword =\n\n    " + secret + "\n", "nova.conf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.find(secret), std::string::npos) << r.error().message;
  auto c = ini::Config::parse("[x]\npassword = ab${unterminated-" + secret + "\n", "n.conf");
  ASSERT_TRUE(c.ok());
  auto v = c->resolved("x", "password");
  ASSERT_FALSE(v.ok());
  EXPECT_EQ(v.error().message.find(secret), std::string::npos) << v.error().message;
}

// time_point<system_clock> counts nanoseconds in int64: 2300 overflowed into
// the past (signed overflow), so the token looked expired (or worse).
TEST(HostileInput, KeystoneExpiryAfter2262IsClamped) {
  auto t = inventory::parse_keystone_token(R"({"token": {"expires_at": "2300-01-01T00:00:00.000000Z"}})");
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_TRUE(t->expires_at.has_value());
  auto years =
      std::chrono::duration_cast<std::chrono::hours>(*t->expires_at - std::chrono::system_clock::now()).count() /
      (24 * 365);
  EXPECT_GT(years, 100);
}

// A recording cut inside the length varint of a record was read as complete.
TEST(HostileInput, RecordingTruncatedInsideALengthIsTruncated) {
  testutil::TempDir dir;
  std::string path = dir.path() + "/r.rec";
  {
    auto w = sinks::RecordWriter::open(path);
    ASSERT_TRUE(w.ok()) << w.error().message;
    for (int i = 0; i < 2; ++i) {
      v1::Event ev;
      ev.mutable_flow()->set_comm(std::string(300, 'c'));  // > 127 bytes: a two-byte length
      ASSERT_TRUE(w.value()->write(ev));
    }
  }
  auto size = std::filesystem::file_size(path);
  uint64_t n = 0;
  auto whole = sinks::read_recording(path, [&](v1::Event&&) { n++; });
  ASSERT_TRUE(whole.ok()) << whole.error().message;
  ASSERT_EQ(whole.value(), 2u);
  // Find the second record's length: the file is magic, varint, body, varint, body.
  size_t record = (size - (sizeof(sinks::kRecordingMagic) - 1)) / 2;
  std::filesystem::resize_file(path, size - record + 1);  // one byte of the second length
  auto cut = sinks::read_recording(path, [&](v1::Event&&) {});
  ASSERT_FALSE(cut.ok()) << "read " << cut.value() << " records as complete";
  EXPECT_EQ(cut.error().code, Errc::kTruncated);
}

namespace {
audit::Report crashing_audit(const audit::AuditOptions&) {
  ::raise(SIGSEGV);
  return {};
}
audit::Report hanging_audit(const audit::AuditOptions&) {
  for (;;) ::pause();
}
audit::Report one_finding_audit(const audit::AuditOptions&) {
  audit::Report r;
  audit::Finding f;
  f.id = "LW-AUDIT-TEST";
  f.severity = audit::Severity::kHigh;
  r.findings.push_back(f);
  return r;
}
audit::Report wait_for(audit::IsolatedAudit& a, std::chrono::seconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (auto r = a.poll()) return *r;
    ::usleep(10000);
  }
  ADD_FAILURE() << "the isolated audit did not finish in " << limit.count() << " s";
  return {};
}
}  // namespace

// The agent's built-in audit crashed the agent (deep multipath.conf): now a
// crash or a hang in the audit costs a finding.
TEST(HostileInput, AuditCrashOrHangCostsAFindingNotTheCaller) {
  audit::IsolatedAudit a;
  ASSERT_TRUE(a.start({}, std::chrono::seconds(20), crashing_audit));
  auto r = wait_for(a, std::chrono::seconds(20));
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].id, "LW-AUDIT-CRASHED");
  EXPECT_NE(r.findings[0].title.find("signal 11"), std::string::npos) << r.findings[0].title;

  ASSERT_TRUE(a.start({}, std::chrono::milliseconds(300), hanging_audit));
  r = wait_for(a, std::chrono::seconds(20));
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].id, "LW-AUDIT-TIMEOUT");

  ASSERT_TRUE(a.start({}, std::chrono::seconds(20), one_finding_audit));
  r = wait_for(a, std::chrono::seconds(20));
  ASSERT_EQ(r.findings.size(), 1u);
  EXPECT_EQ(r.findings[0].id, "LW-AUDIT-TEST");
  EXPECT_EQ(r.findings[0].severity, audit::Severity::kHigh);
}

// An array with many designators answers a VPD 0x83 page longer than the 252
// bytes asked for: the whole page was rejected although the NAA designator
// had arrived intact.
TEST(HostileInput, Vpd83CutByTheAllocationLengthKeepsWholeDesignators) {
  std::vector<uint8_t> page = {0x00, 0x83, 0x01, 0x2c};  // says 300 bytes follow
  std::vector<uint8_t> naa = {0x01, 0x03, 0x00, 0x10, 0x60, 0x01, 0x40, 0x50, 0xaa, 0xbb,
                              0xcc, 0xdd, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77};
  page.insert(page.end(), naa.begin(), naa.end());
  while (page.size() + 4 + 60 <= 252) {  // target-port designators (association 1) fill the page
    std::vector<uint8_t> d = {0x02, 0x18, 0x00, 60};
    d.resize(4 + 60, 'p');
    page.insert(page.end(), d.begin(), d.end());
  }
  std::vector<uint8_t> cut = {0x02, 0x18, 0x00, 60, 'p', 'p'};  // the allocation length ends inside this one
  page.insert(page.end(), cut.begin(), cut.end());
  page.resize(std::min<size_t>(page.size(), 252));
  auto r = topology::parse_vpd83(page);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value(),
            "naa.6001405"
            "0aabbccdd0011223344556677");
}
