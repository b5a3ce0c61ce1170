#include "topology/vpd.h"

#include <algorithm>
#include <cctype>

namespace lunwatch::topology {
namespace {

std::string hex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string out;
  out.reserve(b.size() * 2);
  for (uint8_t c : b) {
    out += d[c >> 4];
    out += d[c & 0xf];
  }
  return out;
}

std::string trim(std::string s) {
  auto notspace = [](unsigned char c) { return !std::isspace(c) && c != 0; };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), notspace));
  s.erase(std::find_if(s.rbegin(), s.rend(), notspace).base(), s.end());
  return s;
}

}  // namespace

Result<std::string> parse_vpd83(std::span<const uint8_t> page) {
  if (page.size() < 4) return make_error(Errc::kParse, "VPD 0x83 page shorter than its header");
  if (page[1] != 0x83)
    return make_error(Errc::kParse, "not a VPD 0x83 page (page code " + std::to_string(page[1]) + ")");
  size_t len = (size_t{page[2]} << 8) | page[3];
  bool truncated = len + 4 > page.size();
  if (truncated) len = page.size() - 4;  // truncated answer: parse what arrived
  auto body = page.subspan(4, len);

  int best_rank = -1;
  std::string best;
  size_t off = 0;
  while (off + 4 <= body.size()) {
    uint8_t code_set = body[off] & 0x0f;
    uint8_t assoc = (body[off + 1] >> 4) & 0x3;
    uint8_t type = body[off + 1] & 0x0f;
    size_t dlen = body[off + 3];
    if (off + 4 + dlen > body.size()) {
      if (truncated) break;  // cut by the allocation length: keep the designators that arrived whole
      return make_error(Errc::kParse, "VPD 0x83 designator overruns the page");
    }
    auto d = body.subspan(off + 4, dlen);
    off += 4 + dlen;
    if (assoc != 0 || dlen == 0) continue;  // only designators of the logical unit itself
    int rank = -1;
    std::string value;
    switch (type) {
      case 3:  // NAA: longer (IEEE registered extended) beats shorter
        if (code_set != 1) break;
        rank = 40 + static_cast<int>(dlen);
        value = "naa." + hex(d);
        break;
      case 2:  // EUI-64
        if (code_set != 1) break;
        rank = 30 + static_cast<int>(dlen);
        value = "eui." + hex(d);
        break;
      case 8:  // SCSI name string
        rank = 20;
        value = trim(std::string(d.begin(), d.end()));
        break;
      case 1:  // T10 vendor ID
        rank = 10;
        value = "t10." + trim(std::string(d.begin(), d.end()));
        break;
      default: break;
    }
    if (rank > best_rank && !value.empty()) {
      best_rank = rank;
      best = value;
    }
  }
  if (best.empty()) return make_error(Errc::kNotFound, "VPD 0x83 has no logical-unit designator");
  return best;
}

Result<std::string> parse_vpd80(std::span<const uint8_t> page) {
  if (page.size() < 4) return make_error(Errc::kParse, "VPD 0x80 page shorter than its header");
  if (page[1] != 0x80)
    return make_error(Errc::kParse, "not a VPD 0x80 page (page code " + std::to_string(page[1]) + ")");
  size_t len = (size_t{page[2]} << 8) | page[3];
  if (len + 4 > page.size()) len = page.size() - 4;
  auto s = trim(std::string(page.begin() + 4, page.begin() + 4 + static_cast<long>(len)));
  return s;
}

std::string normalize_wwid(std::string_view w) {
  std::string s(w);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  if (s.rfind("mpath-", 0) == 0) s = s.substr(6);
  auto lower_hex = [](std::string v) {
    for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return v;
  };
  if (s.rfind("naa.", 0) == 0 || s.rfind("eui.", 0) == 0) return s.substr(0, 4) + lower_hex(s.substr(4));
  if (s.rfind("t10.", 0) == 0) return s;
  if (s.empty()) return s;
  switch (s[0]) {
    case '3': return "naa." + lower_hex(s.substr(1));
    case '2': return "eui." + lower_hex(s.substr(1));
    case '1': return "t10." + s.substr(1);
    case '8': return s.substr(1);
  }
  return s;
}

}  // namespace lunwatch::topology
