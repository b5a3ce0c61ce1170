#pragma once
// I/O already inside the block layer. The guard decides at the system call; a
// bio queued in dm-multipath (queue_if_no_path: all paths down) is resent
// later without any check, to whatever LUN answers when a path comes back. So
// while a held map's identity is in doubt (the guard has it closed, or one of
// its paths' identity is unknown: a LUN-gone error, a failed SG_IO check), a
// map whose table queues is switched to fail_if_no_path: what is queued fails
// instead of reaching another volume. Once the map is verified again the
// operator's queue_if_no_path is restored. The maps switched are kept in a
// small state file, so a restarted agent restores them too.
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"
#include "detect/correlator.h"

extern "C" {
#include "lunwatch.h"
}

namespace lunwatch::guard {

// dm devices ("maj:min") an instance holds (libvirt) whose identity is in
// doubt: the kernel's guard entry is not VERIFIED, or a path of the map is
// suspect (unknown identity), dm-failed paths included.
std::set<std::string> maps_in_doubt(const detect::Correlator& c, const std::map<uint32_t, lw_guard_dev>& kernel);

// Runs `dmsetup ARGS...` with a deadline; stdout on success.
Result<std::string> run_dmsetup(const std::vector<std::string>& args);

class QueueHold {
 public:
  using Dmsetup = std::function<Result<std::string>(const std::vector<std::string>& args)>;
  struct Options {
    std::string state_file = "/run/lunwatch/dm-queue-held";
    std::string sysfs_root = "/sys";
    Dmsetup dmsetup = run_dmsetup;
  };
  explicit QueueHold(Options o);
  // in_doubt: dm devices ("maj:min", see maps_in_doubt). Switches each one
  // whose table queues to fail_if_no_path; restores queue_if_no_path on the
  // maps this agent switched once they are no longer in doubt.
  void sync(const std::set<std::string>& in_doubt);
  const std::set<std::string>& held() const { return held_; }  // dm map names switched

 private:
  std::string map_name(const std::string& dev) const;  // "253:0" -> dm name from sysfs
  void save() const;
  Options o_;
  std::set<std::string> held_;
};

}  // namespace lunwatch::guard
