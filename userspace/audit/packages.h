#pragma once
// Which versions of os-brick, nova, cinder, glance_store and multipath-tools
// are installed under a root: Python package metadata (dist-info METADATA,
// egg-info PKG-INFO, devstack egg-links) in the usual dist-packages and
// site-packages places and venvs, and the Debian package database. The RPM
// database cannot be read without librpm: its presence is reported, never
// guessed at.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/version.h"

namespace lunwatch::audit {

struct Installation {
  std::string component;           // "os-brick", "nova", "cinder", "glance_store", "multipath-tools"
  std::string source;              // "python-metadata", "dpkg", "override"
  std::string path;                // the file the version was read from
  std::string package;             // dpkg package or Python distribution name as recorded
  std::string raw_version;         // as recorded ("2:25.1.0-0ubuntu1")
  std::optional<Version> version;  // the upstream version, nullopt when unparseable
  // dpkg only: the Debian changelog names CVE-2023-2088 (a backported fix).
  bool changelog_names_cve = false;
  std::string changelog_path;   // "" when there is none
  std::string changelog_error;  // why it could not be read, "" when read or absent
};

struct PackageScan {
  std::vector<Installation> installs;
  std::vector<std::string> python_dirs;  // the directories searched
  bool dpkg_present = false;
  std::string dpkg_status;  // path
  std::string dpkg_error;   // the status file exists but could not be read/parsed
  std::string rpm_db;       // path of an RPM database found, "" if none

  std::vector<const Installation*> of(std::string_view component) const;
};

struct PackageScanOptions {
  std::string root = "/";
  std::vector<std::string> extra_python_dirs;  // host paths, used as given
  // component -> version given on the command line (containers, source
  // installs): replaces what the scan finds for that component.
  std::map<std::string, std::string> overrides;
};

PackageScan scan_packages(const PackageScanOptions& options);

// PEP 503 name normalisation: "os_brick" / "OS.Brick" -> "os-brick".
std::string normalize_dist_name(std::string_view name);
// Name and Version from RFC 822-style package metadata (stops at the body).
std::pair<std::string, std::string> parse_metadata_headers(std::string_view text);

struct DpkgPackage {
  std::string package;
  std::string version;
  std::string status;  // "install ok installed"
  bool installed() const;
};
// Paragraphs of /var/lib/dpkg/status (only Package, Version and Status kept).
std::vector<DpkgPackage> parse_dpkg_status(std::string_view text);

// True when the gzip (or plain) file at path contains `needle`. Gzip is
// inflated with the system's libz, loaded at run time; an error string when
// it cannot be read.
std::optional<std::string> file_contains(const std::string& path, std::string_view needle, bool& found);

}  // namespace lunwatch::audit
