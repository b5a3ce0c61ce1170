#include "cli/cmd_audit.h"

#include <cstdio>
#include <iostream>

#include "audit/audit.h"
#include "common/log.h"

namespace lunwatch::cli {
namespace {

struct AuditCli {
  audit::AuditOptions options;
  std::vector<std::string> versions;  // NAME=VERSION
  bool json = false;
  bool quiet = false;
};

AuditCli& state() {
  static AuditCli s;
  return s;
}

}  // namespace

CLI::App* add_audit_command(CLI::App& app) {
  auto& s = state();
  auto* cmd = app.add_subcommand(
      "audit",
      "is this host exposed to CVE-2023-2088 (OSSA-2023-003) and Nova bug 1852106, and what to change "
      "(exit 0 clean, 1 findings, 2 could not audit)");
  cmd->add_option("--root", s.options.root, "host tree to audit (etc/, var/lib/dpkg, usr/lib/python3, run/libvirt)")
      ->capture_default_str();
  cmd->add_option("--sysfs", s.options.sysfs, "sysfs to read live state from (default: <root>/sys)");
  cmd->add_option("--nova-conf", s.options.nova_conf,
                  "nova.conf file, repeatable, later wins (default: <root>/etc/nova/nova.conf, nova-compute.conf, "
                  "nova.conf.d/*.conf)");
  cmd->add_option("--cinder-conf", s.options.cinder_conf,
                  "cinder.conf file, repeatable (default: <root>/etc/cinder/cinder.conf)");
  cmd->add_option("--cinder-policy", s.options.cinder_policy,
                  "Cinder policy file (default: [oslo_policy] policy_file beside cinder.conf)");
  cmd->add_option("--multipath-conf", s.options.multipath_conf, "multipath.conf (default: <root>/etc/multipath.conf)");
  cmd->add_option("--images", s.options.images_file,
                  "Glance image list as JSON (Glance /v2/images, or `openstack image show -f json` output)");
  cmd->add_option("--python-path", s.options.python_paths, "extra site-packages directory to search, repeatable");
  cmd->add_option("--package-version", s.versions,
                  "COMPONENT=VERSION for os-brick, nova, cinder, glance_store, multipath-tools installed where the "
                  "audit cannot see (containers), repeatable");
  cmd->add_option("--skip", s.options.skip, "check id or prefix to skip (e.g. live, images.key_deletion), repeatable");
  cmd->add_flag("--json", s.json, "one JSON document instead of a table");
  cmd->add_flag("-q,--quiet", s.quiet, "table: leave out checks that passed");
  return cmd;
}

int cmd_audit() {
  auto& s = state();
  for (const auto& nv : s.versions) {
    size_t eq = nv.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == nv.size()) {
      log::error("--package-version wants COMPONENT=VERSION, got '" + nv + "'");
      return 2;
    }
    std::string name = nv.substr(0, eq);
    if (name != "os-brick" && name != "nova" && name != "cinder" && name != "glance_store" &&
        name != "multipath-tools") {
      log::error("--package-version: unknown component '" + name +
                 "' (os-brick, nova, cinder, glance_store, multipath-tools)");
      return 2;
    }
    s.options.package_versions[name] = nv.substr(eq + 1);
  }
  audit::Report report = audit::run_audit(s.options);
  if (s.json) {
    std::cout << audit::to_json(report).dump(2) << "\n";
  } else {
    std::cout << audit::format_text(report, !s.quiet);
  }
  std::cout.flush();
  return audit::exit_status(report);
}

}  // namespace lunwatch::cli
