#include "sinks/alerts.h"

#include <ctime>
#include <nlohmann/json.hpp>

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

bool AlertWriter::write(const v1::Alert& a) {
  std::string line = format_ == AlertFormat::kFalco ? to_falco_json(a) : to_json(a);
  line += '\n';
  bool ok = std::fwrite(line.data(), 1, line.size(), out_) == line.size();
  std::fflush(out_);
  return ok;
}

}  // namespace lunwatch::sinks
