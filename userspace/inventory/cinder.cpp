#include "inventory/cinder.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <set>

#include "common/json_input.h"
#include "common/log.h"
#include "inventory/targets.h"

namespace lunwatch::inventory {
namespace {

constexpr int64_t kLatestExpiry = 7258118400;  // 2200-01-01T00:00:00Z

using json = nlohmann::json;

const json* member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

std::optional<std::string> string_at(const json& obj, const char* key) {
  const json* m = member(obj, key);
  if (m == nullptr || !m->is_string()) return std::nullopt;
  return m->get<std::string>();
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<uint64_t> lun_of(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer()) {
    auto i = v.get<int64_t>();
    if (i < 0) return std::nullopt;
    return static_cast<uint64_t>(i);
  }
  if (v.is_string()) return parse_lun(v.get<std::string>());
  return std::nullopt;
}

Error ci_error(const std::string& what) { return make_error(Errc::kParse, "connection_info: " + what); }

bool same_target(const v1::TargetLun& a, const v1::TargetLun& b) {
  return a.iqn() == b.iqn() && a.portal() == b.portal() && a.wwpn() == b.wwpn() && a.lun() == b.lun();
}

void add_target(ConnectionInfo& ci, v1::TargetLun t) {
  for (const auto& have : ci.targets) {
    if (same_target(have, t)) return;
  }
  ci.targets.push_back(std::move(t));
}

Result<void> parse_iscsi(const json& data, ConnectionInfo& ci) {
  const json* iqns = member(data, "target_iqns");
  const json* portals = member(data, "target_portals");
  const json* luns = member(data, "target_luns");
  if (iqns != nullptr && portals != nullptr && luns != nullptr && iqns->is_array() && portals->is_array() &&
      luns->is_array() && !iqns->empty()) {
    if (iqns->size() != portals->size() || iqns->size() != luns->size()) {
      return ci_error("target_iqns, target_portals and target_luns differ in length");
    }
    for (size_t i = 0; i < iqns->size(); ++i) {
      const std::string idx = "[" + std::to_string(i) + "]";
      if (!(*iqns)[i].is_string() || (*iqns)[i].get<std::string>().empty()) {
        return ci_error("target_iqns" + idx + " is not a string");
      }
      auto portal = (*portals)[i].is_string() ? normalise_portal((*portals)[i].get<std::string>()) : std::nullopt;
      if (!portal) return ci_error("target_portals" + idx + " is not a portal");
      auto lun = lun_of((*luns)[i]);
      if (!lun) return ci_error("target_luns" + idx + " is not a LUN");
      v1::TargetLun t;
      t.set_iqn((*iqns)[i].get<std::string>());
      t.set_portal(*portal);
      t.set_lun(*lun);
      add_target(ci, std::move(t));
    }
    return {};
  }
  auto iqn = string_at(data, "target_iqn");
  if (!iqn || iqn->empty()) return ci_error("iscsi without target_iqn (or target_iqns)");
  auto portal_text = string_at(data, "target_portal");
  auto portal = portal_text ? normalise_portal(*portal_text) : std::nullopt;
  if (!portal) return ci_error("iscsi without a usable target_portal");
  const json* lun_v = member(data, "target_lun");
  auto lun = lun_v != nullptr ? lun_of(*lun_v) : std::nullopt;
  if (!lun) return ci_error("iscsi without a usable target_lun");
  v1::TargetLun t;
  t.set_iqn(*iqn);
  t.set_portal(*portal);
  t.set_lun(*lun);
  add_target(ci, std::move(t));
  return {};
}

Result<std::vector<std::string>> wwpn_list(const json& v, const std::string& key) {
  std::vector<std::string> out;
  if (v.is_string()) {
    auto w = normalise_wwpn(v.get<std::string>());
    if (!w) return ci_error(key + " is not a WWPN");
    out.push_back(*w);
    return out;
  }
  if (!v.is_array()) return ci_error(key + " is neither a string nor a list");
  for (size_t i = 0; i < v.size(); ++i) {
    auto w = v[i].is_string() ? normalise_wwpn(v[i].get<std::string>()) : std::nullopt;
    if (!w) return ci_error(key + "[" + std::to_string(i) + "] is not a WWPN");
    out.push_back(*w);
  }
  return out;
}

Result<void> parse_fc(const json& data, ConnectionInfo& ci) {
  if (const json* itmap = member(data, "initiator_target_map"); itmap != nullptr && !itmap->is_null()) {
    if (!itmap->is_object()) return ci_error("initiator_target_map is not an object");
    for (const auto& [initiator, targets] : itmap->items()) {
      auto i = normalise_wwpn(initiator);
      if (!i) return ci_error("initiator_target_map has a key that is not a WWPN");
      auto ts = wwpn_list(targets, "initiator_target_map[" + *i + "]");
      if (!ts) return ts.error();
      auto& dst = ci.initiator_target_map[*i];
      for (auto& t : *ts) {
        if (std::find(dst.begin(), dst.end(), t) == dst.end()) dst.push_back(t);
      }
    }
  }
  std::vector<std::string> wwpns;
  if (const json* w = member(data, "target_wwns"); w != nullptr && !w->is_null()) {
    auto r = wwpn_list(*w, "target_wwns");
    if (!r) return r.error();
    wwpns = std::move(r.value());
  } else if (const json* w1 = member(data, "target_wwn"); w1 != nullptr && !w1->is_null()) {
    auto r = wwpn_list(*w1, "target_wwn");
    if (!r) return r.error();
    wwpns = std::move(r.value());
  } else {
    for (const auto& [i, ts] : ci.initiator_target_map) {
      for (const auto& t : ts) {
        if (std::find(wwpns.begin(), wwpns.end(), t) == wwpns.end()) wwpns.push_back(t);
      }
    }
  }
  if (wwpns.empty()) return ci_error("fibre_channel without target WWPNs");

  const json* luns = member(data, "target_luns");
  if (luns != nullptr && luns->is_array() && !luns->empty()) {
    // os-brick pairs target_wwns[i] with target_luns[i]; one LUN for all paths otherwise.
    if (luns->size() == wwpns.size()) {
      for (size_t i = 0; i < wwpns.size(); ++i) {
        auto lun = lun_of((*luns)[i]);
        if (!lun) return ci_error("target_luns[" + std::to_string(i) + "] is not a LUN");
        v1::TargetLun t;
        t.set_wwpn(wwpns[i]);
        t.set_lun(*lun);
        add_target(ci, std::move(t));
      }
      return {};
    }
    if (member(data, "target_lun") == nullptr) {
      return ci_error("target_luns and the target WWPNs differ in length");
    }
  }
  const json* lun_v = member(data, "target_lun");
  auto lun = lun_v != nullptr ? lun_of(*lun_v) : std::nullopt;
  if (!lun) return ci_error("fibre_channel without a usable target_lun");
  for (const auto& w : wwpns) {
    v1::TargetLun t;
    t.set_wwpn(w);
    t.set_lun(*lun);
    add_target(ci, std::move(t));
  }
  return {};
}

v1::AttachmentStatus status_of(const std::string& s) {
  static const std::map<std::string, v1::AttachmentStatus> by_name = {
      {"attached", v1::ATTACHMENT_ATTACHED},
      {"attaching", v1::ATTACHMENT_ATTACHING},
      {"detached", v1::ATTACHMENT_DETACHED},
      {"reserved", v1::ATTACHMENT_RESERVED},
      {"error_attaching", v1::ATTACHMENT_ERROR_ATTACHING},
      {"error_detaching", v1::ATTACHMENT_ERROR_DETACHING},
      {"deleted", v1::ATTACHMENT_DELETED},
  };
  auto it = by_name.find(lower(s));
  return it == by_name.end() ? v1::ATTACHMENT_STATUS_UNKNOWN : it->second;
}

std::string percent_encode(std::string_view s) {
  static constexpr const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
      if (ec == std::errc() && p == s.data() + i + 3) {
        out += static_cast<char>(v);
        i += 2;
        continue;
      }
    }
    out += s[i] == '+' ? ' ' : s[i];
  }
  return out;
}

std::string query_param(std::string_view url, std::string_view key) {
  auto q = url.find('?');
  if (q == std::string_view::npos) return "";
  std::string_view query = url.substr(q + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    auto eq = kv.find('=');
    if (kv.substr(0, eq) == key && eq != std::string_view::npos) return percent_decode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return "";
}

// The "message" of an OpenStack error body ({"<kind>": {"message": ..}}),
// at most 200 characters; "" when there is none.
std::string server_message(const std::string& body) {
  auto parsed = parse_json(body);
  if (!parsed.ok() || !parsed.value().is_object()) return "";
  const json& j = parsed.value();
  for (const auto& [k, v] : j.items()) {
    if (auto m = string_at(v, "message")) return m->substr(0, 200);
  }
  return "";
}

std::string strip_trailing_slashes(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

}  // namespace

// ------------------------------------------------------------ pure parsers

Result<ConnectionInfo> parse_connection_info(const json& in) {
  ConnectionInfo ci;
  json holder;
  const json* root = &in;
  if (in.is_string()) {
    auto parsed = parse_json(in.get_ref<const std::string&>());
    if (!parsed.ok()) return ci_error("a string that is not JSON");
    holder = std::move(parsed.value());
    root = &holder;
  }
  if (root->is_null() || (root->is_object() && root->empty())) return ci;
  if (!root->is_object()) return ci_error("not an object");
  auto dvt = string_at(*root, "driver_volume_type");
  if (!dvt || dvt->empty()) return ci_error("no driver_volume_type");
  ci.driver_volume_type = lower(*dvt);
  const json* data_member = member(*root, "data");
  const json& data = data_member != nullptr && data_member->is_object() ? *data_member : *root;

  if (ci.driver_volume_type == "iscsi" || ci.driver_volume_type == "iser") {
    ci.transport = v1::TRANSPORT_ISCSI;
    auto r = parse_iscsi(data, ci);
    if (!r) return r.error();
  } else if (ci.driver_volume_type == "fibre_channel") {
    ci.transport = v1::TRANSPORT_FC;
    auto r = parse_fc(data, ci);
    if (!r) return r.error();
  } else {
    ci.transport = v1::TRANSPORT_OTHER;
  }
  ci.volume_id = string_at(data, "volume_id").value_or("");
  ci.device_path = string_at(data, "device_path").value_or("");
  ci.expected_wwid = string_at(data, "multipath_id").value_or(string_at(data, "scsi_wwn").value_or(""));
  ci.access_mode = string_at(data, "access_mode").value_or("");
  if (const json* e = member(data, "encrypted"); e != nullptr && e->is_boolean()) ci.encrypted = e->get<bool>();
  return ci;
}

std::optional<int64_t> parse_cinder_time(std::string_view text) {
  if (text.size() < 19) return std::nullopt;
  std::string s(text);
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    // Cinder also writes a space instead of the T.
    if (std::sscanf(s.c_str(), "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                    &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
        consumed != 19) {
      return std::nullopt;
    }
  }
  if (tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t t = static_cast<int64_t>(timegm(&tm));
  std::string_view rest = text.substr(19);
  if (!rest.empty() && rest.front() == '.') {
    rest.remove_prefix(1);
    while (!rest.empty() && std::isdigit(static_cast<unsigned char>(rest.front()))) rest.remove_prefix(1);
  }
  if (rest.empty() || rest == "Z" || rest == "z") return t;
  if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int hh = 0, mm = 0;
    auto r1 = std::from_chars(rest.data() + 1, rest.data() + 3, hh);
    auto r2 = std::from_chars(rest.data() + 4, rest.data() + 6, mm);
    if (r1.ec != std::errc() || r2.ec != std::errc()) return std::nullopt;
    int64_t off = (hh * 60 + mm) * 60;
    return rest[0] == '+' ? t - off : t + off;
  }
  return std::nullopt;
}

Result<AttachmentsPage> parse_attachments_page(std::string_view text) {
  if (text.size() > kMaxInputBytes) return make_error(Errc::kTruncated, "cinder attachments: body larger than 16 MiB");
  // No exceptions: nlohmann's parse errors quote the input near the error,
  // which may be a secret.
  auto parsed = parse_json(text);
  if (!parsed.ok()) return make_error(Errc::kParse, "cinder attachments: body is not JSON: " + parsed.error().message);
  const json& j = parsed.value();
  const json* list = member(j, "attachments");
  if (list == nullptr || !list->is_array()) {
    return make_error(Errc::kParse, "cinder attachments: no \"attachments\" list in the body");
  }
  AttachmentsPage page;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    const std::string where = "cinder attachments[" + std::to_string(i) + "]";
    if (!e.is_object()) return make_error(Errc::kParse, where + " is not an object");
    auto id = string_at(e, "id");
    auto volume = string_at(e, "volume_id");
    auto status = string_at(e, "status");
    if (!id || id->empty()) return make_error(Errc::kParse, where + " has no id");
    if (!volume || volume->empty()) return make_error(Errc::kParse, where + " (" + *id + ") has no volume_id");
    if (!status) return make_error(Errc::kParse, where + " (" + *id + ") has no status");
    v1::Attachment a;
    a.set_source(v1::SOURCE_CINDER);
    a.set_attachment_id(*id);
    a.set_volume_id(*volume);
    a.set_status(status_of(*status));
    a.set_instance_uuid(string_at(e, "instance").value_or(""));
    a.set_attach_mode(string_at(e, "attach_mode").value_or(""));
    a.set_project_id(string_at(e, "project_id").value_or(""));
    a.set_attached_host(string_at(e, "attached_host").value_or(""));
    if (auto t = string_at(e, "attached_at"); t && !t->empty())
      a.set_attached_at_unix(parse_cinder_time(*t).value_or(0));
    if (auto t = string_at(e, "detached_at"); t && !t->empty())
      a.set_detached_at_unix(parse_cinder_time(*t).value_or(0));
    if (const json* ci_json = member(e, "connection_info")) {
      auto ci = parse_connection_info(*ci_json);
      if (ci) {
        a.set_transport(ci->transport);
        for (auto& t : ci->targets) *a.add_targets() = std::move(t);
        a.set_device_path(ci->device_path);
        a.set_expected_wwid(ci->expected_wwid);
        a.set_encrypted(ci->encrypted);
        if (a.attach_mode().empty()) a.set_attach_mode(ci->access_mode);
      } else {
        page.warnings.push_back("attachment " + *id + ": " + ci.error().message);
      }
    }
    page.attachments.push_back(std::move(a));
  }
  if (const json* links = member(j, "attachments_links"); links != nullptr && links->is_array()) {
    for (const auto& l : *links) {
      if (string_at(l, "rel").value_or("") != "next") continue;
      page.has_next = true;
      page.next_marker = query_param(string_at(l, "href").value_or(""), "marker");
      if (page.next_marker.empty() && !page.attachments.empty()) {
        page.next_marker = page.attachments.back().attachment_id();
      }
    }
  }
  return page;
}

Result<KeystoneTokenInfo> parse_keystone_token(std::string_view text) {
  auto parsed = parse_json(text);
  if (!parsed.ok()) return make_error(Errc::kParse, "keystone token: body is not JSON: " + parsed.error().message);
  const json& j = parsed.value();
  const json* token = member(j, "token");
  if (token == nullptr || !token->is_object()) return make_error(Errc::kParse, "keystone token: no \"token\" object");
  KeystoneTokenInfo info;
  if (const json* p = member(*token, "project")) info.project_id = string_at(*p, "id").value_or("");
  if (const json* roles = member(*token, "roles"); roles != nullptr && roles->is_array()) {
    info.has_roles = true;
    for (const auto& r : *roles)
      if (auto n = string_at(r, "name")) info.roles.push_back(*n);
  }
  if (auto e = string_at(*token, "expires_at")) {
    // system_clock counts nanoseconds in int64: past 2262 it overflows, so a
    // far-future expiry is clamped to 2200 (still "does not expire soon").
    if (auto t = parse_cinder_time(*e))
      info.expires_at = std::chrono::system_clock::from_time_t(std::clamp<int64_t>(*t, 0, kLatestExpiry));
  }
  if (const json* cat = member(*token, "catalog"); cat != nullptr && cat->is_array()) {
    for (const auto& svc : *cat) {
      auto type = string_at(svc, "type");
      const json* eps = member(svc, "endpoints");
      if (!type || eps == nullptr || !eps->is_array()) continue;
      for (const auto& ep : *eps) {
        CatalogEndpoint c;
        c.service_type = *type;
        c.interface = string_at(ep, "interface").value_or("");
        c.region = string_at(ep, "region_id").value_or(string_at(ep, "region").value_or(""));
        c.url = string_at(ep, "url").value_or("");
        if (!c.url.empty()) info.catalog.push_back(std::move(c));
      }
    }
  }
  return info;
}

Result<std::string> select_volume_endpoint(const std::vector<CatalogEndpoint>& catalog, const std::string& interface,
                                           const std::string& region) {
  for (const char* type : {"block-storage", "volumev3"}) {
    for (const auto& ep : catalog) {
      if (ep.service_type != type || ep.interface != interface) continue;
      if (!region.empty() && ep.region != region) continue;
      return ep.url;
    }
  }
  return make_error(Errc::kNotFound, "keystone catalog: no block-storage/volumev3 endpoint with interface " +
                                         interface + (region.empty() ? "" : " in region " + region));
}

std::string cinder_base_url(std::string endpoint, const std::string& project_id) {
  for (const char* ph : {"{project_id}", "%(project_id)s", "$(project_id)s", "%(tenant_id)s", "$(tenant_id)s"}) {
    for (auto pos = endpoint.find(ph); pos != std::string::npos; pos = endpoint.find(ph)) {
      endpoint.replace(pos, std::string_view(ph).size(), project_id);
    }
  }
  endpoint = strip_trailing_slashes(std::move(endpoint));
  auto v3 = endpoint.rfind("/v3");
  if (v3 != std::string::npos && (v3 + 3 == endpoint.size() || endpoint[v3 + 3] == '/')) {
    if (v3 + 3 == endpoint.size() && !project_id.empty()) endpoint += "/" + project_id;
    return endpoint;
  }
  endpoint += "/v3";
  if (!project_id.empty()) endpoint += "/" + project_id;
  return endpoint;
}

// ---------------------------------------------------------------- Keystone

KeystoneAuth::KeystoneAuth(KeystoneConfig config, std::shared_ptr<HttpClient> http)
    : config_(std::move(config)), http_(std::move(http)) {}

std::string KeystoneAuth::redact_text(std::string text) const {
  return redact(std::move(text), {&config_.password, &config_.application_credential_secret, &token_});
}

std::string KeystoneAuth::request_body() const {
  auto domain = [](const std::string& id, const std::string& name) {
    if (!id.empty()) return json{{"id", id}};
    if (!name.empty()) return json{{"name", name}};
    return json{{"id", "default"}};
  };
  json auth;
  if (!config_.application_credential_id.empty()) {
    auth["identity"] = {
        {"methods", {"application_credential"}},
        {"application_credential",
         {{"id", config_.application_credential_id}, {"secret", config_.application_credential_secret.reveal()}}}};
  } else {
    json user = config_.user_id.empty() ? json{{"name", config_.username},
                                               {"domain", domain(config_.user_domain_id, config_.user_domain_name)}}
                                        : json{{"id", config_.user_id}};
    user["password"] = config_.password.reveal();
    auth["identity"] = {{"methods", {"password"}}, {"password", {{"user", user}}}};
    json project = config_.project_id.empty()
                       ? json{{"name", config_.project_name},
                              {"domain", domain(config_.project_domain_id, config_.project_domain_name)}}
                       : json{{"id", config_.project_id}};
    auth["scope"] = {{"project", project}};
    wipe_string(user["password"].get_ref<std::string&>());
  }
  json root;
  root["auth"] = std::move(auth);
  std::string body = root.dump();
  json& identity = root["auth"]["identity"];
  if (identity.contains("application_credential")) {
    wipe_string(identity["application_credential"]["secret"].get_ref<std::string&>());
  } else {
    wipe_string(identity["password"]["user"]["password"].get_ref<std::string&>());
  }
  return body;
}

Result<void> KeystoneAuth::authenticate() {
  if (config_.auth_url.empty()) return make_error(Errc::kInvalidArgument, "keystone: no auth_url");
  bool app = !config_.application_credential_id.empty();
  if (app && config_.application_credential_secret.empty()) {
    return make_error(Errc::kInvalidArgument, "keystone: application credential without a secret");
  }
  if (!app) {
    if (config_.user_id.empty() && config_.username.empty()) {
      return make_error(Errc::kInvalidArgument, "keystone: neither username nor user_id");
    }
    if (config_.password.empty()) return make_error(Errc::kInvalidArgument, "keystone: no password");
    if (config_.project_id.empty() && config_.project_name.empty()) {
      return make_error(Errc::kInvalidArgument, "keystone: neither project_name nor project_id");
    }
  }
  std::string url = strip_trailing_slashes(config_.auth_url);
  if (url.size() < 3 || url.compare(url.size() - 3, 3, "/v3") != 0) url += "/v3";
  url += "/auth/tokens";
  std::string body = request_body();
  auto resp = http_->request("POST", url, {"Content-Type: application/json", "Accept: application/json"}, body);
  wipe_string(body);
  if (!resp) return make_error(resp.error().code, "keystone: " + redact_text(resp.error().message));
  if (resp->status != 201 && resp->status != 200) {
    std::string msg = server_message(resp->body);
    return make_error(Errc::kIo, "keystone: POST " + url_for_display(url) + ": HTTP " + std::to_string(resp->status) +
                                     (msg.empty() ? "" : ": " + redact_text(msg)));
  }
  Secret token(resp->header("x-subject-token"));
  if (token.empty()) return make_error(Errc::kParse, "keystone: no X-Subject-Token header in the answer");
  auto info = parse_keystone_token(resp->body);
  if (!info) return make_error(info.error().code, info.error().message);
  std::string endpoint = config_.endpoint_override;
  if (endpoint.empty()) {
    auto ep = select_volume_endpoint(info->catalog, config_.interface, config_.region_name);
    if (!ep) return ep.error();
    endpoint = *ep;
  }
  token_ = std::move(token);
  expires_at_ = info->expires_at;
  base_url_ = cinder_base_url(endpoint, info->project_id);
  roles_ = info->roles;
  sees_all_ = !info->has_roles || std::find(roles_.begin(), roles_.end(), "admin") != roles_.end();
  ++authentications_;
  return {};
}

Result<const Secret*> KeystoneAuth::token() {
  if (!token_.empty() && (!expires_at_ || std::chrono::system_clock::now() + std::chrono::minutes(1) < *expires_at_)) {
    return &token_;
  }
  auto r = authenticate();
  if (!r) return r.error();
  return &token_;
}

// ------------------------------------------------------------------ Cinder

CinderClient::CinderClient(KeystoneConfig keystone, CinderOptions options)
    : http_(std::make_shared<HttpClient>(keystone.http)),
      auth_(keystone, http_),
      options_(std::move(options)),
      override_(keystone.endpoint_override) {}

std::string CinderClient::describe() const { return override_.empty() ? auth_.describe() : url_for_display(override_); }

Result<HttpResponse> CinderClient::get(const std::string& url, bool& reauthed) {
  for (;;) {
    auto tok = auth_.token();
    if (!tok) return tok.error();
    std::vector<std::string> headers = {"X-Auth-Token: " + (*tok)->reveal(), "Accept: application/json",
                                        "OpenStack-API-Version: volume " + options_.microversion};
    auto resp = http_->request("GET", url, headers);
    wipe_string(headers[0]);
    ++requests_;
    if (!resp) return make_error(resp.error().code, "cinder: " + auth_.redact_text(resp.error().message));
    if (resp->status == 401 && !reauthed) {
      reauthed = true;
      auth_.invalidate();
      continue;
    }
    return resp;
  }
}

Result<std::vector<v1::Attachment>> CinderClient::list_attachments() {
  auto tok = auth_.token();
  if (!tok) return tok.error();
  std::vector<v1::Attachment> out;
  std::set<std::string> markers;
  std::string marker;
  bool reauthed = false;
  for (uint32_t pages = 0;; ++pages) {
    if (pages >= options_.max_pages) {
      return make_error(Errc::kTruncated, "cinder: more than " + std::to_string(options_.max_pages) +
                                              " pages of attachments; raise the page cap");
    }
    std::string url = auth_.volume_base_url() + "/attachments/detail?";
    if (options_.all_tenants) url += "all_tenants=1&";
    url += "limit=" + std::to_string(options_.page_limit);
    if (!marker.empty()) url += "&marker=" + percent_encode(marker);
    auto resp = get(url, reauthed);
    if (!resp) return resp.error();
    if (resp->status != 200) {
      std::string msg = server_message(resp->body);
      return make_error(Errc::kIo, "cinder: GET " + url_for_display(url) + ": HTTP " + std::to_string(resp->status) +
                                       (msg.empty() ? "" : ": " + auth_.redact_text(msg)));
    }
    auto page = parse_attachments_page(resp->body);
    if (!page) return make_error(page.error().code, page.error().message + " (page " + std::to_string(pages + 1) + ")");
    for (const auto& w : page->warnings) log::debug("cinder: " + w);
    for (auto& a : page->attachments) out.push_back(std::move(a));
    if (!page->has_next) break;
    if (page->next_marker.empty() || !markers.insert(page->next_marker).second) {
      return make_error(Errc::kParse, "cinder: paging does not advance (next link without a new marker)");
    }
    marker = page->next_marker;
  }
  return out;
}

CinderSource::CinderSource(std::unique_ptr<CinderClient> client, CinderSourceOptions options)
    : client_(std::move(client)), options_(std::move(options)) {
  name_ = "cinder:" + client_->describe();
  snapshot_.set_kind(v1::SOURCE_CINDER);
  snapshot_.set_name(name_);
}

bool CinderSource::backing_off() const { return failures_ > 0 && options_.clock() < next_attempt_; }

void CinderSource::refresh() {
  if (backing_off()) return;
  snapshot_.set_last_attempt_unix_ms(now_unix_ms());
  Result<std::vector<v1::Attachment>> r = make_error(Errc::kIo, "cinder: not attempted");
  try {
    r = client_->list_attachments();
  } catch (const std::exception&) {
    // Allocation failure or a library throwing: a failed refresh, not a crash.
    r = make_error(Errc::kIo, "cinder: internal error while listing attachments");
  }
  if (r) {
    snapshot_.clear_attachments();
    for (auto& a : r.value()) *snapshot_.add_attachments() = std::move(a);
    snapshot_.set_last_good_unix_ms(snapshot_.last_attempt_unix_ms());
    snapshot_.set_last_error("");
    snapshot_.set_stale(false);
    bool partial = client_->all_tenants() && !client_->auth().sees_all_projects();
    if (partial != snapshot_.partial()) {
      if (partial) {
        std::string roles;
        for (const auto& ro : client_->auth().roles()) roles += (roles.empty() ? "" : ",") + ro;
        log::warn(name_ + ": the Cinder user has no admin role (roles: " + (roles.empty() ? "none" : roles) +
                  "): all_tenants=1 lists its own project's attachments only; absence in this list proves nothing "
                  "(lunwatch_attachment_source_partial)");
      } else {
        log::info(name_ + ": the Cinder user now sees every project's attachments");
      }
    }
    snapshot_.set_partial(partial);
    if (failures_ > 0) log::info(name_ + " answers again");
    failures_ = 0;
    backoff_ = std::chrono::milliseconds(0);
    return;
  }
  std::string msg = client_->auth().redact_text(r.error().message);
  snapshot_.set_errors_total(snapshot_.errors_total() + 1);
  snapshot_.set_last_error(msg);
  snapshot_.set_stale(true);
  ++failures_;
  backoff_ = failures_ == 1 ? options_.backoff_initial : std::min(backoff_ * 2, options_.backoff_max);
  next_attempt_ = options_.clock() + backoff_;
  log::warn(msg + " (keeping " + std::to_string(snapshot_.attachments_size()) + " last good attachments; retry in " +
            std::to_string(backoff_.count()) + " ms)");
}

}  // namespace lunwatch::inventory
