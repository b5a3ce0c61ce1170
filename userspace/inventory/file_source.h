#pragma once
// Attachment records from JSON files, for hosts without OpenStack, tests, the
// lab and forensics. One file, or a directory of *.json files, each holding
// the proto3 JSON mapping of v1::Attachment records, either as a list or as
// {"attachments": [...], "instances": [...]} (instances optional). See
// README.md in this folder for an example.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "inventory/source.h"
#include "lunwatch.pb.h"

namespace lunwatch::inventory {

struct FileRecords {
  std::vector<v1::Attachment> attachments;
  std::vector<v1::Instance> instances;
};

// Pure. Unknown fields are errors (a typo must not silently drop an owner).
// Each attachment needs an owner (instance_uuid or instance_name) and
// something to match a device on (volume_id, device_path, targets or
// expected_wwid). WWPNs and portals are normalised; source defaults to
// SOURCE_FILE.
Result<FileRecords> parse_attachment_file(std::string_view json);

class FileSource : public AttachmentSource {
 public:
  explicit FileSource(std::string path);
  std::string name() const override { return "file:" + path_; }
  v1::SourceKind kind() const override { return v1::SOURCE_FILE; }
  void refresh() override;
  const v1::SourceSnapshot& snapshot() const override { return snapshot_; }
  uint64_t parses() const { return parses_; }

 private:
  struct Entry {
    FileSignature sig;
    bool have_good = false;
    FileRecords records;  // last good
    std::string error;
  };
  void fail(const std::string& message);
  void rebuild();

  std::string path_;
  std::map<std::string, Entry> entries_;  // by file path
  v1::SourceSnapshot snapshot_;
  uint64_t parses_ = 0;
  std::string path_error_;
};

}  // namespace lunwatch::inventory
