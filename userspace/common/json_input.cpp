#include "common/json_input.h"

namespace lunwatch {

int json_depth(std::string_view text) {
  int depth = 0, max = 0;
  bool in_string = false, escape = false;
  for (char c : text) {
    if (in_string) {
      if (escape)
        escape = false;
      else if (c == '\\')
        escape = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '[' || c == '{')
      max = std::max(max, ++depth);
    else if ((c == ']' || c == '}') && depth > 0)
      --depth;
  }
  return max;
}

Result<nlohmann::json> parse_json(std::string_view text, const JsonLimits& limits, size_t* err_byte) {
  if (err_byte) *err_byte = 0;
  if (text.size() > limits.max_bytes)
    return make_error(Errc::kTruncated, "JSON larger than " + std::to_string(limits.max_bytes) + " bytes");
  if (json_depth(text) > limits.max_depth)
    return make_error(Errc::kParse, "JSON nested deeper than " + std::to_string(limits.max_depth) + " levels");
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    if (err_byte) *err_byte = e.byte;
    return make_error(Errc::kParse, "not JSON (error at byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::out_of_range&) {
    return make_error(Errc::kParse, "JSON number out of range");
  } catch (const nlohmann::json::exception& e) {
    return make_error(Errc::kParse, "JSON not accepted (nlohmann error " + std::to_string(e.id) + ")");
  } catch (const std::bad_alloc&) {
    return make_error(Errc::kTruncated, "JSON too large for memory");
  }
}

}  // namespace lunwatch
