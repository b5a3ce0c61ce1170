#include "audit/fsutil.h"

#include <dirent.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace lunwatch::audit {

std::string under(std::string_view root, std::string_view rel) {
  std::string r(root);
  while (r.size() > 1 && r.back() == '/') r.pop_back();
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  if (r.empty() || r == "/") return "/" + std::string(rel);
  return r + "/" + std::string(rel);
}

Probe probe_file(const std::string& path) {
  struct stat lst {};
  if (::lstat(path.c_str(), &lst) != 0) return {FileState::kAbsent, std::strerror(errno)};
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (S_ISLNK(lst.st_mode)) {
      char buf[4096];
      ssize_t n = ::readlink(path.c_str(), buf, sizeof(buf) - 1);
      std::string target = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
      return {FileState::kUnreadable, "dangling symlink to " + target};
    }
    return {FileState::kUnreadable, std::strerror(errno)};
  }
  if (S_ISDIR(st.st_mode)) return {FileState::kUnreadable, "is a directory, not a file"};
  if (::access(path.c_str(), R_OK) != 0) return {FileState::kUnreadable, std::strerror(errno)};
  std::ifstream in(path);
  if (!in) return {FileState::kUnreadable, "cannot be opened"};
  return {FileState::kPresent, ""};
}

Result<std::string> read_text(const std::string& path, size_t max_bytes) {
  Probe p = probe_file(path);
  if (p.state == FileState::kAbsent) return make_error(Errc::kNotFound, path + ": " + p.reason);
  if (p.state == FileState::kUnreadable) return make_error(Errc::kIo, path + ": " + p.reason);
  std::ifstream in(path, std::ios::binary);
  std::string out;
  out.resize(max_bytes + 1);
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  if (in.bad()) return make_error(Errc::kIo, path + ": read error");
  out.resize(static_cast<size_t>(in.gcount()));
  if (out.size() > max_bytes)
    return make_error(Errc::kIo, path + ": larger than " + std::to_string(max_bytes) + " bytes");
  return out;
}

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (auto* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    out.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool is_dir(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  ::globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string to_lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace lunwatch::audit
