#pragma once
// Alert output: JSON lines of v1::Alert, or Falco-shaped JSON (rule,
// priority, output, output_fields, time, source, tags, hostname) that
// Falcosidekick accepts and forwards.
#include <cstdio>
#include <deque>
#include <memory>
#include <string>

#include "common/result.h"

#include "lunwatch.pb.h"

namespace lunwatch::sinks {

enum class AlertFormat { kJson, kFalco };

std::string falco_priority(v1::Severity s);
std::string to_falco_json(const v1::Alert& a);
// RFC 3339 with milliseconds, UTC.
std::string rfc3339_ms(int64_t unix_ms);

// Writes alert lines. A line that cannot be written (disk full, I/O error) is
// not lost: the file is cut back to its last whole line, the line is spooled
// in memory (bounded: kMaxSpool lines, oldest dropped and counted) and
// written before the next one or on retry(). Every failed write is counted.
class AlertWriter {
 public:
  static constexpr size_t kMaxSpool = 10000;
  // Writes to out (not owned; stdout).
  AlertWriter(std::FILE* out, AlertFormat format) : out_(out), format_(format) {}
  // Appends to path (O_NOFOLLOW, created 0600; "" or "-": stdout); reopen()
  // opens path again after logrotate renamed it.
  static Result<std::unique_ptr<AlertWriter>> open(const std::string& path, AlertFormat format);
  ~AlertWriter();
  AlertWriter(const AlertWriter&) = delete;
  AlertWriter& operator=(const AlertWriter&) = delete;

  // false: not written now (spooled).
  bool write(const v1::Alert& a);
  // Writes what is spooled; true when nothing is left.
  bool retry();
  // SIGHUP: the file at path again (no-op for stdout).
  Result<void> reopen();

  uint64_t write_failures() const { return failures_; }
  uint64_t dropped() const { return dropped_; }
  size_t spooled() const { return spool_.size(); }

 private:
  bool write_line(const std::string& line);
  std::FILE* out_;
  AlertFormat format_;
  std::string path_;  // set when owned
  std::deque<std::string> spool_;
  uint64_t failures_ = 0;
  uint64_t dropped_ = 0;
};

}  // namespace lunwatch::sinks
