#include "audit/isolated.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace lunwatch::audit {
namespace {

constexpr size_t kMaxReply = 4u << 20;

void write_all(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

Finding failure_finding(const std::string& id, const std::string& why) {
  Finding f;
  f.id = id;
  f.check = "audit";
  f.severity = Severity::kMedium;
  f.title = "the posture audit did not complete: " + why;
  f.fix = "run `lunwatch audit` by hand to see which input it fails on";
  return f;
}

}  // namespace

IsolatedAudit::~IsolatedAudit() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (fd_ >= 0) ::close(fd_);
}

bool IsolatedAudit::start(const AuditOptions& options, std::chrono::milliseconds deadline, AuditFn fn) {
  if (pid_ > 0) return false;
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(p[0]);
    ::close(p[1]);
    return false;
  }
  if (pid == 0) {
    ::close(p[0]);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    std::string out;
    try {
      Report r = fn ? fn(options) : run_audit(options);
      for (const auto& f : r.findings) out += f.id + "\t" + std::to_string(static_cast<int>(f.severity)) + "\n";
      out += "end\n";
    } catch (...) {
      out = "exception\n";
    }
    write_all(p[1], out);
    ::_exit(0);
  }
  ::close(p[1]);
  ::fcntl(p[0], F_SETFL, O_NONBLOCK);
  pid_ = pid;
  fd_ = p[0];
  buf_.clear();
  deadline_ = std::chrono::steady_clock::now() + deadline;
  return true;
}

Report IsolatedAudit::finish(const std::string& failure) {
  Report r;
  if (failure.empty()) {
    size_t pos = 0;
    while (pos < buf_.size()) {
      size_t nl = buf_.find('\n', pos);
      std::string line = buf_.substr(pos, nl - pos);
      pos = nl == std::string::npos ? buf_.size() : nl + 1;
      if (line == "end") break;
      size_t tab = line.find('\t');
      if (tab == std::string::npos) continue;
      Finding f;
      f.id = line.substr(0, tab);
      int sev = std::atoi(line.c_str() + tab + 1);
      f.severity = static_cast<Severity>(std::clamp(sev, 0, 4));
      r.findings.push_back(std::move(f));
    }
  } else {
    r.findings.push_back(
        failure_finding(failure.rfind("timeout", 0) == 0 ? "LW-AUDIT-TIMEOUT" : "LW-AUDIT-CRASHED", failure));
  }
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  pid_ = -1;
  buf_.clear();
  return r;
}

std::optional<Report> IsolatedAudit::poll() {
  if (pid_ <= 0) return std::nullopt;
  char chunk[4096];
  while (fd_ >= 0) {
    ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n > 0) {
      if (buf_.size() + static_cast<size_t>(n) > kMaxReply) break;
      buf_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    break;  // EAGAIN or EOF
  }
  int status = 0;
  pid_t w = ::waitpid(pid_, &status, WNOHANG);
  if (w == 0) {
    if (std::chrono::steady_clock::now() < deadline_) return std::nullopt;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    return finish("timeout: still running at its deadline");
  }
  if (w < 0) return finish("lost the audit child: " + std::string(std::strerror(errno)));
  // Exited: drain what is left in the pipe.
  for (ssize_t n; (n = ::read(fd_, chunk, sizeof chunk)) > 0 && buf_.size() < kMaxReply;)
    buf_.append(chunk, static_cast<size_t>(n));
  if (WIFSIGNALED(status))
    return finish("killed by signal " + std::to_string(WTERMSIG(status)) + " (" + strsignal(WTERMSIG(status)) + ")");
  if (buf_.rfind("exception", 0) == 0) return finish("an exception escaped it");
  if (buf_.find("end\n") == std::string::npos) return finish("it exited without a complete report");
  return finish("");
}

}  // namespace lunwatch::audit
