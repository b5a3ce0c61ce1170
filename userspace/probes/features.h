#pragma once
// What this kernel offers, read from BTF (vmlinux and every loaded module),
// /proc/kallsyms and small load-and-attach probes. Decides hook alternatives
// before anything is loaded, so a missing hook is a reported state.
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

struct btf;

namespace lunwatch::probes {

// Is the BPF LSM active on this kernel? (securityfs lsm list ends with "bpf").
// Mounts securityfs if needed. reason says why not.
bool bpf_lsm_active(std::string* reason);

struct BtfLocation {
  std::string module;  // "" for vmlinux
};

class KernelFeatures {
 public:
  // btf_dir is normally /sys/kernel/btf.
  explicit KernelFeatures(std::string btf_dir = "/sys/kernel/btf", std::string kallsyms = "/proc/kallsyms");
  ~KernelFeatures();
  KernelFeatures(const KernelFeatures&) = delete;
  KernelFeatures& operator=(const KernelFeatures&) = delete;

  bool has_vmlinux_btf() const;
  const std::string& btf_dir() const { return btf_dir_; }
  // A tracepoint with BTF (typedef btf_trace_<name>).
  std::optional<BtfLocation> find_tracepoint(const std::string& name);
  // A kernel function with BTF (BTF_KIND_FUNC).
  std::optional<BtfLocation> find_function(const std::string& name);
  // Name of the pointee struct of a function's parameter (idx from 0), "" if unknown.
  std::string func_param_struct(const std::string& func, int idx);
  bool in_kallsyms(const std::string& name);
  bool kprobes_supported() const;
  bool fentry_supported();  // loads and attaches a tiny fentry program once

 private:
  struct Btf;
  std::optional<std::pair<const Btf*, int>> find(const std::string& name, int kind);
  void load_modules();

  std::string btf_dir_;
  std::string kallsyms_path_;
  std::unique_ptr<Btf> vmlinux_;
  std::map<std::string, std::unique_ptr<Btf>> modules_;
  bool modules_loaded_ = false;
  std::optional<std::set<std::string>> kallsyms_;
  std::optional<bool> fentry_;
};

}  // namespace lunwatch::probes
