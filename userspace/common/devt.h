#pragma once
// Device numbers, converted in this one place.
// The kernel encodes dev_t as major << 20 | minor (include/linux/kdev_t.h);
// glibc's dev_t packs them differently (sys/sysmacros.h). BPF records carry
// the kernel encoding; stat(2) returns the userspace one.
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lunwatch {

struct DevNum {
  uint32_t major = 0;
  uint32_t minor = 0;
  friend bool operator==(const DevNum&, const DevNum&) = default;
};

constexpr uint32_t kKernelMinorBits = 20;
constexpr uint32_t kKernelMinorMask = (1U << kKernelMinorBits) - 1;

constexpr DevNum from_kernel_dev(uint32_t kdev) { return {kdev >> kKernelMinorBits, kdev & kKernelMinorMask}; }
constexpr uint32_t to_kernel_dev(DevNum d) { return d.major << kKernelMinorBits | (d.minor & kKernelMinorMask); }
inline DevNum from_user_dev(dev_t d) { return {::major(d), ::minor(d)}; }
inline dev_t to_user_dev(DevNum d) { return ::makedev(d.major, d.minor); }

// "8:16"
std::string to_string(DevNum d);
// The block device a path names ("/dev/dm-0", by-id symlinks followed), as
// "major:minor"; "" when it is not a block device.
std::string block_device_of(const std::string& path);

// Parses "8:16" (as in /sys/dev/block names and dm path names).
std::optional<DevNum> parse_devnum(std::string_view s);

}  // namespace lunwatch
