#pragma once
// Shared by the libFuzzer harnesses in this folder.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace lunwatch::fuzz {

inline std::string_view text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// The input as a file, for readers that take a path (memfd: no disk I/O).
class MemFile {
 public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("lunwatch-fuzz", MFD_CLOEXEC);
    if (fd_ >= 0 && size) {
      size_t off = 0;
      while (off < size) {
        ssize_t n = ::write(fd_, data + off, size - off);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  ~MemFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  int fd_ = -1;
  std::string path_;
};

}  // namespace lunwatch::fuzz
