#pragma once
// Forensic capture dumps: the file format (magic, version, length, proto),
// written atomically with mode 0600 and a SHA-256 sidecar, read back with
// every kind of damage rejected by a clear message, and a retention policy.
#include <cstdint>
#include <string>
#include <vector>

#include "common/result.h"
#include "lunwatch.pb.h"

namespace lunwatch::sinks {

inline constexpr char kDumpMagic[] = "LUNWATCH-DUMP\n";
inline constexpr uint32_t kDumpVersion = 1;
inline constexpr uint64_t kDumpMaxBytes = 256ull << 20;  // larger files are refused unread

std::string sha256_hex(const std::string& bytes);

// Writes path (and path.sha256) atomically; returns the bytes written.
Result<uint64_t> write_dump(const std::string& path, const v1::CaptureDump& dump);

struct DumpCheck {
  bool checksum_present = false;
  bool checksum_ok = false;
  std::vector<std::string> problems;  // structural, empty when sound
};

// Reads and parses a dump. Errors: kIo (unreadable), kParse (not a dump,
// wrong version, corrupt), kTruncated (shorter than it says), kInvalidArgument
// (larger than kDumpMaxBytes).
Result<v1::CaptureDump> read_dump(const std::string& path, DumpCheck* check = nullptr);

// Keeps at most max_files dumps and max_bytes in dir (oldest go first).
// Returns how many were removed.
int enforce_retention(const std::string& dir, size_t max_files, uint64_t max_bytes);

}  // namespace lunwatch::sinks
