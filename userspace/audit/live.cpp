#include "audit/live.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <pugixml.hpp>
#include <sstream>

#include "audit/fsutil.h"

namespace lunwatch::audit {
namespace {

bool parse_hctl(const std::string& s, int& h, unsigned& l) {
  int c = 0, t = 0;
  char tail = 0;
  return std::sscanf(s.c_str(), "%d:%d:%d:%u%c", &h, &c, &t, &l, &tail) == 4;
}

std::string basename_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

std::string dirname_of(const std::string& p) {
  size_t s = p.rfind('/');
  return s == std::string::npos || s == 0 ? "/" : p.substr(0, s);
}

// Lexically normalises "/a/b/../c" -> "/a/c".
std::string normalize(const std::string& p) {
  std::vector<std::string> parts;
  std::stringstream ss(p);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (const auto& x : parts) out += "/" + x;
  return out.empty() ? "/" : out;
}

void read_domain_file(const std::string& file, LiveState& s) {
  auto text = read_text(file, 16u << 20);
  if (!text) {
    s.domain_errors.push_back(text.error().message);
    return;
  }
  pugi::xml_document doc;
  auto res = doc.load_buffer(text->data(), text->size());
  if (!res) {
    s.domain_errors.push_back(file + ": malformed XML at byte " + std::to_string(res.offset) + ": " +
                              res.description());
    return;
  }
  pugi::xml_node dom = doc.child("domain");
  if (!dom) dom = doc.child("domstatus").child("domain");
  if (!dom) {
    s.domain_errors.push_back(file + ": no <domain> element");
    return;
  }
  s.domain_files.push_back(file);
  std::string name = dom.child_value("name");
  for (auto disk : dom.child("devices").children("disk")) {
    auto src = disk.child("source");
    std::string dev = src.attribute("dev").as_string();
    if (dev.empty()) continue;  // network disks (rbd, native iSCSI), files
    s.domain_disks.push_back({name, file, dev, ""});
  }
}

}  // namespace

LiveState scan_live(const std::string& root, const std::string& sysfs) {
  LiveState s;
  s.sysfs = sysfs;

  // iSCSI sessions: target, portal, and the SCSI host each one created.
  std::map<int, size_t> session_of_host;
  for (const auto& sn : list_dir(under(sysfs, "class/iscsi_session"))) {
    IscsiSession sess;
    sess.name = sn;
    std::string base = under(sysfs, "class/iscsi_session/" + sn);
    sess.target = read_line(base + "/targetname");
    std::string id = sn.substr(std::string("session").size());
    std::string conn = under(sysfs, "class/iscsi_connection/connection" + id + ":0");
    std::string addr = read_line(conn + "/persistent_address");
    std::string port = read_line(conn + "/persistent_port");
    if (!addr.empty()) sess.portal = (addr.find(':') != std::string::npos ? "[" + addr + "]" : addr) + ":" + port;
    for (const auto& hn : list_dir(under(sysfs, "class/scsi_host"))) {
      if (is_dir(under(sysfs, "class/scsi_host/" + hn + "/device/" + sn))) {
        sess.host = std::atoi(hn.c_str() + 4);
        break;
      }
    }
    if (sess.host >= 0) session_of_host[sess.host] = s.sessions.size();
    s.sessions.push_back(sess);
  }

  // FC remote ports: host + scsi target id -> target WWPN.
  std::map<std::pair<int, int>, std::string> fc_targets;
  for (const auto& rp : list_dir(under(sysfs, "class/fc_remote_ports"))) {
    int h = -1, b = 0, r = 0;
    if (std::sscanf(rp.c_str(), "rport-%d:%d-%d", &h, &b, &r) != 3) continue;
    std::string base = under(sysfs, "class/fc_remote_ports/" + rp);
    std::string tid = read_line(base + "/scsi_target_id");
    if (tid.empty() || tid == "-1") continue;
    fc_targets[{h, std::atoi(tid.c_str())}] = read_line(base + "/port_name");
  }

  for (const auto& hctl : list_dir(under(sysfs, "class/scsi_device"))) {
    ScsiDisk d;
    d.hctl = hctl;
    if (!parse_hctl(hctl, d.host, d.lun)) continue;
    std::string dev = under(sysfs, "class/scsi_device/" + hctl + "/device");
    auto blocks = list_dir(dev + "/block");
    if (blocks.empty()) continue;  // not a disk (controller LUN, enclosure)
    d.block = blocks.front();
    d.wwid = read_line(dev + "/wwid");
    d.state = read_line(dev + "/state");
    std::string hn = "host" + std::to_string(d.host);
    if (is_dir(under(sysfs, "class/iscsi_host/" + hn)) || session_of_host.count(d.host)) {
      d.transport = "iscsi";
      if (auto it = session_of_host.find(d.host); it != session_of_host.end()) {
        d.session = s.sessions[it->second].name;
        d.target = s.sessions[it->second].target;
        d.portal = s.sessions[it->second].portal;
      }
    } else if (is_dir(under(sysfs, "class/fc_host/" + hn))) {
      d.transport = "fc";
      int c = 0, t = 0;
      std::sscanf(hctl.c_str(), "%*d:%d:%d", &c, &t);
      if (auto it = fc_targets.find({d.host, t}); it != fc_targets.end()) d.target = it->second;
    } else {
      d.transport = "local";
    }
    d.holders = list_dir(under(sysfs, "block/" + d.block + "/holders"));
    s.disks.push_back(d);
  }

  for (const auto& b : list_dir(under(sysfs, "block"))) {
    if (b.rfind("dm-", 0) != 0) continue;
    DmMap m;
    m.dm = b;
    std::string base = under(sysfs, "block/" + b);
    m.name = read_line(base + "/dm/name");
    m.uuid = read_line(base + "/dm/uuid");
    m.slaves = list_dir(base + "/slaves");
    m.holders = list_dir(base + "/holders");
    s.maps[b] = m;
  }

  // What libvirt domains use.
  for (const char* rel : {"run/libvirt/qemu", "etc/libvirt/qemu"}) {
    std::string dir = under(root, rel);
    if (!is_dir(dir)) continue;
    s.libvirt_dirs.push_back(dir);
    for (const auto& f : list_dir(dir)) {
      if (f.size() < 5 || f.substr(f.size() - 4) != ".xml") continue;
      read_domain_file(dir + "/" + f, s);
    }
  }
  for (auto& dd : s.domain_disks) dd.resolved = resolve_source(s, root, dd.source);

  // What the host itself uses: mounted and swapped-on block devices.
  for (const char* rel : {"proc/mounts", "proc/swaps"}) {
    auto text = read_text(under(root, rel), 4u << 20);
    if (!text) continue;
    std::stringstream ss(*text);
    std::string line;
    while (std::getline(ss, line)) {
      std::string src = line.substr(0, line.find_first_of(" \t"));
      if (src.rfind("/dev/", 0) != 0) continue;
      std::string r = resolve_source(s, root, src);
      if (!r.empty()) s.host_used.insert(r);
    }
  }
  return s;
}

std::string resolve_source(const LiveState& s, const std::string& root, const std::string& path_in) {
  std::string path = normalize(path_in);
  // Follow symlinks inside the root (udev links are relative, ../../sdb).
  for (int hop = 0; hop < 16; ++hop) {
    std::string host_path = under(root, path);
    struct stat st {};
    if (::lstat(host_path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) break;
    char buf[4096];
    ssize_t n = ::readlink(host_path.c_str(), buf, sizeof(buf) - 1);
    if (n <= 0) break;
    std::string target(buf, static_cast<size_t>(n));
    path = normalize(target.front() == '/' ? target : dirname_of(path) + "/" + target);
  }
  std::string base = basename_of(path);
  auto find_map = [&](auto pred) -> std::string {
    for (const auto& [dm, m] : s.maps)
      if (pred(m)) return dm;
    return "";
  };
  if (path.rfind("/dev/", 0) == 0 && dirname_of(path) == "/dev") {
    if (base.rfind("sd", 0) == 0 || base.rfind("dm-", 0) == 0) {
      // A partition (sdb1) belongs to its disk for our purpose.
      if (base.rfind("sd", 0) == 0)
        while (!base.empty() && std::isdigit(static_cast<unsigned char>(base.back()))) base.pop_back();
      return base;
    }
    return base;
  }
  if (dirname_of(path) == "/dev/mapper") return find_map([&](const DmMap& m) { return m.name == base; });
  if (dirname_of(path) == "/dev/disk/by-id") {
    if (base.rfind("os-brick+", 0) == 0) {
      std::string p = base.substr(8);
      std::replace(p.begin(), p.end(), '+', '/');
      return resolve_source(s, root, p);
    }
    if (base.rfind("dm-uuid-", 0) == 0) {
      std::string uuid = base.substr(8);
      return find_map([&](const DmMap& m) { return m.uuid == uuid; });
    }
    if (base.rfind("dm-name-", 0) == 0) {
      std::string name = base.substr(8);
      return find_map([&](const DmMap& m) { return m.name == name; });
    }
    std::string id;
    if (base.rfind("scsi-", 0) == 0) id = base.substr(5);  // "3600a0b8..." (NAA type prefix 3)
    if (base.rfind("wwn-0x", 0) == 0) id = "3" + base.substr(6);
    if (!id.empty()) {
      // udev points these at the multipath map when one exists.
      std::string dm = find_map([&](const DmMap& m) { return m.uuid == "mpath-" + id; });
      if (!dm.empty()) return dm;
      std::string naa = id.size() > 1 && id[0] == '3' ? "naa." + id.substr(1) : id;
      for (const auto& d : s.disks)
        if (to_lower(d.wwid) == to_lower(naa)) return d.block;
    }
    return "";
  }
  if (dirname_of(path) == "/dev/disk/by-path") {
    size_t lun_at = base.rfind("-lun-");
    if (lun_at == std::string::npos) return "";
    unsigned lun = static_cast<unsigned>(std::strtoul(base.c_str() + lun_at + 5, nullptr, 0));
    size_t ip = base.find("ip-");
    size_t iscsi = base.find("-iscsi-");
    if (ip != std::string::npos && iscsi != std::string::npos && iscsi > ip) {
      std::string portal = base.substr(ip + 3, iscsi - ip - 3);
      std::string iqn = base.substr(iscsi + 7, lun_at - iscsi - 7);
      for (const auto& d : s.disks)
        if (d.transport == "iscsi" && d.target == iqn && d.portal == portal && d.lun == lun) return d.block;
      return "";
    }
    size_t fc = base.find("-fc-");
    if (fc != std::string::npos) {
      std::string wwpn = to_lower(base.substr(fc + 4, lun_at - fc - 4));
      for (const auto& d : s.disks)
        if (d.transport == "fc" && to_lower(d.target) == wwpn && d.lun == lun) return d.block;
    }
    return "";
  }
  return "";
}

std::set<std::string> closure_down(const LiveState& s, const std::set<std::string>& top) {
  std::set<std::string> out;
  std::vector<std::string> work(top.begin(), top.end());
  while (!work.empty()) {
    std::string d = work.back();
    work.pop_back();
    if (d.empty() || !out.insert(d).second) continue;
    if (auto it = s.maps.find(d); it != s.maps.end())
      for (const auto& sl : it->second.slaves) work.push_back(sl);
  }
  return out;
}

}  // namespace lunwatch::audit
