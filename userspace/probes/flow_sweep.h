#pragma once
// Flows of processes that are gone. The kernel keys flows by (tgid, dev) and
// reports a flow once, when it enters the map; an entry left by an exited
// process would hide a new process that reuses its pid on the same device,
// and stale entries fill the map (and every walk of it). The agent removes
// them: a flow is dead when its tgid names no process, or a process that
// started after the flow's first I/O (the pid was reused).
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace lunwatch::probes {

struct FlowOwner {
  uint32_t tgid = 0;
  uint64_t first_ns = 0;  // bpf_ktime_get_ns (CLOCK_MONOTONIC) of the flow's first I/O
};

// Start of process tgid in CLOCK_MONOTONIC ns (from <proc>/<tgid>/stat), or
// nullopt when there is no such process.
std::optional<uint64_t> process_start_mono_ns(uint32_t tgid, const std::string& proc = "/proc");

// Indexes of the dead flows in `flows`. `start_of` defaults to
// process_start_mono_ns; each tgid is looked up once.
std::vector<size_t> dead_flows(const std::vector<FlowOwner>& flows,
                               const std::function<std::optional<uint64_t>(uint32_t)>& start_of = {});

}  // namespace lunwatch::probes
