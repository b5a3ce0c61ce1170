#include "common/ini.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace lunwatch::ini {
namespace {

constexpr size_t kMaxFileBytes = 4u << 20;
// Interpolation bounds: oslo.config follows $refs recursively too, but a
// hostile or broken nova.conf must not cost a stack or gigabytes ($a$a$a...).
constexpr size_t kMaxInterpolationDepth = 16;
constexpr size_t kMaxInterpolatedBytes = 64u << 10;
constexpr size_t kMaxInterpolationRefs = 10000;  // per resolved value: $b$b$b.. with b = $c$c$c.. and c = ""

std::string_view rstrip(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}
std::string_view strip(std::string_view s) {
  s = rstrip(s);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  return s;
}
std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Error parse_error(const std::string& file, int line, const std::string& what) {
  return make_error(Errc::kParse, file + ":" + std::to_string(line) + ": " + what);
}

}  // namespace

std::string Config::normalize_section(std::string_view name) {
  if (name == "DEFAULT") return std::string(name);
  return lower(name);
}

Result<Config> Config::parse(std::string_view text, const std::string& file) {
  Config cfg;
  cfg.files_.push_back(file);
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 BOM

  std::string section;  // normalised; "" before the first header
  std::optional<Entry> pending;
  auto flush = [&]() {
    if (!pending) return;
    cfg.sections_[section].entries.push_back(std::move(*pending));
    pending.reset();
  };

  int lineno = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t nl = text.find('\n', pos);
    bool last = nl == std::string_view::npos;
    std::string_view raw = text.substr(pos, last ? std::string_view::npos : nl - pos);
    pos = last ? text.size() + 1 : nl + 1;
    if (last && raw.empty()) break;
    ++lineno;
    std::string_view line = rstrip(raw);  // also drops '\r'
    if (line.empty()) {                   // a blank line ends a multi-line value
      flush();
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      // Never quote the line: it may continue (or be) a password.
      if (!pending) return parse_error(file, lineno, "continuation line with no option before it");
      pending->value += '\n';
      pending->value += strip(line);
      continue;
    }
    flush();
    if (line.front() == '[') {
      if (line.back() != ']') return parse_error(file, lineno, "section header without closing ']'");
      if (line.size() <= 2) return parse_error(file, lineno, "section header without a name");
      std::string_view name = line.substr(1, line.size() - 2);
      section = normalize_section(name);
      auto& s = cfg.sections_[section];
      if (s.name.empty()) {
        s.name = std::string(name);
        s.file = file;
        s.line = lineno;
      }
      continue;
    }
    if (line.front() == '#' || line.front() == ';') continue;

    size_t colon = line.find(':');
    size_t equal = line.find('=');
    if (colon == std::string_view::npos && equal == std::string_view::npos)
      return parse_error(file, lineno, "expected 'key = value', a [section] or a comment");
    size_t split =
        (colon == std::string_view::npos || (equal != std::string_view::npos && equal < colon)) ? equal : colon;
    std::string_view key = strip(line.substr(0, split));
    std::string_view value = strip(line.substr(split + 1));
    if (key.empty()) return parse_error(file, lineno, "option with an empty name");
    if (section.empty())
      return parse_error(file, lineno, "option '" + std::string(key) + "' before any [section] header");
    if (value.size() >= 2 && value.front() == value.back() && (value.front() == '"' || value.front() == '\''))
      value = value.substr(1, value.size() - 2);
    pending = Entry{std::string(key), std::string(value), file, lineno};
  }
  flush();
  return cfg;
}

Result<Config> Config::load(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    int e = errno;
    return make_error(e == ENOENT ? Errc::kNotFound : Errc::kIo, path + ": " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) return make_error(Errc::kIo, path + ": is a directory");
  // /dev/zero, a FIFO or a socket never ends: only regular files are config.
  if (!S_ISREG(st.st_mode)) return make_error(Errc::kIo, path + ": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > kMaxFileBytes)
    return make_error(Errc::kIo, path + ": larger than " + std::to_string(kMaxFileBytes) + " bytes");
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(Errc::kIo, path + ": " + std::strerror(errno ? errno : EACCES));
  std::string text(kMaxFileBytes + 1, '\0');  // bounded even if the file grows meanwhile
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  if (in.bad()) return make_error(Errc::kIo, path + ": read error");
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes)
    return make_error(Errc::kIo, path + ": larger than " + std::to_string(kMaxFileBytes) + " bytes");
  return parse(text, path);
}

void Config::merge(const Config& later) {
  for (const auto& [name, sec] : later.sections_) {
    auto& mine = sections_[name];
    if (mine.name.empty()) {
      mine.name = sec.name;
      mine.file = sec.file;
      mine.line = sec.line;
    }
    mine.entries.insert(mine.entries.end(), sec.entries.begin(), sec.entries.end());
  }
  files_.insert(files_.end(), later.files_.begin(), later.files_.end());
}

bool Config::has_section(std::string_view s) const { return section(s) != nullptr; }

const Section* Config::section(std::string_view s) const {
  auto it = sections_.find(normalize_section(s));
  return it == sections_.end() ? nullptr : &it->second;
}

const Entry* Config::find(std::string_view s, std::string_view key) const {
  const Section* sec = section(s);
  if (!sec) return nullptr;
  for (auto it = sec->entries.rbegin(); it != sec->entries.rend(); ++it)
    if (it->key == key) return &*it;
  return nullptr;
}

std::vector<const Entry*> Config::find_all(std::string_view s, std::string_view key) const {
  std::vector<const Entry*> out;
  const Section* sec = section(s);
  if (!sec) return out;
  for (const auto& e : sec->entries)
    if (e.key == key) out.push_back(&e);
  return out;
}

std::vector<std::string> Config::section_names() const {
  std::vector<std::string> out;
  for (const auto& [name, sec] : sections_) {
    if (!name.empty()) out.push_back(name);
  }
  return out;
}

Result<std::string> Config::resolved(std::string_view s, std::string_view key) const {
  const Entry* e = find(s, key);
  if (!e) return make_error(Errc::kNotFound, "[" + std::string(s) + "] " + std::string(key) + " is not set");
  std::vector<std::string> stack{normalize_section(s) + "." + std::string(key)};
  size_t refs_left = kMaxInterpolationRefs;
  auto r = interpolate_with(normalize_section(s), e->value, stack, refs_left);
  if (!r) return make_error(r.error().code, e->file + ":" + std::to_string(e->line) + ": " + r.error().message);
  return r;
}

Result<std::string> Config::interpolate(std::string_view s, std::string_view value) const {
  std::vector<std::string> stack;
  size_t refs_left = kMaxInterpolationRefs;
  return interpolate_with(normalize_section(s), value, stack, refs_left);
}

Result<std::string> Config::interpolate_with(const std::string& sec, std::string_view value,
                                             std::vector<std::string>& stack, size_t& refs_left) const {
  if (stack.size() > kMaxInterpolationDepth)
    return make_error(Errc::kParse,
                      "interpolation nested deeper than " + std::to_string(kMaxInterpolationDepth) + " levels");
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (out.size() > kMaxInterpolatedBytes)
      return make_error(Errc::kParse,
                        "interpolated value longer than " + std::to_string(kMaxInterpolatedBytes) + " bytes");
    char c = value[i];
    if (c != '$') {
      out += c;
      continue;
    }
    if (i + 1 < value.size() && value[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    std::string name;
    if (i + 1 < value.size() && value[i + 1] == '{') {
      size_t close = value.find('}', i + 2);
      if (close == std::string_view::npos) return make_error(Errc::kParse, "unterminated '${'");  // value may be secret
      name = std::string(value.substr(i + 2, close - i - 2));
      i = close;
    } else {
      size_t j = i + 1;
      while (j < value.size() && (std::isalnum(static_cast<unsigned char>(value[j])) || value[j] == '_')) ++j;
      if (j == i + 1) {  // a lone '$' (string.Template would refuse; keep it literal)
        out += '$';
        continue;
      }
      name = std::string(value.substr(i + 1, j - i - 1));
      i = j - 1;
    }
    // Candidates: ${group.opt}, else the same section, then DEFAULT.
    std::vector<std::pair<std::string, std::string>> candidates;
    size_t dot = name.find('.');
    if (dot != std::string::npos) {
      candidates.emplace_back(normalize_section(name.substr(0, dot)), name.substr(dot + 1));
    } else {
      candidates.emplace_back(sec, name);
      if (sec != "DEFAULT") candidates.emplace_back("DEFAULT", name);
    }
    const Entry* target = nullptr;
    std::string target_sec;
    for (const auto& [cs, ck] : candidates) {
      target = find(cs, ck);
      if (target) {
        target_sec = cs;
        break;
      }
    }
    if (!target)
      return make_error(Errc::kNotFound, "'$" + name + "' names no option (looked in [" + sec + "]" +
                                             (sec != "DEFAULT" && dot == std::string::npos ? " and [DEFAULT])" : ")"));
    if (refs_left == 0)
      return make_error(Errc::kParse, "more than " + std::to_string(kMaxInterpolationRefs) + " interpolations");
    --refs_left;
    std::string id = target_sec + "." + target->key;
    if (std::find(stack.begin(), stack.end(), id) != stack.end()) {
      std::string chain;
      for (const auto& s : stack) chain += s + " -> ";
      return make_error(Errc::kParse, "interpolation loop: " + chain + id);
    }
    stack.push_back(id);
    auto sub = interpolate_with(target_sec, target->value, stack, refs_left);
    stack.pop_back();
    if (!sub) return sub;
    out += sub.value();
  }
  if (out.size() > kMaxInterpolatedBytes)
    return make_error(Errc::kParse,
                      "interpolated value longer than " + std::to_string(kMaxInterpolatedBytes) + " bytes");
  return out;
}

std::optional<bool> parse_bool(std::string_view value) {
  std::string v = lower(strip(value));
  if (v == "true" || v == "yes" || v == "on" || v == "1") return true;
  if (v == "false" || v == "no" || v == "off" || v == "0") return false;
  return std::nullopt;
}

std::vector<std::string> parse_list(std::string_view value) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  auto push = [&]() {
    std::string item(strip(cur));
    if (item.size() >= 2 && item.front() == item.back() && (item.front() == '"' || item.front() == '\''))
      item = item.substr(1, item.size() - 2);
    if (!item.empty()) out.push_back(std::move(item));
    cur.clear();
  };
  for (char c : value) {
    if (quote) {
      if (c == quote) quote = 0;
      cur += c;
    } else if (c == '"' || c == '\'') {
      quote = c;
      cur += c;
    } else if (c == ',') {
      push();
    } else {
      cur += c;
    }
  }
  push();
  return out;
}

}  // namespace lunwatch::ini
