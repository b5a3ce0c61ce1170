#pragma once
// Short names of proto enum values for people ("OP_READ" -> "READ"). A value
// this build does not know (a dump or recording from a newer lunwatch) has no
// name: it prints as "UNKNOWN(<n>)" instead of throwing out of substr().
#include <string>

namespace lunwatch {

inline std::string enum_suffix(const std::string& full_name, size_t prefix_len, int value) {
  if (full_name.size() <= prefix_len) return "UNKNOWN(" + std::to_string(value) + ")";
  return full_name.substr(prefix_len);
}

}  // namespace lunwatch
