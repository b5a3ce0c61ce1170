#include "sinks/dump.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "common/safe_file.h"

namespace lunwatch::sinks {
namespace fs = std::filesystem;

std::string sha256_hex(const std::string& bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(bytes.data(), bytes.size(), md, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 0xf];
  }
  return out;
}

namespace {}  // namespace

Result<uint64_t> write_dump(const std::string& path, const v1::CaptureDump& dump) {
  std::string body;
  if (!dump.SerializeToString(&body)) return make_error(Errc::kIo, "cannot encode the dump");
  std::string file(kDumpMagic);
  uint32_t v = kDumpVersion;
  uint64_t n = body.size();
  file.append(reinterpret_cast<const char*>(&v), sizeof v);  // little-endian hosts (x86_64, arm64)
  file.append(reinterpret_cast<const char*>(&n), sizeof n);
  file += body;
  auto w = lunwatch::write_atomic(path, file);  // unique O_EXCL temp, fsync, rename; 0600
  if (!w.ok()) return w.error();
  auto s =
      lunwatch::write_atomic(path + ".sha256", sha256_hex(file) + "  " + fs::path(path).filename().string() + "\n");
  if (!s.ok()) return s.error();
  return static_cast<uint64_t>(file.size());
}

Result<v1::CaptureDump> read_dump(const std::string& path, DumpCheck* check) {
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) return make_error(Errc::kIo, "cannot read " + path + ": " + ec.message());
  if (size > kDumpMaxBytes)
    return make_error(Errc::kInvalidArgument, path + " is " + std::to_string(size) + " bytes, over the " +
                                                  std::to_string(kDumpMaxBytes >> 20) + " MiB a dump may have");
  std::ifstream in(path, std::ios::binary);
  std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t magic = sizeof(kDumpMagic) - 1;
  if (file.size() < magic || file.compare(0, magic, kDumpMagic) != 0)
    return make_error(Errc::kParse, path + " is not a lunwatch capture dump (bad magic)");
  if (file.size() < magic + 12) return make_error(Errc::kTruncated, path + " is truncated inside its header");
  uint32_t v = 0;
  uint64_t n = 0;
  std::memcpy(&v, file.data() + magic, sizeof v);
  std::memcpy(&n, file.data() + magic + 4, sizeof n);
  if (v != kDumpVersion)
    return make_error(Errc::kParse, path + " is dump format version " + std::to_string(v) +
                                        "; this lunwatch reads version " + std::to_string(kDumpVersion));
  size_t have = file.size() - magic - 12;
  if (n > have)
    return make_error(Errc::kTruncated, path + " is truncated: header says " + std::to_string(n) + " bytes, file has " +
                                            std::to_string(have));
  if (n < have) return make_error(Errc::kParse, path + " has " + std::to_string(have - n) + " bytes after its end");
  v1::CaptureDump dump;
  if (!dump.ParseFromArray(file.data() + magic + 12, static_cast<int>(n)))
    return make_error(Errc::kParse, path + " is corrupt: its body does not decode");
  if (check) {
    std::ifstream sc(path + ".sha256");
    std::string want;
    if (sc >> want) {
      check->checksum_present = true;
      check->checksum_ok = want == sha256_hex(file);
    }
    if (dump.format_version() != kDumpVersion)
      check->problems.push_back("format_version field disagrees with the header");
    if (!dump.has_trigger()) check->problems.push_back("no trigger alert");
    uint64_t last = 0;
    bool ordered = true, trigger_seen = dump.trigger_seq() == 0;
    for (const auto& e : dump.events()) {
      if (e.seq() < last) ordered = false;
      last = e.seq();
      if (e.seq() == dump.trigger_seq()) trigger_seen = true;
    }
    if (!ordered) check->problems.push_back("events are not in arrival order");
    if (!trigger_seen) check->problems.push_back("the trigger's event is not among the events");
    if (!dump.has_host() || dump.host().agent_version().empty()) check->problems.push_back("no host facts");
  }
  return dump;
}

int enforce_retention(const std::string& dir, size_t max_files, uint64_t max_bytes) {
  std::vector<std::pair<fs::file_time_type, fs::path>> dumps;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().extension() == ".lwdump") dumps.emplace_back(e.last_write_time(ec), e.path());
  std::sort(dumps.begin(), dumps.end());
  uint64_t total = 0;
  for (const auto& [t, p] : dumps) total += fs::file_size(p, ec);
  int removed = 0;
  size_t count = dumps.size();
  for (const auto& [t, p] : dumps) {
    if (count <= max_files && total <= max_bytes) break;
    total -= std::min<uint64_t>(total, fs::file_size(p, ec));
    fs::remove(p, ec);
    fs::remove(p.string() + ".sha256", ec);
    count--;
    removed++;
  }
  return removed;
}

}  // namespace lunwatch::sinks
