// oslo.config-compatible INI parsing (userspace/common/ini.h).
#include "common/ini.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace lunwatch;
using lunwatch::ini::Config;

namespace {
Config must_parse(const std::string& text) {
  auto r = Config::parse(text, "test.conf");
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : Config{};
}
}  // namespace

TEST(Ini, KeysValuesSeparatorsQuotesAndLines) {
  Config c = must_parse(
      "# comment\n"
      "; also a comment\n"
      "[DEFAULT]\n"
      "a = 1\n"
      "b: two words \n"
      "c = \"quoted value\"\n"
      "d = 'single'\n"
      "e = x = y\n"
      "f = url:with:colons\n"
      "g = 1 # not a comment\n");
  ASSERT_NE(c.find("DEFAULT", "a"), nullptr);
  EXPECT_EQ(c.find("DEFAULT", "a")->value, "1");
  EXPECT_EQ(c.find("DEFAULT", "a")->line, 4);
  EXPECT_EQ(c.find("DEFAULT", "a")->file, "test.conf");
  EXPECT_EQ(c.find("DEFAULT", "b")->value, "two words");
  EXPECT_EQ(c.find("DEFAULT", "c")->value, "quoted value");
  EXPECT_EQ(c.find("DEFAULT", "d")->value, "single");
  EXPECT_EQ(c.find("DEFAULT", "e")->value, "x = y");            // the first '=' splits
  EXPECT_EQ(c.find("DEFAULT", "f")->value, "url:with:colons");  // '=' before ':' wins
  EXPECT_EQ(c.find("DEFAULT", "g")->value, "1 # not a comment");
}

TEST(Ini, DuplicateSectionsMergeAndLaterKeysWin) {
  Config c = must_parse(
      "[service_user]\n"
      "send_service_user_token = false\n"
      "username = nova\n"
      "[libvirt]\n"
      "virt_type = kvm\n"
      "[SERVICE_USER]\n"
      "send_service_user_token = true\n");
  const auto* e = c.find("service_user", "send_service_user_token");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value, "true");
  EXPECT_EQ(e->line, 7);
  EXPECT_EQ(c.find("Service_User", "username")->value, "nova");  // merged, case-insensitive group
  EXPECT_EQ(c.find_all("service_user", "send_service_user_token").size(), 2u);
  // Keys are case-sensitive, like oslo.config option names.
  EXPECT_EQ(c.find("service_user", "Send_Service_User_Token"), nullptr);
}

TEST(Ini, DefaultIsSpelledExactlyAndIsNoFallback) {
  Config c = must_parse("[default]\na = 1\n[DEFAULT]\nb = 2\n[libvirt]\nc = 3\n");
  EXPECT_EQ(c.find("DEFAULT", "a"), nullptr);  // [default] is a group named "default"
  EXPECT_NE(c.find("default", "a"), nullptr);
  EXPECT_EQ(c.find("libvirt", "b"), nullptr);  // DEFAULT options do not leak into groups
}

TEST(Ini, ContinuationLines) {
  Config c = must_parse(
      "[DEFAULT]\n"
      "non_inheritable_image_properties = cache_in_nova,\n"
      "    bittorrent,\n"
      "\timg_signature\n"
      "\n"
      "next = 1\n");
  const auto* e = c.find("DEFAULT", "non_inheritable_image_properties");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->value, "cache_in_nova,\nbittorrent,\nimg_signature");
  EXPECT_EQ(e->line, 2);
  EXPECT_EQ(ini::parse_list(e->value), (std::vector<std::string>{"cache_in_nova", "bittorrent", "img_signature"}));
  EXPECT_EQ(c.find("DEFAULT", "next")->value, "1");
}

TEST(Ini, MalformedInputSaysFileAndLine) {
  struct Case {
    const char* text;
    const char* want;
  } cases[] = {
      {"[DEFAULT]\na = 1\n[libvirt\n", "test.conf:3: section header without closing ']'"},
      {"[]\n", "test.conf:1: section header without a name"},
      {"a = 1\n", "test.conf:1: option 'a' before any [section] header"},
      {"[DEFAULT]\n  indented\n", "test.conf:2: continuation line with no option before it"},
      {"[DEFAULT]\njust words\n", "test.conf:2: expected 'key = value'"},
      {"[DEFAULT]\n= value\n", "test.conf:2: option with an empty name"},
  };
  for (const auto& k : cases) {
    auto r = Config::parse(k.text, "test.conf");
    ASSERT_FALSE(r.ok()) << k.text;
    EXPECT_EQ(r.error().code, Errc::kParse);
    EXPECT_NE(r.error().message.find(k.want), std::string::npos) << r.error().message;
  }
}

TEST(Ini, CrlfAndBom) {
  Config c = must_parse("\xEF\xBB\xBF[DEFAULT]\r\na = 1\r\n");
  ASSERT_NE(c.find("DEFAULT", "a"), nullptr);
  EXPECT_EQ(c.find("DEFAULT", "a")->value, "1");
}

TEST(Ini, Interpolation) {
  Config c = must_parse(
      "[DEFAULT]\n"
      "state_path = /var/lib/nova\n"
      "instances_path = $state_path/instances\n"
      "host = kh\n"
      "price = $$5\n"
      "[service_user]\n"
      "host = local\n"
      "auth_url = https://${host}:5000\n"
      "from_default = $state_path\n"
      "other = ${libvirt.virt_type}-x\n"
      "[libvirt]\n"
      "virt_type = kvm\n");
  EXPECT_EQ(c.resolved("DEFAULT", "instances_path").value(), "/var/lib/nova/instances");
  EXPECT_EQ(c.resolved("DEFAULT", "price").value(), "$5");
  EXPECT_EQ(c.resolved("service_user", "auth_url").value(), "https://local:5000");  // same section first
  EXPECT_EQ(c.resolved("service_user", "from_default").value(), "/var/lib/nova");   // then DEFAULT
  EXPECT_EQ(c.resolved("service_user", "other").value(), "kvm-x");
}

TEST(Ini, InterpolationLoopsAndUnknownNamesAreErrors) {
  Config c = must_parse(
      "[DEFAULT]\n"
      "a = $b\n"
      "b = ${a}\n"
      "self = x$self\n"
      "u = $nope\n");
  auto r = c.resolved("DEFAULT", "a");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("test.conf:2: interpolation loop: DEFAULT.a -> DEFAULT.b -> DEFAULT.a"),
            std::string::npos)
      << r.error().message;
  EXPECT_FALSE(c.resolved("DEFAULT", "self").ok());
  auto u = c.resolved("DEFAULT", "u");
  ASSERT_FALSE(u.ok());
  EXPECT_NE(u.error().message.find("'$nope' names no option"), std::string::npos);
}

TEST(Ini, Booleans) {
  for (const char* t : {"true", "True", "TRUE", "yes", "On", "1", " true "}) EXPECT_EQ(ini::parse_bool(t), true) << t;
  for (const char* f : {"false", "False", "no", "OFF", "0"}) EXPECT_EQ(ini::parse_bool(f), false) << f;
  for (const char* bad : {"", "y", "enabled", "true # yes", "2"}) EXPECT_EQ(ini::parse_bool(bad), std::nullopt) << bad;
}

TEST(Ini, Lists) {
  EXPECT_EQ(ini::parse_list(" a , b,c ,"), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(ini::parse_list(""), std::vector<std::string>{});
  EXPECT_EQ(ini::parse_list("'x,y', z"), (std::vector<std::string>{"x,y", "z"}));
}

TEST(Ini, MergeLayersFilesLaterWins) {
  Config a = must_parse("[libvirt]\nvolume_use_multipath = false\nvirt_type = kvm\n");
  auto b = Config::parse("[libvirt]\nvolume_use_multipath = true\n", "b.conf");
  ASSERT_TRUE(b.ok());
  a.merge(b.value());
  EXPECT_EQ(a.find("libvirt", "volume_use_multipath")->value, "true");
  EXPECT_EQ(a.find("libvirt", "volume_use_multipath")->file, "b.conf");
  EXPECT_EQ(a.find("libvirt", "virt_type")->file, "test.conf");
  EXPECT_EQ(a.files().size(), 2u);
}

TEST(Ini, LoadReportsUnreadableFiles) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("lw_ini_" + std::to_string(::getpid()));
  fs::create_directories(dir / "a_directory.conf");
  fs::create_symlink(dir / "nowhere.conf", dir / "dangling.conf");
  auto d = Config::load((dir / "a_directory.conf").string());
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.error().code, Errc::kIo);
  EXPECT_NE(d.error().message.find("is a directory"), std::string::npos);
  auto s = Config::load((dir / "dangling.conf").string());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::kNotFound);
  { std::ofstream(dir / "ok.conf") << "[DEFAULT]\nx = 1\n"; }
  auto ok = Config::load((dir / "ok.conf").string());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->find("DEFAULT", "x")->file, (dir / "ok.conf").string());
  fs::remove_all(dir);
}
