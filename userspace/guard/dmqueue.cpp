#include "guard/dmqueue.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/devt.h"
#include "common/log.h"

extern char** environ;

namespace lunwatch::guard {

std::set<std::string> maps_in_doubt(const detect::Correlator& c, const std::map<uint32_t, lw_guard_dev>& kernel) {
  std::set<std::string> out;
  for (const auto& [att, devs] : c.attachment_devices()) {
    if (att.source() != v1::SOURCE_LIBVIRT || att.resolved_dev().empty()) continue;
    const auto& dev = att.resolved_dev();
    const auto* v = c.device_view(dev);
    if (!v || !v->is_dm) continue;
    bool doubt = false;
    if (auto n = parse_devnum(dev)) {
      auto k = kernel.find(to_kernel_dev(*n));
      if (k != kernel.end() && k->second.state != LW_GUARD_VERIFIED) doubt = true;
    }
    for (const auto& l : c.device_identity(dev).leaves)
      if (const auto* lv = c.device_view(l); lv && lv->suspect) doubt = true;
    if (doubt) out.insert(dev);
  }
  return out;
}

Result<std::string> run_dmsetup(const std::vector<std::string>& args) {
  std::vector<std::string> argv_s = {"dmsetup"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return make_error(Errc::kIo, std::string("pipe: ") + std::strerror(errno));
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "dmsetup", &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    return make_error(Errc::kIo, std::string("cannot run dmsetup: ") + std::strerror(rc));
  }
  std::string out;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  char buf[4096];
  while (true) {
    auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) break;
    pollfd p{pipefd[0], POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0) break;
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  for (int i = 0; i < 50; ++i) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return out;
      return make_error(Errc::kIo, "dmsetup " + args.front() + " failed (status " + std::to_string(status) + ")");
    }
    ::usleep(20000);
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return make_error(Errc::kIo, "dmsetup " + args.front() + " did not finish in time");
}

QueueHold::QueueHold(Options o) : o_(std::move(o)) {
  std::ifstream in(o_.state_file);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) held_.insert(line);
  if (!held_.empty())
    log::info("dm: " + std::to_string(held_.size()) + " map(s) switched to fail_if_no_path by a previous run");
}

std::string QueueHold::map_name(const std::string& dev) const {
  std::ifstream in(o_.sysfs_root + "/dev/block/" + dev + "/dm/name");
  std::string name;
  std::getline(in, name);
  return name;
}

void QueueHold::save() const {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(o_.state_file).parent_path(), ec);
  std::string tmp = o_.state_file + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& n : held_) out << n << "\n";
  }
  std::filesystem::rename(tmp, o_.state_file, ec);
}

void QueueHold::sync(const std::set<std::string>& in_doubt) {
  bool changed = false;
  std::set<std::string> doubt_names;
  for (const auto& dev : in_doubt) {
    std::string name = map_name(dev);
    if (name.empty()) continue;
    doubt_names.insert(name);
    if (held_.count(name)) continue;
    auto table = o_.dmsetup({"table", name});
    if (!table.ok()) {
      log::warn("dm: cannot read the table of " + name + ": " + table.error().message);
      continue;
    }
    const auto& t = table.value();
    if (t.find(" multipath ") == std::string::npos || t.find(" queue_if_no_path") == std::string::npos) continue;
    auto m = o_.dmsetup({"message", name, "0", "fail_if_no_path"});
    if (!m.ok()) {
      log::warn("dm: cannot switch " + name + " to fail_if_no_path: " + m.error().message);
      continue;
    }
    held_.insert(name);
    changed = true;
    log::warn("dm: " + name + " (" + dev +
              ") switched to fail_if_no_path while its identity is in doubt: I/O queued in "
              "dm fails instead of reaching whatever LUN answers next");
  }
  for (auto it = held_.begin(); it != held_.end();) {
    if (doubt_names.count(*it)) {
      ++it;
      continue;
    }
    auto m = o_.dmsetup({"message", *it, "0", "queue_if_no_path"});
    if (m.ok())
      log::info("dm: " + *it + " verified again: queue_if_no_path restored");
    else
      log::warn("dm: " + *it + ": queue_if_no_path not restored (" + m.error().message + "; map gone?)");
    it = held_.erase(it);
    changed = true;
  }
  if (changed) save();
}

}  // namespace lunwatch::guard
