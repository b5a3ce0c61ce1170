#include "probes/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <regex>

#include "common/log.h"
#include "lunwatch.skel.h"
#include "probes/decode.h"
#include "probes/features.h"
#include "probes/flow_sweep.h"
#include "probes/hooks.h"
#include "probes/pin_dir.h"
#include "guard/maps.h"
#include <sys/mount.h>
#include <sys/statfs.h>
#include <linux/magic.h>

namespace lunwatch::probes {
namespace {

// libbpf reports through one global print callback; while we load, capture
// its lines so a failed program can be named and its verifier log shown.
std::mutex g_print_mu;
std::string* g_capture = nullptr;
bool g_verbose = false;

int libbpf_print(enum libbpf_print_level level, const char* fmt, va_list args) {
  // Verifier logs arrive as one message of many KiB: keep all of it.
  char* heap = nullptr;
  if (vasprintf(&heap, fmt, args) < 0 || !heap) return 0;
  std::string buf(heap);
  free(heap);
  std::lock_guard<std::mutex> lock(g_print_mu);
  if (g_capture) g_capture->append(buf);
  if (g_verbose || (level == LIBBPF_WARN && !g_capture)) log::write(log::Level::kDebug, buf);
  (void)level;
  return 0;
}

struct CaptureScope {
  std::string text;
  CaptureScope() {
    std::lock_guard<std::mutex> lock(g_print_mu);
    g_capture = &text;
  }
  ~CaptureScope() {
    std::lock_guard<std::mutex> lock(g_print_mu);
    g_capture = nullptr;
  }
};

struct SkelDeleter {
  void operator()(lunwatch_bpf* s) const { lunwatch_bpf__destroy(s); }
};
struct LinkDeleter {
  void operator()(bpf_link* l) const { bpf_link__destroy(l); }
};
struct RingDeleter {
  void operator()(ring_buffer* r) const { ring_buffer__free(r); }
};
using SkelPtr = std::unique_ptr<lunwatch_bpf, SkelDeleter>;
using LinkPtr = std::unique_ptr<bpf_link, LinkDeleter>;
using RingPtr = std::unique_ptr<ring_buffer, RingDeleter>;

bool has_bpf_privileges() {
  if (geteuid() == 0) return true;
  cap_t caps = cap_get_proc();
  if (!caps) return false;
  auto has = [&](cap_value_t c) {
    cap_flag_value_t v = CAP_CLEAR;
    cap_get_flag(caps, c, CAP_EFFECTIVE, &v);
    return v == CAP_SET;
  };
  bool ok = has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON));
  cap_free(caps);
  return ok;
}

std::string last_lines(const std::string& text, size_t n) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    if (end > start) lines.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  std::string out;
  for (size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) {
    if (!out.empty()) out += " | ";
    out += lines[i];
  }
  return out;
}

// Per hook: which alternative we are on, and why earlier ones were dropped.
struct Choice {
  const HookSpec* spec = nullptr;
  size_t alt = 0;  // index into alternatives; == size() means none usable
  v1::HookState state;
};

// Moves c to its first usable alternative at or after c.alt.
void choose(Choice& c, KernelFeatures& kf) {
  std::string why;
  for (; c.alt < c.spec->alternatives.size(); ++c.alt) {
    const auto& a = c.spec->alternatives[c.alt];
    switch (a.kind) {
      case AttachKind::kTpBtf:
      case AttachKind::kRawTp:
        if (auto loc = kf.find_tracepoint(c.spec->target)) {
          c.state.set_module(loc->module);
          return;
        }
        why = "tracepoint " + c.spec->target + " not in this kernel (nor in any loaded module's BTF)";
        break;
      case AttachKind::kFentry:
        if (auto loc = kf.find_function(c.spec->target)) {
          if (kf.fentry_supported()) {
            c.state.set_module(loc->module);
            return;
          }
          why = "fentry not supported by this kernel";
        } else {
          why = "function " + c.spec->target + " not in this kernel (nor in any loaded module's BTF)";
        }
        break;
      case AttachKind::kLsm: {
        std::string why_not;
        if (!kf.find_function("bpf_lsm_" + c.spec->target)) {
          why = "this kernel has no BPF LSM hook " + c.spec->target + " (CONFIG_BPF_LSM)";
        } else if (!guard::bpf_lsm_active(&why_not)) {
          why = why_not + ": guard unavailable, detection only";
        } else {
          return;
        }
        break;
      }
      case AttachKind::kKprobe:
        if (!kf.kprobes_supported()) {
          why += why.empty() ? "" : "; ";
          why += "kprobes not supported by this kernel";
        } else if (kf.in_kallsyms(c.spec->target)) {
          return;
        } else {
          why += why.empty() ? "" : "; ";
          why += c.spec->target + " not in kallsyms";
        }
        break;
    }
  }
  if (c.state.status() != v1::HOOK_FAILED) {
    c.state.set_status(v1::HOOK_NOT_PRESENT);
    c.state.set_reason(why);
  }
}

std::vector<Choice> initial_choices(const ProbeOptions& opt, KernelFeatures& kf) {
  std::vector<Choice> out;
  for (const auto& spec : hook_specs()) {
    Choice c;
    c.spec = &spec;
    c.state.set_name(spec.name);
    c.state.set_subsystem(spec.subsystem);
    c.state.set_purpose(spec.purpose);
    c.state.set_target(spec.target);
    if (spec.subsystem == "guard" && !opt.guard) {
      c.alt = spec.alternatives.size();
      c.state.set_status(v1::HOOK_DISABLED);
      c.state.set_reason("guard mode off");
    } else if (opt.disabled_hooks.count(spec.name)) {
      c.alt = spec.alternatives.size();
      c.state.set_status(v1::HOOK_DISABLED);
      c.state.set_reason("disabled by configuration");
    } else {
      choose(c, kf);
    }
    out.push_back(std::move(c));
  }
  return out;
}

bool usable(const Choice& c) { return c.alt < c.spec->alternatives.size(); }

}  // namespace

const char* drop_cause_name(int cause) {
  switch (cause) {
    case LW_DROP_RINGBUF_FULL: return "ringbuf_full";
    case LW_DROP_FLOW_MAP_FULL: return "flow_map_full";
    case LW_DROP_EDGE_MAP_FULL: return "edge_map_full";
    case LW_DROP_BIND_MAP_FULL: return "bind_map_full";
    case LW_DROP_ERROR_RATELIMIT: return "error_ratelimited";
    case LW_DROP_READ_FAULT: return "read_fault";
  }
  return "unknown";
}

struct FdCloser {
  int fd = -1;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

struct Probes::Impl {
  SkelPtr skel;
  FdCloser stats_fd;  // per-program stats stay on while this is open
  std::vector<LinkPtr> links;
  RingPtr ring;
  std::vector<std::pair<std::string, std::string>> programs;  // (program, hook) attached
  ConsumerStats* consumer = nullptr;
  const EventHandler* handler = nullptr;
  int handled = 0;
};

namespace {
int on_record(void* ctx, void* data, size_t size) {
  auto* impl = static_cast<Probes::Impl*>(ctx);
  consume_record(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size), *impl->consumer,
                 *impl->handler);
  impl->handled++;
  return 0;
}
}  // namespace

std::vector<v1::HookState> Probes::plan(const ProbeOptions& options) {
  KernelFeatures kf(options.btf_dir);
  std::vector<v1::HookState> out;
  for (auto& c : initial_choices(options, kf)) {
    if (usable(c)) {
      const auto& a = c.spec->alternatives[c.alt];
      c.state.set_status(v1::HOOK_UNKNOWN);
      c.state.set_program(a.program);
      c.state.set_attach(attach_kind_name(a.kind));
      c.state.set_reason("planned, not loaded");
    }
    out.push_back(c.state);
  }
  return out;
}

Result<std::unique_ptr<Probes>> Probes::make(const ProbeOptions& options) {
  if (!has_bpf_privileges())
    return make_error(Errc::kNotRoot, "lunwatch needs root (or CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN) to load BPF");
  if (!std::filesystem::exists(options.btf_dir + "/vmlinux"))
    return make_error(Errc::kNoBtf, "kernel BTF missing: " + options.btf_dir +
                                        "/vmlinux not found (needs CONFIG_DEBUG_INFO_BTF=y)");
  {
    std::lock_guard<std::mutex> lock(g_print_mu);
    g_verbose = options.verbose;
  }
  libbpf_set_print(libbpf_print);

  // Pinned guard maps: a root-owned private directory on bpffs, or no start.
  if (auto pin = prepare_pin_dir(options.pin_dir); !pin) return pin.error();
  bool cleared_pins = false;

  KernelFeatures kf(options.btf_dir);
  if (!kf.has_vmlinux_btf())
    return make_error(Errc::kNoBtf, "kernel BTF unreadable: " + options.btf_dir + "/vmlinux");
  auto choices = initial_choices(options, kf);
  bool rescan_takes_sdev = kf.func_param_struct("scsi_rescan_device", 0) == "scsi_device";

  // Load and attach; when one program fails, move its hook to the next
  // alternative (or give up on that hook) and try again from scratch.
  const size_t max_attempts = 2 * hook_specs().size() + 2;
  for (size_t attempt = 0; attempt < max_attempts; ++attempt) {
    auto impl = std::make_unique<Impl>();
    CaptureScope capture;
    LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = options.pin_dir.c_str());
    impl->skel.reset(lunwatch_bpf__open_opts(&oopts));
    if (!impl->skel) {
      int err = errno;
      return make_error(Errc::kLoadFailed, std::string("cannot open BPF object: ") + strerror(err));
    }
    auto* obj = impl->skel->obj;
    bpf_program* prog;
    bpf_object__for_each_program(prog, obj) bpf_program__set_autoload(prog, false);
    std::map<std::string, Choice*> by_prog;
    for (auto& c : choices) {
      if (!usable(c)) continue;
      const auto& a = c.spec->alternatives[c.alt];
      bpf_program* p = bpf_object__find_program_by_name(obj, a.program.c_str());
      if (!p) {
        c.state.set_status(v1::HOOK_FAILED);
        c.state.set_reason("program " + a.program + " missing from the BPF object (build mismatch)");
        c.alt = c.spec->alternatives.size();
        continue;
      }
      bpf_program__set_autoload(p, true);
      by_prog[a.program] = &c;
    }
    impl->skel->rodata->lw_cfg.error_ratelimit_ns = options.error_ratelimit_ns;
    impl->skel->rodata->lw_cfg.self_tgid = options.self_tgid ? options.self_tgid : static_cast<uint32_t>(getpid());
    impl->skel->rodata->lw_rescan_takes_sdev = rescan_takes_sdev;
    if (options.ring_bytes) bpf_map__set_max_entries(impl->skel->maps.events, options.ring_bytes);

    int err = lunwatch_bpf__load(impl->skel.get());
    if (err && !cleared_pins && capture.text.find("couldn't reuse pinned map") != std::string::npos) {
      // Pinned maps from an older lunwatch with another layout: start them afresh.
      log::warn("pinned guard maps in " + options.pin_dir + " do not match this build; recreating them");
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(options.pin_dir, ec))
        if (e.path().filename().string().rfind("link_", 0) != 0) ::unlink(e.path().c_str());
      cleared_pins = true;
      continue;
    }
    if (err) {
      static const std::regex failed_re(R"(prog '([A-Za-z0-9_]+)': failed to load)");
      std::smatch m;
      if (std::regex_search(capture.text, m, failed_re) && by_prog.count(m[1].str())) {
        Choice* c = by_prog[m[1].str()];
        c->state.set_status(v1::HOOK_FAILED);
        std::string detail = last_lines(capture.text, 3);
        c->state.set_reason("load of " + m[1].str() + " failed: " + strerror(-err) + ": " + detail);
        if (c->spec->subsystem == "guard" && err == -EPERM) {
          // A kernel that lists the bpf LSM but refuses its programs: a missing feature, not a bug.
          c->state.set_status(v1::HOOK_NOT_PRESENT);
          c->state.set_reason("this kernel refuses BPF LSM programs (EPERM at load, no verifier log): guard unavailable, detection only");
        }
        c->alt++;
        if (c->state.status() == v1::HOOK_NOT_PRESENT) {
          c->alt = c->spec->alternatives.size();
        } else {
          choose(*c, kf);
        }
        continue;
      }
      if (err == -EPERM) {
        struct rlimit rl {};
        getrlimit(RLIMIT_MEMLOCK, &rl);
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (64u << 20))
          return make_error(Errc::kMemlock, "BPF map creation refused (EPERM) with RLIMIT_MEMLOCK at " +
                                                std::to_string(rl.rlim_cur / 1024) +
                                                " KiB: raise it (ulimit -l unlimited, or LimitMEMLOCK=infinity)");
        return make_error(Errc::kBpfNotPermitted,
                          "the kernel refused BPF (EPERM): lockdown, a seccomp/container policy, or missing "
                          "capabilities; " + last_lines(capture.text, 2));
      }
      return make_error(Errc::kLoadFailed, std::string("BPF load failed: ") + strerror(-err) + ": " +
                                               last_lines(capture.text, 4));
    }

    // Attach every loaded program.
    bool retry = false;
    for (auto& [name, c] : by_prog) {
      bpf_program* p = bpf_object__find_program_by_name(obj, name.c_str());
      bpf_link* link = bpf_program__attach(p);
      if (!link) {
        int aerr = errno;
        c->state.set_status(v1::HOOK_FAILED);
        c->state.set_reason("attach of " + name + " failed: " + strerror(aerr));
        c->alt++;
        choose(*c, kf);
        if (usable(*c)) retry = true;
        continue;
      }
      impl->links.emplace_back(link);
      impl->programs.emplace_back(name, c->spec->name);
      const auto& a = c->spec->alternatives[c->alt];
      c->state.set_status(v1::HOOK_ATTACHED);
      c->state.set_program(a.program);
      c->state.set_attach(attach_kind_name(a.kind));
      c->state.set_reason("");
    }
    if (retry) continue;

    impl->ring.reset(ring_buffer__new(bpf_map__fd(impl->skel->maps.events), on_record, impl.get(), nullptr));
    if (!impl->ring) {
      int rerr = errno;
      return make_error(Errc::kLoadFailed, std::string("cannot open the ring buffer: ") + strerror(rerr));
    }
    if (options.run_stats) {
      impl->stats_fd.fd = bpf_enable_stats(BPF_STATS_RUN_TIME);
      if (impl->stats_fd.fd < 0)
        log::info(std::string("per-program BPF run statistics unavailable: ") + strerror(errno));
    }
    std::unique_ptr<Probes> probes(new Probes(std::move(impl)));
    for (auto& c : choices) probes->states_.push_back(c.state);
    probes->impl_->consumer = &probes->consumer_;
    return probes;
  }
  return make_error(Errc::kLoadFailed, "gave up after repeated BPF load failures");
}

Probes::Probes(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Probes::~Probes() = default;

int Probes::poll(int timeout_ms, const EventHandler& handler) {
  impl_->handler = &handler;
  impl_->handled = 0;
  int rc = ring_buffer__poll(impl_->ring.get(), timeout_ms);
  impl_->handler = nullptr;
  if (rc < 0 && rc != -EINTR) return rc;
  return impl_->handled;
}

int Probes::ring_fd() const { return ring_buffer__epoll_fd(impl_->ring.get()); }

std::vector<FlowRecord> Probes::flows() const {
  std::vector<FlowRecord> out;
  int fd = bpf_map__fd(impl_->skel->maps.flows);
  lw_flow_key key{}, next{};
  lw_flow_key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    FlowRecord r{next, {}};
    if (bpf_map_lookup_elem(fd, &next, &r.val) == 0) out.push_back(r);
    key = next;
    prev = &key;
  }
  return out;
}

std::vector<size_t> Probes::sweep_dead_flows(const std::vector<FlowRecord>& flows) {
  if (!process_start_mono_ns(static_cast<uint32_t>(::getpid()))) return {};  // no /proc: cannot tell, keep all
  std::vector<FlowOwner> owners;
  owners.reserve(flows.size());
  for (const auto& f : flows) owners.push_back({f.key.tgid, f.val.first_ns});
  auto dead = dead_flows(owners);
  int fd = bpf_map__fd(impl_->skel->maps.flows);
  for (size_t i : dead) bpf_map_delete_elem(fd, &flows[i].key);
  return dead;
}

std::vector<FlowRecord> Probes::rearm_flows(const std::set<uint32_t>& kernel_devs) {
  std::vector<FlowRecord> taken;
  int fd = bpf_map__fd(impl_->skel->maps.flows);
  for (const auto& r : flows()) {
    if (!kernel_devs.count(r.key.dev)) continue;
    FlowRecord cur{r.key, {}};
    if (bpf_map_lookup_elem(fd, &r.key, &cur.val) == 0 && bpf_map_delete_elem(fd, &r.key) == 0) taken.push_back(cur);
  }
  return taken;
}

std::vector<FlowRecord> Probes::forget_device(uint32_t kdev) {
  int efd = bpf_map__fd(impl_->skel->maps.edges);
  std::vector<lw_edge_key> gone;
  lw_edge_key k{}, next{};
  lw_edge_key* prev = nullptr;
  while (bpf_map_get_next_key(efd, prev, &next) == 0) {
    if (next.upper == kdev || next.lower == kdev) gone.push_back(next);
    k = next;
    prev = &k;
  }
  for (auto& e : gone) bpf_map_delete_elem(efd, &e);
  bpf_map_delete_elem(bpf_map__fd(impl_->skel->maps.bindings), &kdev);
  bpf_map_delete_elem(bpf_map__fd(impl_->skel->maps.err_limit), &kdev);
  return {};
}

namespace {
std::vector<uint64_t> sum_percpu(bpf_map* map, uint32_t n) {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> out(n, 0), vals(ncpu > 0 ? ncpu : 1);
  int fd = bpf_map__fd(map);
  for (uint32_t i = 0; i < n; ++i) {
    if (bpf_map_lookup_elem(fd, &i, vals.data()) != 0) continue;
    for (auto v : vals) out[i] += v;
  }
  return out;
}
}  // namespace

std::vector<uint64_t> Probes::drops() const { return sum_percpu(impl_->skel->maps.drops, LW_DROP_MAX); }
std::vector<uint64_t> Probes::stats() const {
  auto out = sum_percpu(impl_->skel->maps.stats, LW_STAT_MAX);
  // The kernel counts only the bios that did not just update a known flow in
  // the IO_SEEN slot (keeps a per-CPU counter off the per-bio path); every bio
  // seen is one or the other.
  out[LW_STAT_IO_SEEN] += out[LW_STAT_FLOW_REPEAT];
  return out;
}

std::vector<std::pair<std::string, int>> Probes::guard_links() const {
  std::vector<std::pair<std::string, int>> out;
  for (size_t i = 0; i < impl_->programs.size(); ++i) {
    const auto& [prog, hook] = impl_->programs[i];
    if (hook.rfind("guard_", 0) == 0) out.emplace_back(prog, bpf_link__fd(impl_->links[i].get()));
  }
  return out;
}

std::vector<ProgramStats> Probes::program_stats() const {
  std::vector<ProgramStats> out;
  for (const auto& [name, hook] : impl_->programs) {
    bpf_program* p = bpf_object__find_program_by_name(impl_->skel->obj, name.c_str());
    bpf_prog_info info{};
    __u32 len = sizeof info;
    ProgramStats s{name, hook};
    if (p && bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len) == 0) {
      s.run_cnt = info.run_cnt;
      s.run_time_ns = info.run_time_ns;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace lunwatch::probes
