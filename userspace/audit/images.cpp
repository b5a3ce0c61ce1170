#include "audit/images.h"

#include <nlohmann/json.hpp>

#include "audit/fsutil.h"
#include "common/json_input.h"

namespace lunwatch::audit {
namespace {

using nlohmann::json;

// Case-insensitive member lookup ("ID" / "id", "Properties" / "properties").
const json* member(const json& o, std::string_view key) {
  if (!o.is_object()) return nullptr;
  for (auto it = o.begin(); it != o.end(); ++it)
    if (to_lower(it.key()) == key) return &it.value();
  return nullptr;
}

std::string as_text(const json* v) {
  if (!v || v->is_null()) return "";
  if (v->is_string()) return v->get<std::string>();
  return v->dump();
}

// OSC's older rendering of properties: "a='1', b='x, y'".
void parse_property_string(std::string_view s, ImageRecord& r) {
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',')) ++i;
    size_t eq = s.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string key = trim(s.substr(i, eq - i));
    i = eq + 1;
    std::string value;
    if (i < s.size() && (s[i] == '\'' || s[i] == '"')) {
      char q = s[i++];
      size_t close = s.find(q, i);
      if (close == std::string_view::npos) close = s.size();
      value = std::string(s.substr(i, close - i));
      i = close + 1;
    } else {
      size_t comma = s.find(',', i);
      if (comma == std::string_view::npos) comma = s.size();
      value = trim(s.substr(i, comma - i));
      i = comma;
    }
    if (key == "instance_uuid") r.instance_uuid = value;
    if (key == "image_type") r.image_type = value;
    if (key == "cinder_encryption_key_id") r.key_id = value;
    if (key == "cinder_encryption_key_deletion_policy") r.deletion_policy = value;
    r.has_properties = true;
  }
}

void take_properties(const json& o, ImageRecord& r) {
  auto get = [&](const char* k) { return as_text(member(o, k)); };
  r.instance_uuid = get("instance_uuid");
  r.image_type = get("image_type");
  r.key_id = get("cinder_encryption_key_id");
  r.deletion_policy = get("cinder_encryption_key_deletion_policy");
}

ImageRecord one(const json& o) {
  ImageRecord r;
  r.id = as_text(member(o, "id"));
  r.name = as_text(member(o, "name"));
  r.status = as_text(member(o, "status"));
  const json* props = member(o, "properties");
  if (props && props->is_object()) {
    r.has_properties = true;
    take_properties(*props, r);
  } else if (props && props->is_string()) {
    parse_property_string(props->get<std::string>(), r);
    r.has_properties = true;
  }
  // Glance v2 API: custom properties are top-level members; its images always
  // carry the core attributes below, which OSC's list rows do not.
  // (exact, lower-case names: OSC's rows say "Disk Format", "Visibility").
  bool api_shape = o.contains("disk_format") || o.contains("container_format") || o.contains("visibility") ||
                   o.contains("os_hidden") || o.contains("self");
  ImageRecord top;
  take_properties(o, top);
  if (api_shape || !top.instance_uuid.empty() || !top.image_type.empty() || !top.key_id.empty() ||
      !top.deletion_policy.empty()) {
    if (r.instance_uuid.empty()) r.instance_uuid = top.instance_uuid;
    if (r.image_type.empty()) r.image_type = top.image_type;
    if (r.key_id.empty()) r.key_id = top.key_id;
    if (r.deletion_policy.empty()) r.deletion_policy = top.deletion_policy;
    r.has_properties = r.has_properties || api_shape || !top.deletion_policy.empty();
  }
  return r;
}

}  // namespace

Result<std::vector<ImageRecord>> parse_image_list(std::string_view text) {
  auto parsed = parse_json(text);
  if (!parsed.ok()) return make_error(Errc::kParse, "invalid JSON: " + parsed.error().message);
  const json& j = parsed.value();
  std::vector<ImageRecord> out;
  const json* list = nullptr;
  if (j.is_object() && member(j, "images") && member(j, "images")->is_array()) {
    list = member(j, "images");
  } else if (j.is_array()) {
    list = &j;
  } else if (j.is_object() && member(j, "id")) {
    out.push_back(one(j));
    return out;
  } else {
    return make_error(Errc::kParse, "expected {\"images\": [...]}, an array of images, or one image object");
  }
  for (const auto& o : *list) {
    if (!o.is_object()) return make_error(Errc::kParse, "an image entry is not an object");
    out.push_back(one(o));
  }
  return out;
}

}  // namespace lunwatch::audit
