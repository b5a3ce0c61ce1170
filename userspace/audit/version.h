#pragma once
// Version arithmetic for the audit: PEP 440 versions (what pbr writes into
// Python package metadata), upstream versions inside Debian/RPM package
// versions, and the affected ranges of OSSA-2023-003.
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lunwatch::audit {

// A PEP 440 version: [N!]N(.N)*[{a|b|rc}N][.postN][.devN][+local]. Spelling
// variants are normalised (alpha/beta/c/pre/preview, '-' and '_' separators,
// "1.0-1" as post release, a leading 'v'). Local labels are kept but do not
// order (a "+ubuntu1" build is the same release as its public version).
struct Version {
  uint32_t epoch = 0;
  std::vector<uint64_t> release;  // trailing zeros are insignificant: 1.0 == 1.0.0
  // Pre-release: kind 0 = a, 1 = b, 2 = rc; -1 = none.
  int pre_kind = -1;
  uint64_t pre_num = 0;
  std::optional<uint64_t> post;
  std::optional<uint64_t> dev;
  std::string local;
  std::string text;  // as given

  static std::optional<Version> parse(std::string_view s);
  std::string str() const { return text; }
  uint64_t major() const { return release.empty() ? 0 : release[0]; }
  uint64_t minor() const { return release.size() < 2 ? 0 : release[1]; }
};

std::strong_ordering compare(const Version& a, const Version& b);
inline bool operator<(const Version& a, const Version& b) { return std::is_lt(compare(a, b)); }
inline bool operator==(const Version& a, const Version& b) { return std::is_eq(compare(a, b)); }
inline bool operator<=(const Version& a, const Version& b) { return std::is_lteq(compare(a, b)); }
inline bool operator>(const Version& a, const Version& b) { return std::is_gt(compare(a, b)); }
inline bool operator>=(const Version& a, const Version& b) { return std::is_gteq(compare(a, b)); }

// The upstream part of a Debian version: "2:25.1.0-0ubuntu1" -> "25.1.0",
// "27.0.0~rc1-2" -> "27.0.0rc1", "6.1.0+dfsg-3" -> "6.1.0",
// "0.9.4-3+deb12u1" -> "0.9.4", "2:20.6.0-0ubuntu1~cloud0" -> "20.6.0". Returns
// "" when nothing version-like is left.
std::string debian_upstream(std::string_view debian_version);
// The Debian revision ("0ubuntu1.1", "3+deb12u1"), "" for native versions.
std::string debian_revision(std::string_view debian_version);

// One interval of affected versions: [lo, hi) with either bound open.
struct AffectedRange {
  std::optional<Version> lo;  // inclusive
  std::optional<Version> hi;  // exclusive
  bool contains(const Version& v) const;
};

// "<20.2.1, >=21.0.0 <21.2.1, ==22.0.0" (the advisory's notation).
std::vector<AffectedRange> parse_ranges(std::string_view spec);

}  // namespace lunwatch::audit
