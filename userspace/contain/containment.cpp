#include "contain/containment.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/log.h"

extern char** environ;

namespace lunwatch::contain {
namespace {

int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One line, bounded, printable: command output goes into alerts and logs.
std::string one_line(const std::string& s, size_t max = 240) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= max) break;
    if (ch == '\n' || ch == '\r' || ch == '\t') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else if (static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f) {
      out += ch;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

bool full_hctl(const std::string& h) {
  return !h.empty() && h.find('-') == std::string::npos && std::count(h.begin(), h.end(), ':') == 3;
}

}  // namespace

const char* kind_name(v1::ContainmentKind k) {
  switch (k) {
    case v1::CONTAIN_OFFLINE_SCSI_DEVICE: return "offline_scsi_device";
    case v1::CONTAIN_PAUSE_DOMAIN: return "pause_domain";
    default: return "unknown";
  }
}

const char* result_name(v1::ContainmentResult r) {
  switch (r) {
    case v1::CONTAIN_DONE: return "done";
    case v1::CONTAIN_ALREADY: return "already";
    case v1::CONTAIN_FAILED: return "failed";
    case v1::CONTAIN_TIMEOUT: return "timeout";
    default: return "unknown";
  }
}

bool parse_actions(const std::string& list, Options& o, std::string* error) {
  bool offline = false, pause = false, none = false;
  std::stringstream ss(list);
  std::string w;
  while (std::getline(ss, w, ',')) {
    w.erase(0, w.find_first_not_of(" \t"));
    w.erase(w.find_last_not_of(" \t") + 1);
    if (w.empty()) continue;
    if (w == "offline" || w == "offline_scsi_device")
      offline = true;
    else if (w == "pause" || w == "pause_domain")
      pause = true;
    else if (w == "none" || w == "off")
      none = true;
    else {
      if (error) *error = "unknown containment action '" + w + "' (offline, pause, none)";
      return false;
    }
  }
  if (none && (offline || pause)) {
    if (error) *error = "containment 'none' cannot be combined with actions";
    return false;
  }
  o.offline_scsi_device = offline;
  o.pause_domain = pause;
  return true;
}

std::string actions_string(const Options& o) {
  std::string s;
  if (o.offline_scsi_device) s = "offline_scsi_device";
  if (o.pause_domain) s += std::string(s.empty() ? "" : ",") + "pause_domain";
  return s.empty() ? "none" : s;
}

std::vector<Step> plan(const v1::Alert& a, const Options& o) {
  std::vector<Step> steps;
  if (a.rule() != v1::CROSS_INSTANCE_ACCESS || a.state() != v1::ALERT_FIRING || a.denied()) return steps;
  if (o.offline_scsi_device)
    for (const auto& p : a.paths()) {
      if (!full_hctl(p.addr().hctl())) continue;
      // A path that answers as the actor's own volume is not the leak; one whose
      // identity is unknown (its last good answer may be stale: a LUN remapped
      // while the path was down) may be, once dm-multipath reinstates it.
      if (!p.identity_unknown() && !p.verified_wwid().empty() && !a.verified_wwid().empty() &&
          p.verified_wwid() != a.verified_wwid())
        continue;
      if (std::any_of(steps.begin(), steps.end(), [&](const Step& s) { return s.target == p.addr().hctl(); })) continue;
      steps.push_back({v1::CONTAIN_OFFLINE_SCSI_DEVICE, p.addr().hctl(), p.name()});
    }
  if (o.pause_domain) {
    const auto& i = a.instance();
    std::string target = !i.uuid().empty() ? i.uuid() : i.name();
    // Only libvirt domains: a process lunwatch could not tie to a domain has no
    // uuid or name here, and virsh would not know it.
    if (!target.empty()) steps.push_back({v1::CONTAIN_PAUSE_DOMAIN, target, i.name().empty() ? target : i.name()});
  }
  return steps;
}

Runner::Runner(Options o) : o_(std::move(o)) {}

Runner::~Runner() {
  for (auto& p : pending_)
    for (auto& c : p.children) {
      if (c.pid > 0) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, nullptr, 0);
      }
      if (c.out_fd >= 0) ::close(c.out_fd);
    }
}

v1::ContainmentAction Runner::offline(const Step& s) {
  v1::ContainmentAction r;
  std::string state = o_.sysfs_root + "/class/scsi_device/" + s.target + "/device/state";
  std::string before = read_line(state);
  if (before.empty()) {
    r.set_result(v1::CONTAIN_FAILED);
    r.set_detail(s.label + " (" + s.target + "): " + state + " not readable (device gone?)");
    return r;
  }
  if (before == "offline") {
    r.set_result(v1::CONTAIN_ALREADY);
    r.set_detail(s.label + " (" + s.target + ") was already offline");
    return r;
  }
  {
    std::ofstream out(state);
    out << "offline\n";  // the kernel takes a state name only with its newline (EINVAL without)
    out.flush();
    if (!out) {
      r.set_result(v1::CONTAIN_FAILED);
      r.set_detail(s.label + " (" + s.target + "): writing 'offline' to " + state + " failed: " + std::strerror(errno));
      return r;
    }
  }
  std::string after = read_line(state);
  if (after != "offline") {
    r.set_result(v1::CONTAIN_FAILED);
    r.set_detail(s.label + " (" + s.target + "): state is '" + after + "' after writing 'offline'");
    return r;
  }
  r.set_result(v1::CONTAIN_DONE);
  r.set_detail(s.label + " (" + s.target + ") offline (was " + before + "); undo: echo running > " + state);
  return r;
}

bool Runner::spawn_pause(const Step& s, uint64_t now_ns, Child& c, std::string* error) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  posix_spawn_file_actions_adddup2(&fa, fds[1], 2);
  std::vector<std::string> args = {o_.virsh, "-q", "-c", o_.libvirt_uri, "suspend", s.target};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = o_.virsh.find('/') == std::string::npos
               ? ::posix_spawnp(&pid, o_.virsh.c_str(), &fa, nullptr, argv.data(), environ)
               : ::posix_spawn(&pid, o_.virsh.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    *error = "cannot run " + o_.virsh + ": " + std::strerror(rc) +
             (rc == ENOENT ? " (install libvirt-clients or set [containment] virsh)" : "");
    return false;
  }
  ::fcntl(fds[0], F_SETFL, ::fcntl(fds[0], F_GETFL) | O_NONBLOCK);
  c.pid = pid;
  c.out_fd = fds[0];
  c.started_ns = now_ns;
  c.deadline_ns = now_ns + static_cast<uint64_t>(o_.timeout_s * 1e9);
  c.step = s;
  return true;
}

v1::ContainmentAction Runner::reap(Child& c, bool timed_out, int status) {
  v1::ContainmentAction r;
  std::string out = one_line(c.output);
  std::string what = "virsh suspend " + c.step.target + " (" + c.step.label + ")";
  if (timed_out) {
    r.set_result(v1::CONTAIN_TIMEOUT);
    r.set_detail(what + " did not finish in " + std::to_string(static_cast<int>(o_.timeout_s)) + " s; killed");
  } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
    r.set_result(v1::CONTAIN_DONE);
    r.set_detail(what + ": " + (out.empty() ? "ok" : out) + "; undo: virsh resume " + c.step.target);
  } else if (out.find("already paused") != std::string::npos || out.find("not running") != std::string::npos) {
    r.set_result(v1::CONTAIN_ALREADY);
    r.set_detail(what + ": " + out);
  } else {
    r.set_result(v1::CONTAIN_FAILED);
    r.set_detail(what + " failed (" +
                 (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                    : "signal " + std::to_string(WTERMSIG(status))) +
                 "): " + out);
  }
  return r;
}

void Runner::record(v1::ContainmentAction& r, const Step& s, uint64_t alert_ns, uint64_t now_ns) {
  r.set_kind(s.kind);
  r.set_target(s.target);
  r.set_unix_ms(unix_ms_now());
  r.set_took_ms(static_cast<uint32_t>(now_ns > alert_ns ? (now_ns - alert_ns) / 1000000 : 0));
  auto key = std::make_pair(static_cast<int>(s.kind), s.target);
  if (r.result() == v1::CONTAIN_DONE || r.result() == v1::CONTAIN_ALREADY) {
    done_[key] = now_ns;
    failed_.erase(key);
    failures_.erase(key);
  } else {
    failed_[key] = now_ns;
    failures_[key]++;
  }
  std::string line = std::string("containment: ") + kind_name(s.kind) + " " + result_name(r.result()) + ": " +
                     r.detail() + " (" + std::to_string(r.took_ms()) + " ms after the alert)";
  if (r.result() == v1::CONTAIN_FAILED || r.result() == v1::CONTAIN_TIMEOUT)
    log::error(line);
  else
    log::warn(line);
}

void Runner::start(const v1::Alert& a, uint64_t now_ns) {
  if (!enabled()) return;
  Pending p;
  p.alert = a;
  p.alert_ns = now_ns;
  bool any = false;
  for (const auto& s : plan(a, o_)) {
    auto key = std::make_pair(static_cast<int>(s.kind), s.target);
    if (done_.count(key)) continue;
    if (auto f = failed_.find(key); f != failed_.end()) {
      double wait = o_.retry_after_s;
      for (int i = 1; i < failures_[key] && wait < o_.retry_max_s; ++i) wait *= 2;
      wait = std::min(wait, o_.retry_max_s);
      if (now_ns - f->second < static_cast<uint64_t>(wait * 1e9)) continue;
    }
    // A command for the same target still running (another alert): wait for it.
    bool running = std::any_of(pending_.begin(), pending_.end(), [&](const Pending& q) {
      return std::any_of(q.children.begin(), q.children.end(),
                         [&](const Child& c) { return c.step.kind == s.kind && c.step.target == s.target; });
    });
    if (running) continue;
    any = true;
    if (s.kind == v1::CONTAIN_OFFLINE_SCSI_DEVICE) {
      auto r = offline(s);
      record(r, s, now_ns, now_ns);
      *p.alert.add_containment() = r;
    } else {
      Child c;
      std::string err;
      if (spawn_pause(s, now_ns, c, &err)) {
        p.children.push_back(std::move(c));
      } else {
        v1::ContainmentAction r;
        r.set_result(v1::CONTAIN_FAILED);
        r.set_detail(err);
        record(r, s, now_ns, now_ns);
        *p.alert.add_containment() = r;
      }
    }
  }
  if (any) pending_.push_back(std::move(p));
}

std::vector<v1::Alert> Runner::poll(uint64_t now_ns) {
  std::vector<v1::Alert> finished;
  for (auto it = pending_.begin(); it != pending_.end();) {
    for (auto& c : it->children) {
      if (c.pid <= 0) continue;
      char buf[512];
      ssize_t n;
      while ((n = ::read(c.out_fd, buf, sizeof buf)) > 0)
        if (c.output.size() < 4096) c.output.append(buf, static_cast<size_t>(n));
      int status = 0;
      pid_t w = ::waitpid(c.pid, &status, WNOHANG);
      bool timed_out = false;
      if (w == 0 && now_ns >= c.deadline_ns) {
        ::kill(c.pid, SIGKILL);
        ::waitpid(c.pid, &status, 0);
        timed_out = true;
        w = c.pid;
      }
      if (w == 0) continue;
      while ((n = ::read(c.out_fd, buf, sizeof buf)) > 0)
        if (c.output.size() < 4096) c.output.append(buf, static_cast<size_t>(n));
      ::close(c.out_fd);
      c.out_fd = -1;
      v1::ContainmentAction r = w < 0 ? v1::ContainmentAction() : reap(c, timed_out, status);
      if (w < 0) {
        r.set_result(v1::CONTAIN_FAILED);
        r.set_detail(std::string("waitpid: ") + std::strerror(errno));
      }
      record(r, c.step, it->alert_ns, now_ns);
      *it->alert.add_containment() = r;
      c.pid = -1;
    }
    bool all = std::all_of(it->children.begin(), it->children.end(), [](const Child& c) { return c.pid <= 0; });
    if (all) {
      finished.push_back(std::move(it->alert));
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return finished;
}

}  // namespace lunwatch::contain
