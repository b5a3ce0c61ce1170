#pragma once
// The one way lunwatch parses JSON it did not write itself (attachment files,
// Cinder/Keystone bodies, Glance image lists, policy files, recordings' JSON
// fields): bounded size and nesting, and no nlohmann exception escapes
// (parse_error, out_of_range for 1e400, type_error all become an Error).
// Messages never quote the input: it may hold secrets.
#include <nlohmann/json.hpp>
#include <string_view>

#include "common/result.h"

namespace lunwatch {

struct JsonLimits {
  size_t max_bytes = 16u << 20;
  int max_depth = 64;  // arrays/objects inside each other; nlohmann's dump() recurses
};

// Nesting depth of a JSON text, without parsing it (strings skipped).
int json_depth(std::string_view text);

// Parses text within limits. On failure *err_byte (when given) receives the
// byte offset of the problem (0 when unknown).
Result<nlohmann::json> parse_json(std::string_view text, const JsonLimits& limits = {}, size_t* err_byte = nullptr);

}  // namespace lunwatch
