#include "inventory/instances.h"

#include <charconv>

#include "common/log.h"

namespace lunwatch::inventory {
namespace {

constexpr std::string_view kHostProcess = "host process";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

// QemuOpts: "a=b,c=d" with ",," standing for a literal comma.
std::vector<std::string> split_qemu_opts(std::string_view v) {
  std::vector<std::string> out(1);
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == ',') {
      if (i + 1 < v.size() && v[i + 1] == ',') {
        out.back() += ',';
        ++i;
      } else {
        out.emplace_back();
      }
    } else {
      out.back() += v[i];
    }
  }
  return out;
}

std::string guest_name(std::string_view value) {
  auto opts = split_qemu_opts(value);
  for (size_t i = 0; i < opts.size(); ++i) {
    const std::string& o = opts[i];
    auto eq = o.find('=');
    if (eq == std::string::npos) {
      if (i == 0) return o;  // implied "guest"
      continue;
    }
    if (o.compare(0, eq, "guest") == 0) return o.substr(eq + 1);
  }
  return "";
}

bool is_qemu_binary(std::string_view argv0) {
  auto slash = argv0.rfind('/');
  std::string_view base = slash == std::string_view::npos ? argv0 : argv0.substr(slash + 1);
  return starts_with(base, "qemu-system-") || base == "qemu-kvm" || base == "kvm";
}

// Domain names become file names under the run dir: refuse anything that
// could leave it.
bool safe_file_stem(const std::string& name) {
  return !name.empty() && name.size() < 256 && name.find('/') == std::string::npos && name.front() != '.' &&
         name.find('\0') == std::string::npos;
}

}  // namespace

std::optional<v1::Instance> parse_qemu_cmdline(const std::vector<std::string>& argv) {
  if (argv.empty() || !is_qemu_binary(argv[0])) return std::nullopt;
  v1::Instance inst;
  inst.set_resolved_from("cmdline");
  for (size_t i = 1; i < argv.size(); ++i) {
    std::string_view arg = argv[i];
    if (starts_with(arg, "--")) arg.remove_prefix(1);
    if (i + 1 >= argv.size()) break;
    if (arg == "-name") {
      inst.set_name(guest_name(argv[++i]));
    } else if (arg == "-uuid") {
      inst.set_uuid(argv[++i]);
    }
  }
  return inst;
}

std::string unescape_unit_name(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '\\' && i + 3 < name.size() && name[i + 1] == 'x') {
      unsigned v = 0;
      auto [p, ec] = std::from_chars(name.data() + i + 2, name.data() + i + 4, v, 16);
      if (ec == std::errc() && p == name.data() + i + 4) {
        out += static_cast<char>(v);
        i += 3;
        continue;
      }
    }
    out += name[i];
  }
  return out;
}

std::optional<std::string> parse_machine_scope(std::string_view path) {
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view comp = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    pos = slash == std::string_view::npos ? path.size() + 1 : slash + 1;
    if (ends_with(comp, ".scope")) {
      std::string unit = unescape_unit_name(comp);
      constexpr std::string_view kPrefix = "machine-qemu-";
      if (!starts_with(unit, kPrefix)) continue;
      std::string_view rest = std::string_view(unit).substr(kPrefix.size());
      rest.remove_suffix(std::string_view(".scope").size());
      // libvirt >= 2.x puts the domain id first: qemu-<id>-<name>.
      size_t digits = 0;
      while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
      if (digits > 0 && digits < rest.size() && rest[digits] == '-') rest.remove_prefix(digits + 1);
      if (rest.empty()) return std::nullopt;
      return std::string(rest);
    }
    // cgroup v1 without systemd: /machine/<name>.libvirt-qemu/emulator
    if (ends_with(comp, ".libvirt-qemu") && comp.size() > std::string_view(".libvirt-qemu").size()) {
      comp.remove_suffix(std::string_view(".libvirt-qemu").size());
      return std::string(comp);
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> parse_proc_start_time(std::string_view stat) {
  auto close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  // Fields after the comm start at field 3 (state); start time is field 22.
  int field = 2;
  size_t i = 0;
  while (i < rest.size()) {
    while (i < rest.size() && rest[i] == ' ') ++i;
    size_t j = i;
    while (j < rest.size() && rest[j] != ' ' && rest[j] != '\n') ++j;
    if (j == i) break;
    ++field;
    if (field == 22) {
      uint64_t v = 0;
      auto [p, ec] = std::from_chars(rest.data() + i, rest.data() + j, v);
      if (ec != std::errc() || p != rest.data() + j) return std::nullopt;
      return v;
    }
    i = j;
  }
  return std::nullopt;
}

std::string parse_proc_cgroup_v2(std::string_view text) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    if (starts_with(line, "0::")) return std::string(line.substr(3));
  }
  return "";
}

std::vector<std::string> split_cmdline(std::string_view raw) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < raw.size()) {
    size_t nul = raw.find('\0', pos);
    if (nul == std::string_view::npos) nul = raw.size();
    out.emplace_back(raw.substr(pos, nul - pos));
    pos = nul + 1;
  }
  return out;
}

InstanceResolver::InstanceResolver(std::string proc_root, std::string libvirt_run_dir, size_t max_cached)
    : proc_(std::move(proc_root)), run_dir_(std::move(libvirt_run_dir)), max_cached_(max_cached) {}

v1::Instance InstanceResolver::host_process(uint32_t tgid, std::string comm, std::string cgroup) {
  v1::Instance inst;
  inst.set_pid(tgid);
  inst.set_display_name(std::move(comm));
  inst.set_cgroup(std::move(cgroup));
  inst.set_resolved_from(std::string(kHostProcess));
  return inst;
}

v1::Instance InstanceResolver::vanished(uint32_t tgid, const std::string& kernel_cgroup) {
  ++stats_.vanished;
  cache_.erase(tgid);
  if (auto scope = parse_machine_scope(kernel_cgroup)) {
    ++stats_.instances;
    return from_scope(tgid, kernel_cgroup, *scope, std::nullopt);
  }
  ++stats_.host;
  return host_process(tgid, "", kernel_cgroup);
}

// An instance named by its qemu command line and/or its cgroup scope, with
// what libvirt's domain XML adds.
v1::Instance InstanceResolver::from_scope(uint32_t tgid, const std::string& cgroup, const std::string& scope_name,
                                          std::optional<v1::Instance> inst) {
  if (!inst) {
    inst.emplace();
    inst->set_resolved_from("cgroup");
  }
  v1::Instance out = std::move(*inst);
  if (out.name().empty()) out.set_name(scope_name);
  out.set_pid(tgid);
  out.set_cgroup(cgroup);
  if (const LibvirtDomain* d = domain(out.name());
      d != nullptr && (out.uuid().empty() || out.uuid() == d->instance.uuid())) {
    out.set_uuid(d->instance.uuid());
    out.set_display_name(d->instance.display_name());
    out.set_project_id(d->instance.project_id());
    out.set_user_id(d->instance.user_id());
    out.set_resolved_from("libvirt");
  }
  return out;
}

const LibvirtDomain* InstanceResolver::domain(const std::string& name) {
  if (!safe_file_stem(name)) return nullptr;
  std::string path = run_dir_ + "/" + name + ".xml";
  auto sig = file_signature(path);
  if (!sig) {
    domains_.erase(name);
    return nullptr;
  }
  auto it = domains_.find(name);
  if (it == domains_.end() || !(it->second.sig == *sig)) {
    Domain d;
    d.sig = *sig;
    auto text = read_file_capped(path);
    auto parsed = text ? parse_libvirt_domain(*text) : Result<LibvirtDomain>(text.error());
    if (parsed) {
      d.domain = std::move(parsed.value());
    } else {
      log::warn("instances: " + path + ": " + parsed.error().message);
    }
    it = domains_.insert_or_assign(name, std::move(d)).first;
  }
  return it->second.domain ? &*it->second.domain : nullptr;
}

v1::Instance InstanceResolver::resolve(uint32_t tgid, const std::string& kernel_cgroup) {
  ++stats_.lookups;
  const std::string base = proc_ + "/" + std::to_string(tgid);
  auto stat = read_file_capped(base + "/stat", 4096);
  if (!stat) {
    // Gone is normal; anything else (EMFILE, EACCES) would silently turn every
    // instance into a host process: say so, once a minute.
    if (stat.error().code != Errc::kNotFound) {
      auto now = std::chrono::steady_clock::now();
      if (now - last_error_log_ > std::chrono::seconds(60)) {
        last_error_log_ = now;
        log::error("instances: cannot read " + stat.error().message + " (treated as a host process)");
      }
      ++stats_.read_errors;
    }
    return vanished(tgid, kernel_cgroup);
  }
  auto start = parse_proc_start_time(*stat);
  if (!start) return vanished(tgid, kernel_cgroup);
  std::string comm;
  if (auto open = stat->find('('), close = stat->rfind(')');
      open != std::string::npos && close != std::string::npos && close > open) {
    comm = stat->substr(open + 1, close - open - 1);
  }
  if (auto it = cache_.find(tgid); it != cache_.end()) {
    const auto& c = it->second;
    // a host process by the cache that the kernel now sees in an instance scope
    bool joined_scope = c.instance.resolved_from() == kHostProcess && !kernel_cgroup.empty() &&
                        kernel_cgroup != c.instance.cgroup() && parse_machine_scope(kernel_cgroup);
    if (c.start_time == *start && c.comm == comm && !joined_scope) {
      ++stats_.cache_hits;
      return c.instance;
    }
    if (c.start_time != *start) ++stats_.pid_reuse;
    cache_.erase(it);
  }

  auto cmdline = read_file_capped(base + "/cmdline", size_t{1} << 20);
  if (!cmdline) return vanished(tgid, kernel_cgroup);
  auto cgroup_text = read_file_capped(base + "/cgroup", 65536);
  if (!cgroup_text) return vanished(tgid, kernel_cgroup);
  std::string cgroup = parse_proc_cgroup_v2(*cgroup_text);

  std::optional<v1::Instance> inst = parse_qemu_cmdline(split_cmdline(*cmdline));
  std::string scope_name = parse_machine_scope(cgroup).value_or("");
  v1::Instance out;
  if (!inst && scope_name.empty()) {
    out = host_process(tgid, comm, cgroup);
    if (comm.rfind("qemu", 0) == 0) {  // a qemu that is no instance we can name: say why, once a minute
      auto now = std::chrono::steady_clock::now();
      if (now - last_error_log_ > std::chrono::seconds(60)) {
        last_error_log_ = now;
        log::warn("instances: pid " + std::to_string(tgid) + " (" + comm + ") has no -name/-uuid in its " +
                  std::to_string(cmdline->size()) + "-byte cmdline and no instance scope in cgroup '" + cgroup +
                  "': treated as a host process");
      }
    }
  } else {
    out = from_scope(tgid, cgroup, scope_name, std::move(inst));
  }

  // The process may have exited (or its pid been reused) while we read: only
  // cache an answer whose process is still the one we started with.
  auto again = read_file_capped(base + "/stat", 4096);
  auto start2 = again ? parse_proc_start_time(*again) : std::nullopt;
  if (again && (!start2 || *start2 != *start)) return vanished(tgid, kernel_cgroup);
  ++(out.resolved_from() == kHostProcess ? stats_.host : stats_.instances);
  if (!again) return out;  // exited after we read everything: right answer, nothing to cache
  if (cache_.size() >= max_cached_) cache_.clear();
  cache_[tgid] = Cached{*start, comm, out};
  return out;
}

}  // namespace lunwatch::inventory
