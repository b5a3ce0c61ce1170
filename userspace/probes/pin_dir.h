#pragma once
// The guard's pin directory holds the maps and links that keep refusing I/O
// while the agent restarts: whoever can write it can unpin the guard. Before
// anything is pinned it must be a real directory on bpffs, owned by us (root),
// writable by nobody else. bpffs is mounted only at its standard place
// (/sys/fs/bpf), never over some other directory.
#include <string>

#include "common/result.h"

namespace lunwatch::probes {

inline constexpr char kStandardBpffs[] = "/sys/fs/bpf";

// Creates the directory (0700) when missing. Errc::kInvalidArgument with one
// clear sentence when it may not be used.
Result<void> prepare_pin_dir(const std::string& pin_dir, const std::string& standard_bpffs = kStandardBpffs);

}  // namespace lunwatch::probes
