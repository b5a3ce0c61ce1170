#pragma once
// Loads lunwatch's BPF object, picks one alternative per hook for this
// kernel, attaches, and hands decoded events to a callback. Every kernel
// object is owned by RAII; a hook that is missing or fails is a state in
// hook_states(), never an exception or a crash.
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "lunwatch.pb.h"
#include "probes/consumer.h"

extern "C" {
#include "lunwatch.h"
}

namespace lunwatch::probes {

struct ProbeOptions {
  std::set<std::string> disabled_hooks;  // by HookSpec::name, or an attach kind ("fentry") for all of it
  uint64_t error_ratelimit_ns = 1'000'000'000;
  uint32_t self_tgid = 0;  // 0: this process
  std::string btf_dir = "/sys/kernel/btf";
  bool verbose = false;                          // pass libbpf's messages to the log
  bool run_stats = true;                         // kernel per-program run count/time while we run (BPF_ENABLE_STATS)
  std::string pin_dir = "/sys/fs/bpf/lunwatch";  // guard maps (and links) pinned here
  bool guard = false;                            // load the guard's LSM programs (guard mode monitor or enforce)
  uint32_t ring_bytes = 0;  // ring buffer size (power of 2, >= page); 0: the object's 1 MiB (tests shrink it)
};

struct FlowRecord {
  lw_flow_key key;
  lw_flow_val val;
};

struct ProgramStats {
  std::string program;
  std::string hook;
  uint64_t run_cnt = 0;
  uint64_t run_time_ns = 0;
};

class Probes {
 public:
  // Fails with kNotRoot, kNoBtf, kBpfNotPermitted, kMemlock or kLoadFailed.
  static Result<std::unique_ptr<Probes>> make(const ProbeOptions& options);
  // Only decides and reports hook states; loads nothing (for `lunwatch probes` without root).
  static std::vector<v1::HookState> plan(const ProbeOptions& options);

  ~Probes();
  Probes(const Probes&) = delete;
  Probes& operator=(const Probes&) = delete;

  const std::vector<v1::HookState>& hook_states() const { return states_; }
  // Late modules (iscsi_tcp, dm_multipath, scsi_transport_fc loaded after start): when
  // the loaded modules or module BTF changed since the last call, looks again for every
  // hook "not present", loads and attaches those now there (sharing this object's maps
  // and ring buffer) and updates hook_states(). Cheap when nothing changed (reads
  // /proc/modules and lists btf_dir): call it from a timer. Returns hooks attached.
  int attach_new_modules();
  // Waits up to timeout_ms for events and hands each to handler, at most
  // max_events of them (libbpf would otherwise keep consuming while producers
  // keep up, and the caller's timers and stop flag would wait on the stream).
  // Returns the number handled, or a negative errno.
  static constexpr int kPollBudget = 4096;
  int poll(int timeout_ms, const EventHandler& handler, int max_events = kPollBudget);
  int ring_fd() const;

  std::vector<FlowRecord> flows() const;
  // Removes the flows of processes that are gone (or whose pid now names a
  // younger process) from the kernel map; returns their indexes in `flows`.
  // A new process on a reused pid is then reported on its next I/O.
  std::vector<size_t> sweep_dead_flows(const std::vector<FlowRecord>& flows);
  // Removes the kernel flows on these devices (kernel dev_t encoding) so the
  // next I/O of each process there is reported again as a new flow; returns
  // what they had counted.
  std::vector<FlowRecord> rearm_flows(const std::set<uint32_t>& kernel_devs);
  // Forgets the edges and SCSI binding the kernel side remembers about a device
  // that is gone (its number will be reused). Flows stay (see lifecycle.bpf.h).
  std::vector<FlowRecord> forget_device(uint32_t kernel_dev);
  std::vector<uint64_t> drops() const;  // by enum lw_drop_cause, summed over CPUs
  // By enum lw_stat, summed over CPUs; [LW_STAT_IO_SEEN] is every bio seen
  // (the kernel slot holds only those that were not a FLOW_REPEAT).
  std::vector<uint64_t> stats() const;
  std::vector<ProgramStats> program_stats() const;
  // (program, link fd) of the guard's attached LSM programs, for pinning.
  std::vector<std::pair<std::string, int>> guard_links() const;
  const ConsumerStats& consumer_stats() const { return consumer_; }

  struct Impl;

 private:
  explicit Probes(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<v1::HookState> states_;
  ConsumerStats consumer_;
};

const char* drop_cause_name(int cause);

}  // namespace lunwatch::probes
