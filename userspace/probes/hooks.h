#pragma once
// Every kernel hook lunwatch knows, with its alternatives in order of
// preference (tp_btf, then raw_tp; fentry, then kprobe). The BPF program
// names here are the ones in bpf/*.bpf.h.
#include <string>
#include <vector>

namespace lunwatch::probes {

enum class AttachKind { kTpBtf, kRawTp, kFentry, kKprobe, kLsm };
const char* attach_kind_name(AttachKind k);

struct Alternative {
  std::string program;
  AttachKind kind;
};

struct HookSpec {
  std::string name;       // stable, used in config and metrics
  std::string subsystem;  // block, scsi, iscsi, dm
  std::string target;     // tracepoint or kernel function
  std::string purpose;
  std::vector<Alternative> alternatives;
};

const std::vector<HookSpec>& hook_specs();

}  // namespace lunwatch::probes
