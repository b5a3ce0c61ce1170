#pragma once
// A loop device over a file in /dev/shm, set up and torn down with ioctls
// (RAII), for driving real block I/O on this kernel.
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>

#include "common/devt.h"

namespace lunwatch::hosttest {

class LoopDevice {
 public:
  explicit LoopDevice(size_t bytes) {
    backing_ = "/dev/shm/lunwatch-test-" + std::to_string(::getpid()) + "-" + std::to_string(next_serial());
    int bfd = ::open(backing_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (bfd < 0) throw std::runtime_error("cannot create " + backing_);
    if (::ftruncate(bfd, static_cast<off_t>(bytes)) != 0) {
      ::close(bfd);
      throw std::runtime_error("cannot size " + backing_);
    }
    int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
      ::close(bfd);
      throw std::runtime_error("no /dev/loop-control (loop driver missing)");
    }
    for (int tries = 0; tries < 8; ++tries) {
      int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
      if (n < 0) break;
      path_ = "/dev/loop" + std::to_string(n);
      fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
      if (fd_ < 0) continue;
      if (::ioctl(fd_, LOOP_SET_FD, bfd) == 0) break;
      ::close(fd_);
      fd_ = -1;  // raced with another user: try the next free one
    }
    ::close(ctl);
    ::close(bfd);
    if (fd_ < 0) throw std::runtime_error("cannot attach a loop device");
    struct stat st {};
    ::fstat(fd_, &st);
    dev_ = from_user_dev(st.st_rdev);
  }
  ~LoopDevice() {
    if (fd_ >= 0) {
      ::ioctl(fd_, LOOP_CLR_FD, 0);
      ::close(fd_);
    }
    ::unlink(backing_.c_str());
  }
  LoopDevice(const LoopDevice&) = delete;
  LoopDevice& operator=(const LoopDevice&) = delete;

  // The loop device removed and created again under the same number (same
  // dev_t and name: another disk, with a new disk sequence number), over a new
  // backing file: the kernel's "device removed and re-created under the same
  // number". Nobody else may hold it open. False on failure (errno set).
  bool recreate(size_t bytes) {
    int n = std::stoi(path_.substr(9));  // "/dev/loopN"
    ::ioctl(fd_, LOOP_CLR_FD, 0);
    ::close(fd_);
    fd_ = -1;
    int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) return false;
    bool removed = false;
    for (int tries = 0; tries < 200 && !removed; ++tries) {  // busy while the clear runs down
      removed = ::ioctl(ctl, LOOP_CTL_REMOVE, n) >= 0;
      if (!removed) ::usleep(10000);
    }
    bool added = removed && ::ioctl(ctl, LOOP_CTL_ADD, n) >= 0;
    int err = errno;
    ::close(ctl);
    if (!added) return errno = err, false;
    ::unlink(backing_.c_str());
    backing_ += "-again";
    int bfd = ::open(backing_.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (bfd < 0) return false;
    bool ok = ::ftruncate(bfd, static_cast<off_t>(bytes)) == 0;
    fd_ = ::open(path_.c_str(), O_RDWR | O_CLOEXEC);
    ok = ok && fd_ >= 0 && ::ioctl(fd_, LOOP_SET_FD, bfd) == 0;
    err = errno;
    ::close(bfd);
    errno = err;
    return ok;
  }
  const std::string& path() const { return path_; }
  DevNum dev() const { return dev_; }
  std::string name() const { return path_.substr(5); }

 private:
  static int next_serial() {
    static int n = 0;
    return n++;
  }
  std::string backing_;
  std::string path_;
  int fd_ = -1;
  DevNum dev_{};
};

}  // namespace lunwatch::hosttest
