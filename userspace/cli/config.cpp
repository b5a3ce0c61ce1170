#include "cli/config.h"

#include <filesystem>

#include "common/ini.h"

namespace lunwatch::cli {
namespace {

bool truthy(const std::string& v) { return v == "true" || v == "yes" || v == "on" || v == "1" || v == "True"; }

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

}  // namespace

Result<std::optional<inventory::KeystoneConfig>> load_config(const std::string& path, bool explicit_path,
                                                              AgentOptions& o) {
  std::optional<inventory::KeystoneConfig> none;
  if (!std::filesystem::exists(path)) {
    if (explicit_path) return make_error(Errc::kIo, "config " + path + " not found");
    return none;
  }
  auto cfg = ini::Config::load(path);
  if (!cfg.ok()) return cfg.error();
  const auto& c = cfg.value();
  auto get = [&](const char* sec, const char* key) -> std::optional<std::string> {
    auto v = c.resolved(sec, key);
    if (!v.ok()) return std::nullopt;
    return v.value();
  };
  Result<bool> bad = true;
  auto num_in = [&](const char* sec, const char* key, double& out) {
    if (auto v = get(sec, key)) {
      try {
        out = std::stod(*v);
      } catch (...) {
        bad = make_error(Errc::kParse, path + ": [" + sec + "] " + key + " is not a number: " + *v);
      }
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
  num("dump_before", o.dump_before_s);
  num("dump_after", o.dump_after_s);
  if (auto v = get("agent", "libvirt")) o.libvirt = truthy(*v);
  if (auto v = get("agent", "attachments")) split_list(*v, o.attachment_files);
  if (auto v = get("agent", "host_allowlist")) split_list(*v, o.host_allowlist_extra);
  if (auto v = get("containment", "actions")) o.contain_actions = *v;
  if (auto v = get("containment", "virsh")) o.contain.virsh = *v;
  if (auto v = get("containment", "libvirt_uri")) o.contain.libvirt_uri = *v;
  num_in("containment", "timeout", o.contain.timeout_s);
  if (!bad.ok()) return bad.error();

  auto auth_url = get("cinder", "auth_url");
  if (!auth_url || auth_url->empty()) return none;
  inventory::KeystoneConfig k;
  k.auth_url = *auth_url;
  auto s = [&](const char* key, std::string& out) {
    if (auto v = get("cinder", key)) out = *v;
  };
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
  if (auto v = get("cinder", "insecure")) k.http.verify_tls = !truthy(*v);
  if (auto v = get("cinder", "timeout")) {
    try {
      k.http.total_timeout = std::chrono::milliseconds(static_cast<int64_t>(std::stod(*v) * 1000));
    } catch (...) {
      return make_error(Errc::kParse, path + ": [cinder] timeout is not a number");
    }
  }
  return std::optional<inventory::KeystoneConfig>(std::move(k));
}

}  // namespace lunwatch::cli
