#pragma once
// The one interface every attachment source implements (libvirt domain XML,
// the Cinder API, JSON files), plus the small helpers they share: a clock in
// Unix milliseconds, a size-capped file reader, and a file signature used to
// skip re-parsing files that did not change.
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/result.h"
#include "lunwatch.pb.h"

namespace lunwatch::inventory {

// Every source refuses to read an input larger than this (a libvirt XML, a
// JSON file, an HTTP body): a 20 MiB "domain" is not a domain.
inline constexpr size_t kMaxInputBytes = size_t{16} << 20;

class AttachmentSource {
 public:
  virtual ~AttachmentSource() = default;
  // Human-readable origin: a path or an API endpoint, never credentials.
  virtual std::string name() const = 0;
  virtual v1::SourceKind kind() const = 0;
  // Never throws. On failure keeps the last good attachments, counts the
  // error, marks the snapshot stale and logs one line.
  virtual void refresh() = 0;
  // Valid until the next refresh(); sources are not thread-safe: call
  // refresh() and snapshot() from one thread (or copy the snapshot).
  virtual const v1::SourceSnapshot& snapshot() const = 0;
};

int64_t now_unix_ms();

// The first error among a source's per-file entries (each with an `error`), "" if none.
template <typename Entries>
std::string first_error_of(const Entries& entries) {
  for (const auto& [key, e] : entries)
    if (!e.error.empty()) return e.error;
  return "";
}

// Ends a refresh: stale with its first error, or good as of the last attempt.
void mark_refresh(v1::SourceSnapshot& snapshot, const std::string& first_error);

// Reads a whole file, refusing (without reading) one whose size is above
// max_bytes, and stopping at max_bytes for files that report size 0 (/proc).
// Errc::kNotFound when the file does not exist, kIo otherwise, kTruncated
// when it is too large.
Result<std::string> read_file_capped(const std::string& path, size_t max_bytes = kMaxInputBytes);

// What changes when a file is rewritten (libvirt and editors replace files by
// rename, so the inode changes too).
struct FileSignature {
  int64_t mtime_ns = 0;
  int64_t size = 0;
  ino_t ino = 0;
  bool operator==(const FileSignature&) const = default;
};
std::optional<FileSignature> file_signature(const std::string& path);

}  // namespace lunwatch::inventory
