#pragma once
// Bound identities: attachment -> WWID, remembered the first time an
// attachment is verified, so a later change is caught across restarts too.
// Persisted as JSON with an atomic write (temp file, fsync, rename).
#include <map>
#include <optional>
#include <set>
#include <string>
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
  v1::Bindings snapshot() const;
  size_t size() const { return by_key_.size(); }

  // File I/O. A missing file is an empty store; a corrupt one is an error (the caller keeps its state).
  static Result<v1::Bindings> read_file(const std::string& path);
  static Result<void> write_file(const std::string& path, const v1::Bindings& all);

 private:
  std::map<std::string, v1::Binding> by_key_;
  std::map<std::string, std::set<std::string>> keys_by_wwid_;  // index: wwid -> keys
};

}  // namespace lunwatch::detect
