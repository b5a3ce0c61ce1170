#include "common/pidfile.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/files.h"
#include "common/safe_file.h"

namespace lunwatch {
namespace {

pid_t read_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  long v = std::strtol(buf, nullptr, 10);
  return v > 0 && v < (1L << 22) ? static_cast<pid_t>(v) : 0;
}

}  // namespace

Result<int> lock_pid_file(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    return make_error(Errc::kIo,
                      "pid file " + path + ": " + (e == ELOOP ? "is a symlink (refusing)" : std::strerror(e)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    pid_t other = read_pid(fd);
    ::close(fd);
    if (e == EWOULDBLOCK)
      return make_error(Errc::kInvalidArgument,
                        "another lunwatch agent is running (pid " + std::to_string(other) + ", holds " + path + ")");
    return make_error(Errc::kIo, "cannot lock " + path + ": " + std::strerror(e));
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int e = errno;
    ::close(fd);
    return make_error(Errc::kIo, "cannot write " + path + ": " + std::strerror(e));
  }
  return fd;
}

Result<pid_t> running_agent_pid(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return make_error(Errc::kNotFound, "no running lunwatch (" + path + ": " + std::strerror(errno) + ")");
  pid_t pid = read_pid(fd);
  bool locked = ::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
  ::close(fd);
  if (pid <= 0) return make_error(Errc::kNotFound, "no running lunwatch (no pid in " + path + ")");
  if (!locked)
    return make_error(Errc::kNotFound, "no running lunwatch: " + path + " is stale (pid " + std::to_string(pid) +
                                           " holds no lock on it; not signalling it)");
  std::string comm = read_line("/proc/" + std::to_string(pid) + "/comm");
  if (comm != "lunwatch")
    return make_error(Errc::kNotFound, "pid " + std::to_string(pid) + " in " + path + " is '" + comm +
                                           "', not a lunwatch agent (not signalling it)");
  return pid;
}

}  // namespace lunwatch
