// `lunwatch audit` end to end through run_audit() on fixture host trees
// (tests/fixtures/audit/hosts/*) and on small trees built per test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "audit/audit.h"

using namespace lunwatch::audit;
namespace fs = std::filesystem;

namespace {

const std::string kHosts = std::string(LUNWATCH_FIXTURES) + "/audit/hosts/";
const std::string kImages = std::string(LUNWATCH_FIXTURES) + "/audit/images/";

Report audit_host(const std::string& name, std::vector<std::string> skip = {}, std::string images = "") {
  AuditOptions o;
  o.root = kHosts + name;
  o.skip = std::move(skip);
  o.images_file = std::move(images);
  return run_audit(o);
}

std::multiset<std::string> ids(const Report& r) {
  std::multiset<std::string> out;
  for (const auto& f : r.findings) out.insert(f.id);
  return out;
}

const Finding* find(const Report& r, const std::string& id, const std::string& subject = "") {
  for (const auto& f : r.findings)
    if (f.id == id && (subject.empty() || f.subject == subject)) return &f;
  return nullptr;
}

const CheckResult* check(const Report& r, const std::string& id) {
  for (const auto& c : r.checks)
    if (c.id == id) return &c;
  return nullptr;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// A scratch host tree, removed at the end of the test.
class TempHost {
 public:
  TempHost() {
    static int n = 0;
    root_ = fs::temp_directory_path() / ("lw_audit_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(root_);
  }
  ~TempHost() { fs::remove_all(root_); }
  void write(const std::string& rel, const std::string& text) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << text;
  }
  void mkdir(const std::string& rel) { fs::create_directories(root_ / rel); }
  void symlink(const std::string& target, const std::string& rel) {
    fs::create_directories((root_ / rel).parent_path());
    fs::create_symlink(target, root_ / rel);
  }
  std::string root() const { return root_.string(); }
  Report audit(std::map<std::string, std::string> versions = {}) {
    AuditOptions o;
    o.root = root();
    o.package_versions = std::move(versions);
    return run_audit(o);
  }

 private:
  fs::path root_;
};

constexpr const char* kTrainDefault =
    "cache_in_nova,bittorrent,img_signature_hash_method,img_signature,img_signature_key_type,"
    "img_signature_certificate_uuid";

}  // namespace

TEST(AuditHost, ExposedHostReportsEveryGap) {
  Report r = audit_host("exposed", {}, kImages + "glance-v2.json");
  EXPECT_EQ(
      ids(r),
      (std::multiset<std::string>{
          "LW-AUDIT-OSBRICK-VERSION", "LW-AUDIT-NOVA-VERSION", "LW-AUDIT-CINDER-VERSION",
          "LW-AUDIT-GLANCESTORE-VERSION", "LW-AUDIT-NOVA-SERVICE-TOKEN", "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES-REQUIRED",
          "LW-AUDIT-CINDER-POLICY-OSSN0092-MISSING", "LW-AUDIT-MULTIPATH-RECHECK-WWID",
          "LW-AUDIT-LIVE-MPATH-MIXED-WWID", "LW-AUDIT-LIVE-LEFTOVER-MPATH", "LW-AUDIT-LIVE-LEFTOVER-SCSI",
          "LW-AUDIT-LIVE-IDLE-ISCSI-SESSION", "LW-AUDIT-IMAGE-KEY-DELETION", "LW-AUDIT-IMAGE-KEY-SHARED"}));
  EXPECT_EQ(exit_status(r), 1);

  // Versions come from dpkg, once each (the dist-packages egg-info is dpkg's).
  const Finding* brick = find(r, "LW-AUDIT-OSBRICK-VERSION");
  ASSERT_NE(brick, nullptr);
  EXPECT_EQ(brick->severity, Severity::kHigh);
  EXPECT_TRUE(ends_with(brick->evidence[0].file, "var/lib/dpkg/status"));
  EXPECT_EQ(brick->evidence[0].key, "python3-os-brick");
  EXPECT_EQ(brick->evidence[0].value, "6.1.0-0ubuntu1");
  EXPECT_TRUE(contains(brick->fix, "apt-get install --only-upgrade python3-os-brick"));
  EXPECT_TRUE(contains(brick->fix, "6.1.1 or later"));
  const Finding* nova = find(r, "LW-AUDIT-NOVA-VERSION");
  ASSERT_NE(nova, nullptr);
  EXPECT_TRUE(contains(nova->evidence[0].note, "changelog.Debian.gz does not name CVE-2023-2088"));
  EXPECT_TRUE(contains(nova->fix, "26.1.2 or later"));

  const Finding* token = find(r, "LW-AUDIT-NOVA-SERVICE-TOKEN");
  ASSERT_NE(token, nullptr);
  EXPECT_TRUE(ends_with(token->evidence[0].file, "etc/nova/nova.conf"));
  EXPECT_EQ(token->evidence[0].section, "service_user");
  EXPECT_FALSE(token->evidence[0].value_set);
  EXPECT_TRUE(contains(token->evidence[0].note, "no [service_user] section"));
  EXPECT_TRUE(contains(token->fix, "send_service_user_token = true"));

  const Finding* roles = find(r, "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES-REQUIRED");
  ASSERT_NE(roles, nullptr);
  EXPECT_EQ(roles->evidence[0].line, 5);  // the [keystone_authtoken] header
  EXPECT_EQ(roles->fix, "[keystone_authtoken]\nservice_token_roles_required = true");

  const Finding* mp = find(r, "LW-AUDIT-MULTIPATH-RECHECK-WWID");
  ASSERT_NE(mp, nullptr);
  EXPECT_EQ(mp->severity, Severity::kMedium);  // Nova uses multipath here
  EXPECT_TRUE(contains(mp->fix, "recheck_wwid yes"));

  // Live state: dm-0 (by-id link) and sde (FC by-path) and dm-2 (persistent
  // XML) are in use; dm-1/sdc, sdd and session2 are leftovers.
  ASSERT_NE(find(r, "LW-AUDIT-LIVE-LEFTOVER-MPATH", "mpathb (dm-1)"), nullptr);
  EXPECT_TRUE(contains(find(r, "LW-AUDIT-LIVE-LEFTOVER-MPATH")->fix, "multipath -f mpathb"));
  EXPECT_TRUE(contains(find(r, "LW-AUDIT-LIVE-LEFTOVER-MPATH")->fix, "echo 1 > /sys/block/sdc/device/delete"));
  ASSERT_NE(find(r, "LW-AUDIT-LIVE-LEFTOVER-SCSI", "sdd (4:0:0:1)"), nullptr);
  EXPECT_EQ(find(r, "LW-AUDIT-LIVE-LEFTOVER-SCSI")->evidence[0].value, "naa.600a0b80000000000000000000000003");
  ASSERT_NE(find(r, "LW-AUDIT-LIVE-IDLE-ISCSI-SESSION", "session2"), nullptr);
  EXPECT_TRUE(contains(find(r, "LW-AUDIT-LIVE-IDLE-ISCSI-SESSION")->fix, "-p 192.0.2.11:3260 --logout"));
  const Finding* mixed = find(r, "LW-AUDIT-LIVE-MPATH-MIXED-WWID", "mpathc (dm-2)");
  ASSERT_NE(mixed, nullptr);
  EXPECT_TRUE(contains(mixed->evidence[0].note, "Used by: instance-00000003"));

  const Finding* img = find(r, "LW-AUDIT-IMAGE-KEY-DELETION");
  ASSERT_NE(img, nullptr);
  EXPECT_EQ(img->subject, "22222222-bbbb-4bbb-8bbb-000000000002 (snap-of-broken-server)");
  EXPECT_TRUE(contains(img->evidence[0].note, "same key in: 11111111-aaaa-4aaa-8aaa-000000000001"));
  EXPECT_EQ(find(r, "LW-AUDIT-IMAGE-KEY-SHARED")->subject,
            "11111111-aaaa-4aaa-8aaa-000000000001 (encrypted-volume-upload)");

  EXPECT_EQ(check(r, "nova.non_inheritable_image_properties")->status, CheckStatus::kNotApplicable);
}

TEST(AuditHost, SecretsNeverReachTheOutput) {
  Report r = audit_host("exposed");
  std::string all = to_json(r).dump() + format_text(r);
  for (const char* secret : {"cinder-sekrit", "sekrit-authtoken", "rabbitpass"})
    EXPECT_FALSE(contains(all, secret)) << secret;
  TempHost h;
  h.write("etc/nova/nova.conf",
          "[service_user]\nsend_service_user_token = true\nauth_type = password\nauth_url = http://k/v3\n"
          "username = nova\npassword = pw-THAT-MUST-NOT-SHOW\n");
  Report r2 = h.audit({{"nova", "26.1.2"}});
  ASSERT_NE(find(r2, "LW-AUDIT-NOVA-SERVICE-USER-AUTH"), nullptr);
  EXPECT_FALSE(contains(to_json(r2).dump() + format_text(r2), "pw-THAT-MUST-NOT-SHOW"));
}

TEST(AuditHost, FixedHostIsClean) {
  Report r = audit_host("fixed");
  EXPECT_TRUE(r.findings.empty()) << format_text(r);
  EXPECT_EQ(exit_status(r), 0);
  for (const char* id : {"versions.os-brick", "versions.nova", "versions.cinder", "versions.glance_store",
                         "nova.service_user", "nova.volume_use_multipath", "cinder.service_token", "cinder.policy",
                         "multipath.recheck_wwid", "live.scsi", "live.iscsi_sessions"})
    EXPECT_EQ(check(r, id)->status, CheckStatus::kOk) << id << ": " << check(r, id)->reason;
  // Versions from a venv dist-info, /usr/local dist-info, an egg-info
  // directory and a single-file egg-info.
  EXPECT_TRUE(contains(check(r, "versions.nova")->reason, "openstack/venvs/nova-27.1.0"));
  EXPECT_TRUE(contains(check(r, "versions.glance_store")->reason, "glance_store 4.3.1"));
  EXPECT_TRUE(contains(check(r, "multipath.recheck_wwid")->reason, "recheck_wwid yes"));
  EXPECT_TRUE(contains(check(r, "cinder.policy")->reason, "not needed"));
}

TEST(AuditHost, MitigatedOnlyHost) {
  Report r = audit_host("mitigated", {"live"});
  EXPECT_EQ(ids(r), (std::multiset<std::string>{"LW-AUDIT-NOVA-VERSION", "LW-AUDIT-CINDER-VERSION",
                                                "LW-AUDIT-CINDER-POLICY-OSSN0092"}));
  // The Ubuntu os-brick carries the backport: its changelog names the CVE.
  EXPECT_EQ(check(r, "versions.os-brick")->status, CheckStatus::kOk);
  EXPECT_TRUE(contains(check(r, "versions.os-brick")->reason, "names CVE-2023-2088"));
  // The stopgap is a mitigation (info) and lowers Cinder's finding.
  const Finding* pol = find(r, "LW-AUDIT-CINDER-POLICY-OSSN0092");
  ASSERT_NE(pol, nullptr);
  EXPECT_EQ(pol->severity, Severity::kInfo);
  ASSERT_EQ(pol->evidence.size(), 4u);
  EXPECT_TRUE(ends_with(pol->evidence[0].file, "etc/cinder/policy.json"));
  EXPECT_EQ(pol->evidence[3].key, "volume_extension:volume_admin_actions:force_detach");
  EXPECT_EQ(pol->evidence[3].value, "!");
  const Finding* cinder = find(r, "LW-AUDIT-CINDER-VERSION");
  ASSERT_NE(cinder, nullptr);
  EXPECT_EQ(cinder->severity, Severity::kMedium);
  EXPECT_TRUE(contains(cinder->evidence[0].note, "OSSN-0092 policy stopgap is in place"));
  EXPECT_TRUE(contains(cinder->fix, "no fixed release exists for this series"));
  // auth options through auth_section, application credential: complete.
  EXPECT_EQ(check(r, "nova.service_user")->status, CheckStatus::kOk);
}

TEST(AuditHost, PartiallyConfiguredHost) {
  Report r = audit_host("partial", {"live"});
  EXPECT_EQ(ids(r),
            (std::multiset<std::string>{"LW-AUDIT-NOVA-SERVICE-USER-AUTH", "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES",
                                        "LW-AUDIT-NOVA-MULTIPATH", "LW-AUDIT-CINDER-POLICY-OSSN0092-PARTIAL",
                                        "LW-AUDIT-MULTIPATH-RECHECK-WWID-UNSUPPORTED"}));
  const Finding* auth = find(r, "LW-AUDIT-NOVA-SERVICE-USER-AUTH");
  ASSERT_NE(auth, nullptr);
  EXPECT_EQ(auth->evidence[0].key, "auth_type");
  EXPECT_EQ(auth->evidence[0].line, 4);
  EXPECT_TRUE(contains(auth->evidence[0].note, "missing: password, user_domain_name (or user_domain_id)"));
  EXPECT_TRUE(contains(auth->fix, "password = <the nova service user's password>"));
  const Finding* roles = find(r, "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES");
  EXPECT_EQ(roles->evidence[0].value, "admin");
  const Finding* pol = find(r, "LW-AUDIT-CINDER-POLICY-OSSN0092-PARTIAL");
  ASSERT_NE(pol, nullptr);
  EXPECT_EQ(pol->severity, Severity::kLow);  // Cinder 21.2.1 is fixed anyway
  std::set<std::string> open;
  for (const auto& e : pol->evidence) open.insert(e.key);
  EXPECT_EQ(open, (std::set<std::string>{"volume_extension:volume_actions:terminate_connection",
                                         "volume_extension:volume_admin_actions:force_detach"}));
  const Finding* mp = find(r, "LW-AUDIT-MULTIPATH-RECHECK-WWID-UNSUPPORTED");
  EXPECT_TRUE(contains(mp->evidence[0].note, "this version ignores recheck_wwid"));
  EXPECT_EQ(mp->evidence[0].line, 2);
}

TEST(AuditHost, TrainDefaultOfNonInheritableImageProperties) {
  Report r = audit_host("train", {"live"});
  const Finding* f = find(r, "LW-AUDIT-NOVA-NONINHERITABLE");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->severity, Severity::kHigh);
  EXPECT_FALSE(f->evidence[0].value_set);
  EXPECT_EQ(f->evidence[0].value, kTrainDefault);
  EXPECT_TRUE(contains(f->evidence[0].note,
                       "missing: cinder_encryption_key_id, cinder_encryption_key_deletion_policy (Train's default"));
  EXPECT_TRUE(contains(f->fix, std::string("non_inheritable_image_properties = ") + kTrainDefault +
                                   ",cinder_encryption_key_id,cinder_encryption_key_deletion_policy"));
  EXPECT_EQ(find(r, "LW-AUDIT-NOVA-NONINHERITABLE-HINT"), nullptr);
  // Python 2.7 egg-info versions; the RPM database is seen but not read.
  EXPECT_TRUE(contains(find(r, "LW-AUDIT-NOVA-VERSION")->fix, "no fixed release exists"));
  EXPECT_EQ(check(r, "versions.cinder")->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(check(r, "versions.cinder")->reason, "could not check: rpm database needs rpm"));
  EXPECT_TRUE(contains(check(r, "versions.nova")->reason, "not read (needs rpm)"));
}

TEST(AuditHost, TrainDefaultWrittenOutIsStillExposed) {
  TempHost h;
  h.write("etc/nova/nova.conf", std::string("[DEFAULT]\nnon_inheritable_image_properties = ") + kTrainDefault + "\n");
  Report r = h.audit({{"nova", "20.6.0"}});
  const Finding* f = find(r, "LW-AUDIT-NOVA-NONINHERITABLE");
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(f->evidence[0].value_set);
  EXPECT_EQ(f->evidence[0].line, 2);
  EXPECT_EQ(f->evidence[0].value, kTrainDefault);
}

TEST(AuditHost, NonInheritableCompleteButWithoutTrainsDefaultsGivesAHint) {
  TempHost h;
  h.write("etc/nova/nova.conf",
          "[DEFAULT]\nnon_inheritable_image_properties = cinder_encryption_key_id,\n"
          "    cinder_encryption_key_deletion_policy, img_signature_hash_method,img_signature,\n"
          "    img_signature_key_type,img_signature_certificate_uuid,my_own_prop\n");
  Report r = h.audit({{"nova", "20.6.0"}});
  EXPECT_EQ(find(r, "LW-AUDIT-NOVA-NONINHERITABLE"), nullptr);
  const Finding* hint = find(r, "LW-AUDIT-NOVA-NONINHERITABLE-HINT");
  ASSERT_NE(hint, nullptr);
  EXPECT_EQ(hint->severity, Severity::kInfo);
  EXPECT_TRUE(contains(hint->evidence[0].note, "missing: cache_in_nova, bittorrent"));
  EXPECT_TRUE(contains(hint->fix, "my_own_prop,cache_in_nova,bittorrent"));  // keeps the operator's items
  // On Nova 21+ the same file is not applicable.
  Report u = h.audit({{"nova", "21.0.0"}});
  EXPECT_EQ(check(u, "nova.non_inheritable_image_properties")->status, CheckStatus::kNotApplicable);
}

TEST(AuditHost, UnknownNovaVersionIsNotGuessed) {
  TempHost h;
  h.write("etc/nova/nova.conf", "[DEFAULT]\n");
  Report r = h.audit();
  const CheckResult* c = check(r, "nova.non_inheritable_image_properties");
  EXPECT_EQ(c->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(c->reason, "--package-version nova=VERSION"));
  EXPECT_EQ(find(r, "LW-AUDIT-NOVA-NONINHERITABLE"), nullptr);
}

TEST(AuditHost, UnreadableFilesAreCouldNotCheck) {
  TempHost h;
  h.mkdir("etc/nova/nova.conf");                                    // a directory where the file should be
  h.symlink("/nonexistent/cinder.conf", "etc/cinder/cinder.conf");  // a dangling symlink
  h.mkdir("sys/class");
  Report r = h.audit();
  const CheckResult* n = check(r, "nova.service_user");
  EXPECT_EQ(n->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(n->reason, "nova.conf: is a directory")) << n->reason;
  const CheckResult* c = check(r, "cinder.service_token");
  EXPECT_EQ(c->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(c->reason, "dangling symlink to /nonexistent/cinder.conf")) << c->reason;
  EXPECT_TRUE(r.findings.empty());
  EXPECT_EQ(exit_status(r), 2);
}

TEST(AuditHost, MalformedConfigSaysFileAndLine) {
  TempHost h;
  h.write("etc/nova/nova.conf", "[DEFAULT]\ndebug = true\n[service_user\nsend_service_user_token = true\n");
  Report r = h.audit();
  const CheckResult* c = check(r, "nova.service_user");
  EXPECT_EQ(c->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(c->reason, "etc/nova/nova.conf:3: section header without closing ']'")) << c->reason;
}

TEST(AuditHost, InterpolationLoopIsReportedNotFollowed) {
  TempHost h;
  h.write("etc/nova/nova.conf", "[service_user]\nsend_service_user_token = $a\na = $send_service_user_token\n");
  Report r = h.audit();
  const CheckResult* c = check(r, "nova.service_user");
  EXPECT_EQ(c->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(c->reason, "interpolation loop")) << c->reason;
}

TEST(AuditHost, InvalidBooleansAndMissingSections) {
  TempHost h;
  h.write("etc/nova/nova.conf",
          "[service_user]\nsend_service_user_token = enabled\n[libvirt]\nvolume_use_multipath = maybe\n");
  h.write("etc/cinder/cinder.conf", "[DEFAULT]\nauth_strategy = keystone\n");
  Report r = h.audit({{"nova", "27.1.0"}, {"cinder", "22.1.0"}});
  const Finding* t = find(r, "LW-AUDIT-NOVA-SERVICE-TOKEN");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->evidence[0].value, "enabled");
  EXPECT_TRUE(contains(t->evidence[0].note, "not a boolean"));
  const Finding* mp = find(r, "LW-AUDIT-CONF-INVALID-VALUE");
  ASSERT_NE(mp, nullptr);
  EXPECT_EQ(mp->evidence[0].line, 4);
  const Finding* c = find(r, "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES-REQUIRED");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(contains(c->evidence[0].note, "no [keystone_authtoken] section"));
}

TEST(AuditHost, ImageListShapes) {
  Report list = audit_host("fixed", {"live"}, kImages + "osc-list-long.json");
  EXPECT_EQ(check(list, "images.key_deletion")->status, CheckStatus::kCouldNotCheck);
  EXPECT_TRUE(contains(check(list, "images.key_deletion")->reason, "carries no image properties"));
  Report show = audit_host("fixed", {"live"}, kImages + "osc-show.json");
  EXPECT_EQ(ids(show), (std::multiset<std::string>{"LW-AUDIT-IMAGE-KEY-DELETION", "LW-AUDIT-IMAGE-KEY-DELETION"}));
  Report none = audit_host("fixed", {"live"}, kImages + "does-not-exist.json");
  EXPECT_EQ(check(none, "images.key_deletion")->status, CheckStatus::kCouldNotCheck);
}

TEST(AuditHost, SkipAndMissingRoot) {
  Report r = audit_host("exposed", {"live", "versions"});
  EXPECT_EQ(check(r, "live.scsi")->reason, "skipped (--skip)");
  EXPECT_EQ(check(r, "versions.nova")->status, CheckStatus::kNotApplicable);
  EXPECT_EQ(find(r, "LW-AUDIT-LIVE-LEFTOVER-SCSI"), nullptr);
  EXPECT_EQ(find(r, "LW-AUDIT-NOVA-VERSION"), nullptr);
  AuditOptions o;
  o.root = kHosts + "no-such-host";
  Report missing = run_audit(o);
  EXPECT_EQ(exit_status(missing), 2);
}

TEST(AuditHost, JsonShape) {
  Report r = audit_host("partial", {"live"});
  auto j = to_json(r);
  EXPECT_EQ(j["schema"], "lunwatch.audit.v1");
  EXPECT_EQ(j["exit_status"], 1);
  EXPECT_EQ(j["summary"]["findings"], r.findings.size());
  EXPECT_EQ(j["summary"]["by_severity"]["high"], 1);
  EXPECT_EQ(j["checks"].size(), check_ids().size());
  bool seen = false;
  for (const auto& f : j["findings"]) {
    if (f["id"] != "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES") continue;
    seen = true;
    EXPECT_EQ(f["severity"], "medium");
    EXPECT_EQ(f["check"], "cinder.service_token");
    EXPECT_EQ(f["evidence"][0]["section"], "keystone_authtoken");
    EXPECT_EQ(f["evidence"][0]["key"], "service_token_roles");
    EXPECT_EQ(f["evidence"][0]["line"], 3);
    EXPECT_EQ(f["evidence"][0]["value"], "admin");
    EXPECT_EQ(f["fix"], "[keystone_authtoken]\nservice_token_roles = service");
  }
  EXPECT_TRUE(seen);
  // Absent options are null, not "".
  Report t = audit_host("train", {"live"});
  for (const auto& f : to_json(t)["findings"]) {
    if (f["id"] == "LW-AUDIT-NOVA-SERVICE-TOKEN") {
      EXPECT_TRUE(f["evidence"][0]["value"].is_null());
    }
  }
}
