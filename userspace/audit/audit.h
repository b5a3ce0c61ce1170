#pragma once
// `lunwatch audit`: is this host exposed to CVE-2023-2088 (OSSA-2023-003) and
// Nova bug 1852106, and what exactly to change. run_audit() returns the
// findings as data (for the CLI, and for `lunwatch run` to export as metrics);
// format_text() / to_json() render them.
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/finding.h"

namespace lunwatch::audit {

struct AuditOptions {
  std::string root = "/";  // host tree: etc/, var/lib/dpkg, usr/lib/python3, run/libvirt ...
  std::string sysfs;       // default: <root>/sys
  // Explicit config files (host paths used as given, not under root). Empty:
  // the usual places under root.
  std::vector<std::string> nova_conf;
  std::vector<std::string> cinder_conf;
  std::string cinder_policy;
  std::string multipath_conf;
  std::string images_file;                              // Glance image list JSON; "" skips the image check
  std::vector<std::string> python_paths;                // extra site-packages directories
  std::map<std::string, std::string> package_versions;  // component -> version (containers)
  std::vector<std::string> skip;                        // check ids or prefixes ("live", "versions.nova")
};

// Stable check ids, in report order.
const std::vector<std::string>& check_ids();

Report run_audit(const AuditOptions& options);

// A table for people; show_ok adds the checks that passed.
std::string format_text(const Report& report, bool show_ok = true);
// The document --json prints (shape in userspace/audit/README.md).
nlohmann::json to_json(const Report& report);

}  // namespace lunwatch::audit
