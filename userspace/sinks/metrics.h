#pragma once
// Prometheus metrics (prometheus-cpp): names lunwatch_<subsystem>_<name>_<unit>,
// counters end in _total, label values from bounded sets (no pids). The
// catalog below is the one list of what lunwatch exports; README's metric
// table and the dashboard cross-check test are generated from it.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "lunwatch.pb.h"

namespace prometheus {
class Registry;
class Exposer;
}  // namespace prometheus

namespace lunwatch::sinks {

struct MetricInfo {
  std::string name;
  std::string type;  // counter, gauge
  std::string help;
  std::vector<std::string> labels;
};
const std::vector<MetricInfo>& metric_catalog();

struct ProgramCounters {
  std::string program, hook;
  uint64_t run_cnt = 0, run_time_ns = 0;
};

struct FlowBytes {
  std::string instance;  // instance name, "host" for host processes
  std::string volume;    // volume id, "" when unknown
  uint64_t read_bytes = 0, write_bytes = 0;
};

// Identity verification's health (agent::verify_health).
struct VerifyHealth {
  size_t queued = 0, running = 0, retry_wait = 0, hung = 0;
  double oldest_request_age_s = 0;
  uint64_t retries_total = 0;
  size_t held_paths = 0;       // sd paths under devices instances hold
  double held_age_max_s = 0;   // the oldest last good verification among them
  size_t held_overdue = 0;     // those whose last good verification is older than max_age_s
  double max_age_s = 0;        // the configured bound
  size_t unknown_devices = 0;  // devices whose last SG_IO check failed (identity unknown)
};

class Metrics {
 public:
  Metrics();
  ~Metrics();
  // Starts the HTTP endpoint on "addr:port". Errors when the port is taken.
  Result<void> serve(const std::string& listen);

  void build_info(const std::string& version, const std::string& kernel, const std::string& libbpf);
  void on_event(const v1::Event& ev);
  void on_alert(const v1::Alert& a);
  void set_active_alerts(const std::vector<v1::Alert>& active);
  void set_probes(const std::vector<v1::HookState>& hooks);
  void set_programs(const std::vector<ProgramCounters>& programs);
  void set_drops(const std::map<std::string, uint64_t>& by_cause);
  void set_resyncs(uint64_t n);
  void set_flows(const std::vector<FlowBytes>& flows, size_t active_flows);
  void set_topology(const v1::Topology& t);
  // Counts a device that newly answers with another WWID than sysfs caches.
  void identity_checked(const std::string& dev, const std::string& cached, const std::string& verified);
  void set_verify_queue(const VerifyHealth& h);
  void set_sources(const std::vector<v1::SourceSnapshot>& sources, int64_t now_unix_ms);
  // The refresh workers (inventory/refresher.h) and what the agent made of
  // each source's last list.
  struct SourceRefresh {
    v1::SourceKind kind = v1::SOURCE_UNKNOWN;
    double running_s = 0;  // age of the refresh in progress, 0 when idle
    uint64_t skipped = 0;  // ticks skipped while a refresh was still running
    bool partial = false;  // the list covers only some projects (no admin role)
    bool suspect = false;  // the last list was not applied (see README)
    uint64_t suspect_total = 0;
  };
  void set_source_refresh(const std::vector<SourceRefresh>& sources);
  void set_input_errors(const std::string& source, uint64_t total);
  // The agent loop's time by kind of work (agent/timers.h LoopWork).
  struct LoopWork {
    std::string work;
    double seconds = 0;
    double longest_s = 0;
  };
  void set_loop_work(const std::vector<LoopWork>& works);
  // The alert writer's failed writes, lines spooled now, lines dropped (totals).
  void set_alert_output(uint64_t failures, size_t spooled, uint64_t dropped);
  void dump_written(uint64_t bytes);
  void dump_error(const std::string& cause);
  void containment(const v1::ContainmentAction& a);
  void set_guard(const std::string& mode, uint64_t denials, uint64_t would_deny, size_t armed);
  void set_audit_findings(const std::map<std::pair<std::string, std::string>, int>& by_id_severity);

  // The text exposition, as a scrape would see it (tests, `lunwatch metrics`).
  std::string render() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lunwatch::sinks
