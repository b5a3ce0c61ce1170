#pragma once
// Alert output: JSON lines of v1::Alert, or Falco-shaped JSON (rule,
// priority, output, output_fields, time, source, tags, hostname) that
// Falcosidekick accepts and forwards.
#include <cstdio>
#include <string>

#include "lunwatch.pb.h"

namespace lunwatch::sinks {

enum class AlertFormat { kJson, kFalco };

std::string falco_priority(v1::Severity s);
std::string to_falco_json(const v1::Alert& a);
// RFC 3339 with milliseconds, UTC.
std::string rfc3339_ms(int64_t unix_ms);

class AlertWriter {
 public:
  AlertWriter(std::FILE* out, AlertFormat format) : out_(out), format_(format) {}
  bool write(const v1::Alert& a);

 private:
  std::FILE* out_;
  AlertFormat format_;
};

}  // namespace lunwatch::sinks
