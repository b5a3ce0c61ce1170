#pragma once
// Small helpers shared by the unit tests.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace lunwatch::testutil {

// A private temporary folder, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lunwatch-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes rel (parents created) atomically: a temp file beside it, then a
  // rename, as editors and libvirt do.
  void write(const std::string& rel, const std::string& text) const {
    std::filesystem::path target = std::filesystem::path(path_) / rel;
    std::filesystem::create_directories(target.parent_path());
    auto tmp = target.parent_path() / ("." + target.filename().string() + ".tmp");
    std::ofstream(tmp, std::ios::binary) << text;
    std::filesystem::rename(tmp, target);
  }

 private:
  std::string path_;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace lunwatch::testutil
