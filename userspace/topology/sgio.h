#pragma once
// Fresh identity of a SCSI disk: INQUIRY for VPD pages 0x83 and 0x80 sent
// through SG_IO, never the sysfs cache (which keeps the identity from probe
// time across a LUN remap). A LUN that hangs ties up one worker thread, never
// the agent nor the other devices' checks: callers get a timeout outcome at
// the deadline and carry on.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
  bool gone = false;  // the device node is gone: not retried
  v1::Identity identity;
  std::string error;
  int64_t at_unix_ms = 0;
  std::chrono::milliseconds took{0};
  v1::VerifyReason reason = v1::VERIFY_UNKNOWN;
  uint64_t asked_ns = 0;  // steady clock (CLOCK_MONOTONIC, bpf_ktime_get_ns) when the INQUIRY was sent
  uint32_t attempt = 1;   // 1: first try; more: a retry after failures
};

// The correlator's view of an outcome (reason and receive time are the caller's).
v1::Event identity_event(const VerifyOutcome& o);

// A queue of identity checks, one entry per device: every device asked for is
// checked, however many there are.
// - Deduplicated: a device is queued at most once; a request for a device
//   whose check is already running asks for one more check after it (its
//   answer may predate the event that triggered the request).
// - Fair: FIFO of devices, each device once, so a burst of one host's devices
//   cannot starve others, and periodic re-verification reaches every device.
// - Bounded concurrency: at most max_in_flight checks run at once.
// - Hung LUNs isolated: a check past its deadline is reported as a timeout and
//   stops counting against max_in_flight (its thread stays stuck in SG_IO);
//   that device is not asked again until it answers.
// - Retry with backoff per device: a failed or timed-out check is asked again
//   after retry_base, doubling up to retry_max, at most max_attempts times;
//   a periodic request does not cut a device's backoff short, any other does.
class IdentityVerifier {
 public:
  using InquireFn = std::function<Result<v1::Identity>(const std::string& node, std::chrono::milliseconds)>;
  struct Options {
    std::string dev_dir = "/dev";
    std::string private_dir = "/run/lunwatch/nodes";
    std::chrono::milliseconds timeout{3000};
    size_t max_in_flight = 16;
    std::chrono::milliseconds retry_base{1000};
    std::chrono::milliseconds retry_max{30000};
    uint32_t max_attempts = 8;  // per failure streak; the next periodic request starts another
    InquireFn inquire;          // default: inquire_identity (tests inject hangs and errors)
    std::function<Result<std::string>(const std::string& name, DevNum dev)> node;  // default: device_node
  };
  struct Stats {
    size_t queued = 0;        // waiting for a worker
    size_t running = 0;       // SG_IO in progress, within the deadline
    size_t retry_wait = 0;    // failed, waiting for the backoff
    size_t hung = 0;          // past the deadline, still stuck in SG_IO
    double oldest_age_s = 0;  // the oldest unanswered request (queued or running), 0 when none
    uint64_t started_total = 0;
    uint64_t retries_total = 0;
    uint64_t timeouts_total = 0;
  };
  IdentityVerifier();
  explicit IdentityVerifier(Options options);
  ~IdentityVerifier();
  IdentityVerifier(const IdentityVerifier&) = delete;
  IdentityVerifier& operator=(const IdentityVerifier&) = delete;

  // Queues a check of this device (see the class comment). Always accepted.
  bool submit(const std::string& name, DevNum dev, v1::VerifyReason reason = v1::VERIFY_UNKNOWN);
  // Finished outcomes, and timeouts for those past their deadline; starts
  // queued and due checks. Non-blocking.
  std::vector<VerifyOutcome> take();
  // Blocks until nothing is queued or running (retries waiting aside), or limit passes.
  std::vector<VerifyOutcome> wait_all(std::chrono::milliseconds limit);
  // Checks queued or running (what the caller should poll for soon).
  size_t in_flight() const;
  // A check finished since the last take(): cheap (one atomic load), for
  // callers that apply answers before judging each event.
  bool has_answers() const { return answered_->load(std::memory_order_acquire) != taken_answers_.load(); }
  Stats stats() const;
  // Time since this device last answered with an identity; when it never
  // did, since it was first asked for. Empty for a device never asked for.
  std::optional<std::chrono::milliseconds> since_good(const std::string& name) const;
  // Drops a device that no longer exists: no more retries, no age.
  void forget(const std::string& name);
  uint64_t timeouts_total() const { return stats().timeouts_total; }
  uint64_t refused_total() const { return 0; }

 private:
  struct Job;
  struct Entry;
  using TimePoint = std::chrono::steady_clock::time_point;
  void pump(TimePoint now);                                      // mu_ held
  void start(const std::string& name, Entry& e, TimePoint now);  // mu_ held
  Options opt_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> entries_;
  // Finished checks (workers are detached: they share the counter).
  std::shared_ptr<std::atomic<uint64_t>> answered_ = std::make_shared<std::atomic<uint64_t>>(0);
  std::atomic<uint64_t> taken_answers_{0};
  std::deque<std::string> queue_;
  uint64_t started_ = 0, retries_ = 0, timeouts_ = 0;
};

}  // namespace lunwatch::topology
