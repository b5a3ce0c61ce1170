#include "inventory/targets.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace lunwatch::inventory {

std::optional<std::string> normalise_wwpn(std::string_view raw) {
  std::string out;
  size_t i = 0;
  if (raw.size() >= 2 && raw[0] == '0' && (raw[1] == 'x' || raw[1] == 'X')) i = 2;
  for (; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == ':' || c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (out.size() != 16) return std::nullopt;
  return out;
}

std::optional<std::string> normalise_portal(std::string_view raw) {
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.front()))) raw.remove_prefix(1);
  while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
  if (raw.empty()) return std::nullopt;
  std::string p(raw);
  if (p.front() == '[') {
    auto close = p.find(']');
    if (close == std::string::npos) return std::nullopt;
    if (close + 1 == p.size()) p += ":3260";
    return p;
  }
  auto colons = std::count(p.begin(), p.end(), ':');
  if (colons == 0) return p + ":3260";
  if (colons > 1) return "[" + p + "]:3260";  // bare IPv6 address
  return p;
}

std::optional<uint64_t> parse_lun(std::string_view text) {
  if (text.empty()) return std::nullopt;
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    base = 16;
    text.remove_prefix(2);
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v, base);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<PathTarget> target_from_by_path(std::string_view path) {
  constexpr std::string_view kDir = "/dev/disk/by-path/";
  if (path.substr(0, kDir.size()) == kDir) path.remove_prefix(kDir.size());
  if (path.find('/') != std::string_view::npos) return std::nullopt;
  auto lun_at = path.rfind("-lun-");
  if (lun_at == std::string_view::npos) return std::nullopt;
  auto lun = parse_lun(path.substr(lun_at + 5));
  if (!lun) return std::nullopt;
  std::string_view head = path.substr(0, lun_at);
  PathTarget out;
  out.target.set_lun(*lun);
  if (head.substr(0, 3) == "ip-") {
    auto at = head.find("-iscsi-");
    if (at == std::string_view::npos) return std::nullopt;
    auto portal = normalise_portal(head.substr(3, at - 3));
    std::string_view iqn = head.substr(at + 7);
    if (!portal || iqn.empty()) return std::nullopt;
    out.transport = v1::TRANSPORT_ISCSI;
    out.target.set_portal(*portal);
    out.target.set_iqn(std::string(iqn));
    return out;
  }
  auto at = head.rfind("-fc-");
  if (at == std::string_view::npos) return std::nullopt;
  auto wwpn = normalise_wwpn(head.substr(at + 4));
  if (!wwpn) return std::nullopt;
  out.transport = v1::TRANSPORT_FC;
  out.target.set_wwpn(*wwpn);
  return out;
}

std::string wwid_from_device_path(std::string_view path) {
  constexpr std::string_view kPrefix = "/dev/disk/by-id/dm-uuid-mpath-";
  if (path.substr(0, kPrefix.size()) != kPrefix) return "";
  return std::string(path.substr(kPrefix.size()));
}

}  // namespace lunwatch::inventory
