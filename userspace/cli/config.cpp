#include "cli/config.h"

#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <set>

#include <cerrno>
#include <cstring>

#include "common/ini.h"

namespace lunwatch::cli {
namespace {

// Every key lunwatch reads, per section. Anything else is a typo or a key of a
// newer lunwatch: refused, so a misspelt "gaurd = enforce" cannot silently
// leave the guard in its default mode.
const std::map<std::string, std::set<std::string>>& known_keys() {
  static const std::map<std::string, std::set<std::string>> k = {
      {"agent", {"guard",          "hostname",           "metrics_listen",    "state_file",      "libvirt_dir",
                 "sysfs_root",     "alerts_file",        "alert_format",      "dump_dir",        "dump_severity",
                 "pin_dir",        "inventory_interval", "topology_interval", "verify_interval", "verify_timeout",
                 "verify_max_age", "orphan_grace",       "dump_before",       "dump_after",      "libvirt",
                 "attachments",    "host_allowlist",     "alert_quiet",       "ring_buffer_kib"}},
      {"containment", {"actions", "virsh", "libvirt_uri", "timeout"}},
      {"cinder",
       {"auth_url", "username", "user_id", "user_domain_name", "user_domain_id", "project_name", "project_id",
        "project_domain_name", "project_domain_id", "application_credential_id", "interface", "region_name",
        "endpoint_override", "cafile", "password", "application_credential_secret", "insecure", "timeout"}},
  };
  return k;
}

bool secret_key(const std::string& key) { return key == "password" || key == "application_credential_secret"; }

// "a, b,c" (or one per line) appended to out, blanks trimmed, empties skipped.
void split_list(const std::string& v, std::vector<std::string>& out) {
  std::string item;
  for (char ch : v + ",") {
    if (ch == ',' || ch == '\n') {
      while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.pop_back();
      size_t s = item.find_first_not_of(" \t");
      if (s != std::string::npos) out.push_back(item.substr(s));
      item.clear();
    } else {
      item += ch;
    }
  }
}

std::string fmt(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.10g", v);  // whole numbers in full (1048576, 604800)
  return b;
}

}  // namespace

std::optional<double> parse_number(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty()) return std::nullopt;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

Result<void> check_number(const std::string& what, double v, double lo, double hi, bool lo_open, const char* unit) {
  if (!std::isfinite(v) || v > hi || v < lo || (lo_open && v == lo))
    return make_error(Errc::kInvalidArgument, what + " must be " + (lo_open ? "more than " : "at least ") + fmt(lo) +
                                                  " and at most " + fmt(hi) + " " + unit + " (a plain number)");
  return {};
}

bool valid_listen(const std::string& listen) {
  if (listen.empty()) return true;  // metrics off
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  std::string host = listen.substr(0, colon);
  std::string port = listen.substr(colon + 1);
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (ec != std::errc() || end != port.data() + port.size() || p == 0 || p > 65535) return false;
  if (host.front() == '[') return host.back() == ']' && host.size() > 2;
  return std::all_of(host.begin(), host.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-'; });
}

Result<void> validate_options(const AgentOptions& o) {
  struct Range {
    const char* name;
    double v, lo, hi;
    bool lo_open;
    const char* unit = "seconds";
  };
  const Range ranges[] = {
      {"inventory_interval", o.inventory_interval_s, 0, 86400, true},
      {"topology_interval", o.topology_interval_s, 0, 86400, true},
      {"verify_interval", o.verify_interval_s, 0, 86400, true},
      {"verify_timeout", o.verify_timeout_s, 0, 600, true},
      {"verify_max_age", o.verify_max_age_s, 0, 86400 * 7, false},  // 0: 3 x verify_interval + verify_timeout
      {"orphan_grace", o.orphan_grace_s, 0, 86400, false},
      {"alert_quiet", o.alert_quiet_s, 0, 86400 * 7, false},  // 0: never
      {"dump_before", o.dump_before_s, 0, 3600, false},
      {"dump_after", o.dump_after_s, 0, 3600, false},
      {"ring_buffer_kib", o.ring_buffer_kib, 4, 1 << 20, false, "KiB"},
  };
  for (const auto& r : ranges) {
    auto c = check_number(r.name, r.v, r.lo, r.hi, r.lo_open, r.unit);
    if (!c) return c.error();
  }
  auto one_of = [](const std::string& v, std::initializer_list<const char*> allowed) {
    return std::any_of(allowed.begin(), allowed.end(), [&](const char* a) { return v == a; });
  };
  if (auto k = static_cast<uint64_t>(o.ring_buffer_kib); k != o.ring_buffer_kib || (k & (k - 1)) != 0)
    return make_error(Errc::kInvalidArgument,
                      "ring_buffer_kib must be a power of two (4, 8, ... 1048576), not " + fmt(o.ring_buffer_kib));
  if (!one_of(o.alert_format, {"json", "falco"}))
    return make_error(Errc::kInvalidArgument, "alert_format must be json or falco, not '" + o.alert_format + "'");
  if (!one_of(o.dump_severity, {"critical", "high", "warning", "off"}))
    return make_error(Errc::kInvalidArgument,
                      "dump_severity must be critical, high, warning or off, not '" + o.dump_severity + "'");
  if (!one_of(o.guard_mode, {"off", "monitor", "enforce"}))
    return make_error(Errc::kInvalidArgument, "guard must be off, monitor or enforce, not '" + o.guard_mode + "'");
  if (!valid_listen(o.metrics_listen))
    return make_error(
        Errc::kInvalidArgument,
        "metrics_listen must be host:port (e.g. 127.0.0.1:9477, [::1]:9477) or \"\" for no metrics, not '" +
            o.metrics_listen + "'");
  if (o.cinder && o.cinder->http.total_timeout.count() <= 0)
    return make_error(Errc::kInvalidArgument, "[cinder] timeout must be more than 0 seconds");
  return {};
}

Result<std::optional<inventory::KeystoneConfig>> load_config(const std::string& path, bool explicit_path,
                                                             AgentOptions& o) {
  std::optional<inventory::KeystoneConfig> none;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    // The default path: missing is fine; unreadable for a non-root caller too
    // (the BPF load refuses it next, with its own exit status).
    if (!explicit_path && (e == ENOENT || (e == EACCES && ::geteuid() != 0))) return none;
    return make_error(Errc::kIo, "config " + path + ": " + std::strerror(e));
  }
  auto cfg = ini::Config::load(path);
  if (!cfg.ok()) return cfg.error();
  const auto& c = cfg.value();
  for (const auto& name : c.section_names()) {
    if (name == "DEFAULT") continue;  // below: it may exist, but hold nothing
    const ini::Section* sec = c.section(name);
    auto known = known_keys().find(name);
    if (known == known_keys().end())
      return make_error(Errc::kParse, sec->file + ":" + std::to_string(sec->line) + ": unknown section [" + sec->name +
                                          "] (lunwatch reads [agent], [containment], [cinder])");
    for (const auto& e : sec->entries)
      if (!known->second.count(e.key))
        return make_error(Errc::kParse,
                          e.file + ":" + std::to_string(e.line) + ": unknown key '" + e.key + "' in [" + name + "]");
  }
  if (const ini::Section* d = c.section("DEFAULT"); d != nullptr && !d->entries.empty())
    return make_error(Errc::kParse, d->entries.front().file + ":" + std::to_string(d->entries.front().line) +
                                        ": lunwatch reads no key from [DEFAULT]");

  Result<void> bad;
  auto fail = [&](Error e) {
    if (bad.ok()) bad = std::move(e);
  };
  auto get = [&](const char* sec, const char* key) -> std::optional<std::string> {
    auto v = c.resolved(sec, key);
    if (v.ok()) return v.value();
    if (v.error().code != Errc::kNotFound || c.find(sec, key) != nullptr) {
      const ini::Entry* e = c.find(sec, key);
      std::string where = e ? e->file + ":" + std::to_string(e->line) + ": " : path + ": ";
      // The resolver's message names the $reference, which is part of a secret.
      fail(make_error(Errc::kParse,
                      where + "[" + sec + "] " + key + ": " +
                          (secret_key(key) ? std::string("cannot be interpolated (write a literal '$' as '$$')")
                                           : v.error().message)));
    }
    return std::nullopt;
  };
  auto num_in = [&](const char* sec, const char* key, double& out) {
    if (auto v = get(sec, key)) {
      if (auto d = parse_number(*v))
        out = *d;
      else
        fail(make_error(Errc::kParse, path + ": [" + sec + "] " + key + " is not a number: " + v->substr(0, 64) +
                                          " (a plain number of seconds: no unit, not nan or inf)"));
    }
  };
  auto boolean = [&](const char* sec, const char* key, bool& out) {
    if (auto v = get(sec, key)) {
      if (auto b = ini::parse_bool(*v))
        out = *b;
      else
        fail(make_error(Errc::kParse,
                        path + ": [" + sec + "] " + key + " must be true or false, not '" + v->substr(0, 64) + "'"));
    }
  };
  auto num = [&](const char* key, double& out) { num_in("agent", key, out); };
  auto str = [&](const char* key, std::string& out) {
    if (auto v = get("agent", key)) out = *v;
  };
  str("guard", o.guard_mode);
  str("hostname", o.hostname);
  str("metrics_listen", o.metrics_listen);
  str("state_file", o.state_file);
  str("libvirt_dir", o.libvirt_dir);
  str("sysfs_root", o.sysfs_root);
  str("alerts_file", o.alerts_file);
  str("alert_format", o.alert_format);
  str("dump_dir", o.dump_dir);
  str("dump_severity", o.dump_severity);
  str("pin_dir", o.pin_dir);
  num("inventory_interval", o.inventory_interval_s);
  num("topology_interval", o.topology_interval_s);
  num("verify_interval", o.verify_interval_s);
  num("verify_timeout", o.verify_timeout_s);
  num("verify_max_age", o.verify_max_age_s);
  num("orphan_grace", o.orphan_grace_s);
  num("alert_quiet", o.alert_quiet_s);
  num("dump_before", o.dump_before_s);
  num("dump_after", o.dump_after_s);
  num("ring_buffer_kib", o.ring_buffer_kib);
  boolean("agent", "libvirt", o.libvirt);
  if (auto v = get("agent", "attachments")) split_list(*v, o.attachment_files);
  if (auto v = get("agent", "host_allowlist")) split_list(*v, o.host_allowlist_extra);
  if (auto v = get("containment", "actions")) o.contain_actions = *v;
  if (auto v = get("containment", "virsh")) o.contain.virsh = *v;
  if (auto v = get("containment", "libvirt_uri")) o.contain.libvirt_uri = *v;
  num_in("containment", "timeout", o.contain.timeout_s);

  inventory::KeystoneConfig k;
  auto s = [&](const char* key, std::string& out) {
    if (auto v = get("cinder", key)) out = *v;
  };
  std::string auth_url;
  s("auth_url", auth_url);
  k.auth_url = auth_url;
  s("username", k.username);
  s("user_id", k.user_id);
  s("user_domain_name", k.user_domain_name);
  s("user_domain_id", k.user_domain_id);
  s("project_name", k.project_name);
  s("project_id", k.project_id);
  s("project_domain_name", k.project_domain_name);
  s("project_domain_id", k.project_domain_id);
  s("application_credential_id", k.application_credential_id);
  s("interface", k.interface);
  s("region_name", k.region_name);
  s("endpoint_override", k.endpoint_override);
  s("cafile", k.http.ca_bundle);
  if (auto v = get("cinder", "password")) k.password = inventory::Secret(*v);
  if (auto v = get("cinder", "application_credential_secret")) k.application_credential_secret = inventory::Secret(*v);
  bool insecure = !k.http.verify_tls;
  boolean("cinder", "insecure", insecure);
  k.http.verify_tls = !insecure;
  double timeout_s = 0;
  bool has_timeout = false;
  if (c.find("cinder", "timeout")) {
    has_timeout = true;
    num_in("cinder", "timeout", timeout_s);
  }
  if (!bad.ok()) return bad.error();
  if (has_timeout) {
    auto r = check_number("[cinder] timeout", timeout_s, 0, 3600, true, "seconds");
    if (!r) return make_error(Errc::kInvalidArgument, path + ": " + r.error().message);
    k.http.total_timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  }
  if (auth_url.empty()) return none;
  return std::optional<inventory::KeystoneConfig>(std::move(k));
}

}  // namespace lunwatch::cli
