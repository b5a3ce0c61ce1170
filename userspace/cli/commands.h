#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/result.h"

namespace lunwatch::cli {

struct RunOptions {
  bool events = false;
  std::string events_file;
  double duration_s = 0;
  std::vector<std::string> disabled_hooks;
  std::string ready_file;
  std::string stats_file;
  std::string btf_dir = "/sys/kernel/btf";
  bool bpf_stats = true;
  bool verbose = false;
};

int cmd_run(const RunOptions& options);
int cmd_probes(bool json, bool verbose, const std::string& btf_dir);
int cmd_version();

// Process exit code for an error that stops a command.
int exit_code(Errc code);

}  // namespace lunwatch::cli
