#include "topology/sysfs.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <regex>

#include "topology/vpd.h"

namespace lunwatch::topology {
namespace fs = std::filesystem;
namespace {

std::string read_text(const fs::path& p, bool* ok = nullptr) {
  std::ifstream in(p);
  if (ok) *ok = static_cast<bool>(in);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\0')) s.pop_back();
  return s;
}

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> list_dir(const fs::path& p) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(p, ec), end; !ec && it != end; it.increment(ec)) out.push_back(it->path().filename());
  std::sort(out.begin(), out.end());
  return out;
}

// Real path of a sysfs link (fixture trees may use plain directories).
std::string real(const fs::path& p) {
  std::error_code ec;
  auto r = fs::canonical(p, ec);
  return ec ? p.string() : r.string();
}

int session_in_path(const std::string& path) {
  static const std::regex re(R"(/session(\d+)(/|$))");
  std::smatch m;
  return std::regex_search(path, m, re) ? std::stoi(m[1]) : -1;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool parse_hctl(const std::string& s, v1::ScsiAddress* out) {
  static const std::regex re(R"((\d+):(\d+):(\d+):(\d+))");
  std::smatch m;
  if (!std::regex_match(s, m, re)) return false;
  try {
    out->set_host(static_cast<uint32_t>(std::stoul(m[1])));
    out->set_channel(static_cast<uint32_t>(std::stoul(m[2])));
    out->set_target(static_cast<uint32_t>(std::stoul(m[3])));
    out->set_lun(std::stoull(m[4]));
  } catch (...) {
    return false;
  }
  out->set_hctl(s);
  return true;
}

v1::Topology read_topology(const std::string& root_s, ReadStats* stats) {
  fs::path root(root_s);
  v1::Topology topo;
  topo.set_taken_unix_ms(now_ms());

  // iSCSI sessions.
  std::map<int, v1::IscsiSession> sessions;
  for (const auto& sname : list_dir(root / "class/iscsi_session")) {
    if (sname.rfind("session", 0) != 0) continue;
    v1::IscsiSession s;
    int sid = std::atoi(sname.c_str() + 7);
    s.set_session(sid);
    auto base = root / "class/iscsi_session" / sname;
    s.set_target_iqn(read_text(base / "targetname"));
    s.set_state(read_text(base / "state"));
    static const std::regex host_re(R"(/host(\d+)/)");
    std::smatch m;
    auto dpath = real(base / "device");
    if (std::regex_search(dpath, m, host_re)) s.set_host(static_cast<uint32_t>(std::stoul(m[1])));
    auto conn = root / "class/iscsi_connection" / ("connection" + std::to_string(sid) + ":0");
    auto addr = read_text(conn / "persistent_address");
    auto port = read_text(conn / "persistent_port");
    if (!addr.empty()) s.set_portal(addr + ":" + (port.empty() ? "3260" : port));
    sessions[sid] = s;
    *topo.add_sessions() = s;
  }

  // SCSI devices.
  for (const auto& hctl : list_dir(root / "class/scsi_device")) {
    v1::ScsiDevice d;
    if (!parse_hctl(hctl, d.mutable_addr())) continue;
    auto dev = root / "class/scsi_device" / hctl / "device";
    bool ok = false;
    d.set_state(read_text(dev / "state", &ok));
    if (!ok) {  // listed, not readable (going away, or mid-scan): its address only, so
      // the correlator can tell a transient read from a removal
      if (stats) stats->vanished++;
      *topo.add_devices() = d;
      continue;
    }
    d.set_vendor(read_text(dev / "vendor"));
    d.set_model(read_text(dev / "model"));
    auto wwid = read_text(dev / "wwid");
    if (!wwid.empty()) {
      d.mutable_cached()->set_wwid(normalize_wwid(wwid));
    } else {
      auto w = parse_vpd83(read_bytes(dev / "vpd_pg83"));
      if (w.ok()) d.mutable_cached()->set_wwid(w.value());
    }
    auto serial = parse_vpd80(read_bytes(dev / "vpd_pg80"));
    if (serial.ok()) d.mutable_cached()->set_serial(serial.value());
    auto blocks = list_dir(dev / "block");
    if (!blocks.empty()) {
      d.set_name(blocks.front());
      d.set_dev(read_text(root / "class/block" / d.name() / "dev"));
      if (d.dev().empty()) d.set_dev(read_text(root / "block" / d.name() / "dev"));
      for (const auto& h : list_dir(root / "block" / d.name() / "holders")) d.add_holders(h);
    }
    auto rpath = real(dev);
    int sid = session_in_path(rpath);
    d.set_session(sid);
    d.mutable_target()->set_lun(d.addr().lun());
    if (sid >= 0) {
      d.set_transport(v1::TRANSPORT_ISCSI);
      if (auto it = sessions.find(sid); it != sessions.end()) {
        d.mutable_target()->set_iqn(it->second.target_iqn());
        d.mutable_target()->set_portal(it->second.portal());
      }
    } else {
      static const std::regex rport_re(R"(/(rport-\d+:\d+-\d+)/)");
      std::smatch m;
      if (std::regex_search(rpath, m, rport_re)) {
        d.set_transport(v1::TRANSPORT_FC);
        auto wwpn = read_text(root / "class/fc_remote_ports" / m[1].str() / "port_name");
        if (wwpn.rfind("0x", 0) == 0) wwpn = wwpn.substr(2);
        d.mutable_target()->set_wwpn(wwpn);
      }
    }
    *topo.add_devices() = d;
  }

  // dm-multipath maps.
  for (const auto& b : list_dir(root / "block")) {
    if (b.rfind("dm-", 0) != 0) continue;
    auto base = root / "block" / b;
    auto uuid = read_text(base / "dm/uuid");
    if (uuid.rfind("mpath-", 0) != 0) continue;
    v1::MultipathMap m;
    m.set_dm(b);
    m.set_name(read_text(base / "dm/name"));
    m.set_uuid(uuid);
    m.set_wwid(normalize_wwid(uuid));
    m.set_dev(read_text(base / "dev"));
    for (const auto& s : list_dir(base / "slaves")) m.add_paths(s);
    *topo.add_maps() = m;
  }
  return topo;
}

}  // namespace lunwatch::topology
