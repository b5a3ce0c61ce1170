#include "probes/pin_dir.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/safe_file.h"

#ifndef BPF_FS_MAGIC
#define BPF_FS_MAGIC 0xcafe4a11
#endif

namespace lunwatch::probes {
namespace {

bool on_bpffs(const std::string& path) {
  struct statfs sfs {};
  return ::statfs(path.c_str(), &sfs) == 0 && sfs.f_type == BPF_FS_MAGIC;
}

}  // namespace

Result<void> prepare_pin_dir(const std::string& pin_dir, const std::string& standard_bpffs) {
  if (pin_dir.empty() || pin_dir.front() != '/')
    return make_error(Errc::kInvalidArgument, "pin dir '" + pin_dir + "' must be an absolute path on bpffs");
  std::string parent = std::filesystem::path(pin_dir).parent_path().string();
  if (!on_bpffs(parent)) {
    if (parent == standard_bpffs) ::mount("bpf", parent.c_str(), "bpf", 0, nullptr);
    if (!on_bpffs(parent))
      return make_error(Errc::kInvalidArgument, "pin dir " + pin_dir + ": " + parent +
                                                    " is not bpffs (refusing to mount bpffs over it; use a pin dir "
                                                    "under " +
                                                    standard_bpffs + ")");
  }
  auto d = ensure_private_dir(pin_dir, 0700);
  if (!d) return make_error(Errc::kInvalidArgument, "pin dir unsafe, refusing to start: " + d.error().message);
  if (!on_bpffs(pin_dir)) return make_error(Errc::kInvalidArgument, "pin dir " + pin_dir + " is not on bpffs");
  return {};
}

}  // namespace lunwatch::probes
