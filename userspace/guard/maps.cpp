#include "guard/maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace lunwatch::guard {

const char* mode_name(uint32_t m) {
  switch (m) {
    case LW_GUARD_OFF: return "off";
    case LW_GUARD_MONITOR: return "monitor";
    case LW_GUARD_ENFORCE: return "enforce";
  }
  return "unknown";
}

std::optional<uint32_t> parse_mode(const std::string& s) {
  if (s == "off") return LW_GUARD_OFF;
  if (s == "monitor") return LW_GUARD_MONITOR;
  if (s == "enforce") return LW_GUARD_ENFORCE;
  return std::nullopt;
}

const char* state_name(uint32_t s) {
  switch (s) {
    case LW_GUARD_VERIFIED: return "verified";
    case LW_GUARD_UNVERIFIED: return "unverified (closed)";
    case LW_GUARD_QUARANTINE: return "quarantined";
  }
  return "unknown";
}

const char* close_reason_name(uint32_t r) {
  switch (r) {
    case LW_CLOSE_NONE: return "";
    case LW_CLOSE_SCAN: return "LUN scan";
    case LW_CLOSE_RESCAN: return "device rescan";
    case LW_CLOSE_SESSION_UNBLOCK: return "iSCSI session unblocked";
    case LW_CLOSE_UNIT_ATTENTION: return "unit attention";
    case LW_CLOSE_LUN_NOT_SUPPORTED: return "LUN not supported";
    case LW_CLOSE_PATH_REINSTATE: return "path reinstated";
  }
  return "?";
}

Result<GuardMaps> GuardMaps::open(const std::string& dir) {
  GuardMaps g;
  auto get = [&](const char* name, int* fd) -> bool {
    *fd = bpf_obj_get((dir + "/" + name).c_str());
    return *fd >= 0;
  };
  if (!get("guard_devs", &g.devs_) || !get("guard_procs", &g.procs_) || !get("guard_allow", &g.allow_) ||
      !get("guard_cfg", &g.cfg_) || !get("guard_stats", &g.stats_) || !get("guard_cgroups", &g.cgroups_))
    return make_error(Errc::kNotFound,
                      "guard maps not pinned in " + dir + " (has lunwatch run here?): " + std::strerror(errno));
  return g;
}

GuardMaps::GuardMaps(GuardMaps&& o) noexcept { *this = std::move(o); }
GuardMaps& GuardMaps::operator=(GuardMaps&& o) noexcept {
  std::swap(devs_, o.devs_);
  std::swap(procs_, o.procs_);
  std::swap(allow_, o.allow_);
  std::swap(cfg_, o.cfg_);
  std::swap(stats_, o.stats_);
  std::swap(cgroups_, o.cgroups_);
  return *this;
}
GuardMaps::~GuardMaps() {
  for (int fd : {devs_, procs_, allow_, cfg_, stats_, cgroups_})
    if (fd >= 0) ::close(fd);
}

Result<uint32_t> GuardMaps::mode() const {
  uint32_t zero = 0;
  lw_guard_cfg c{};
  if (bpf_map_lookup_elem(cfg_, &zero, &c) != 0) return make_error(Errc::kIo, "cannot read guard_cfg");
  return c.mode;
}

Result<void> GuardMaps::set_mode(uint32_t mode, uint64_t ratelimit_ns) {
  uint32_t zero = 0;
  lw_guard_cfg c{};
  c.mode = mode;
  c.report_ratelimit_ns = ratelimit_ns;
  if (bpf_map_update_elem(cfg_, &zero, &c, BPF_ANY) != 0)
    return make_error(Errc::kIo, std::string("cannot set guard mode: ") + std::strerror(errno));
  return {};
}

std::map<uint32_t, lw_guard_dev> GuardMaps::devices() const {
  std::map<uint32_t, lw_guard_dev> out;
  uint32_t key = 0, next = 0;
  uint32_t* prev = nullptr;
  while (bpf_map_get_next_key(devs_, prev, &next) == 0) {
    lw_guard_dev d{};
    if (bpf_map_lookup_elem(devs_, &next, &d) == 0) out[next] = d;
    key = next;
    prev = &key;
  }
  return out;
}

std::optional<lw_guard_dev> GuardMaps::device(uint32_t kdev) const {
  lw_guard_dev d{};
  if (bpf_map_lookup_elem(devs_, &kdev, &d) != 0) return std::nullopt;
  return d;
}

Result<void> GuardMaps::put_device(uint32_t kdev, const lw_guard_dev& d) {
  if (bpf_map_update_elem(devs_, &kdev, &d, BPF_ANY) != 0)
    return make_error(Errc::kIo, std::string("cannot write guard policy: ") + std::strerror(errno));
  return {};
}

Result<void> GuardMaps::remove_device(uint32_t kdev) {
  if (bpf_map_delete_elem(devs_, &kdev) != 0 && errno != ENOENT)
    return make_error(Errc::kIo, std::string("cannot remove guard policy: ") + std::strerror(errno));
  return {};
}

namespace {
// The guard's sets: hash maps of key -> 1 (tgids, cgroup ids).
template <typename K>
std::set<K> keys_of(int fd) {
  std::set<K> out;
  K key = 0, next = 0;
  K* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    out.insert(next);
    key = next;
    prev = &key;
  }
  return out;
}
template <typename K>
Result<void> replace_keys(int fd, const std::set<K>& want) {
  auto have = keys_of<K>(fd);
  uint32_t one = 1;
  for (K k : want)
    if (!have.count(k) && bpf_map_update_elem(fd, &k, &one, BPF_ANY) != 0)
      return make_error(Errc::kIo, std::string("cannot update guard set: ") + std::strerror(errno));
  for (K k : have)
    if (!want.count(k)) bpf_map_delete_elem(fd, &k);
  return {};
}
}  // namespace

std::set<uint32_t> GuardMaps::procs() const { return keys_of<uint32_t>(procs_); }
Result<void> GuardMaps::set_procs(const std::set<uint32_t>& t) { return replace_keys(procs_, t); }
std::set<uint64_t> GuardMaps::cgroups() const { return keys_of<uint64_t>(cgroups_); }
Result<void> GuardMaps::set_cgroups(const std::set<uint64_t>& ids) { return replace_keys(cgroups_, ids); }
std::set<uint32_t> GuardMaps::allow() const { return keys_of<uint32_t>(allow_); }
Result<void> GuardMaps::set_allow(const std::set<uint32_t>& t) { return replace_keys(allow_, t); }

std::vector<uint64_t> GuardMaps::stats() const {
  int ncpu = libbpf_num_possible_cpus();
  std::vector<uint64_t> out(LW_GSTAT_MAX, 0), vals(ncpu > 0 ? ncpu : 1);
  for (uint32_t i = 0; i < LW_GSTAT_MAX; ++i)
    if (bpf_map_lookup_elem(stats_, &i, vals.data()) == 0)
      for (auto v : vals) out[i] += v;
  return out;
}

Result<void> pin_links(const std::vector<std::pair<std::string, int>>& links, const std::string& dir) {
  std::set<std::string> mine;
  std::string failed;  // a link that cannot be pinned (e.g. a legacy kprobe) does not stop the others
  for (const auto& [name, fd] : links) {
    // bpffs refuses names with dots: "link_<prog>" and "link_<prog>_new".
    std::string path = dir + "/link_" + name;
    std::string tmp = path + "_new";
    ::unlink(tmp.c_str());
    if (bpf_obj_pin(fd, tmp.c_str()) != 0) {
      failed += (failed.empty() ? "" : "; ") + std::string("cannot pin ") + tmp + ": " + std::strerror(errno);
      continue;
    }
    // Replace the old pin only once the new link is attached and pinned: the
    // old link then loses its last reference and detaches.
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      ::unlink(path.c_str());
      if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ::unlink(tmp.c_str());
        if (bpf_obj_pin(fd, path.c_str()) != 0) {
          failed += (failed.empty() ? "" : "; ") + std::string("cannot pin ") + path + ": " + std::strerror(errno);
          continue;
        }
      }
    }
    mine.insert("link_" + name);
  }
  // Pins of an older agent's links that this one has no pinned program for
  // (another attach kind, a hook gone): unpinned, so their programs detach.
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::string f = e.path().filename().string();
    if (f.rfind("link_", 0) == 0 && !mine.count(f)) ::unlink(e.path().c_str());
  }
  if (!failed.empty()) return make_error(Errc::kIo, failed);
  return {};
}

Result<void> unpin_links(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind("link_", 0) == 0) ::unlink(e.path().c_str());
  return {};
}

}  // namespace lunwatch::guard
