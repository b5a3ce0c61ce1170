#include "probes/features.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace lunwatch::probes {

struct KernelFeatures::Btf {
  std::string module;
  struct btf* btf = nullptr;
  ~Btf() {
    if (btf) btf__free(btf);
  }
};

KernelFeatures::KernelFeatures(std::string btf_dir, std::string kallsyms)
    : btf_dir_(std::move(btf_dir)), kallsyms_path_(std::move(kallsyms)) {
  auto path = btf_dir_ + "/vmlinux";
  struct btf* b = btf__parse(path.c_str(), nullptr);
  if (b) {
    vmlinux_ = std::make_unique<Btf>();
    vmlinux_->btf = b;
  }
}

KernelFeatures::~KernelFeatures() = default;

bool KernelFeatures::has_vmlinux_btf() const { return vmlinux_ != nullptr; }

void KernelFeatures::load_modules() {
  if (modules_loaded_ || !vmlinux_) return;
  modules_loaded_ = true;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(btf_dir_, ec)) {
    auto name = entry.path().filename().string();
    if (name == "vmlinux") continue;
    struct btf* b = btf__parse_split(entry.path().c_str(), vmlinux_->btf);
    if (!b) continue;
    auto m = std::make_unique<Btf>();
    m->module = name;
    m->btf = b;
    modules_.emplace(name, std::move(m));
  }
}

std::optional<std::pair<const KernelFeatures::Btf*, int>> KernelFeatures::find(const std::string& name, int kind) {
  if (!vmlinux_) return std::nullopt;
  int id = btf__find_by_name_kind(vmlinux_->btf, name.c_str(), kind);
  if (id > 0) return std::make_pair(vmlinux_.get(), id);
  load_modules();
  for (const auto& [mod, b] : modules_) {
    id = btf__find_by_name_kind(b->btf, name.c_str(), kind);
    if (id > 0) return std::make_pair(static_cast<const Btf*>(b.get()), id);
  }
  return std::nullopt;
}

std::optional<BtfLocation> KernelFeatures::find_tracepoint(const std::string& name) {
  auto r = find("btf_trace_" + name, BTF_KIND_TYPEDEF);
  if (!r) return std::nullopt;
  return BtfLocation{r->first->module};
}

std::optional<BtfLocation> KernelFeatures::find_function(const std::string& name) {
  auto r = find(name, BTF_KIND_FUNC);
  if (!r) return std::nullopt;
  return BtfLocation{r->first->module};
}

std::string KernelFeatures::func_param_struct(const std::string& func, int idx) {
  auto r = find(func, BTF_KIND_FUNC);
  if (!r) return "";
  const struct btf* b = r->first->btf;
  const struct btf_type* fn = btf__type_by_id(b, r->second);
  if (!fn) return "";
  const struct btf_type* proto = btf__type_by_id(b, fn->type);
  if (!proto || !btf_is_func_proto(proto) || idx >= btf_vlen(proto)) return "";
  const struct btf_param* params = btf_params(proto);
  const struct btf_type* t = btf__type_by_id(b, params[idx].type);
  while (t && (btf_is_mod(t) || btf_is_typedef(t))) t = btf__type_by_id(b, t->type);
  if (!t || !btf_is_ptr(t)) return "";
  t = btf__type_by_id(b, t->type);
  while (t && (btf_is_mod(t) || btf_is_typedef(t))) t = btf__type_by_id(b, t->type);
  if (!t || !(btf_is_struct(t) || btf_is_union(t))) return "";
  const char* n = btf__name_by_offset(b, t->name_off);
  return n ? n : "";
}

bool KernelFeatures::in_kallsyms(const std::string& name) {
  if (!kallsyms_) {
    kallsyms_.emplace();
    std::ifstream in(kallsyms_path_);
    std::string addr, type, sym;
    while (in >> addr >> type >> sym) {
      kallsyms_->insert(sym);
      // Module symbols carry a trailing "[module]" column: skip the rest of the line.
      in.ignore(4096, '\n');
    }
  }
  return kallsyms_->count(name) > 0;
}

bool KernelFeatures::kprobes_supported() const {
  std::error_code ec;
  return std::filesystem::exists("/sys/bus/event_source/devices/kprobe", ec);
}

bool KernelFeatures::fentry_supported() {
  if (fentry_) return *fentry_;
  fentry_ = false;
  auto target = find("vfs_read", BTF_KIND_FUNC);
  if (!target || target->first != vmlinux_.get()) return false;
  // r0 = 0; exit
  const struct bpf_insn insns[] = {
      {BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0},
      {BPF_JMP | BPF_EXIT, 0, 0, 0, 0},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY,
              .attach_btf_id = static_cast<__u32>(target->second));
  int prog = bpf_prog_load(BPF_PROG_TYPE_TRACING, "lw_probe_fentry", "GPL", insns, 2, &opts);
  if (prog < 0) return false;
  int link = bpf_raw_tracepoint_open(nullptr, prog);
  if (link >= 0) {
    fentry_ = true;
    close(link);
  }
  close(prog);
  return *fentry_;
}

bool bpf_lsm_active(std::string* reason) {
  const char* path = "/sys/kernel/security/lsm";
  if (!std::filesystem::exists(path)) ::mount("securityfs", "/sys/kernel/security", "securityfs", 0, nullptr);
  std::ifstream in(path);
  std::string list;
  if (!in || !std::getline(in, list)) {
    if (reason) *reason = "cannot read /sys/kernel/security/lsm (securityfs)";
    return false;
  }
  std::string item;
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (list.substr(start, comma - start) == "bpf") return true;
    start = comma + 1;
  }
  if (reason) *reason = "the BPF LSM is not active (lsm=" + list + "; boot with lsm=...,bpf)";
  return false;
}

}  // namespace lunwatch::probes
