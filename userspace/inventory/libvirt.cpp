#include "inventory/libvirt.h"

#include <charconv>
#include <cstring>
#include <filesystem>
#include <pugixml.hpp>

#include "common/log.h"
#include "inventory/targets.h"

namespace lunwatch::inventory {
namespace {

constexpr std::string_view kNovaNs10 = "http://openstack.org/xmlns/libvirt/nova/1.0";
constexpr std::string_view kNovaNs11 = "http://openstack.org/xmlns/libvirt/nova/1.1";

std::string_view local_name(const pugi::xml_node& n) {
  std::string_view name = n.name();
  auto colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

// pugixml does not do namespaces; resolve the element's prefix by walking up
// to the nearest xmlns declaration, as a namespace-aware parser would.
std::string_view namespace_uri(const pugi::xml_node& n) {
  std::string_view name = n.name();
  auto colon = name.find(':');
  std::string attr = colon == std::string_view::npos ? "xmlns" : "xmlns:" + std::string(name.substr(0, colon));
  for (pugi::xml_node p = n; p; p = p.parent()) {
    if (p.type() != pugi::node_element) break;
    if (auto a = p.attribute(attr.c_str())) return a.value();
  }
  return "";
}

// The first child element with this local name in namespace ns.
pugi::xml_node child_ns(const pugi::xml_node& parent, std::string_view local, std::string_view ns) {
  for (auto c : parent.children()) {
    if (c.type() == pugi::node_element && local_name(c) == local && namespace_uri(c) == ns) return c;
  }
  return {};
}

std::string trimmed(const char* s) {
  std::string_view v(s);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
  while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
  return std::string(v);
}

std::optional<uint32_t> parse_u32(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

void read_nova_metadata(const pugi::xml_node& domain, LibvirtDomain& out) {
  for (auto md : domain.children("metadata")) {
    for (auto inst : md.children()) {
      if (inst.type() != pugi::node_element || local_name(inst) != "instance") continue;
      std::string_view ns = namespace_uri(inst);
      if (ns != kNovaNs10 && ns != kNovaNs11) continue;
      out.nova_version = ns == kNovaNs11 ? "1.1" : "1.0";
      if (auto n = child_ns(inst, "name", ns)) out.instance.set_display_name(trimmed(n.child_value()));
      if (auto owner = child_ns(inst, "owner", ns)) {
        if (auto u = child_ns(owner, "user", ns)) out.instance.set_user_id(u.attribute("uuid").value());
        if (auto p = child_ns(owner, "project", ns)) out.instance.set_project_id(p.attribute("uuid").value());
      }
      return;
    }
  }
}

void read_disks(const pugi::xml_node& domain, LibvirtDomain& out) {
  for (auto disk : domain.child("devices").children("disk")) {
    std::string_view type = disk.attribute("type").value();
    std::string_view device = disk.attribute("device").as_string("disk");
    if (device == "cdrom" || device == "floppy") continue;
    auto src = disk.child("source");
    v1::Attachment a;
    a.set_source(v1::SOURCE_LIBVIRT);
    a.set_status(v1::ATTACHMENT_ATTACHED);
    a.set_instance_uuid(out.instance.uuid());
    a.set_instance_name(out.instance.name());
    a.set_project_id(out.instance.project_id());
    if (type == "block") {
      std::string dev = src.attribute("dev").value();
      if (dev.empty()) continue;  // an empty drive
      a.set_device_path(dev);
      a.set_transport(v1::TRANSPORT_UNKNOWN);  // /dev/sdX, /dev/dm-N: topology decides
      if (auto t = target_from_by_path(dev)) {
        a.set_transport(t->transport);
        *a.add_targets() = t->target;
      }
      a.set_expected_wwid(wwid_from_device_path(dev));
    } else if (type == "network") {
      std::string protocol = src.attribute("protocol").value();
      std::string name = src.attribute("name").value();
      if (protocol.empty() && name.empty()) continue;
      a.set_device_path(protocol + ":" + name);  // e.g. rbd:volumes/volume-<id>
      a.set_transport(v1::TRANSPORT_OTHER);
    } else {
      continue;  // file-backed (ephemeral, config drive), volume pools, nvme: not ours
    }
    a.set_volume_id(trimmed(disk.child("serial").child_value()));
    a.set_attach_mode(disk.child("readonly") ? "ro" : "rw");
    a.set_encrypted(disk.child("encryption") || src.child("encryption"));
    out.attachments.push_back(std::move(a));
  }
}

}  // namespace

Result<LibvirtDomain> parse_libvirt_domain(std::string_view xml) {
  if (xml.size() > kMaxInputBytes) return make_error(Errc::kTruncated, "libvirt XML: larger than 16 MiB");
  pugi::xml_document doc;
  // parse_default: no DTD/entity expansion beyond the predefined ones.
  pugi::xml_parse_result r = doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) {
    return make_error(Errc::kParse,
                      std::string("libvirt XML: ") + r.description() + " at offset " + std::to_string(r.offset));
  }
  LibvirtDomain out;
  pugi::xml_node domain;
  pugi::xml_node root = doc.document_element();
  if (std::strcmp(root.name(), "domstatus") == 0) {
    out.live = true;
    out.state = root.attribute("state").value();
    if (auto pid = root.attribute("pid")) {
      auto v = parse_u32(pid.value());
      if (!v) return make_error(Errc::kParse, "libvirt XML: <domstatus> pid is not a number");
      out.instance.set_pid(*v);
    }
    domain = root.child("domain");
    if (!domain) return make_error(Errc::kParse, "libvirt XML: <domstatus> without <domain>");
  } else if (std::strcmp(root.name(), "domain") == 0) {
    domain = root;
  } else {
    return make_error(Errc::kParse, "libvirt XML: root element is <" + std::string(root.name()).substr(0, 64) +
                                        ">, not <domain> or <domstatus>");
  }
  std::string name = trimmed(domain.child("name").child_value());
  if (name.empty()) return make_error(Errc::kParse, "libvirt XML: <domain> without <name>");
  out.instance.set_name(name);
  out.instance.set_uuid(trimmed(domain.child("uuid").child_value()));
  out.instance.set_resolved_from("libvirt");
  read_nova_metadata(domain, out);
  read_disks(domain, out);
  return out;
}

LibvirtSource::LibvirtSource(std::string dir) : dir_(std::move(dir)) {
  snapshot_.set_kind(v1::SOURCE_LIBVIRT);
  snapshot_.set_name(name());
}

void LibvirtSource::refresh() {
  namespace fs = std::filesystem;
  snapshot_.set_last_attempt_unix_ms(now_unix_ms());
  std::error_code ec;
  fs::directory_iterator it(dir_, ec);
  std::vector<std::string> stems;
  for (fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() != ".xml") continue;
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    stems.push_back(p.stem().string());
  }
  if (ec) {
    std::string msg = "libvirt: cannot list " + dir_ + ": " + ec.message();
    if (msg != dir_error_) log::warn(msg + " (keeping the last good domains)");
    dir_error_ = msg;
    snapshot_.set_errors_total(snapshot_.errors_total() + 1);
    snapshot_.set_last_error(msg);
    snapshot_.set_stale(true);
    return;
  }
  dir_error_.clear();

  bool changed = false;
  std::map<std::string, Entry> next;
  for (const auto& stem : stems) {
    std::string xml_path = dir_ + "/" + stem + ".xml";
    auto sig = file_signature(xml_path);
    if (!sig) continue;  // removed between listing and stat
    auto pid_sig = file_signature(dir_ + "/" + stem + ".pid");
    Entry e;
    bool known = false;
    if (auto old = entries_.find(stem); old != entries_.end()) {
      e = std::move(old->second);
      known = true;
    }
    if (known && e.xml_sig == *sig && e.pid_sig == pid_sig) {
      next.emplace(stem, std::move(e));
      continue;
    }
    changed = true;
    if (!known || !(e.xml_sig == *sig)) {
      ++parses_;
      auto text = read_file_capped(xml_path);
      if (!text && text.error().code == Errc::kNotFound) continue;  // domain stopped while we looked
      Result<LibvirtDomain> parsed = text ? parse_libvirt_domain(*text) : Result<LibvirtDomain>(text.error());
      if (parsed) {
        e.domain = std::move(parsed.value());
        e.xml_pid = e.domain.instance.pid();
        e.have_good = true;
        e.error.clear();
      } else {
        // read_file_capped's messages already start with the path.
        e.error = text ? xml_path + ": " + parsed.error().message : parsed.error().message;
        snapshot_.set_errors_total(snapshot_.errors_total() + 1);
        log::warn("libvirt: " + e.error + (e.have_good ? " (keeping its last good parse)" : ""));
      }
      e.xml_sig = *sig;
    }
    e.pid_sig = pid_sig;
    e.domain.instance.set_pid(e.xml_pid);
    if (e.have_good && e.xml_pid == 0 && pid_sig) {
      auto text = read_file_capped(dir_ + "/" + stem + ".pid", 64);
      if (text) {
        std::string_view v = *text;
        while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
        uint32_t pid = 0;
        auto [p, perr] = std::from_chars(v.data(), v.data() + v.size(), pid);
        if (perr == std::errc() && p == v.data() + v.size()) e.domain.instance.set_pid(pid);
      }
    }
    next.emplace(stem, std::move(e));
  }
  if (next.size() != entries_.size()) changed = true;
  entries_ = std::move(next);
  if (changed) rebuild();

  mark_refresh(snapshot_, first_error_of(entries_));
}

void LibvirtSource::rebuild() {
  domains_.clear();
  snapshot_.clear_attachments();
  snapshot_.clear_instances();
  for (const auto& [stem, e] : entries_) {
    if (!e.have_good) continue;
    *snapshot_.add_instances() = e.domain.instance;
    for (const auto& a : e.domain.attachments) *snapshot_.add_attachments() = a;
    domains_[e.domain.instance.name()] = e.domain;
  }
}

}  // namespace lunwatch::inventory
