#pragma once
// Containment: what lunwatch does, when configured, about a confirmed leak
// (a firing CROSS_INSTANCE_ACCESS the guard did not refuse: the device's
// SG_IO identity is another instance's volume). Each action is optional and
// off by default, because each one hurts somebody:
//   - offline the SCSI device paths that answer as the other volume
//     ("offline" into /sys/class/scsi_device/H:C:T:L/device/state): every
//     I/O to them fails at once, the rightful owner's too, until an operator
//     writes "running" back;
//   - pause the offending libvirt domain (virsh suspend): its vCPUs stop, so
//     its guest can issue no more I/O; `virsh resume` undoes it.
// Sysfs writes finish at once; virsh runs as a child process the agent's
// loop polls, killed at a deadline, so a hung libvirtd never stalls the agent.
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "lunwatch.pb.h"

namespace lunwatch::contain {

namespace v1 = lunwatch::v1;

struct Options {
  bool offline_scsi_device = false;
  bool pause_domain = false;
  std::string sysfs_root = "/sys";
  std::string virsh = "virsh";  // found on PATH unless absolute
  std::string libvirt_uri = "qemu:///system";
  double timeout_s = 15;  // per command
  // A failed action is tried again while its alert fires: after retry_after_s,
  // then twice as long after each further failure, at most retry_max_s.
  double retry_after_s = 5;
  double retry_max_s = 300;
};

// Parses the --contain list ("offline,pause", "none"); unknown words are errors.
bool parse_actions(const std::string& list, Options& o, std::string* error);
std::string actions_string(const Options& o);  // "offline_scsi_device,pause_domain" or "none"

struct Step {
  v1::ContainmentKind kind = v1::CONTAIN_UNKNOWN;
  std::string target;  // H:C:T:L, or the domain's uuid (its name when libvirt gave none)
  std::string label;   // sd name or instance name, for messages
};

// What to do for this alert (pure): nothing unless it is a firing,
// not-refused CROSS_INSTANCE_ACCESS. Offline: every path with a full
// H:C:T:L whose verified identity is the leaked one (or is unknown);
// pause: the actor, when it is a libvirt domain.
std::vector<Step> plan(const v1::Alert& a, const Options& o);

class Runner {
 public:
  explicit Runner(Options o);
  ~Runner();
  Runner(const Runner&) = delete;
  Runner& operator=(const Runner&) = delete;

  bool enabled() const { return o_.offline_scsi_device || o_.pause_domain; }
  const Options& options() const { return o_; }
  // Begins the alert's actions. Actions already done (same kind and target)
  // are not repeated; a failed one is retried with bounded backoff (see
  // Options). The agent calls this again for every firing alert periodically.
  void start(const v1::Alert& a, uint64_t now_ns);
  // Alerts whose every action has a result, each with its containment
  // results appended (written again by the caller, same alert id).
  std::vector<v1::Alert> poll(uint64_t now_ns);
  bool busy() const { return !pending_.empty(); }

 private:
  struct Child {
    pid_t pid = -1;
    int out_fd = -1;
    std::string output;
    uint64_t deadline_ns = 0;
    uint64_t started_ns = 0;
    Step step;
  };
  struct Pending {
    v1::Alert alert;
    uint64_t alert_ns = 0;
    std::vector<Child> children;
  };
  v1::ContainmentAction offline(const Step& s);
  bool spawn_pause(const Step& s, uint64_t now_ns, Child& c, std::string* error);
  v1::ContainmentAction reap(Child& c, bool timed_out, int status);
  void record(v1::ContainmentAction& r, const Step& s, uint64_t alert_ns, uint64_t now_ns);

  Options o_;
  std::vector<Pending> pending_;
  std::map<std::pair<int, std::string>, uint64_t> done_;    // (kind, target) -> when done
  std::map<std::pair<int, std::string>, uint64_t> failed_;  // (kind, target) -> when it last failed
  std::map<std::pair<int, std::string>, int> failures_;     // (kind, target) -> failures in a row
};

const char* kind_name(v1::ContainmentKind k);      // offline_scsi_device | pause_domain
const char* result_name(v1::ContainmentResult r);  // done | already | failed | timeout

}  // namespace lunwatch::contain
