#pragma once
// Proto message -> one line of JSON (proto3 JSON mapping, field names as in
// proto/lunwatch.proto). The only place JSON is produced from our shapes.
#include <google/protobuf/message.h>

#include <cstdio>
#include <string>

namespace lunwatch::sinks {

std::string to_json(const google::protobuf::Message& msg);

// Writes JSON lines to a FILE*, flushing each line so readers see events live.
class JsonLines {
 public:
  explicit JsonLines(std::FILE* out) : out_(out) {}
  bool write(const google::protobuf::Message& msg);

 private:
  std::FILE* out_;
};

}  // namespace lunwatch::sinks
