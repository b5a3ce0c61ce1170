#include "inventory/source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace lunwatch::inventory {

int64_t now_unix_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

Result<std::string> read_file_capped(const std::string& path, size_t max_bytes) {
  // O_NONBLOCK: a FIFO planted where a file is expected must not block the agent's loop.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    int e = errno;
    return make_error(e == ENOENT || e == ESRCH ? Errc::kNotFound : Errc::kIo, path + ": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error(Errc::kIo, path + ": " + std::strerror(e));
  }
  auto too_large = [&] {
    return make_error(Errc::kTruncated, path + ": larger than " + std::to_string(max_bytes >> 20) + " MiB (" +
                                            std::to_string(max_bytes) + " bytes), not read");
  };
  if (st.st_size > 0 && static_cast<uint64_t>(st.st_size) > max_bytes) {
    ::close(fd);
    return too_large();
  }
  std::string out;
  out.reserve(st.st_size > 0 ? static_cast<size_t>(st.st_size) : 4096);
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      int e = errno;
      ::close(fd);
      // A /proc file whose process exited between open and read says ESRCH.
      return make_error(e == ESRCH ? Errc::kNotFound : Errc::kIo, path + ": " + std::strerror(e));
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      return too_large();
    }
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

std::optional<FileSignature> file_signature(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  FileSignature s;
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.size = st.st_size;
  s.ino = st.st_ino;
  return s;
}

void mark_refresh(v1::SourceSnapshot& snapshot, const std::string& first_error) {
  snapshot.set_stale(!first_error.empty());
  snapshot.set_last_error(first_error);
  if (first_error.empty()) snapshot.set_last_good_unix_ms(snapshot.last_attempt_unix_ms());
}

}  // namespace lunwatch::inventory
