#include "common/devt.h"

#include <sys/stat.h>

#include <charconv>

namespace lunwatch {

std::string to_string(DevNum d) { return std::to_string(d.major) + ":" + std::to_string(d.minor); }

std::string block_device_of(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return "";
  return to_string(from_user_dev(st.st_rdev));
}

std::optional<DevNum> parse_devnum(std::string_view s) {
  auto colon = s.find(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 >= s.size()) return std::nullopt;
  DevNum d;
  auto r1 = std::from_chars(s.data(), s.data() + colon, d.major);
  if (r1.ec != std::errc() || r1.ptr != s.data() + colon) return std::nullopt;
  auto r2 = std::from_chars(s.data() + colon + 1, s.data() + s.size(), d.minor);
  if (r2.ec != std::errc() || r2.ptr != s.data() + s.size()) return std::nullopt;
  if (d.minor > kKernelMinorMask || d.major > (UINT32_MAX >> kKernelMinorBits)) return std::nullopt;
  return d;
}

}  // namespace lunwatch
