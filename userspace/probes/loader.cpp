#include "probes/loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/capability.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include "common/log.h"
#include "lunwatch.skel.h"
#include "probes/decode.h"
#include "probes/features.h"
#include "probes/flow_sweep.h"
#include "probes/hooks.h"
#include "probes/pin_dir.h"

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

// A program the verifier refused because a field it reads is not in this kernel's type
// (libbpf rewrites the poisoned instruction to "failed to resolve CO-RE relocation
// <type.field>"): that line, the reason to state; "" otherwise.
std::string core_relo_failure(const std::string& text) {
  size_t at = text.find("failed to resolve CO-RE relocation");
  if (at == std::string::npos) return "";
  size_t end = text.find('\n', at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// Per hook: which alternative we are on, and why earlier ones were dropped.
struct Choice {
  const HookSpec* spec = nullptr;
  size_t alt = 0;  // index into alternatives; == size() means none usable
  v1::HookState state;
};

// The SCSI, iSCSI, FC and dm programs read module types (scsi_device, iscsi_cls_session,
// mapped_device...), relocated against the module's BTF. A kernel built without
// CONFIG_DEBUG_INFO_BTF_MODULES (Debian 11's 5.10) has modules loaded and no
// /sys/kernel/btf/<module>: their kprobe and raw_tp twins cannot load there either.
bool module_btf_missing(const std::string& btf_dir) {
  std::ifstream in("/proc/modules");
  std::string line;
  bool any_module = false;
  while (std::getline(in, line)) {
    std::string name = line.substr(0, line.find(' '));
    if (name.empty()) continue;
    any_module = true;
    std::error_code ec;
    if (std::filesystem::exists(btf_dir + "/" + name, ec)) return false;
  }
  return any_module;
}

bool reads_module_types(const HookSpec& spec) { return spec.subsystem != "block" && spec.subsystem != "guard"; }

// Moves c to its first usable alternative at or after c.alt.
void choose(Choice& c, KernelFeatures& kf, const std::set<std::string>& disabled) {
  std::string why;
  for (; c.alt < c.spec->alternatives.size(); ++c.alt) {
    const auto& a = c.spec->alternatives[c.alt];
    // `--disable-hook fentry` (any attach kind's name) leaves every alternative of
    // that kind off: how the lab forces the kprobe twins on a kernel that has fentry.
    if (disabled.count(attach_kind_name(a.kind))) {
      why += why.empty() ? "" : "; ";
      why += std::string(attach_kind_name(a.kind)) + " disabled by configuration";
      continue;
    }
    switch (a.kind) {
      case AttachKind::kTpBtf:
        if (auto loc = kf.find_tracepoint(c.spec->target)) {
          c.state.set_module(loc->module);
          return;
        }
        why = "tracepoint " + c.spec->target + " not in this kernel (nor in any loaded module's BTF)";
        break;
      case AttachKind::kRawTp:
        if (auto loc = kf.find_tracepoint(c.spec->target)) {
          c.state.set_module(loc->module);
          return;
        }
        if (reads_module_types(*c.spec) && module_btf_missing(kf.btf_dir())) {
          why += why.empty() ? "" : "; ";
          why +=
              "no module BTF on this kernel (CONFIG_DEBUG_INFO_BTF_MODULES unset): the raw_tp twin reads module types";
          break;
        }
        // A raw tracepoint needs no BTF: a module's tracepoint on a kernel without
        // module BTF (CONFIG_DEBUG_INFO_BTF_MODULES off, Debian 11's 5.10) is found
        // by its __tracepoint_ symbol.
        if (kf.in_kallsyms("__tracepoint_" + c.spec->target)) return;
        why = "tracepoint " + c.spec->target + " not in this kernel (nor in any loaded module)";
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
        } else if (!bpf_lsm_active(&why_not)) {
          why = why_not + ": guard unavailable, detection only";
        } else {
          return;
        }
        break;
      }
      case AttachKind::kKprobe:
        if (reads_module_types(*c.spec) && module_btf_missing(kf.btf_dir())) {
          why += why.empty() ? "" : "; ";
          why +=
              "no module BTF on this kernel (CONFIG_DEBUG_INFO_BTF_MODULES unset): the kprobe twin reads module types";
        } else if (!kf.kprobes_supported()) {
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
      choose(c, kf, opt.disabled_hooks);
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
  std::vector<bpf_program*> progs;                            // parallel to programs
  // Late modules: every hook's choice, the options, the loaded modules last seen, and
  // one more object per batch of hooks attached after start (sharing skel's maps).
  std::vector<Choice> choices;
  ProbeOptions options;
  std::string module_sig;
  std::vector<SkelPtr> late;
  bool rescan_takes_sdev = false;
  ConsumerStats* consumer = nullptr;
  const EventHandler* handler = nullptr;
  int handled = 0;
  int budget = Probes::kPollBudget;
};

namespace {
int on_record(void* ctx, void* data, size_t size) {
  auto* impl = static_cast<Probes::Impl*>(ctx);
  consume_record(std::span<const uint8_t>(static_cast<const uint8_t*>(data), size), *impl->consumer, *impl->handler);
  impl->handled++;
  // Budget spent: stop here (libbpf has advanced past this record) and let
  // the caller's loop run; the rest waits in the ring for the next poll.
  return impl->handled >= impl->budget ? -EINTR : 0;
}
}  // namespace

namespace {
void set_rodata(lunwatch_bpf* skel, const ProbeOptions& options, bool rescan_takes_sdev) {
  skel->rodata->lw_cfg.error_ratelimit_ns = options.error_ratelimit_ns;
  skel->rodata->lw_cfg.self_tgid = options.self_tgid ? options.self_tgid : static_cast<uint32_t>(getpid());
  skel->rodata->lw_rescan_takes_sdev = rescan_takes_sdev;
  if (options.ring_bytes) bpf_map__set_max_entries(skel->maps.events, options.ring_bytes);
}

// The loaded modules (name and state from /proc/modules) and the module BTF in
// btf_dir: when this changes, hooks "not present" are looked for again.
std::string module_signature(const std::string& btf_dir) {
  std::vector<std::string> names;
  std::ifstream in("/proc/modules");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    std::string name, size, refs, users, state;
    f >> name >> size >> refs >> users >> state;
    names.push_back(name + ":" + state);
  }
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(btf_dir, ec))
    names.push_back("btf/" + e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string sig;
  for (const auto& n : names) sig += n + "\n";
  return sig;
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
    return make_error(Errc::kNotRoot,
                      "lunwatch needs root (or CAP_BPF with CAP_PERFMON, or CAP_SYS_ADMIN) to load BPF");
  if (!std::filesystem::exists(options.btf_dir + "/vmlinux"))
    return make_error(Errc::kNoBtf,
                      "kernel BTF missing: " + options.btf_dir + "/vmlinux not found (needs CONFIG_DEBUG_INFO_BTF=y)");
  {
    std::lock_guard<std::mutex> lock(g_print_mu);
    g_verbose = options.verbose;
  }
  libbpf_set_print(libbpf_print);

  // Pinned guard maps: a root-owned private directory on bpffs, or no start.
  if (auto pin = prepare_pin_dir(options.pin_dir); !pin) return pin.error();
  bool cleared_pins = false;

  KernelFeatures kf(options.btf_dir);
  if (!kf.has_vmlinux_btf()) return make_error(Errc::kNoBtf, "kernel BTF unreadable: " + options.btf_dir + "/vmlinux");
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
    set_rodata(impl->skel.get(), options, rescan_takes_sdev);

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
        std::string detail = core_relo_failure(capture.text);
        if (detail.empty())
          detail = last_lines(capture.text, 3);
        else
          detail = "this kernel's types lack a field it reads: " + detail;
        c->state.set_reason("load of " + m[1].str() + " failed: " + strerror(-err) + ": " + detail);
        if (c->spec->subsystem == "guard" && err == -EPERM) {
          // A kernel that lists the bpf LSM but refuses its programs: a missing feature, not a bug.
          c->state.set_status(v1::HOOK_NOT_PRESENT);
          c->state.set_reason(
              "this kernel refuses BPF LSM programs (EPERM at load, no verifier log): guard unavailable, detection "
              "only");
        }
        c->alt++;
        if (c->state.status() == v1::HOOK_NOT_PRESENT) {
          c->alt = c->spec->alternatives.size();
        } else {
          choose(*c, kf, options.disabled_hooks);
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
                          "capabilities; " +
                              last_lines(capture.text, 2));
      }
      return make_error(Errc::kLoadFailed,
                        std::string("BPF load failed: ") + strerror(-err) + ": " + last_lines(capture.text, 4));
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
        choose(*c, kf, options.disabled_hooks);
        if (usable(*c)) retry = true;
        continue;
      }
      impl->links.emplace_back(link);
      impl->programs.emplace_back(name, c->spec->name);
      impl->progs.push_back(p);
      const auto& a = c->spec->alternatives[c->alt];
      c->state.set_status(v1::HOOK_ATTACHED);
      c->state.set_program(a.program);
      c->state.set_attach(attach_kind_name(a.kind));
      // On a fallback, keep why the preferred alternative was dropped (the kernel table).
      if (c->alt > 0 && !c->state.reason().empty())
        c->state.set_reason("fallback to " + std::string(attach_kind_name(a.kind)) + ": " +
                            c->state.reason().substr(0, 400));
      else
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
    impl->module_sig = module_signature(options.btf_dir);
    impl->options = options;
    impl->rescan_takes_sdev = rescan_takes_sdev;
    std::unique_ptr<Probes> probes(new Probes(std::move(impl)));
    for (auto& c : choices) probes->states_.push_back(c.state);
    probes->impl_->choices = std::move(choices);
    probes->impl_->consumer = &probes->consumer_;
    return probes;
  }
  return make_error(Errc::kLoadFailed, "gave up after repeated BPF load failures");
}

Probes::Probes(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Probes::~Probes() = default;

int Probes::poll(int timeout_ms, const EventHandler& handler, int max_events) {
  impl_->handler = &handler;
  impl_->handled = 0;
  impl_->budget = max_events > 0 ? max_events : kPollBudget;
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
  // The LSM programs, and the hooks whose programs close guarded devices on
  // "identity may have changed" events (lw_guard_close): pinned, they keep
  // failing closed while no agent runs (a remap during a restart).
  static const std::set<std::string> fail_closed = {"scsi_dispatch_cmd_done", "scsi_device_rescan", "scsi_host_scan",
                                                    "iscsi_host_scan",        "fc_host_scan",       "scsi_device_event",
                                                    "iscsi_session_unblock",  "dm_path_event"};
  std::vector<std::pair<std::string, int>> out;
  for (size_t i = 0; i < impl_->programs.size(); ++i) {
    const auto& [prog, hook] = impl_->programs[i];
    if (hook.rfind("guard_", 0) == 0 || fail_closed.count(hook))
      out.emplace_back(prog, bpf_link__fd(impl_->links[i].get()));
  }
  return out;
}

std::vector<ProgramStats> Probes::program_stats() const {
  std::vector<ProgramStats> out;
  for (size_t i = 0; i < impl_->programs.size(); ++i) {
    const auto& [name, hook] = impl_->programs[i];
    bpf_program* p = impl_->progs[i];
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

int Probes::attach_new_modules() {
  Impl& im = *impl_;
  std::string sig = module_signature(im.options.btf_dir);
  if (sig == im.module_sig) return 0;
  im.module_sig = sig;
  // What the kernel offers now (module BTF and kallsyms read afresh).
  KernelFeatures kf(im.options.btf_dir);
  std::vector<Choice*> wanted;
  for (auto& c : im.choices) {
    if (c.state.status() != v1::HOOK_NOT_PRESENT || c.spec->subsystem == "guard") continue;
    c.alt = 0;
    choose(c, kf, im.options.disabled_hooks);
    if (usable(c)) wanted.push_back(&c);
  }
  int attached = 0;
  // One object for the batch; a program that fails to load moves its hook to the next
  // alternative and the batch is loaded again without it.
  for (size_t attempt = 0; attempt < 2 * wanted.size() + 1; ++attempt) {
    std::map<std::string, Choice*> by_prog;
    for (auto* c : wanted)
      if (usable(*c)) by_prog[c->spec->alternatives[c->alt].program] = c;
    if (by_prog.empty()) break;
    CaptureScope capture;
    LIBBPF_OPTS(bpf_object_open_opts, oopts, .pin_root_path = im.options.pin_dir.c_str());
    SkelPtr skel(lunwatch_bpf__open_opts(&oopts));
    if (!skel) {
      log::warn(std::string("late modules: cannot open the BPF object again: ") + strerror(errno));
      break;
    }
    bpf_program* prog;
    bpf_object__for_each_program(prog, skel->obj)
        bpf_program__set_autoload(prog, by_prog.count(bpf_program__name(prog)) > 0);
    // One set of maps: the running object's (ring buffer, flows, bindings, guard maps,
    // .bss/.data); only the read-only data is this object's own, set the same way.
    bpf_map* map;
    bpf_object__for_each_map(map, skel->obj) {
      std::string name = bpf_map__name(map);
      if (name.find(".rodata") != std::string::npos || name.find(".kconfig") != std::string::npos) continue;
      bpf_map* mine = bpf_object__find_map_by_name(im.skel->obj, name.c_str());
      if (mine && bpf_map__reuse_fd(map, bpf_map__fd(mine)) != 0)
        log::warn("late modules: cannot share map " + name + ": " + strerror(errno));
    }
    set_rodata(skel.get(), im.options, im.rescan_takes_sdev);
    int err = lunwatch_bpf__load(skel.get());
    if (err) {
      static const std::regex failed_re(R"(prog '([A-Za-z0-9_]+)': failed to load)");
      std::smatch m;
      if (std::regex_search(capture.text, m, failed_re) && by_prog.count(m[1].str())) {
        Choice* c = by_prog[m[1].str()];
        std::string reason =
            "load of " + m[1].str() + " failed: " + strerror(-err) + ": " + last_lines(capture.text, 3);
        c->alt++;
        choose(*c, kf, im.options.disabled_hooks);
        if (!usable(*c)) {
          c->state.set_status(v1::HOOK_FAILED);
          c->state.set_reason(reason);
          log::warn("hook " + c->spec->name + " (module loaded late): " + reason);
        }
        continue;
      }
      log::warn("late modules: BPF load failed: " + std::string(strerror(-err)) + ": " + last_lines(capture.text, 4));
      break;
    }
    for (auto& [name, c] : by_prog) {
      bpf_program* p = bpf_object__find_program_by_name(skel->obj, name.c_str());
      bpf_link* link = bpf_program__attach(p);
      if (!link) {
        int aerr = errno;
        // A module still coming up can refuse a probe: "not present" again, tried
        // at the next change of the loaded modules.
        c->state.set_status(v1::HOOK_NOT_PRESENT);
        c->state.set_reason("attach of " + name + " failed: " + strerror(aerr) + " (tried again when modules change)");
        c->alt = c->spec->alternatives.size();
        continue;
      }
      im.links.emplace_back(link);
      im.programs.emplace_back(name, c->spec->name);
      im.progs.push_back(p);
      const auto& a = c->spec->alternatives[c->alt];
      c->state.set_status(v1::HOOK_ATTACHED);
      c->state.set_program(a.program);
      c->state.set_attach(attach_kind_name(a.kind));
      c->state.set_reason("attached after its module loaded");
      log::info("hook " + c->spec->name + " attached late: " + attach_kind_name(a.kind) + " " + a.program +
                (c->state.module().empty() ? "" : " (module " + c->state.module() + ")"));
      attached++;
    }
    im.late.push_back(std::move(skel));
    break;
  }
  for (size_t i = 0; i < im.choices.size() && i < states_.size(); ++i) states_[i] = im.choices[i].state;
  return attached;
}

}  // namespace lunwatch::probes
