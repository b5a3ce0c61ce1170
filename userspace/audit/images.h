#pragma once
// Glance images for Nova bug 1852106: which images carry
// cinder_encryption_key_deletion_policy=on_image_deletion and look like server
// snapshots (instance_uuid set, or image_type=snapshot)? Deleting such a
// snapshot deletes the encryption key its parent image still uses.
//
// Accepted JSON: the Glance v2 API (`{"images": [...]}` with properties at the
// top level of each image), `openstack image list --long -f json` (an array;
// that listing has no properties column, so such rows are "unknown"), and
// `openstack image show -f json` (one object, or an array of them) whose
// "properties" is an object or OSC's "k='v', k2='v2'" string.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lunwatch::audit {

struct ImageRecord {
  std::string id;
  std::string name;
  std::string status;
  bool has_properties = false;  // false: the listing did not carry properties
  std::string instance_uuid;
  std::string image_type;
  std::string key_id;           // cinder_encryption_key_id (a key manager id, not key material)
  std::string deletion_policy;  // cinder_encryption_key_deletion_policy
  bool looks_like_snapshot() const { return !instance_uuid.empty() || image_type == "snapshot"; }
  bool deletes_key() const { return deletion_policy == "on_image_deletion"; }
};

// Errc::kParse with the reason on malformed JSON or an unknown shape.
Result<std::vector<ImageRecord>> parse_image_list(std::string_view json_text);

}  // namespace lunwatch::audit
