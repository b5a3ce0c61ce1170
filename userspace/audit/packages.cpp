#include "audit/packages.h"

#include <dlfcn.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "audit/fsutil.h"

namespace lunwatch::audit {
namespace {

struct ComponentNames {
  const char* component;
  const char* dist;  // normalised Python distribution name, "" for none
  std::vector<std::string> dpkg;
};

const std::vector<ComponentNames>& components() {
  static const std::vector<ComponentNames> k = {
      {"os-brick", "os-brick", {"python3-os-brick", "python-os-brick"}},
      {"nova", "nova", {"python3-nova", "python-nova"}},
      {"cinder", "cinder", {"python3-cinder", "python-cinder"}},
      {"glance_store", "glance-store", {"python3-glance-store", "python-glance-store"}},
      {"multipath-tools", "", {"multipath-tools"}},
  };
  return k;
}

// Where Python packages live on the distributions and deployment tools that
// run OpenStack (relative to the root).
const std::vector<std::string>& python_dir_patterns() {
  static const std::vector<std::string> k = {
      "usr/lib/python3/dist-packages",    // Debian/Ubuntu packages
      "usr/lib/python2.7/dist-packages",  // Ubuntu/Debian Train and older on Python 2
      "usr/lib/python3*/site-packages",   // RPM distributions
      "usr/lib64/python3*/site-packages",
      "usr/lib/python2.7/site-packages",
      "usr/lib64/python2.7/site-packages",
      "usr/local/lib/python3*/dist-packages",  // pip on Debian/Ubuntu, devstack
      "usr/local/lib/python3*/site-packages",
      "usr/local/lib/python2.7/dist-packages",
      "usr/local/lib/python2.7/site-packages",
      "openstack/venvs/*/lib/python*/site-packages",   // openstack-ansible
      "var/lib/kolla/venv/lib/python*/site-packages",  // kolla images
      "opt/stack/*",                                   // devstack source trees (*.egg-info)
  };
  return k;
}

const ComponentNames* component_for_dist(std::string_view normalized) {
  for (const auto& c : components())
    if (*c.dist && normalized == c.dist) return &c;
  return nullptr;
}

// Could this dist-info/egg-info directory name belong to one of ours? (a cheap
// pre-filter; the Name header decides).
bool maybe_ours(std::string_view entry) {
  std::string n = normalize_dist_name(entry);
  for (const auto& c : components()) {
    if (!*c.dist) continue;
    std::string d = c.dist;
    if (n.rfind(d + "-", 0) == 0 || n == d) return true;
  }
  return false;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void read_metadata(const std::string& file, PackageScan& scan, std::set<std::string>& seen) {
  if (seen.count(file)) return;
  seen.insert(file);
  auto text = read_text(file, 1u << 20);
  if (!text) return;
  auto [name, version] = parse_metadata_headers(*text);
  const ComponentNames* c = component_for_dist(normalize_dist_name(name));
  if (!c) return;
  Installation inst;
  inst.component = c->component;
  inst.source = "python-metadata";
  inst.path = file;
  inst.package = name;
  inst.raw_version = version;
  inst.version = Version::parse(version);
  scan.installs.push_back(std::move(inst));
}

void scan_python_dir(const std::string& root, const std::string& dir, PackageScan& scan, std::set<std::string>& seen) {
  for (const auto& e : list_dir(dir)) {
    std::string path = dir + "/" + e;
    if (ends_with(e, ".egg-link") && maybe_ours(e.substr(0, e.size() - 9))) {
      // devstack "pip install -e": the first line is the source tree.
      std::string target = read_line(path);
      if (target.empty()) continue;
      std::string tree = target.front() == '/' ? under(root, target) : dir + "/" + target;
      for (const auto& t : list_dir(tree))
        if (ends_with(t, ".egg-info")) read_metadata(tree + "/" + t + "/PKG-INFO", scan, seen);
      continue;
    }
    if (!maybe_ours(e)) continue;
    if (ends_with(e, ".dist-info")) {
      read_metadata(path + "/METADATA", scan, seen);
    } else if (ends_with(e, ".egg-info")) {
      if (is_dir(path))
        read_metadata(path + "/PKG-INFO", scan, seen);
      else
        read_metadata(path, scan, seen);  // a single-file egg-info
    }
  }
}

// Inflates a gzip file through libz loaded at run time (the agent does not
// link zlib; every Debian system has libz.so.1).
std::optional<std::string> gunzip(const std::string& compressed, std::string& out) {
  using InitFn = int (*)(z_streamp, int, const char*, int);
  using InflateFn = int (*)(z_streamp, int);
  using EndFn = int (*)(z_streamp);
  using ResetFn = int (*)(z_streamp);
  static void* lib = ::dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) return std::string("libz.so.1 not available to read gzip");
  auto init = reinterpret_cast<InitFn>(::dlsym(lib, "inflateInit2_"));
  auto inflate_fn = reinterpret_cast<InflateFn>(::dlsym(lib, "inflate"));
  auto end = reinterpret_cast<EndFn>(::dlsym(lib, "inflateEnd"));
  auto reset = reinterpret_cast<ResetFn>(::dlsym(lib, "inflateReset"));
  if (!init || !inflate_fn || !end || !reset) return std::string("libz.so.1 lacks inflate");
  z_stream zs{};
  if (init(&zs, 16 + MAX_WBITS, ZLIB_VERSION, static_cast<int>(sizeof(z_stream))) != Z_OK)
    return std::string("inflateInit failed");
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(compressed.data()));
  zs.avail_in = static_cast<uInt>(compressed.size());
  char buf[65536];
  std::optional<std::string> err;
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    int rc = inflate_fn(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (out.size() > (64u << 20)) {
      err = "decompressed changelog larger than 64 MiB";
      break;
    }
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      reset(&zs);  // concatenated gzip members
      continue;
    }
    if (rc != Z_OK) {
      err = std::string("corrupt gzip data") + (zs.msg ? std::string(": ") + zs.msg : "");
      break;
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      err = "truncated gzip data";
      break;
    }
  }
  end(&zs);
  return err;
}

void check_changelog(const std::string& root, Installation& inst) {
  for (const char* name : {"changelog.Debian.gz", "changelog.Debian"}) {
    std::string path = under(root, "usr/share/doc/" + inst.package + "/" + name);
    if (!exists(path)) continue;
    inst.changelog_path = path;
    bool found = false;
    auto err = file_contains(path, "CVE-2023-2088", found);
    if (err) {
      inst.changelog_error = *err;
    } else {
      inst.changelog_names_cve = found;
    }
    return;
  }
}

}  // namespace

std::vector<const Installation*> PackageScan::of(std::string_view component) const {
  std::vector<const Installation*> out;
  for (const auto& i : installs)
    if (i.component == component) out.push_back(&i);
  return out;
}

std::string normalize_dist_name(std::string_view name) {
  std::string out;
  bool sep = false;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') {
      sep = true;
      continue;
    }
    if (sep && !out.empty()) out += '-';
    sep = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

std::pair<std::string, std::string> parse_metadata_headers(std::string_view text) {
  std::string name, version;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;  // end of headers
    if (line.rfind("Name:", 0) == 0 && name.empty()) name = trim(line.substr(5));
    if (line.rfind("Version:", 0) == 0 && version.empty()) version = trim(line.substr(8));
  }
  return {name, version};
}

bool DpkgPackage::installed() const {
  // "want flag status": the package is on disk for installed, half-configured,
  // triggers-awaited/pending; config-files / not-installed leave no code.
  size_t sp = status.rfind(' ');
  std::string state = sp == std::string::npos ? status : status.substr(sp + 1);
  return state == "installed" || state == "half-configured" || state == "triggers-awaited" ||
         state == "triggers-pending" || state == "unpacked" || state == "half-installed";
}

std::vector<DpkgPackage> parse_dpkg_status(std::string_view text) {
  std::vector<DpkgPackage> out;
  DpkgPackage cur;
  auto flush = [&]() {
    if (!cur.package.empty()) out.push_back(cur);
    cur = DpkgPackage{};
  };
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (trim(line).empty()) {
      flush();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') continue;  // continuation of a multi-line field
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string field = to_lower(line.substr(0, colon));
    std::string value = trim(line.substr(colon + 1));
    if (field == "package") cur.package = value;
    if (field == "version") cur.version = value;
    if (field == "status") cur.status = value;
  }
  flush();
  return out;
}

std::optional<std::string> file_contains(const std::string& path, std::string_view needle, bool& found) {
  found = false;
  auto raw = read_text(path, 16u << 20);
  if (!raw) return raw.error().message;
  std::string text;
  if (raw->size() >= 2 && static_cast<unsigned char>((*raw)[0]) == 0x1f &&
      static_cast<unsigned char>((*raw)[1]) == 0x8b) {
    if (auto err = gunzip(*raw, text)) return path + ": " + *err;
  } else {
    text = std::move(raw.value());
  }
  found = text.find(needle) != std::string::npos;
  return std::nullopt;
}

PackageScan scan_packages(const PackageScanOptions& opt) {
  PackageScan scan;
  std::set<std::string> seen;

  // Debian package database.
  scan.dpkg_status = under(opt.root, "var/lib/dpkg/status");
  std::set<std::string> dpkg_components;
  if (exists(scan.dpkg_status)) {
    scan.dpkg_present = true;
    auto text = read_text(scan.dpkg_status, 64u << 20);
    if (!text) {
      scan.dpkg_error = text.error().message;
    } else {
      for (const auto& p : parse_dpkg_status(*text)) {
        if (!p.installed()) continue;
        for (const auto& c : components()) {
          if (std::find(c.dpkg.begin(), c.dpkg.end(), p.package) == c.dpkg.end()) continue;
          Installation inst;
          inst.component = c.component;
          inst.source = "dpkg";
          inst.path = scan.dpkg_status;
          inst.package = p.package;
          inst.raw_version = p.version;
          inst.version = Version::parse(debian_upstream(p.version));
          check_changelog(opt.root, inst);
          dpkg_components.insert(c.component);
          scan.installs.push_back(std::move(inst));
        }
      }
    }
  }

  // RPM database: present or not; reading it needs librpm.
  for (const char* rel : {"var/lib/rpm/rpmdb.sqlite", "var/lib/rpm/Packages", "var/lib/rpm/Packages.db",
                          "usr/lib/sysimage/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/Packages.db"}) {
    std::string p = under(opt.root, rel);
    if (exists(p)) {
      scan.rpm_db = p;
      break;
    }
  }

  // Python package metadata.
  std::vector<std::string> dirs;
  for (const auto& pat : python_dir_patterns())
    for (const auto& d : glob_paths(under(opt.root, pat)))
      if (is_dir(d)) dirs.push_back(d);
  for (const auto& d : opt.extra_python_dirs) dirs.push_back(d);
  for (const auto& d : dirs) {
    size_t before = scan.installs.size();
    scan_python_dir(opt.root, d, scan, seen);
    // The distribution's own dist-packages belong to dpkg when it lists the
    // component: one installation, not two.
    bool distro_dir = d == under(opt.root, "usr/lib/python3/dist-packages") ||
                      d == under(opt.root, "usr/lib/python2.7/dist-packages");
    if (distro_dir) {
      auto first = scan.installs.begin() + static_cast<std::ptrdiff_t>(before);
      scan.installs.erase(std::remove_if(first, scan.installs.end(),
                                         [&](const Installation& i) { return dpkg_components.count(i.component) > 0; }),
                          scan.installs.end());
    }
    scan.python_dirs.push_back(d);
  }

  // Command-line versions replace whatever was found for that component.
  for (const auto& [component, version] : opt.overrides) {
    const std::string& comp = component;  // clang 14 (the fuzz build) cannot capture a structured binding
    scan.installs.erase(std::remove_if(scan.installs.begin(), scan.installs.end(),
                                       [&](const Installation& i) { return i.component == comp; }),
                        scan.installs.end());
    Installation inst;
    inst.component = component;
    inst.source = "override";
    inst.path = "--package-version";
    inst.package = component;
    inst.raw_version = version;
    inst.version = Version::parse(version);
    scan.installs.push_back(std::move(inst));
  }
  return scan;
}

}  // namespace lunwatch::audit
