#pragma once
// Helpers shared by the correlator's files (correlator.cpp, device_graph.cpp,
// attachment_index.cpp, alerts.cpp, rules/*.cpp). Internal to detect/.
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "lunwatch.pb.h"

namespace lunwatch::detect::internal {

inline bool gone(v1::AttachmentStatus s) {
  return s == v1::ATTACHMENT_DELETED || s == v1::ATTACHMENT_DETACHED || s == v1::ATTACHMENT_ERROR_DETACHING;
}

inline bool is_uuid_like(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
  }
  return true;
}

inline std::string label(const v1::Instance& i) {
  if (!i.name().empty()) return i.name();
  if (!i.uuid().empty()) return i.uuid();
  return "host process";
}

// Records that say "this instance has this device open": libvirt's view, or
// a file record with a device path that is not detached (hosts without Nova).
inline bool holder_record(const v1::Attachment& a) {
  if (a.source() == v1::SOURCE_LIBVIRT) return true;
  return a.source() == v1::SOURCE_FILE && !a.resolved_dev().empty() && !gone(a.status());
}

inline bool same_instance(const v1::Attachment& a, const v1::Instance& i) {
  if (!a.instance_uuid().empty() && !i.uuid().empty()) return a.instance_uuid() == i.uuid();
  return !a.instance_name().empty() && a.instance_name() == i.name();
}

inline const std::vector<const v1::Attachment*>& lookup(
    const std::unordered_map<std::string, std::vector<const v1::Attachment*>>& m, const std::string& k) {
  static const std::vector<const v1::Attachment*> empty_list;
  auto it = m.find(k);
  return it == m.end() ? empty_list : it->second;
}

}  // namespace lunwatch::detect::internal
