#pragma once
// The guard's pinned maps under /sys/fs/bpf/lunwatch, opened by path, so the
// agent, `lunwatch guard` and tests share one policy that outlives any of
// them. Kernel-facing (bpf syscalls); the policy itself is computed in policy.h.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"

extern "C" {
#include "lunwatch.h"
}

namespace lunwatch::guard {

inline constexpr char kPinDir[] = "/sys/fs/bpf/lunwatch";

const char* mode_name(uint32_t mode);
std::optional<uint32_t> parse_mode(const std::string& s);
const char* state_name(uint32_t state);
const char* close_reason_name(uint32_t reason);

class GuardMaps {
 public:
  // Opens the pinned maps; kNotFound when lunwatch never loaded them here.
  static Result<GuardMaps> open(const std::string& pin_dir = kPinDir);
  GuardMaps(GuardMaps&&) noexcept;
  GuardMaps& operator=(GuardMaps&&) noexcept;
  ~GuardMaps();

  Result<uint32_t> mode() const;
  Result<void> set_mode(uint32_t mode, uint64_t report_ratelimit_ns = 1'000'000'000);

  std::map<uint32_t, lw_guard_dev> devices() const;
  std::optional<lw_guard_dev> device(uint32_t kdev) const;
  Result<void> put_device(uint32_t kdev, const lw_guard_dev& d);
  Result<void> remove_device(uint32_t kdev);

  std::set<uint32_t> procs() const;
  Result<void> set_procs(const std::set<uint32_t>& tgids);  // replaces the set
  std::set<uint64_t> cgroups() const;                       // instance scopes (cgroup v2 ids)
  Result<void> set_cgroups(const std::set<uint64_t>& ids);  // replaces the set
  std::set<uint32_t> allow() const;
  Result<void> set_allow(const std::set<uint32_t>& tgids);

  std::vector<uint64_t> stats() const;  // by enum lw_guard_stat

 private:
  GuardMaps() = default;
  int devs_ = -1, procs_ = -1, allow_ = -1, cfg_ = -1, stats_ = -1, cgroups_ = -1;
};

// Pins (or replaces) the guard's LSM links so the policy keeps enforcing
// while the agent restarts; removes them for `guard off`.
Result<void> pin_links(const std::vector<std::pair<std::string, int>>& name_and_link_fd,
                       const std::string& pin_dir = kPinDir);
Result<void> unpin_links(const std::string& pin_dir = kPinDir);

}  // namespace lunwatch::guard
