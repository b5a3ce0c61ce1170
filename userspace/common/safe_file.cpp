#include "common/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace lunwatch {
namespace {

Error io(const std::string& what, const std::string& path, int e) {
  return make_error(Errc::kIo, what + " " + path + ": " + std::strerror(e));
}

// The file behind fd is one we may write: a regular file we own, one link.
Result<void> check_fd(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return io("cannot stat", path, errno);
  if (!S_ISREG(st.st_mode)) return make_error(Errc::kIo, path + ": not a regular file (refusing to write to it)");
  if (st.st_uid != ::geteuid())
    return make_error(Errc::kIo, path + ": owned by uid " + std::to_string(st.st_uid) + ", not by us (refusing)");
  if (st.st_nlink > 1)
    return make_error(Errc::kIo, path + ": has " + std::to_string(st.st_nlink) + " hard links (refusing)");
  return {};
}

Result<int> open_checked(const std::string& path, int flags, mode_t mode) {
  int fd = ::open(path.c_str(), flags | O_NOFOLLOW | O_CLOEXEC, mode);
  if (fd < 0) {
    int e = errno;
    if (e == ELOOP) return make_error(Errc::kIo, path + ": is a symlink (refusing to follow it)");
    return io("cannot open", path, e);
  }
  auto ok = check_fd(fd, path);
  if (!ok) {
    ::close(fd);
    return ok.error();
  }
  return fd;
}

}  // namespace

Result<int> open_append_safe(const std::string& path, mode_t mode) {
  return open_checked(path, O_WRONLY | O_APPEND | O_CREAT, mode);
}

Result<std::FILE*> fopen_append_safe(const std::string& path) {
  if (path.empty() || path == "-") return stdout;
  auto fd = open_append_safe(path);
  if (!fd) return fd.error();
  std::FILE* f = ::fdopen(fd.value(), "a");
  if (!f) {
    int e = errno;
    ::close(fd.value());
    return io("cannot open", path, e);
  }
  return f;
}

Result<int> open_truncate_safe(const std::string& path, mode_t mode) {
  // O_TRUNC only after the checks: never truncate someone else's file.
  auto fd = open_checked(path, O_WRONLY | O_CREAT, mode);
  if (!fd) return fd;
  if (::ftruncate(fd.value(), 0) != 0) {
    int e = errno;
    ::close(fd.value());
    return io("cannot truncate", path, e);
  }
  return fd;
}

Result<void> write_atomic(const std::string& path, std::string_view data, mode_t mode) {
  std::string tmp = path + ".tmp.XXXXXX";
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);  // O_CREAT|O_EXCL: never an existing file or symlink
  if (fd < 0) return io("cannot create a temporary file beside", path, errno);
  auto fail = [&](const char* what) -> Error {
    int e = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return io(what, tmp, e);
  };
  if (::fchmod(fd, mode) != 0) return fail("cannot chmod");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = ENOSPC;
      return fail("cannot write");
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return fail("cannot sync");
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {  // rename replaces a symlink, never writes through it
    int e = errno;
    ::unlink(tmp.c_str());
    return io("cannot rename to", path, e);
  }
  return {};
}

Result<void> ensure_private_dir(const std::string& path, mode_t mode) {
  if (path.empty()) return {};
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno != ENOENT) return io("cannot stat", path, errno);
    std::error_code ec;
    std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
    if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) return io("cannot create", path, errno);
    if (::lstat(path.c_str(), &st) != 0) return io("cannot stat", path, errno);
  }
  if (S_ISLNK(st.st_mode)) return make_error(Errc::kIo, path + ": is a symlink (refusing)");
  if (!S_ISDIR(st.st_mode)) return make_error(Errc::kIo, path + ": not a directory");
  if (st.st_uid != ::geteuid())
    return make_error(Errc::kIo, path + ": owned by uid " + std::to_string(st.st_uid) + ", not by us (refusing)");
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return make_error(Errc::kIo, path + ": writable by group or others (mode " + std::to_string((st.st_mode >> 6) & 7) +
                                     std::to_string((st.st_mode >> 3) & 7) + std::to_string(st.st_mode & 7) +
                                     "); chmod 0700 it");
  return {};
}

}  // namespace lunwatch
