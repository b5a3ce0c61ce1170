#pragma once
// Fresh identity of a SCSI disk: INQUIRY for VPD pages 0x83 and 0x80 sent
// through SG_IO, never the sysfs cache (which keeps the identity from probe
// time across a LUN remap). A LUN that hangs ties up one worker thread, never
// the agent: callers get a timeout outcome at the deadline and carry on.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/devt.h"
#include "common/result.h"
#include "lunwatch.pb.h"

namespace lunwatch::topology {

// Blocking: opens node read-only and non-blocking, asks both pages.
Result<v1::Identity> inquire_identity(const std::string& node, std::chrono::milliseconds timeout);

// A device node for dev: /dev/<name> when it is that device, else one made
// under private_dir with mknod (hosts without udev, renamed nodes).
Result<std::string> device_node(const std::string& dev_dir, const std::string& name, DevNum dev,
                                const std::string& private_dir);

struct VerifyOutcome {
  std::string name;  // sda
  DevNum dev;
  bool ok = false;
  bool timed_out = false;
  v1::Identity identity;
  std::string error;
  int64_t at_unix_ms = 0;
  std::chrono::milliseconds took{0};
};

// The correlator's view of an outcome (reason and receive time are the caller's).
v1::Event identity_event(const VerifyOutcome& o);

class IdentityVerifier {
 public:
  using InquireFn = std::function<Result<v1::Identity>(const std::string& node, std::chrono::milliseconds)>;
  struct Options {
    std::string dev_dir = "/dev";
    std::string private_dir = "/run/lunwatch/nodes";
    std::chrono::milliseconds timeout{3000};
    size_t max_in_flight = 16;
    InquireFn inquire;  // default: inquire_identity (tests inject hangs and errors)
  };
  IdentityVerifier();
  explicit IdentityVerifier(Options options);
  ~IdentityVerifier();
  IdentityVerifier(const IdentityVerifier&) = delete;
  IdentityVerifier& operator=(const IdentityVerifier&) = delete;

  // Starts a verification unless one for this device is still running (a
  // hung LUN is not asked again until it answers) or too many are in flight.
  bool submit(const std::string& name, DevNum dev);
  // Finished outcomes, and timeouts for those past their deadline. Non-blocking.
  std::vector<VerifyOutcome> take();
  // Blocks until every submitted verification is finished or timed out, or limit passes.
  std::vector<VerifyOutcome> wait_all(std::chrono::milliseconds limit);
  size_t in_flight() const;
  uint64_t timeouts_total() const { return timeouts_; }
  uint64_t refused_total() const { return refused_; }

 private:
  struct Job;
  Options opt_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Job>> jobs_;  // by name, until taken
  uint64_t timeouts_ = 0;
  uint64_t refused_ = 0;
};

}  // namespace lunwatch::topology
