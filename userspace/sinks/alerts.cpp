#include "sinks/alerts.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <ctime>
#include <nlohmann/json.hpp>

#include "common/safe_file.h"
#include "contain/containment.h"
#include "sinks/json.h"

namespace lunwatch::sinks {

std::string falco_priority(v1::Severity s) {
  switch (s) {
    case v1::SEVERITY_CRITICAL: return "Critical";
    case v1::SEVERITY_HIGH: return "Error";
    case v1::SEVERITY_WARNING: return "Warning";
    case v1::SEVERITY_INFO: return "Informational";
    default: return "Notice";
  }
}

std::string rfc3339_ms(int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(unix_ms % 1000));
  return out;
}

std::string to_falco_json(const v1::Alert& a) {
  nlohmann::json f;
  f["rule"] = v1::Rule_Name(a.rule());
  f["priority"] = falco_priority(a.severity());
  f["time"] = rfc3339_ms(a.unix_ms());
  f["source"] = "lunwatch";
  f["hostname"] = a.hostname();
  f["tags"] = {"storage", "cve-2023-2088", "lunwatch", a.state() == v1::ALERT_RESOLVED ? "resolved" : "firing"};
  f["output"] = rfc3339_ms(a.unix_ms()) + ": " + falco_priority(a.severity()) + " " + a.summary();
  nlohmann::json o;
  o["lunwatch.alert_id"] = a.id();
  o["lunwatch.state"] = a.state() == v1::ALERT_RESOLVED ? "resolved" : "firing";
  o["lunwatch.instance"] = a.instance().name();
  o["lunwatch.instance_uuid"] = a.instance().uuid();
  o["lunwatch.project"] = a.instance().project_id();
  o["proc.pid"] = a.pid();
  o["proc.name"] = a.comm();
  o["lunwatch.volume"] = a.volume_id();
  o["lunwatch.owner_instance"] = a.owner().name();
  o["lunwatch.owner_instance_uuid"] = a.owner().uuid();
  o["lunwatch.owner_volume"] = a.owner_volume_id();
  o["lunwatch.device"] = a.device_name();
  o["lunwatch.expected_wwid"] = a.expected_wwid();
  o["lunwatch.cached_wwid"] = a.cached_wwid();
  o["lunwatch.verified_wwid"] = a.verified_wwid();
  std::string hctls, targets;
  for (const auto& p : a.paths()) {
    hctls += (hctls.empty() ? "" : ",") + p.addr().hctl();
    std::string t = p.target().iqn().empty() ? p.target().wwpn() : p.target().iqn() + "@" + p.target().portal();
    targets += (targets.empty() ? "" : ",") + t + " lun " + std::to_string(p.target().lun());
  }
  o["lunwatch.hctl"] = hctls;
  o["lunwatch.targets"] = targets;
  o["lunwatch.denied"] = a.denied();
  std::string contained;
  for (const auto& c : a.containment()) {
    contained += std::string(contained.empty() ? "" : ", ") + contain::kind_name(c.kind()) + " " + c.target() + " " +
                 contain::result_name(c.result());
  }
  if (!contained.empty()) o["lunwatch.containment"] = contained;
  f["output_fields"] = o;
  return f.dump();
}

Result<std::unique_ptr<AlertWriter>> AlertWriter::open(const std::string& path, AlertFormat format) {
  auto f = fopen_append_safe(path);
  if (!f) return make_error(f.error().code, "cannot open alerts file: " + f.error().message);
  std::unique_ptr<AlertWriter> w(new AlertWriter(f.value(), format));
  if (f.value() != stdout) w->path_ = path;
  return w;
}

AlertWriter::~AlertWriter() {
  retry();
  if (!path_.empty() && out_) std::fclose(out_);
}

Result<void> AlertWriter::reopen() {
  if (path_.empty()) return {};
  auto f = fopen_append_safe(path_);
  if (!f) return make_error(f.error().code, "cannot reopen alerts file: " + f.error().message);
  std::fclose(out_);
  out_ = f.value();
  retry();
  return {};
}

// One whole line or nothing: a short write (ENOSPC, EFBIG, EIO) is cut back
// so a reader never sees half a JSON line followed by the next alert.
bool AlertWriter::write_line(const std::string& line) {
  if (std::fflush(out_) != 0) std::clearerr(out_);
  int fd = ::fileno(out_);
  struct stat st {};
  bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  off_t before = regular ? st.st_size : 0;
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(fd, line.data() + off, line.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (regular && off > 0 && ::ftruncate(fd, before) != 0) {
        // leave it: the next whole line still starts after a newline-less tail
      }
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool AlertWriter::retry() {
  while (!spool_.empty()) {
    if (!write_line(spool_.front())) {
      failures_++;
      return false;
    }
    spool_.pop_front();
  }
  return true;
}

bool AlertWriter::write(const v1::Alert& a) {
  std::string line = format_ == AlertFormat::kFalco ? to_falco_json(a) : to_json(a);
  line += '\n';
  if (retry()) {  // older lines first; retry() counts its own failure
    if (write_line(line)) return true;
    failures_++;
  }
  if (spool_.size() >= kMaxSpool) {
    spool_.pop_front();
    dropped_++;
  }
  spool_.push_back(std::move(line));
  return false;
}

}  // namespace lunwatch::sinks
