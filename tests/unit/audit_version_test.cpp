// PEP 440 comparison, Debian upstream versions and OSSA-2023-003 ranges.
#include <gtest/gtest.h>

#include "audit/version.h"

using namespace lunwatch::audit;

namespace {
Version ver(const char* s) {
  auto v = Version::parse(s);
  EXPECT_TRUE(v.has_value()) << s;
  return v.value_or(Version{});
}
bool affected(const char* spec, const char* version) {
  for (const auto& r : parse_ranges(spec))
    if (r.contains(ver(version))) return true;
  return false;
}
}  // namespace

TEST(AuditVersion, Pep440Ordering) {
  // packaging's documented order for one release.
  const char* ordered[] = {"1.0.dev1",       "1.0a1.dev1", "1.0a1", "1.0a1.post1", "1.0b1", "1.0rc1", "1.0",
                           "1.0.post1.dev1", "1.0.post1",  "1.0.1", "1.1.dev3",    "1.1",   "2!0.1"};
  for (size_t i = 0; i + 1 < std::size(ordered); ++i)
    EXPECT_LT(ver(ordered[i]), ver(ordered[i + 1])) << ordered[i] << " < " << ordered[i + 1];
  EXPECT_EQ(ver("1.0"), ver("1.0.0"));
  EXPECT_EQ(ver("6.2.2+ubuntu1"), ver("6.2.2"));  // local labels do not order
  EXPECT_EQ(ver("1.0RC1"), ver("1.0rc1"));
  EXPECT_EQ(ver("1.0-rc.1"), ver("1.0rc1"));
  EXPECT_EQ(ver("1.0c1"), ver("1.0rc1"));
  EXPECT_EQ(ver("v25.1.2"), ver("25.1.2"));
  EXPECT_LT(ver("25.1.2.dev12"), ver("25.1.2"));  // pbr: a dev build before the tag
  EXPECT_LT(ver("20.6.0"), ver("20.10.0"));       // numeric, not lexical
  EXPECT_FALSE(Version::parse("").has_value());
  EXPECT_FALSE(Version::parse("abc").has_value());
  EXPECT_FALSE(Version::parse("1.0 junk").has_value());
}

TEST(AuditVersion, DebianUpstream) {
  EXPECT_EQ(debian_upstream("2:25.1.0-0ubuntu1"), "25.1.0");
  EXPECT_EQ(debian_upstream("3:26.1.0-0ubuntu1~cloud0"), "26.1.0");
  EXPECT_EQ(debian_upstream("27.0.0~rc1-2"), "27.0.0rc1");
  EXPECT_EQ(debian_upstream("6.1.0+dfsg-3"), "6.1.0");
  EXPECT_EQ(debian_upstream("0.9.4-3+deb12u1"), "0.9.4");
  EXPECT_EQ(debian_upstream("1:1.2.3-4-5"), "1.2.3-4");  // the revision is after the last '-'
  EXPECT_EQ(debian_upstream("2.0+really1.5-1"), "1.5");
  EXPECT_EQ(debian_upstream("5.2.3"), "5.2.3");  // native package
  EXPECT_EQ(debian_upstream("garbage-1"), "");
  EXPECT_EQ(debian_revision("2:25.1.0-0ubuntu1.1"), "0ubuntu1.1");
  EXPECT_EQ(debian_revision("5.2.3"), "");
  EXPECT_LT(ver(debian_upstream("27.0.0~rc1-1").c_str()), ver("27.0.0"));
}

TEST(AuditVersion, OssaRangesAtTheirEdges) {
  const char* cinder = "<20.2.1, >=21.0.0 <21.2.1, ==22.0.0";
  EXPECT_TRUE(affected(cinder, "15.6.0"));
  EXPECT_TRUE(affected(cinder, "20.2.0"));
  EXPECT_FALSE(affected(cinder, "20.2.1"));
  EXPECT_FALSE(affected(cinder, "20.3.0"));
  EXPECT_TRUE(affected(cinder, "21.0.0"));
  EXPECT_TRUE(affected(cinder, "21.2.1.dev4"));  // a dev build before the tag
  EXPECT_FALSE(affected(cinder, "21.2.1"));
  EXPECT_TRUE(affected(cinder, "22.0.0"));
  EXPECT_TRUE(affected(cinder, "22.0"));
  EXPECT_TRUE(affected(cinder, "22.0.0+local"));
  EXPECT_FALSE(affected(cinder, "22.0.0.post1"));
  EXPECT_FALSE(affected(cinder, "22.0.1"));
  EXPECT_FALSE(affected(cinder, "22.1.0"));
  EXPECT_FALSE(affected(cinder, "22.0.0rc1"));  // pre-releases of 22.0.0 predate the range

  const char* brick = "<5.2.3, >=6.0.0 <6.1.1, >=6.2.0 <6.2.2";
  EXPECT_TRUE(affected(brick, "2.10.7"));
  EXPECT_FALSE(affected(brick, "5.2.3"));
  EXPECT_FALSE(affected(brick, "5.3.0"));
  EXPECT_TRUE(affected(brick, "6.1.0"));
  EXPECT_FALSE(affected(brick, "6.1.1"));
  EXPECT_TRUE(affected(brick, "6.2.1"));
  EXPECT_FALSE(affected(brick, "6.2.2"));
  EXPECT_FALSE(affected(brick, "6.3.0"));

  const char* nova = "<25.1.2, >=26.0.0 <26.1.2, ==27.0.0";
  EXPECT_TRUE(affected(nova, "20.6.0"));
  EXPECT_FALSE(affected(nova, "25.1.2"));
  EXPECT_TRUE(affected(nova, "26.1.1"));
  EXPECT_FALSE(affected(nova, "27.1.0"));
}
