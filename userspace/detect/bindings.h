#pragma once
// Bound identities: attachment -> WWID, remembered the first time an
// attachment is verified, so a later change is caught across restarts too.
// Persisted as JSON with an atomic write (temp file, fsync, rename).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"
#include "lunwatch.pb.h"

namespace lunwatch::detect {

class BindingStore {
 public:
  // Key: instance uuid + volume id (an attachment id changes on re-attach of the same pair).
  static std::string key(const std::string& instance_uuid, const std::string& volume_id);

  const v1::Binding* find(const std::string& instance_uuid, const std::string& volume_id) const;
  std::vector<const v1::Binding*> by_wwid(const std::string& wwid) const;
  // Adds or replaces; returns true when something changed.
  bool put(const v1::Binding& b);
  bool erase(const std::string& instance_uuid, const std::string& volume_id);
  void load(const v1::Bindings& all);
  v1::Bindings snapshot() const;  // ordered by key (a stable file)
  // Removes the bindings whose (instance uuid, volume id) key is not in `keep`;
  // returns how many.
  size_t erase_unless(const std::set<std::string>& keep);
  size_t size() const { return by_key_.size(); }

  // File I/O. A missing file is an empty store; a corrupt one is an error (the caller keeps its state).
  static Result<v1::Bindings> read_file(const std::string& path);
  static Result<void> write_file(const std::string& path, const v1::Bindings& all);

 private:
  // Hashed: asked for every record on every refresh (thousands of long uuid
  // pairs, where an ordered map's comparisons were most of a refresh's cost).
  std::unordered_map<std::string, v1::Binding> by_key_;
  std::unordered_map<std::string, std::set<std::string>> keys_by_wwid_;  // index: wwid -> keys
};

}  // namespace lunwatch::detect
