// JSON attachment records from a file or a folder: shapes, validation, and
// last-good behaviour when a file goes bad.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>
#include "test_util.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "inventory/file_source.h"

using namespace lunwatch;
using namespace lunwatch::inventory;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

const std::string kFix = std::string(LUNWATCH_FIXTURES) + "/inventory/files";

using testutil::slurp;

using testutil::TempDir;

}  // namespace

TEST(FileRecords, ObjectShapeWithInstances) {
  auto r = parse_attachment_file(slurp(kFix + "/attachments.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->attachments.size(), 2u);
  const auto& a = r->attachments[0];
  EXPECT_EQ(a.source(), v1::SOURCE_FILE);
  EXPECT_EQ(a.instance_name(), "instance-0000002a");
  EXPECT_EQ(a.status(), v1::ATTACHMENT_ATTACHED);
  EXPECT_EQ(a.transport(), v1::TRANSPORT_ISCSI);
  ASSERT_EQ(a.targets_size(), 1);
  EXPECT_EQ(a.targets(0).lun(), 1u);  // uint64 as a JSON string, per proto3 JSON
  EXPECT_EQ(a.expected_wwid(), "3600140511111111111111111111111aa");
  EXPECT_EQ(r->attachments[1].targets(0).wwpn(), "500a0981891b8dc5");  // normalised
  ASSERT_EQ(r->instances.size(), 1u);
  EXPECT_EQ(r->instances[0].display_name(), "web-01");
  EXPECT_EQ(r->instances[0].resolved_from(), "file");
}

TEST(FileRecords, ListShapeAndNormalisedPortal) {
  auto r = parse_attachment_file(slurp(kFix + "/dir/lab-a.json"));
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->attachments.size(), 1u);
  EXPECT_EQ(r->attachments[0].targets(0).portal(), "127.0.0.1:3260");
  EXPECT_TRUE(parse_attachment_file("[]").ok());
}

TEST(FileRecords, Rejections) {
  struct Case {
    const char* json;
    const char* says;
  };
  for (const Case& c : std::vector<Case>{
           {"", "not JSON"},
           {"{\"attachments\": [", "not JSON"},
           {"42", "expected a list"},
           {"{\"attachment\": []}", "unknown key \"attachment\""},
           {"{\"instances\": []}", "no \"attachments\""},
           {"{\"attachments\": {}}", "not a list"},
           {"[{\"volume_id\": \"v\"}]", "no owner"},
           {"[{\"instance_name\": \"i\"}]", "nothing to match"},
           {"[{\"instance_name\": \"i\", \"volume_id\": \"v\", \"volumeid\": \"w\"}]", "attachments[0]"},
           {"[{\"instance_name\": \"i\", \"volume_id\": \"v\", \"status\": \"ATTACHED\"}]", "attachments[0]"},
           {"[{\"instance_name\": \"i\", \"targets\": [{\"wwpn\": \"zz\", \"lun\": 1}]}]", "not a WWPN"},
           {"[{\"instance_name\": \"i\", \"targets\": [{\"lun\": 1}]}]", "neither iqn nor wwpn"},
           {"[{\"instance_name\": \"i\", \"volume_id\": \"v\"}, 3]", "attachments[1] is not an object"},
       }) {
    auto r = parse_attachment_file(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_THAT(r.error().message, HasSubstr(c.says)) << c.json;
  }
}

TEST(FileSource, FolderSkipsBadFilesAndCountsThem) {
  FileSource src(kFix + "/dir");
  EXPECT_EQ(src.kind(), v1::SOURCE_FILE);
  src.refresh();
  const auto& s = src.snapshot();
  EXPECT_EQ(s.attachments_size(), 2);  // lab-a and lab-b; broken.json skipped; README.txt ignored
  EXPECT_EQ(s.errors_total(), 1u);
  EXPECT_TRUE(s.stale());
  EXPECT_THAT(s.last_error(), HasSubstr("broken.json"));
  src.refresh();
  EXPECT_EQ(s.errors_total(), 1u) << "an unchanged bad file is counted once";
  EXPECT_EQ(src.parses(), 3u);
}

TEST(FileSource, SingleFileKeepsLastGoodAndRecovers) {
  TempDir dir;
  const std::string good = slurp(kFix + "/attachments.json");
  dir.write("records.json", good);
  FileSource src(dir.path() + "/records.json");
  src.refresh();
  ASSERT_EQ(src.snapshot().attachments_size(), 2);
  EXPECT_FALSE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().instances_size(), 1);
  int64_t good_at = src.snapshot().last_good_unix_ms();
  EXPECT_GT(good_at, 0);

  dir.write("records.json", good.substr(0, good.size() / 2));
  src.refresh();
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_EQ(src.snapshot().attachments_size(), 2);
  EXPECT_EQ(src.snapshot().last_good_unix_ms(), good_at);

  fs::remove(dir.path() + "/records.json");
  src.refresh();
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().errors_total(), 2u);
  EXPECT_EQ(src.snapshot().attachments_size(), 2) << "a vanished file keeps the last good records";
  EXPECT_THAT(src.snapshot().last_error(), HasSubstr("does not exist"));

  dir.write("records.json", "[]");
  src.refresh();
  EXPECT_FALSE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().attachments_size(), 0);
  EXPECT_EQ(src.snapshot().last_error(), "");
}

TEST(FileSource, HugeFileRejectedUnread) {
  TempDir dir;
  std::string huge = dir.path() + "/huge.json";
  { std::ofstream(huge) << "["; }
  fs::resize_file(huge, (size_t{16} << 20) + 1);
  FileSource src(huge);
  src.refresh();
  EXPECT_TRUE(src.snapshot().stale());
  EXPECT_EQ(src.snapshot().errors_total(), 1u);
  EXPECT_THAT(src.snapshot().last_error(), HasSubstr("larger than 16 MiB"));
}

TEST(ReadFileCapped, LimitsAndErrors) {
  TempDir dir;
  dir.write("small", "0123456789");
  EXPECT_EQ(read_file_capped(dir.path() + "/small").value(), "0123456789");
  auto big = read_file_capped(dir.path() + "/small", 5);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::kTruncated);
  auto missing = read_file_capped(dir.path() + "/nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  // /proc files report size 0: the cap still applies while reading.
  auto self = read_file_capped("/proc/self/status", 8);
  ASSERT_FALSE(self.ok());
  EXPECT_EQ(self.error().code, Errc::kTruncated);
}

TEST(FileRecords, ReadmeExampleParses) {
  // The example in userspace/inventory/README.md is the documented shape: keep it true.
  std::string readme = slurp(std::string(LUNWATCH_FIXTURES) + "/../../userspace/inventory/README.md");
  size_t start = readme.find("```json\n");
  ASSERT_NE(start, std::string::npos);
  start += 8;
  size_t end = readme.find("```", start);
  ASSERT_NE(end, std::string::npos);
  auto r = parse_attachment_file(readme.substr(start, end - start));
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->attachments.size(), 2u);
  EXPECT_EQ(r->attachments[1].targets(0).wwpn(), "500a0981891b8dc5");
  EXPECT_EQ(r->instances.size(), 1u);
}
