#pragma once
// Small-file reading shared by every stage (sysfs attributes, /proc entries).
#include <string>

namespace lunwatch {

// First line of a small file, whitespace-trimmed; "" when unreadable.
std::string read_line(const std::string& path);

}  // namespace lunwatch
