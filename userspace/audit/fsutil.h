#pragma once
// Small file helpers for the audit: paths under a host root, capped reads that
// say why a file could not be read, directory listings and globs.
#include <string>
#include <string_view>
#include <vector>

#include "common/files.h"
#include "common/result.h"

namespace lunwatch::audit {

// root + "/" + rel without doubled slashes; root "/" leaves rel absolute.
std::string under(std::string_view root, std::string_view rel);

enum class FileState { kAbsent, kPresent, kUnreadable };
struct Probe {
  FileState state = FileState::kAbsent;
  std::string reason;  // for kUnreadable: "is a directory", "dangling symlink to X", strerror
};
// Whether path is a regular file we can read (following symlinks).
Probe probe_file(const std::string& path);

// Reads a whole file (at most max_bytes); Errc::kNotFound or kIo with
// "<path>: <reason>".
Result<std::string> read_text(const std::string& path, size_t max_bytes = 8u << 20);

// Names in a directory (no "." / ".."), sorted; empty when unreadable.
std::vector<std::string> list_dir(const std::string& dir);
bool is_dir(const std::string& path);
bool exists(const std::string& path);  // lstat: a dangling symlink exists
// glob(3) results, sorted; empty on no match.
std::vector<std::string> glob_paths(const std::string& pattern);
using lunwatch::read_line;  // common/files.h

std::string trim(std::string_view s);
std::string to_lower(std::string_view s);

}  // namespace lunwatch::audit
