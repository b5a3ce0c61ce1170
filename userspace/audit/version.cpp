#include "audit/version.h"

#include <cctype>
#include <limits>
#include <tuple>

namespace lunwatch::audit {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool read_num(std::string_view s, size_t& i, uint64_t& out) {
  size_t start = i;
  out = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (out > (std::numeric_limits<uint64_t>::max() - 9) / 10) return false;
    out = out * 10 + static_cast<uint64_t>(s[i] - '0');
    ++i;
  }
  return i > start;
}

bool is_sep(char c) { return c == '.' || c == '-' || c == '_'; }

// Consumes an optional separator followed by one of `words`; returns the index
// of the word matched, or -1 (and leaves i untouched).
int read_word(std::string_view s, size_t& i, std::initializer_list<std::string_view> words) {
  size_t j = i;
  if (j < s.size() && is_sep(s[j])) ++j;
  int idx = 0;
  // Longest match first matters ("rc" before "c", "preview" before "pre").
  int best = -1;
  size_t best_len = 0;
  for (auto w : words) {
    if (s.substr(j, w.size()) == w && w.size() > best_len) {
      best = idx;
      best_len = w.size();
    }
    ++idx;
  }
  if (best < 0) return -1;
  i = j + best_len;
  return best;
}

}  // namespace

std::optional<Version> Version::parse(std::string_view in) {
  Version v;
  v.text = std::string(in);
  std::string lowered = lower(in);
  std::string_view s = lowered;
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  if (!s.empty() && s.front() == 'v') s.remove_prefix(1);
  if (s.empty()) return std::nullopt;

  // Local label.
  size_t plus = s.find('+');
  if (plus != std::string_view::npos) {
    v.local = std::string(s.substr(plus + 1));
    s = s.substr(0, plus);
    if (v.local.empty()) return std::nullopt;
  }
  size_t i = 0;
  uint64_t n = 0;
  if (!read_num(s, i, n)) return std::nullopt;
  if (i < s.size() && s[i] == '!') {
    if (n > std::numeric_limits<uint32_t>::max()) return std::nullopt;
    v.epoch = static_cast<uint32_t>(n);
    ++i;
    if (!read_num(s, i, n)) return std::nullopt;
  }
  v.release.push_back(n);
  while (i + 1 < s.size() && s[i] == '.' && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
    ++i;
    read_num(s, i, n);
    v.release.push_back(n);
  }
  // Pre-release.
  int w = read_word(s, i, {"a", "alpha", "b", "beta", "rc", "c", "pre", "preview"});
  if (w >= 0) {
    static constexpr int kKind[] = {0, 0, 1, 1, 2, 2, 2, 2};
    v.pre_kind = kKind[w];
    if (i < s.size() && is_sep(s[i]) && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) ++i;
    uint64_t pn = 0;
    if (read_num(s, i, pn)) v.pre_num = pn;
  }
  // Post release: ".post1", "-1", "post", "rev", "r".
  if (i < s.size() && s[i] == '-' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
    ++i;
    uint64_t pn = 0;
    read_num(s, i, pn);
    v.post = pn;
  } else if (read_word(s, i, {"post", "rev", "r"}) >= 0) {
    if (i < s.size() && is_sep(s[i]) && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) ++i;
    uint64_t pn = 0;
    read_num(s, i, pn);
    v.post = pn;
  }
  // Development release.
  if (read_word(s, i, {"dev"}) >= 0) {
    if (i < s.size() && is_sep(s[i]) && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) ++i;
    uint64_t dn = 0;
    read_num(s, i, dn);
    v.dev = dn;
  }
  if (i != s.size()) return std::nullopt;
  while (v.release.size() > 1 && v.release.back() == 0) v.release.pop_back();
  return v;
}

std::strong_ordering compare(const Version& a, const Version& b) {
  if (auto c = a.epoch <=> b.epoch; std::is_neq(c)) return c;
  size_t n = std::max(a.release.size(), b.release.size());
  for (size_t k = 0; k < n; ++k) {
    uint64_t x = k < a.release.size() ? a.release[k] : 0;
    uint64_t y = k < b.release.size() ? b.release[k] : 0;
    if (auto c = x <=> y; std::is_neq(c)) return c;
  }
  // packaging's _cmpkey: a bare dev release sorts before any pre-release.
  auto pre_key = [](const Version& v) -> std::tuple<int, uint64_t> {
    if (v.pre_kind < 0 && !v.post && v.dev) return {-2, 0};
    if (v.pre_kind < 0) return {3, 0};
    return {v.pre_kind, v.pre_num};
  };
  if (auto c = pre_key(a) <=> pre_key(b); std::is_neq(c)) return c;
  auto post_key = [](const Version& v) -> std::tuple<int, uint64_t> {
    return v.post ? std::tuple<int, uint64_t>{1, *v.post} : std::tuple<int, uint64_t>{0, 0};
  };
  if (auto c = post_key(a) <=> post_key(b); std::is_neq(c)) return c;
  auto dev_key = [](const Version& v) -> std::tuple<int, uint64_t> {
    return v.dev ? std::tuple<int, uint64_t>{0, *v.dev} : std::tuple<int, uint64_t>{1, 0};
  };
  return dev_key(a) <=> dev_key(b);
}

std::string debian_revision(std::string_view d) {
  size_t dash = d.rfind('-');
  return dash == std::string_view::npos ? std::string() : std::string(d.substr(dash + 1));
}

std::string debian_upstream(std::string_view d) {
  // Epoch: digits then ':'.
  size_t colon = d.find(':');
  if (colon != std::string_view::npos) {
    bool digits = colon > 0;
    for (size_t k = 0; k < colon; ++k) digits = digits && std::isdigit(static_cast<unsigned char>(d[k]));
    if (digits) d = d.substr(colon + 1);
  }
  size_t dash = d.rfind('-');
  if (dash != std::string_view::npos) d = d.substr(0, dash);
  std::string up(d);
  // "1.2+really1.1" is really 1.1.
  if (size_t r = up.find("+really"); r != std::string::npos) up = up.substr(r + 7);
  // Repack / snapshot suffixes: "+dfsg", "+ds1", "+git20230101.abc", "+repack".
  if (size_t p = up.find('+'); p != std::string::npos) up = up.substr(0, p);
  // '~' sorts before the release in Debian: a pre-release ("27.0.0~rc1").
  std::string out;
  for (char c : up) {
    if (c == '~') continue;
    out += c;
  }
  if (out.empty() || !std::isdigit(static_cast<unsigned char>(out.front()))) return "";
  return out;
}

bool AffectedRange::contains(const Version& v) const {
  if (lo && v < *lo) return false;
  if (hi && !(v < *hi)) return false;
  return true;
}

std::vector<AffectedRange> parse_ranges(std::string_view spec) {
  std::vector<AffectedRange> out;
  size_t pos = 0;
  while (pos < spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string_view part = spec.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    pos = comma == std::string_view::npos ? spec.size() : comma + 1;
    AffectedRange r;
    size_t k = 0;
    bool any = false;
    while (k < part.size()) {
      while (k < part.size() && std::isspace(static_cast<unsigned char>(part[k]))) ++k;
      if (k >= part.size()) break;
      std::string op;
      while (k < part.size() && (part[k] == '<' || part[k] == '>' || part[k] == '=')) op += part[k++];
      size_t start = k;
      while (k < part.size() && !std::isspace(static_cast<unsigned char>(part[k]))) ++k;
      auto v = Version::parse(part.substr(start, k - start));
      if (!v) continue;
      any = true;
      if (op == "<") {
        r.hi = *v;
      } else if (op == ">=") {
        r.lo = *v;
      } else if (op == "==") {
        // Exactly this release: [v, next release) where next bumps the last
        // significant component below a post release. Build hi as v.post0 +
        // an epsilon: any v' with v <= v' and v' < (v with a .post0.dev0) is v
        // itself or its local builds.
        r.lo = *v;
        Version hi = *v;
        hi.post = 0;
        hi.dev = 0;
        hi.pre_kind = v->pre_kind;
        r.hi = hi;
      }
    }
    if (any) out.push_back(r);
  }
  return out;
}

}  // namespace lunwatch::audit
