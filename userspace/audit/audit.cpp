#include "audit/audit.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

#include "audit/fsutil.h"
#include "audit/images.h"
#include "audit/live.h"
#include "audit/multipath_conf.h"
#include "audit/packages.h"
#include "audit/policy.h"
#include "audit/version.h"
#include "common/ini.h"

namespace lunwatch::audit {
namespace {

// ---------------------------------------------------------------------------
// Facts from OSSA-2023-003 and Nova bug 1852106 (see README.md for sources).

struct ComponentSpec {
  const char* component;
  const char* finding_id;
  const char* affected;      // the advisory's notation
  const char* first_series;  // oldest series with a fixed release
  const char* first_series_name;
  const char* fixed_summary;
  const char* pip_name;
  Severity severity;
  const char* role;  // what the component does in the CVE
};

const std::vector<ComponentSpec>& component_specs() {
  static const std::vector<ComponentSpec> k = {
      {"os-brick", "LW-AUDIT-OSBRICK-VERSION", "<5.2.3, >=6.0.0 <6.1.1, >=6.2.0 <6.2.2", "5.2", "Yoga",
       "5.2.3 (Yoga), 6.1.1 (Zed), 6.2.2 (2023.1)", "os-brick", Severity::kHigh,
       "disconnects volumes from this host; affected versions leave the SCSI device behind when a detach fails"},
      {"nova", "LW-AUDIT-NOVA-VERSION", "<25.1.2, >=26.0.0 <26.1.2, ==27.0.0", "25", "Yoga",
       "25.1.2 (Yoga), 26.1.2 (Zed), a 27.x release after 27.0.0 (2023.1)", "nova", Severity::kHigh,
       "ignores failed detaches and sends no service token in affected versions"},
      {"cinder", "LW-AUDIT-CINDER-VERSION", "<20.2.1, >=21.0.0 <21.2.1, ==22.0.0", "20", "Yoga",
       "20.2.1 (Yoga), 21.2.1 (Zed), a 22.x release after 22.0.0 (2023.1)", "cinder", Severity::kHigh,
       "lets any project member delete an in-use attachment in affected versions (the intentional case)"},
      {"glance_store", "LW-AUDIT-GLANCESTORE-VERSION", "<3.0.1, >=4.0.0 <4.1.1, >=4.2.0 <4.3.1", "3.0", "Yoga",
       "3.0.1 (Yoga), 4.1.1 (Zed), 4.3.1 (2023.1)", "glance_store", Severity::kMedium,
       "attaches volumes to the Glance host when Glance uses the cinder store"},
  };
  return k;
}

// Nova bug 1852106: what [DEFAULT] non_inheritable_image_properties must hold
// on Train, and Train's default (nova/conf/compute.py, stable/train).
const std::vector<std::string> kRequiredNonInheritable = {
    "cinder_encryption_key_id", "cinder_encryption_key_deletion_policy", "img_signature_hash_method", "img_signature",
    "img_signature_key_type",   "img_signature_certificate_uuid"};
const std::vector<std::string> kTrainDefaultNonInheritable = {"cache_in_nova",
                                                              "bittorrent",
                                                              "img_signature_hash_method",
                                                              "img_signature",
                                                              "img_signature_key_type",
                                                              "img_signature_certificate_uuid"};
const std::vector<std::string> kHintNonInheritable = {"cache_in_nova", "bittorrent"};

// The OSSN-0092 stopgap rules.
const std::vector<std::string> kOssn0092Rules = {
    "volume:attachment_delete", "volume_extension:volume_actions:terminate_connection",
    "volume_extension:volume_actions:detach", "volume_extension:volume_admin_actions:force_detach"};

// ---------------------------------------------------------------------------

struct Outcome {
  CheckStatus status = CheckStatus::kOk;
  std::string reason;
  std::vector<Finding> findings;
};
Outcome not_applicable(std::string why) { return {CheckStatus::kNotApplicable, std::move(why), {}}; }
Outcome could_not_check(std::string why) { return {CheckStatus::kCouldNotCheck, std::move(why), {}}; }
Outcome ok(std::string note = "") { return {CheckStatus::kOk, std::move(note), {}}; }

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + v[i];
  return out;
}

// A set of oslo.config files read as one (later files win).
struct ConfSet {
  bool present = false;  // at least one file exists
  std::string error;     // why it cannot be checked ("" when loaded)
  std::string primary;   // the main file, for evidence on absent options
  std::vector<std::string> files;
  ini::Config cfg;
};

ConfSet load_conf_set(const std::vector<std::string>& candidates, bool explicit_files) {
  ConfSet cs;
  bool first = true;
  for (const auto& path : candidates) {
    Probe p = probe_file(path);
    if (p.state == FileState::kAbsent) {
      if (explicit_files) {
        cs.present = true;
        cs.error = path + ": not found";
        return cs;
      }
      continue;
    }
    cs.present = true;
    if (cs.primary.empty()) cs.primary = path;
    if (p.state == FileState::kUnreadable) {
      cs.error = path + ": " + p.reason;
      return cs;
    }
    auto c = ini::Config::load(path);
    if (!c) {
      cs.error = c.error().message;
      return cs;
    }
    if (first) {
      cs.cfg = std::move(c.value());
      first = false;
    } else {
      cs.cfg.merge(c.value());
    }
    cs.files.push_back(path);
  }
  return cs;
}

Evidence evidence_for(const ConfSet& cs, const std::string& section, const std::string& key, const ini::Entry* e,
                      const std::string& shown_value, std::string note = "") {
  Evidence ev;
  ev.section = section;
  ev.key = key;
  ev.note = std::move(note);
  if (e) {
    ev.file = e->file;
    ev.line = e->line;
    ev.value = redact(key, shown_value);
    ev.value_set = true;
  } else {
    const ini::Section* s = cs.cfg.section(section);
    ev.file = s ? s->file : cs.primary;
    ev.line = s ? s->line : 0;
  }
  return ev;
}

struct Ctx {
  const AuditOptions& opt;
  std::string sysfs;
  PackageScan pkgs;
  ConfSet nova;
  ConfSet cinder;
  std::optional<LiveState> live_;
  const LiveState& live() {
    if (!live_) live_ = scan_live(opt.root, sysfs);
    return *live_;
  }
  std::string where(const std::string& p) const { return under(opt.root, p); }
};

// --- versions --------------------------------------------------------------

std::string install_label(const Installation& i) {
  if (i.source == "dpkg") return i.package + " " + i.raw_version + " (dpkg)";
  if (i.source == "override") return i.component + " " + i.raw_version + " (--package-version)";
  return i.package + " " + i.raw_version + " (" + i.path + ")";
}

bool is_affected(const ComponentSpec& spec, const Version& v) {
  for (const auto& r : parse_ranges(spec.affected))
    if (r.contains(v)) return true;
  return false;
}

// The fixed release of v's series, or "" when that series got none.
std::string fixed_target(const ComponentSpec& spec, const Version& v) {
  auto floor = Version::parse(spec.first_series);
  if (floor && v < *floor) return "";
  for (const auto& r : parse_ranges(spec.affected)) {
    if (!r.contains(v) || !r.hi) continue;
    if (r.hi->post) return "a release newer than " + r.lo->str();
    return r.hi->str() + " or later";
  }
  return "";
}

std::string upgrade_command(const ComponentSpec& spec, const Installation& i, const std::string& target) {
  std::string min = target.substr(0, target.find(' '));
  if (i.source == "dpkg")
    return "apt-get install --only-upgrade " + i.package + "   # to a package carrying upstream " + target +
           " or the CVE-2023-2088 backport";
  if (i.source == "override")
    return "upgrade the image or environment that runs " + std::string(spec.component) + " to " + target;
  std::string pip = "pip install --upgrade '" + std::string(spec.pip_name) + ">=" + min + "'";
  if (target.rfind("a release newer", 0) == 0) pip = "pip install --upgrade " + std::string(spec.pip_name);
  return pip + "   # in the environment of " + i.path;
}

Outcome check_version(Ctx& c, const ComponentSpec& spec, bool cinder_stopgap) {
  auto installs = c.pkgs.of(spec.component);
  if (installs.empty()) {
    if (!c.pkgs.rpm_db.empty())
      return could_not_check("could not check: rpm database needs rpm (" + c.pkgs.rpm_db + "), and no " +
                             spec.component + " Python metadata was found; pass --package-version " + spec.component +
                             "=VERSION");
    if (!c.pkgs.dpkg_error.empty()) return could_not_check("could not check: " + c.pkgs.dpkg_error);
    return not_applicable(std::string(spec.component) + " is not installed (dpkg status" +
                          (c.pkgs.dpkg_present ? "" : " absent") + ", " + std::to_string(c.pkgs.python_dirs.size()) +
                          " Python package directories searched)");
  }
  Outcome out;
  std::vector<std::string> notes;
  bool unparsed = false;
  for (const Installation* i : installs) {
    if (!i->version) {
      unparsed = true;
      notes.push_back(install_label(*i) + ": version not understood");
      continue;
    }
    const Version& v = *i->version;
    if (!is_affected(spec, v)) {
      notes.push_back(install_label(*i) + ": not affected");
      continue;
    }
    if (i->source == "dpkg" && i->changelog_names_cve) {
      notes.push_back(install_label(*i) + ": upstream " + v.str() + " is in the affected range, but " +
                      i->changelog_path + " names CVE-2023-2088 (distribution backport)");
      continue;
    }
    Finding f;
    f.id = spec.finding_id;
    f.severity = spec.severity;
    f.subject = install_label(*i);
    f.title = std::string(spec.component) + " " + v.str() + " is affected by CVE-2023-2088 (OSSA-2023-003)";
    Evidence ev;
    ev.file = i->path;
    ev.key = i->package;
    ev.value = i->raw_version;
    ev.value_set = true;
    std::string note = "affected: " + std::string(spec.affected) + "; " + spec.component + " " + spec.role + ".";
    if (i->source == "dpkg") {
      note += " Upstream " + v.str() + " from Debian version " + i->raw_version + ";";
      if (!i->changelog_path.empty() && i->changelog_error.empty())
        note += " " + i->changelog_path + " does not name CVE-2023-2088.";
      else if (!i->changelog_error.empty())
        note += " could not read the changelog to look for a backport: " + i->changelog_error + ".";
      else
        note += " no Debian changelog found to look for a backported fix.";
    }
    if (v.dev) note += " A development build: it has the fix only if built from a commit after the fix merged.";
    if (spec.component == std::string("cinder") && cinder_stopgap)
      note += " The OSSN-0092 policy stopgap is in place: the intentional case is blocked, the accidental one is not.";
    ev.note = note;
    f.evidence.push_back(ev);
    std::string target = fixed_target(spec, v);
    if (target.empty()) {
      f.fix = std::string("no fixed release exists for this series: upgrade to ") + spec.first_series_name +
              " or later (" + spec.fixed_summary + ")";
      if (spec.component == std::string("cinder") || spec.component == std::string("nova"))
        f.fix += "; until then apply the OSSN-0092 Cinder policy stopgap";
    } else {
      f.fix = upgrade_command(spec, *i, target);
    }
    if (spec.component == std::string("cinder") && cinder_stopgap && f.severity > Severity::kMedium)
      f.severity = Severity::kMedium;
    out.findings.push_back(std::move(f));
  }
  if (!c.pkgs.rpm_db.empty()) notes.push_back("rpm database " + c.pkgs.rpm_db + " not read (needs rpm)");
  out.reason = join(notes, "; ");
  if (out.findings.empty() && unparsed) out.status = CheckStatus::kCouldNotCheck;
  return out;
}

// --- nova.conf -------------------------------------------------------------

Outcome nova_absent(Ctx& c) {
  if (!c.nova.present) {
    if (!c.pkgs.of("nova").empty())
      return could_not_check("could not check: nova is installed but no nova.conf was found under " + c.opt.root +
                             " (pass --nova-conf)");
    return not_applicable("no nova.conf (not a Nova host)");
  }
  return could_not_check("could not check: " + c.nova.error);
}

// The value of key in section, resolved; nullopt + reason when interpolation fails.
struct Opt {
  const ini::Entry* entry = nullptr;
  std::string value;
  std::string error;
};
Opt get_opt(const ConfSet& cs, const std::string& section, const std::string& key) {
  Opt o;
  o.entry = cs.cfg.find(section, key);
  if (!o.entry) return o;
  auto r = cs.cfg.resolved(section, key);
  if (r)
    o.value = r.value();
  else  // the resolver's message names the $reference: part of the value, so never for a secret
    o.error = is_secret_key(key) ? o.entry->file + ":" + std::to_string(o.entry->line) + ": " + key +
                                       " cannot be interpolated (a '$' in it names no option)"
                                 : r.error().message;
  return o;
}

constexpr const char* kServiceUserBlock =
    "[service_user]\n"
    "send_service_user_token = true\n"
    "auth_type = password\n"
    "auth_url = <Keystone URL, e.g. https://keystone.example:5000/v3>\n"
    "username = nova\n"
    "user_domain_name = Default\n"
    "password = <the nova service user's password>\n"
    "project_name = service\n"
    "project_domain_name = Default";

Outcome check_nova_service_user(Ctx& c) {
  if (!c.nova.present || !c.nova.error.empty()) return nova_absent(c);
  Outcome out;
  const std::string sec = "service_user";
  Opt send = get_opt(c.nova, sec, "send_service_user_token");
  if (!send.error.empty()) return could_not_check("could not check: " + send.error);
  std::optional<bool> on = send.entry ? ini::parse_bool(send.value) : std::optional<bool>(false);
  if (!on || !*on) {
    Finding f;
    f.id = "LW-AUDIT-NOVA-SERVICE-TOKEN";
    f.severity = Severity::kHigh;
    f.title = "Nova does not send a service token to Cinder";
    std::string note;
    if (!c.nova.cfg.has_section(sec))
      note = "no [service_user] section: send_service_user_token defaults to false";
    else if (!send.entry)
      note = "not set: defaults to false";
    else if (!on)
      note = "not a boolean (true/false/yes/no/on/off/1/0): nova-compute refuses to start";
    else
      note = "set to false";
    note += ". The fixed Cinder rejects detaches without a service token; nova-status upgrade check fails.";
    f.evidence.push_back(evidence_for(c.nova, sec, "send_service_user_token", send.entry, send.value, note));
    f.fix = c.nova.cfg.has_section(sec) ? "[service_user]\nsend_service_user_token = true   # and complete auth options"
                                        : kServiceUserBlock;
    out.findings.push_back(std::move(f));
    return out;
  }

  // keystoneauth options: from [service_user], or the section auth_section names.
  std::string auth_sec = sec;
  Opt as = get_opt(c.nova, sec, "auth_section");
  if (as.entry && !as.value.empty()) auth_sec = as.value;
  auto val = [&](const char* key) -> std::string {
    Opt o = get_opt(c.nova, auth_sec, key);
    if (!o.entry) return "";
    return o.error.empty() ? trim(o.value) : std::string("$unresolved");
  };
  auto has = [&](const char* key) { return !val(key).empty(); };
  std::string type = val("auth_type");
  if (type.empty()) type = val("auth_plugin");  // deprecated name
  std::vector<std::string> missing;
  std::string lt = to_lower(type);
  if (type.empty()) {
    missing.push_back("auth_type");
  } else if (lt == "password" || lt == "v3password" || lt == "v2password") {
    if (!has("auth_url")) missing.push_back("auth_url");
    if (!has("username") && !has("user_id")) missing.push_back("username (or user_id)");
    if (!has("password")) missing.push_back("password");
    if (lt != "v2password" && has("username") && !has("user_id") && !has("user_domain_name") && !has("user_domain_id"))
      missing.push_back("user_domain_name (or user_domain_id)");
    if (!has("project_name") && !has("project_id") && !has("system_scope"))
      missing.push_back("project_name (or project_id): an unscoped token carries no service role");
    if (lt != "v2password" && has("project_name") && !has("project_id") && !has("project_domain_name") &&
        !has("project_domain_id"))
      missing.push_back("project_domain_name (or project_domain_id)");
  } else if (lt == "v3applicationcredential" || lt == "applicationcredential") {
    if (!has("auth_url")) missing.push_back("auth_url");
    if (!has("application_credential_secret")) missing.push_back("application_credential_secret");
    if (!has("application_credential_id")) {
      if (!has("application_credential_name"))
        missing.push_back("application_credential_id (or _name with the user)");
      else if (!has("user_id") && !(has("username") && (has("user_domain_name") || has("user_domain_id"))))
        missing.push_back("user_id (or username + user_domain_name) for application_credential_name");
    }
  } else if (lt == "token" || lt == "v3token" || lt == "v2token") {
    if (!has("auth_url")) missing.push_back("auth_url");
    if (!has("token")) missing.push_back("token");
  } else if (lt == "none" || lt == "noauth" || lt == "admin_token") {
    missing.push_back("a real Keystone auth_type (" + type + " yields no service token)");
  } else {
    out.reason = "auth_type " + type + ": completeness of its options is not checked";
  }
  if (!missing.empty()) {
    Finding f;
    f.id = "LW-AUDIT-NOVA-SERVICE-USER-AUTH";
    f.severity = Severity::kHigh;
    f.title = "[service_user] auth options are incomplete: Nova cannot get the service token it is told to send";
    Opt at = get_opt(c.nova, auth_sec, "auth_type");
    f.evidence.push_back(evidence_for(c.nova, auth_sec, "auth_type", at.entry, at.value,
                                      "missing: " + join(missing, ", ") +
                                          (auth_sec != sec ? " (read from [" + auth_sec + "] via auth_section)" : "")));
    std::string fix = "[" + auth_sec + "]";
    for (const auto& m : missing) {
      std::string key = m.substr(0, m.find(' '));
      if (key == "a") key = "auth_type";
      fix += "\n" + key + " = " + (key == "password" ? "<the nova service user's password>" : "<value>");
    }
    f.fix = fix;
    out.findings.push_back(std::move(f));
  }
  return out;
}

bool multipath_maps_present(Ctx& c) {
  for (const auto& [dm, m] : c.live().maps)
    if (m.multipath()) return true;
  return false;
}

Outcome check_nova_multipath(Ctx& c) {
  if (!c.nova.present || !c.nova.error.empty()) return nova_absent(c);
  Opt o = get_opt(c.nova, "libvirt", "volume_use_multipath");
  if (!o.error.empty()) return could_not_check("could not check: " + o.error);
  std::optional<bool> on = o.entry ? ini::parse_bool(o.value) : std::optional<bool>(false);
  Outcome out;
  if (!on) {
    Finding f;
    f.id = "LW-AUDIT-CONF-INVALID-VALUE";
    f.severity = Severity::kMedium;
    f.title = "[libvirt] volume_use_multipath is not a boolean: nova-compute refuses to start";
    f.evidence.push_back(evidence_for(c.nova, "libvirt", "volume_use_multipath", o.entry, o.value));
    f.fix = "[libvirt]\nvolume_use_multipath = true   # or false, to match multipathd on this host";
    out.findings.push_back(std::move(f));
    return out;
  }
  if (*on) return ok("Nova attaches volumes through dm-multipath (recheck_wwid matters)");
  bool tools = !c.pkgs.of("multipath-tools").empty();
  bool maps = multipath_maps_present(c);
  if (!tools && !maps)
    return ok(c.pkgs.rpm_db.empty() ? "Nova attaches single-path; multipath-tools is not installed"
                                    : "Nova attaches single-path; no multipath map (multipath-tools package state "
                                      "unknown: rpm database needs rpm)");
  Finding f;
  f.id = "LW-AUDIT-NOVA-MULTIPATH";
  f.severity = Severity::kLow;
  f.title = "Nova attaches volumes single-path while multipath-tools runs on this host";
  f.evidence.push_back(evidence_for(
      c.nova, "libvirt", "volume_use_multipath", o.entry, o.value,
      std::string(o.entry ? "set to false" : "not set: defaults to false") + "; " +
          (maps ? "dm-multipath maps exist in sysfs" : "multipath-tools is installed") +
          ". multipathd may build maps over devices os-brick attached single-path; a failed tear-down leaves them "
          "behind (see live.scsi)."));
  f.fix =
      "[libvirt]\nvolume_use_multipath = true   # if the arrays are multipathed; else blacklist them in multipath.conf";
  out.findings.push_back(std::move(f));
  return out;
}

Outcome check_nova_non_inheritable(Ctx& c) {
  if (!c.nova.present || !c.nova.error.empty()) {
    if (!c.nova.present && c.pkgs.of("nova").empty()) return not_applicable("no nova.conf (not a Nova host)");
    return nova_absent(c);
  }
  auto installs = c.pkgs.of("nova");
  std::vector<std::string> versions;
  bool train_or_older = false, newer = false;
  for (const Installation* i : installs) {
    if (!i->version) continue;
    versions.push_back(i->version->str());
    if (i->version->major() <= 20)
      train_or_older = true;
    else
      newer = true;
  }
  if (versions.empty())
    return could_not_check("could not check: the Nova version is unknown (" +
                           std::string(c.pkgs.rpm_db.empty() ? "no nova package found" : "rpm database needs rpm") +
                           "); bug 1852106 concerns Nova 20.x (Train): pass --package-version nova=VERSION");
  if (!train_or_older && newer)
    return not_applicable("Nova " + join(versions, ", ") +
                          ": Nova 21 (Ussuri) and later never let snapshots inherit these properties");
  Opt o = get_opt(c.nova, "DEFAULT", "non_inheritable_image_properties");
  if (!o.error.empty()) return could_not_check("could not check: " + o.error);
  std::vector<std::string> items = o.entry ? ini::parse_list(o.value) : kTrainDefaultNonInheritable;
  std::set<std::string> have(items.begin(), items.end());
  std::vector<std::string> missing, hint_missing;
  for (const auto& r : kRequiredNonInheritable)
    if (!have.count(r)) missing.push_back(r);
  for (const auto& h : kHintNonInheritable)
    if (!have.count(h)) hint_missing.push_back(h);
  // The fix keeps the operator's own items and adds what is missing.
  std::vector<std::string> fixed = items;
  for (const auto& h : kHintNonInheritable)
    if (!have.count(h)) fixed.push_back(h);
  for (const auto& r : kRequiredNonInheritable)
    if (!have.count(r)) fixed.push_back(r);
  std::string fix_line = "[DEFAULT]\nnon_inheritable_image_properties = " + join(fixed, ",");
  std::string shown = o.entry ? o.value : join(kTrainDefaultNonInheritable, ",");
  Outcome out;
  if (!missing.empty()) {
    Finding f;
    f.id = "LW-AUDIT-NOVA-NONINHERITABLE";
    f.severity = Severity::kHigh;
    f.title = "Server snapshots inherit the encryption key deletion policy (Nova bug 1852106, Train)";
    std::string note = "Nova " + join(versions, ", ") + "; missing: " + join(missing, ", ") +
                       (o.entry ? "" : " (Train's default is " + join(kTrainDefaultNonInheritable, ",") + ")") +
                       ". Deleting such a snapshot deletes the key its parent image still uses.";
    Evidence ev = evidence_for(c.nova, "DEFAULT", "non_inheritable_image_properties", o.entry, shown, note);
    if (!o.entry) ev.value = shown;
    f.evidence.push_back(ev);
    f.fix = fix_line + "\n# and strip the policy from existing snapshots (see images.key_deletion)";
    out.findings.push_back(std::move(f));
  }
  if (!hint_missing.empty()) {
    Finding f;
    f.id = "LW-AUDIT-NOVA-NONINHERITABLE-HINT";
    f.severity = Severity::kInfo;
    f.title = "non_inheritable_image_properties drops Train's defaults cache_in_nova/bittorrent";
    f.evidence.push_back(evidence_for(
        c.nova, "DEFAULT", "non_inheritable_image_properties", o.entry, shown,
        "missing: " + join(hint_missing, ", ") + "; setting the option replaces the default list, so keep them"));
    f.fix = fix_line;
    out.findings.push_back(std::move(f));
  }
  return out;
}

// --- cinder.conf and policy ------------------------------------------------

Outcome cinder_absent(Ctx& c) {
  if (!c.cinder.present) {
    if (!c.pkgs.of("cinder").empty())
      return could_not_check("could not check: cinder is installed but no cinder.conf was found under " + c.opt.root +
                             " (pass --cinder-conf)");
    return not_applicable("no cinder.conf (not a Cinder host)");
  }
  return could_not_check("could not check: " + c.cinder.error);
}

Outcome check_cinder_service_token(Ctx& c) {
  if (!c.cinder.present || !c.cinder.error.empty()) return cinder_absent(c);
  Outcome out;
  const std::string sec = "keystone_authtoken";
  Opt req = get_opt(c.cinder, sec, "service_token_roles_required");
  if (!req.error.empty()) return could_not_check("could not check: " + req.error);
  std::optional<bool> on = req.entry ? ini::parse_bool(req.value) : std::optional<bool>(false);
  if (!on || !*on) {
    Finding f;
    f.id = "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES-REQUIRED";
    f.severity = Severity::kHigh;
    f.title = "Cinder accepts any valid token as a service token";
    std::string note = !c.cinder.cfg.has_section(sec) ? "no [keystone_authtoken] section: defaults to false"
                       : !req.entry                   ? "not set: defaults to false"
                       : !on                          ? "not a boolean: cinder-api refuses to start"
                                                      : "set to false";
    note += ". A user can pass their own token as X-Service-Token and delete an in-use attachment anyway.";
    f.evidence.push_back(evidence_for(c.cinder, sec, "service_token_roles_required", req.entry, req.value, note));
    f.fix = "[keystone_authtoken]\nservice_token_roles_required = true";
    out.findings.push_back(std::move(f));
  }
  Opt roles = get_opt(c.cinder, sec, "service_token_roles");
  if (!roles.error.empty()) {
    out.reason = "service_token_roles: " + roles.error;
    if (out.findings.empty()) out.status = CheckStatus::kCouldNotCheck;
    return out;
  }
  if (roles.entry) {
    auto items = ini::parse_list(roles.value);
    bool service =
        std::any_of(items.begin(), items.end(), [](const std::string& r) { return to_lower(r) == "service"; });
    if (!service) {
      Finding f;
      f.id = "LW-AUDIT-CINDER-SERVICE-TOKEN-ROLES";
      f.severity = Severity::kMedium;
      f.title = "service_token_roles does not include the service role";
      f.evidence.push_back(evidence_for(c.cinder, sec, "service_token_roles", roles.entry, roles.value,
                                        "Nova's service token carries the service role; with roles required, Cinder "
                                        "would refuse it"));
      f.fix = "[keystone_authtoken]\nservice_token_roles = service";
      out.findings.push_back(std::move(f));
    }
  }
  return out;
}

struct PolicyState {
  bool checked = false;
  std::string error;  // could not check
  std::vector<std::string> files;
  std::vector<std::pair<std::string, Verdict>> verdicts;  // per OSSN-0092 rule
  PolicyFile policy;
  int restricted = 0;
  bool full() const { return checked && error.empty() && restricted == static_cast<int>(verdicts.size()); }
};

PolicyState load_policy(Ctx& c) {
  PolicyState st;
  if (!c.cinder.present || !c.cinder.error.empty()) return st;
  std::vector<std::string> files;
  std::string conf_dir = c.cinder.primary.substr(0, c.cinder.primary.rfind('/'));
  if (!c.opt.cinder_policy.empty()) {
    files.push_back(c.opt.cinder_policy);
  } else {
    Opt pf = get_opt(c.cinder, "oslo_policy", "policy_file");
    std::string name = pf.entry && pf.error.empty() && !pf.value.empty() ? pf.value : "policy.yaml";
    std::string path = name.front() == '/' ? under(c.opt.root, name) : conf_dir + "/" + name;
    if (!exists(path) && !pf.entry && exists(conf_dir + "/policy.json")) path = conf_dir + "/policy.json";
    if (exists(path)) files.push_back(path);
    Opt pd = get_opt(c.cinder, "oslo_policy", "policy_dirs");
    std::vector<std::string> dirs =
        pd.entry && pd.error.empty() ? ini::parse_list(pd.value) : std::vector<std::string>{"policy.d"};
    for (const auto& d : dirs) {
      std::string dir = d.front() == '/' ? under(c.opt.root, d) : conf_dir + "/" + d;
      for (const auto& f : list_dir(dir)) {
        std::string lf = to_lower(f);
        if (lf.ends_with(".yaml") || lf.ends_with(".yml") || lf.ends_with(".json")) files.push_back(dir + "/" + f);
      }
    }
  }
  st.checked = true;
  for (const auto& f : files) {
    auto text = read_text(f, 4u << 20);
    if (!text) {
      st.error = text.error().message;
      return st;
    }
    auto p = parse_policy(*text, f);
    if (!p) {
      st.error = p.error().message;
      return st;
    }
    st.policy.merge(p.value());
    st.files.push_back(f);
  }
  for (const auto& rule : kOssn0092Rules) {
    Verdict v = evaluate_for_non_service(st.policy, rule);
    if (v.non_service_passes == Tri::kFalse) ++st.restricted;
    st.verdicts.emplace_back(rule, v);
  }
  return st;
}

std::optional<bool> cinder_affected(Ctx& c) {
  std::optional<bool> any;
  for (const Installation* i : c.pkgs.of("cinder")) {
    if (!i->version) continue;
    bool aff = is_affected(component_specs()[2], *i->version) && !(i->source == "dpkg" && i->changelog_names_cve);
    any = any.value_or(false) || aff;
  }
  return any;
}

constexpr const char* kOssn0092Fix =
    "# policy.yaml (OSSN-0092), with the nova service user's id:\n"
    "\"is_service\": \"role:service or service_user_id:<nova service user id>\"\n"
    "\"volume:attachment_delete\": \"rule:xena_system_admin_or_project_member and rule:is_service\"\n"
    "\"volume_extension:volume_actions:terminate_connection\": \"rule:xena_system_admin_or_project_member and "
    "rule:is_service\"\n"
    "\"volume_extension:volume_actions:detach\": \"rule:xena_system_admin_or_project_member and rule:is_service\"\n"
    "\"volume_extension:volume_admin_actions:force_detach\": \"!\"";

Outcome check_cinder_policy(Ctx& c, const PolicyState& st) {
  if (!c.cinder.present || !c.cinder.error.empty()) return cinder_absent(c);
  if (!st.error.empty()) return could_not_check("could not check: " + st.error);
  Outcome out;
  std::optional<bool> affected = cinder_affected(c);
  std::string files = st.files.empty() ? "no policy file (Cinder's defaults apply)" : join(st.files, ", ");
  if (st.full()) {
    Finding f;
    f.id = "LW-AUDIT-CINDER-POLICY-OSSN0092";
    f.severity = Severity::kInfo;
    f.title = "Mitigation: the OSSN-0092 policy stopgap is in place (blocks the intentional case only)";
    for (const auto& [rule, v] : st.verdicts) {
      const PolicyRule* r = st.policy.find(rule);
      Evidence ev;
      ev.file = r->file;
      ev.line = r->line;
      ev.key = rule;
      ev.value = r->expr;
      ev.value_set = true;
      ev.note = "only the service role passes";
      f.evidence.push_back(ev);
    }
    f.fix = "none needed; keep it until every Cinder, Nova and os-brick carries the fix";
    out.findings.push_back(std::move(f));
    return out;
  }
  if (st.restricted == 0) {
    if (affected && !*affected) return ok("stopgap not applied, not needed: Cinder carries the fix (" + files + ")");
    if (!affected)
      return could_not_check("could not check: the OSSN-0092 stopgap is not applied (" + files +
                             ") and the Cinder version is unknown, so whether it is needed is unknown; pass "
                             "--package-version cinder=VERSION");
    Finding f;
    f.id = "LW-AUDIT-CINDER-POLICY-OSSN0092-MISSING";
    f.severity = Severity::kMedium;
    f.title =
        "Affected Cinder without the OSSN-0092 policy stopgap: any project member can delete an in-use attachment";
    Evidence ev;
    ev.file = st.files.empty() ? c.cinder.primary : st.files.front();
    ev.key = "volume:attachment_delete";
    ev.note = files;
    f.evidence.push_back(ev);
    f.fix = kOssn0092Fix;
    out.findings.push_back(std::move(f));
    return out;
  }
  Finding f;
  f.id = "LW-AUDIT-CINDER-POLICY-OSSN0092-PARTIAL";
  f.severity = (affected && !*affected) ? Severity::kLow : Severity::kMedium;
  f.title = "The OSSN-0092 policy stopgap is incomplete: some detach paths stay open to non-service callers";
  for (const auto& [rule, v] : st.verdicts) {
    if (v.non_service_passes == Tri::kFalse) continue;
    const PolicyRule* r = st.policy.find(rule);
    Evidence ev;
    ev.key = rule;
    ev.file = r ? r->file : (st.files.empty() ? c.cinder.primary : st.files.front());
    ev.line = r ? r->line : 0;
    if (r) {
      ev.value = r->expr;
      ev.value_set = true;
    }
    ev.note = (v.non_service_passes == Tri::kTrue ? "every caller passes" : "a non-service caller may pass") +
              (v.notes.empty() ? std::string() : "; " + join(v.notes, "; "));
    f.evidence.push_back(ev);
  }
  f.fix = kOssn0092Fix;
  out.findings.push_back(std::move(f));
  return out;
}

// --- multipath.conf --------------------------------------------------------

Outcome check_recheck_wwid(Ctx& c) {
  auto installs = c.pkgs.of("multipath-tools");
  std::string conf = c.opt.multipath_conf.empty() ? c.where("etc/multipath.conf") : c.opt.multipath_conf;
  Probe p = probe_file(conf);
  if (installs.empty() && p.state == FileState::kAbsent) {
    if (!c.pkgs.rpm_db.empty())
      return could_not_check("could not check: rpm database needs rpm (" + c.pkgs.rpm_db +
                             ") to tell whether device-mapper-multipath is installed, and there is no " + conf);
    return not_applicable("multipath-tools is not installed and there is no " + conf);
  }
  if (p.state == FileState::kUnreadable) return could_not_check("could not check: " + conf + ": " + p.reason);

  // Effective value: files in order (multipath.conf, then config_dir/*.conf);
  // overrides beat defaults.
  const MpathOption* def = nullptr;
  const MpathOption* ovr = nullptr;
  std::string def_file, ovr_file;
  std::vector<MpathBlock> parsed;
  parsed.reserve(64);
  std::vector<std::string> files;
  if (p.state == FileState::kPresent) files.push_back(conf);
  std::string conf_dir = c.where("etc/multipath/conf.d");
  if (p.state == FileState::kPresent) {
    auto text = read_text(conf);
    if (!text) return could_not_check("could not check: " + text.error().message);
    auto top = parse_multipath_conf(*text, conf);
    if (!top) return could_not_check("could not check: " + top.error().message);
    for (const auto& b : top->blocks)
      if (b.name == "defaults")
        if (const auto* o = b.find("config_dir")) conf_dir = o->value.front() == '/' ? c.where(o->value) : o->value;
    parsed.push_back(std::move(top.value()));
  }
  for (const auto& f : list_dir(conf_dir)) {
    if (!f.ends_with(".conf")) continue;
    std::string path = conf_dir + "/" + f;
    auto text = read_text(path);
    if (!text) return could_not_check("could not check: " + text.error().message);
    auto top = parse_multipath_conf(*text, path);
    if (!top) return could_not_check("could not check: " + top.error().message);
    files.push_back(path);
    parsed.push_back(std::move(top.value()));
  }
  for (const auto& top : parsed) {
    for (const auto& b : top.blocks) {
      if (b.name == "defaults")
        if (const auto* o = b.find("recheck_wwid")) def = o, def_file = top.file;
      if (b.name == "overrides")
        if (const auto* o = b.find("recheck_wwid")) ovr = o, ovr_file = top.file;
    }
  }
  const MpathOption* eff = ovr ? ovr : def;
  std::string eff_file = ovr ? ovr_file : def_file;
  bool yes = eff && to_lower(eff->value) == "yes";

  std::optional<Version> version;
  std::string version_label;
  for (const Installation* i : installs)
    if (i->version) version = i->version, version_label = install_label(*i);

  auto ev_for = [&](std::string note) {
    Evidence ev;
    ev.file = eff ? eff_file : (files.empty() ? conf : files.front());
    ev.section = eff ? (ovr ? "overrides" : "defaults") : "defaults";
    ev.key = "recheck_wwid";
    if (eff) {
      ev.line = eff->line;
      ev.value = eff->value;
      ev.value_set = true;
    }
    ev.note = std::move(note);
    return ev;
  };

  Outcome out;
  auto minimum = *Version::parse("0.8.6");
  if (!version) {
    if (yes) return ok("recheck_wwid yes (multipath-tools version unknown; it needs >= 0.8.6)");
    return could_not_check(std::string("could not check: the multipath-tools version is unknown (") +
                           (c.pkgs.rpm_db.empty() ? "not in dpkg status" : "rpm database needs rpm") +
                           "); recheck_wwid needs >= 0.8.6 and is not set to yes");
  }
  if (*version < minimum) {
    Finding f;
    f.id = "LW-AUDIT-MULTIPATH-RECHECK-WWID-UNSUPPORTED";
    f.severity = Severity::kLow;
    f.title = "multipath-tools " + version->str() + " has no recheck_wwid (0.8.6 and later)";
    f.evidence.push_back(ev_for(version_label + (eff ? "; this version ignores recheck_wwid" : "")));
    f.fix = "upgrade multipath-tools to 0.8.6 or later, then set recheck_wwid yes in defaults";
    out.findings.push_back(std::move(f));
    return out;
  }
  if (yes) return ok("recheck_wwid yes; " + version_label);
  // Severity follows use: multipath maps now, or Nova told to use multipath.
  bool in_use = multipath_maps_present(c);
  std::string use_note;
  if (!in_use && c.nova.present && c.nova.error.empty()) {
    Opt o = get_opt(c.nova, "libvirt", "volume_use_multipath");
    in_use = o.entry && ini::parse_bool(o.value).value_or(false);
  }
  if (!in_use) use_note = " No multipath map exists now and Nova does not ask for multipath.";
  Finding f;
  f.id = "LW-AUDIT-MULTIPATH-RECHECK-WWID";
  f.severity = in_use ? Severity::kMedium : Severity::kLow;
  f.title = "multipathd does not recheck a path's WWID when it comes back";
  f.evidence.push_back(
      ev_for(version_label + "; " + (eff ? "set to '" + eff->value + "'" : std::string("not set: defaults to no")) +
             ". A path restored after a LUN remap joins the old map with another volume's data." + use_note));
  f.fix = "# " + conf + "\ndefaults {\n    recheck_wwid yes\n}\n# then: multipathd reconfigure";
  out.findings.push_back(std::move(f));
  return out;
}

// --- live state ------------------------------------------------------------

// "naa.600a..." -> "3600a..." (the form dm uuids and scsi- links use).
std::string wwid_key(const std::string& w) {
  std::string l = to_lower(w);
  if (l.rfind("naa.", 0) == 0) return "3" + l.substr(4);
  if (l.rfind("eui.", 0) == 0) return "2" + l.substr(4);
  if (l.rfind("t10.", 0) == 0) return "1" + l.substr(4);
  return l;
}

Outcome live_applicability(Ctx& c) {
  if (!is_dir(under(c.sysfs, "class")) && !is_dir(under(c.sysfs, "block")))
    return could_not_check("could not check: no sysfs at " + c.sysfs);
  const LiveState& s = c.live();
  if (s.libvirt_dirs.empty()) {
    size_t remote =
        std::count_if(s.disks.begin(), s.disks.end(), [](const ScsiDisk& d) { return d.transport != "local"; });
    return not_applicable("no libvirt domain directory (run/libvirt/qemu, etc/libvirt/qemu) under " + c.opt.root +
                          ": not a libvirt hypervisor (" + std::to_string(remote) + " remote SCSI disks seen)");
  }
  return ok();
}

struct Usage {
  std::set<std::string> by_domain;                             // closure below what domains use
  std::set<std::string> by_host;                               // closure below mounts / swaps
  std::map<std::string, std::vector<std::string>> domains_of;  // device -> domain names
};

Usage usage(const LiveState& s) {
  Usage u;
  std::set<std::string> top;
  for (const auto& d : s.domain_disks) {
    if (d.resolved.empty()) continue;
    top.insert(d.resolved);
    for (const auto& dev : closure_down(s, {d.resolved})) u.domains_of[dev].push_back(d.domain);
  }
  u.by_domain = closure_down(s, top);
  u.by_host = closure_down(s, s.host_used);
  return u;
}

std::string live_notes(const LiveState& s) {
  std::vector<std::string> notes;
  notes.push_back(std::to_string(s.domain_files.size()) + " domain XML files, " +
                  std::to_string(s.domain_disks.size()) + " block disks");
  for (const auto& e : s.domain_errors) notes.push_back("could not read " + e);
  for (const auto& d : s.domain_disks)
    if (d.resolved.empty())
      notes.push_back("domain " + d.domain + " disk " + d.source + " matches no device present (stale or gone)");
  return join(notes, "; ");
}

Outcome check_live_scsi(Ctx& c) {
  Outcome app = live_applicability(c);
  if (app.status != CheckStatus::kOk) return app;
  const LiveState& s = c.live();
  Usage u = usage(s);
  Outcome out;
  out.reason = live_notes(s);
  bool partial = !s.domain_errors.empty();
  std::map<std::string, const ScsiDisk*> disk_by_block;
  for (const auto& d : s.disks) disk_by_block[d.block] = &d;
  auto describe = [&](const std::string& blk) {
    auto it = disk_by_block.find(blk);
    if (it == disk_by_block.end()) return blk;
    const ScsiDisk& d = *it->second;
    return blk + " (" + d.hctl + ", " + d.transport + (d.target.empty() ? "" : " " + d.target) +
           (d.portal.empty() ? "" : " via " + d.portal) + ", LUN " + std::to_string(d.lun) +
           (d.wwid.empty() ? "" : ", cached wwid " + d.wwid) + ")";
  };

  // Multipath maps whose paths disagree on the WWID: two volumes in one map.
  for (const auto& [dm, m] : s.maps) {
    if (!m.multipath()) continue;
    std::set<std::string> keys;
    std::vector<std::string> paths;
    for (const auto& sl : m.slaves) {
      auto it = disk_by_block.find(sl);
      if (it == disk_by_block.end() || it->second->wwid.empty()) continue;
      keys.insert(wwid_key(it->second->wwid));
      paths.push_back(describe(sl));
    }
    std::string map_key = to_lower(m.uuid.substr(6));
    bool mismatch_uuid = !keys.empty() && !keys.count(map_key) && map_key.size() > 1;
    if (keys.size() > 1 || mismatch_uuid) {
      Finding f;
      f.id = "LW-AUDIT-LIVE-MPATH-MIXED-WWID";
      f.severity = Severity::kHigh;
      f.subject = m.name + " (" + dm + ")";
      f.title = "Multipath map " + m.name + " has paths that report different volumes";
      Evidence ev;
      ev.file = under(s.sysfs, "block/" + dm + "/dm/uuid");
      ev.key = "uuid";
      ev.value = m.uuid;
      ev.value_set = true;
      ev.note = "paths: " + join(paths, "; ") +
                ". Cached WWIDs can be stale: confirm with `sg_inq -p 0x83 /dev/sdX` on each path. Used by: " +
                (u.domains_of.count(dm) ? join(u.domains_of[dm], ", ") : std::string("no domain"));
      f.evidence.push_back(ev);
      f.fix =
          "stop I/O (pause the instance), confirm each path's identity with sg_inq -p 0x83, remove the wrong "
          "paths: multipathd del path sdX; echo 1 > /sys/block/sdX/device/delete";
      out.findings.push_back(std::move(f));
    }
  }

  // Leftover multipath maps: no domain, no mount, no holder of the host's own.
  std::set<std::string> reported_paths;
  for (const auto& [dm, m] : s.maps) {
    if (!m.multipath() || u.by_domain.count(dm) || u.by_host.count(dm)) continue;
    bool host_holder = false;
    std::vector<std::string> crypt;
    for (const auto& h : m.holders) {
      auto it = s.maps.find(h);
      bool crypt_leftover =
          it != s.maps.end() && it->second.uuid.rfind("CRYPT-", 0) == 0 && !u.by_domain.count(h) && !u.by_host.count(h);
      if (crypt_leftover)
        crypt.push_back(it->second.name + " (" + h + ")");
      else
        host_holder = true;  // LVM or anything else the host built on it
    }
    if (host_holder || partial) continue;
    Finding f;
    f.id = "LW-AUDIT-LIVE-LEFTOVER-MPATH";
    f.severity = Severity::kMedium;
    f.subject = m.name + " (" + dm + ")";
    f.title = "Multipath map " + m.name + " is used by no libvirt domain";
    Evidence ev;
    ev.file = under(s.sysfs, "block/" + dm + "/dm/name");
    ev.key = "name";
    ev.value = m.name;
    ev.value_set = true;
    std::vector<std::string> paths;
    for (const auto& sl : m.slaves) {
      paths.push_back(describe(sl));
      reported_paths.insert(sl);
    }
    ev.note = "uuid " + m.uuid + "; paths: " + (paths.empty() ? std::string("none") : join(paths, "; ")) +
              (crypt.empty() ? "" : "; unused dm-crypt on top: " + join(crypt, ", ")) +
              ". A new LUN mapped at the same address can join this stale map.";
    f.evidence.push_back(ev);
    std::string fix = "# after confirming no instance uses it (virsh domblklist on every domain):\n";
    for (const auto& cr : crypt) fix += "cryptsetup close " + cr.substr(0, cr.find(' ')) + "\n";
    fix += "multipath -f " + m.name;
    for (const auto& sl : m.slaves) fix += "\necho 1 > /sys/block/" + sl + "/device/delete";
    f.fix = fix;
    out.findings.push_back(std::move(f));
  }

  // Leftover remote SCSI disks not under a reported map.
  for (const auto& d : s.disks) {
    if (d.transport == "local" || u.by_domain.count(d.block) || u.by_host.count(d.block)) continue;
    if (reported_paths.count(d.block) || partial) continue;
    if (!d.holders.empty()) continue;  // a map or LVM sits on it: judged above or the host's
    Finding f;
    f.id = "LW-AUDIT-LIVE-LEFTOVER-SCSI";
    f.severity = Severity::kMedium;
    f.subject = d.block + " (" + d.hctl + ")";
    f.title = "SCSI disk " + d.block + " (" + d.transport + ") is used by no libvirt domain";
    Evidence ev;
    ev.file = under(s.sysfs, "class/scsi_device/" + d.hctl + "/device/wwid");
    ev.key = "wwid";
    ev.value = d.wwid;
    ev.value_set = !d.wwid.empty();
    ev.note = describe(d.block) + (d.state.empty() ? "" : ", state " + d.state) +
              ". The host keeps the LUN address; the next volume mapped there reuses this device.";
    f.evidence.push_back(ev);
    f.fix = "# after confirming no instance uses it:\nblockdev --flushbufs /dev/" + d.block + "\necho 1 > /sys/block/" +
            d.block + "/device/delete";
    out.findings.push_back(std::move(f));
  }
  if (partial) {
    out.reason =
        "leftover checks skipped: some domain XML could not be read, so what it uses is unknown; " + out.reason;
    if (out.findings.empty()) out.status = CheckStatus::kCouldNotCheck;
  }
  return out;
}

Outcome check_live_iscsi(Ctx& c) {
  Outcome app = live_applicability(c);
  if (app.status != CheckStatus::kOk) return app;
  const LiveState& s = c.live();
  if (s.sessions.empty()) return not_applicable("no iSCSI sessions");
  if (!s.domain_errors.empty())
    return could_not_check("could not check: some domain XML could not be read (" + join(s.domain_errors, "; ") + ")");
  Usage u = usage(s);
  Outcome out;
  for (const auto& sess : s.sessions) {
    std::vector<std::string> luns;
    bool used = false;
    for (const auto& d : s.disks) {
      if (d.session != sess.name) continue;
      luns.push_back(d.block + " LUN " + std::to_string(d.lun));
      if (u.by_domain.count(d.block) || u.by_host.count(d.block) || !d.holders.empty()) {
        // A holder that is itself in use counts; a leftover map is reported by live.scsi.
        bool holder_used = false;
        for (const auto& h : d.holders) holder_used = holder_used || u.by_domain.count(h) || u.by_host.count(h);
        if (u.by_domain.count(d.block) || u.by_host.count(d.block) || holder_used) used = true;
      }
    }
    if (used) continue;
    Finding f;
    f.id = "LW-AUDIT-LIVE-IDLE-ISCSI-SESSION";
    f.severity = Severity::kLow;
    f.subject = sess.name;
    f.title = "iSCSI session " + sess.name + " carries no disk any libvirt domain uses";
    Evidence ev;
    ev.file = under(s.sysfs, "class/iscsi_session/" + sess.name + "/targetname");
    ev.key = "targetname";
    ev.value = sess.target;
    ev.value_set = true;
    ev.note = "portal " + (sess.portal.empty() ? std::string("?") : sess.portal) +
              "; LUNs: " + (luns.empty() ? std::string("none") : join(luns, ", ")) +
              ". A session left logged in lets the array's next mapping appear on this host.";
    f.evidence.push_back(ev);
    f.fix = "# after confirming no attachment uses it:\niscsiadm -m node -T " + sess.target +
            (sess.portal.empty() ? "" : " -p " + sess.portal) + " --logout";
    out.findings.push_back(std::move(f));
  }
  return out;
}

// --- images ----------------------------------------------------------------

Outcome check_images(Ctx& c) {
  if (c.opt.images_file.empty()) return not_applicable("no image list given (--images FILE)");
  auto text = read_text(c.opt.images_file, 256u << 20);
  if (!text) return could_not_check("could not check: " + text.error().message);
  auto images = parse_image_list(*text);
  if (!images) return could_not_check("could not check: " + c.opt.images_file + ": " + images.error().message);
  size_t without = 0;
  std::map<std::string, std::vector<const ImageRecord*>> by_key;
  for (const auto& im : *images) {
    if (!im.has_properties) ++without;
    if (!im.key_id.empty()) by_key[im.key_id].push_back(&im);
  }
  if (!images->empty() && without == images->size())
    return could_not_check("could not check: " + c.opt.images_file +
                           " carries no image properties (`openstack image list --long` has no properties column); "
                           "give the Glance API's /v2/images JSON or `openstack image show -f json` output");
  Outcome out;
  out.reason = std::to_string(images->size()) + " images";
  if (without) out.reason += ", " + std::to_string(without) + " without properties (not checked)";
  for (const auto& im : *images) {
    if (!im.deletes_key()) continue;
    std::vector<std::string> others;
    if (!im.key_id.empty())
      for (const auto* o : by_key[im.key_id])
        if (o != &im) others.push_back(o->id + (o->name.empty() ? "" : " (" + o->name + ")"));
    bool snapshot = im.looks_like_snapshot();
    if (!snapshot && others.empty()) continue;  // an uploaded volume image owning its key
    Finding f;
    f.id = snapshot ? "LW-AUDIT-IMAGE-KEY-DELETION" : "LW-AUDIT-IMAGE-KEY-SHARED";
    f.severity = snapshot ? Severity::kHigh : Severity::kMedium;
    f.subject = im.id + (im.name.empty() ? "" : " (" + im.name + ")");
    f.title = snapshot ? "Deleting snapshot " + f.subject + " deletes an encryption key another image may still use"
                       : "Image " + f.subject + " deletes a key other images share";
    Evidence ev;
    ev.file = c.opt.images_file;
    ev.key = "cinder_encryption_key_deletion_policy";
    ev.value = im.deletion_policy;
    ev.value_set = true;
    std::vector<std::string> why;
    if (!im.instance_uuid.empty()) why.push_back("instance_uuid=" + im.instance_uuid);
    if (!im.image_type.empty()) why.push_back("image_type=" + im.image_type);
    if (!im.key_id.empty()) why.push_back("cinder_encryption_key_id=" + im.key_id);
    if (!others.empty()) why.push_back("same key in: " + join(others, ", "));
    ev.note = join(why, "; ");
    f.evidence.push_back(ev);
    if (snapshot)
      f.fix = "openstack image unset --property cinder_encryption_key_deletion_policy " + im.id +
              "   # or --property cinder_encryption_key_deletion_policy=do_not_delete";
    else
      f.fix = "openstack image set --property cinder_encryption_key_deletion_policy=do_not_delete " + im.id +
              "   # then delete the key by hand once no image uses it";
    out.findings.push_back(std::move(f));
  }
  return out;
}

bool skipped(const AuditOptions& o, const std::string& id) {
  for (const auto& s : o.skip)
    if (id == s || id.rfind(s + ".", 0) == 0) return true;
  return false;
}

std::vector<std::string> nova_candidates(const AuditOptions& o) {
  if (!o.nova_conf.empty()) return o.nova_conf;
  std::vector<std::string> v;
  std::string main = under(o.root, "etc/nova/nova.conf");
  std::string kolla = under(o.root, "etc/kolla/nova-compute/nova.conf");
  v.push_back(!exists(main) && exists(kolla) ? kolla : main);
  v.push_back(under(o.root, "etc/nova/nova-compute.conf"));  // Ubuntu's nova-compute unit adds it
  for (const auto& f : glob_paths(under(o.root, "etc/nova/nova.conf.d/*.conf"))) v.push_back(f);
  return v;
}

std::vector<std::string> cinder_candidates(const AuditOptions& o) {
  if (!o.cinder_conf.empty()) return o.cinder_conf;
  std::vector<std::string> v;
  std::string main = under(o.root, "etc/cinder/cinder.conf");
  std::string kolla = under(o.root, "etc/kolla/cinder-api/cinder.conf");
  v.push_back(!exists(main) && exists(kolla) ? kolla : main);
  for (const auto& f : glob_paths(under(o.root, "etc/cinder/cinder.conf.d/*.conf"))) v.push_back(f);
  return v;
}

}  // namespace

const std::vector<std::string>& check_ids() {
  static const std::vector<std::string> k = {"versions.os-brick",
                                             "versions.nova",
                                             "versions.cinder",
                                             "versions.glance_store",
                                             "nova.service_user",
                                             "nova.volume_use_multipath",
                                             "nova.non_inheritable_image_properties",
                                             "cinder.service_token",
                                             "cinder.policy",
                                             "multipath.recheck_wwid",
                                             "live.scsi",
                                             "live.iscsi_sessions",
                                             "images.key_deletion"};
  return k;
}

Report run_audit(const AuditOptions& opt) {
  Report rep;
  rep.root = opt.root;
  if (!is_dir(opt.root)) {
    rep.checks.push_back(
        {"host", "host root", CheckStatus::kCouldNotCheck, "could not check: " + opt.root + " is not a directory"});
    return rep;
  }
  Ctx c{opt, opt.sysfs.empty() ? under(opt.root, "sys") : opt.sysfs, {}, {}, {}, {}};
  PackageScanOptions po;
  po.root = opt.root;
  po.extra_python_dirs = opt.python_paths;
  po.overrides = opt.package_versions;
  c.pkgs = scan_packages(po);
  c.nova = load_conf_set(nova_candidates(opt), !opt.nova_conf.empty());
  c.cinder = load_conf_set(cinder_candidates(opt), !opt.cinder_conf.empty());
  PolicyState policy = skipped(opt, "cinder.policy") ? PolicyState{} : load_policy(c);

  struct Def {
    std::string id, title;
    std::function<Outcome()> run;
  };
  const auto& specs = component_specs();
  std::vector<Def> defs = {
      {"versions.os-brick", "os-brick version vs OSSA-2023-003", [&] { return check_version(c, specs[0], false); }},
      {"versions.nova", "nova version vs OSSA-2023-003", [&] { return check_version(c, specs[1], false); }},
      {"versions.cinder", "cinder version vs OSSA-2023-003", [&] { return check_version(c, specs[2], policy.full()); }},
      {"versions.glance_store", "glance_store version vs OSSA-2023-003",
       [&] { return check_version(c, specs[3], false); }},
      {"nova.service_user", "nova.conf [service_user] send_service_user_token and auth",
       [&] { return check_nova_service_user(c); }},
      {"nova.volume_use_multipath", "nova.conf [libvirt] volume_use_multipath",
       [&] { return check_nova_multipath(c); }},
      {"nova.non_inheritable_image_properties", "nova.conf [DEFAULT] non_inheritable_image_properties (bug 1852106)",
       [&] { return check_nova_non_inheritable(c); }},
      {"cinder.service_token", "cinder.conf [keystone_authtoken] service token roles",
       [&] { return check_cinder_service_token(c); }},
      {"cinder.policy", "Cinder policy: OSSN-0092 stopgap", [&] { return check_cinder_policy(c, policy); }},
      {"multipath.recheck_wwid", "multipath.conf recheck_wwid", [&] { return check_recheck_wwid(c); }},
      {"live.scsi", "leftover SCSI disks and multipath maps", [&] { return check_live_scsi(c); }},
      {"live.iscsi_sessions", "iSCSI sessions without a used disk", [&] { return check_live_iscsi(c); }},
      {"images.key_deletion", "Glance snapshots that delete a shared encryption key (bug 1852106)",
       [&] { return check_images(c); }},
  };
  for (auto& d : defs) {
    CheckResult cr{d.id, d.title, CheckStatus::kNotApplicable, "skipped (--skip)"};
    if (!skipped(opt, d.id)) {
      Outcome o = d.run();
      cr.status = o.status;
      cr.reason = o.reason;
      if (!o.findings.empty() && cr.status == CheckStatus::kOk) cr.status = CheckStatus::kFindings;
      if (!o.findings.empty()) cr.status = CheckStatus::kFindings;
      for (auto& f : o.findings) {
        f.check = d.id;
        rep.findings.push_back(std::move(f));
      }
    }
    rep.checks.push_back(std::move(cr));
  }
  return rep;
}

}  // namespace lunwatch::audit
