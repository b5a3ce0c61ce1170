#include <gtest/gtest.h>

#include "common/devt.h"

using namespace lunwatch;

TEST(DevT, KernelEncodingRoundTrips) {
  // sdb = 8:16; the kernel packs major << 20 | minor.
  EXPECT_EQ(to_kernel_dev({8, 16}), (8u << 20) | 16u);
  EXPECT_EQ(from_kernel_dev((253u << 20) | 3u), (DevNum{253, 3}));
  DevNum big{259, 1048575};
  EXPECT_EQ(from_kernel_dev(to_kernel_dev(big)), big);
}

TEST(DevT, UserspaceEncodingDiffersFromKernel) {
  // glibc packs minor's low byte in bits 0-7 and major in 8-19: 8:16 is 0x810.
  dev_t u = to_user_dev({8, 16});
  EXPECT_EQ(u, static_cast<dev_t>(0x810));
  EXPECT_NE(static_cast<uint64_t>(u), static_cast<uint64_t>(to_kernel_dev({8, 16})));
  EXPECT_EQ(from_user_dev(u), (DevNum{8, 16}));
  // A large minor lands in glibc's high bits and still converts exactly.
  DevNum d{7, 300};
  EXPECT_EQ(from_kernel_dev(to_kernel_dev(from_user_dev(to_user_dev(d)))), d);
}

TEST(DevT, ParsesAndFormats) {
  EXPECT_EQ(to_string(DevNum{253, 0}), "253:0");
  auto d = parse_devnum("8:32");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(*d, (DevNum{8, 32}));
  for (const char* bad : {"", ":", "8:", ":3", "8-3", "8:3x", "x8:3", "8:1048576"})
    EXPECT_FALSE(parse_devnum(bad).has_value()) << bad;
}
