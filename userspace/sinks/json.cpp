#include "sinks/json.h"

#include <google/protobuf/util/json_util.h>

namespace lunwatch::sinks {

std::string to_json(const google::protobuf::Message& msg) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  opts.add_whitespace = false;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(msg, &out, opts);
  if (!status.ok()) return R"({"error":"json encoding failed"})";
  return out;
}

bool JsonLines::write(const google::protobuf::Message& msg) {
  std::string line = to_json(msg);
  line += '\n';
  bool ok = std::fwrite(line.data(), 1, line.size(), out_) == line.size();
  std::fflush(out_);
  return ok;
}

}  // namespace lunwatch::sinks
