#include "probes/flow_sweep.h"

#include <time.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <unordered_map>

namespace lunwatch::probes {
namespace {

// The kernel reports start times on the boot clock; flows carry the monotonic
// one. They differ by the time spent suspended.
int64_t boot_minus_mono_ns() {
  timespec b{}, m{};
  ::clock_gettime(CLOCK_BOOTTIME, &b);
  ::clock_gettime(CLOCK_MONOTONIC, &m);
  return (static_cast<int64_t>(b.tv_sec) - m.tv_sec) * 1'000'000'000LL + (b.tv_nsec - m.tv_nsec);
}

// A process started within this of the flow's first I/O may be the one that
// did it (start times have clock-tick resolution).
constexpr uint64_t kSlackNs = 100'000'000;

}  // namespace

std::optional<uint64_t> process_start_mono_ns(uint32_t tgid, const std::string& proc) {
  std::ifstream in(proc + "/" + std::to_string(tgid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  size_t close = stat.rfind(')');  // comm may hold spaces and parentheses
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  // Fields after comm start at 3 (state); starttime is field 22.
  for (int i = 3; i <= 22; ++i)
    if (!(rest >> field)) return std::nullopt;
  uint64_t ticks = std::strtoull(field.c_str(), nullptr, 10);
  static const long hz = ::sysconf(_SC_CLK_TCK);
  int64_t boot_ns = static_cast<int64_t>(ticks) * (1'000'000'000LL / (hz > 0 ? hz : 100));
  int64_t mono = boot_ns - boot_minus_mono_ns();
  return mono > 0 ? static_cast<uint64_t>(mono) : 0;
}

std::vector<size_t> dead_flows(const std::vector<FlowOwner>& flows,
                               const std::function<std::optional<uint64_t>(uint32_t)>& start_of) {
  std::unordered_map<uint32_t, std::optional<uint64_t>> start;
  std::vector<size_t> dead;
  for (size_t i = 0; i < flows.size(); ++i) {
    const auto& f = flows[i];
    auto it = start.find(f.tgid);
    if (it == start.end())
      it = start.emplace(f.tgid, start_of ? start_of(f.tgid) : process_start_mono_ns(f.tgid)).first;
    if (!it->second || *it->second > f.first_ns + kSlackNs) dead.push_back(i);
  }
  return dead;
}

}  // namespace lunwatch::probes
