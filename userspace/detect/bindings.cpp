#include "detect/bindings.h"

#include <fcntl.h>
#include <google/protobuf/util/json_util.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/safe_file.h"

namespace lunwatch::detect {

std::string BindingStore::key(const std::string& instance_uuid, const std::string& volume_id) {
  return instance_uuid + "|" + volume_id;
}

const v1::Binding* BindingStore::find(const std::string& i, const std::string& v) const {
  auto it = by_key_.find(key(i, v));
  return it == by_key_.end() ? nullptr : &it->second;
}

std::vector<const v1::Binding*> BindingStore::by_wwid(const std::string& wwid) const {
  std::vector<const v1::Binding*> out;
  auto it = keys_by_wwid_.find(wwid);
  if (it == keys_by_wwid_.end()) return out;
  for (const auto& k : it->second) out.push_back(&by_key_.at(k));
  return out;
}

bool BindingStore::put(const v1::Binding& b) {
  std::string k = key(b.instance_uuid(), b.volume_id());
  auto& slot = by_key_[k];
  if (slot.wwid() == b.wwid() && slot.attachment_id() == b.attachment_id() && !slot.wwid().empty()) return false;
  if (!slot.wwid().empty()) keys_by_wwid_[slot.wwid()].erase(k);
  slot = b;
  keys_by_wwid_[b.wwid()].insert(k);
  return true;
}

bool BindingStore::erase(const std::string& i, const std::string& v) {
  auto it = by_key_.find(key(i, v));
  if (it == by_key_.end()) return false;
  keys_by_wwid_[it->second.wwid()].erase(it->first);
  by_key_.erase(it);
  return true;
}

void BindingStore::load(const v1::Bindings& all) {
  by_key_.clear();
  keys_by_wwid_.clear();
  for (const auto& b : all.bindings()) put(b);
}

v1::Bindings BindingStore::snapshot() const {
  std::vector<const std::pair<const std::string, v1::Binding>*> sorted;
  sorted.reserve(by_key_.size());
  for (const auto& kv : by_key_) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return a->first < b->first; });
  v1::Bindings out;
  for (const auto* kv : sorted) *out.add_bindings() = kv->second;
  return out;
}

size_t BindingStore::erase_unless(const std::set<std::string>& keep) {
  size_t n = 0;
  for (auto it = by_key_.begin(); it != by_key_.end();) {
    if (keep.count(it->first)) {
      ++it;
      continue;
    }
    keys_by_wwid_[it->second.wwid()].erase(it->first);
    it = by_key_.erase(it);
    n++;
  }
  return n;
}

Result<v1::Bindings> BindingStore::read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return v1::Bindings{};
  std::stringstream ss;
  ss << in.rdbuf();
  v1::Bindings out;
  auto st = google::protobuf::util::JsonStringToMessage(ss.str(), &out);
  if (!st.ok())
    return make_error(Errc::kParse, "bound-identity state " + path + " is corrupt: " + std::string(st.message()));
  return out;
}

Result<void> BindingStore::write_file(const std::string& path, const v1::Bindings& all) {
  google::protobuf::util::JsonPrintOptions o;
  o.preserve_proto_field_names = true;
  o.add_whitespace = true;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(all, &text, o).ok())
    return make_error(Errc::kIo, "cannot encode bound identities");
  auto w = write_atomic(path, text);  // unique O_EXCL temp, fsync, rename; 0600
  if (!w) return make_error(Errc::kIo, "cannot write bound identities: " + w.error().message);
  return {};
}

}  // namespace lunwatch::detect
