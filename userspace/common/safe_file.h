#pragma once
// Files lunwatch writes, handled like a security tool's: never through a
// planted symlink (O_NOFOLLOW), never into a file someone else owns or a hard
// link to one, created 0600 (0700 for directories), replaced atomically (a
// unique O_EXCL temporary beside the target, fsync, rename).
#include <sys/types.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "common/result.h"

namespace lunwatch {

// Opens path to append (created 0600 when missing). Refused: a symlink, not a
// regular file, owned by another user, more than one hard link.
Result<int> open_append_safe(const std::string& path, mode_t mode = 0600);
// The same as a FILE* ("-" and "" give stdout, which is not closed by callers).
Result<std::FILE*> fopen_append_safe(const std::string& path);
// Creates or truncates path for writing with the same checks.
Result<int> open_truncate_safe(const std::string& path, mode_t mode = 0600);
// Replaces path with data atomically; mode of the new file.
Result<void> write_atomic(const std::string& path, std::string_view data, mode_t mode = 0600);
// A directory for lunwatch's own files: created (parents too) with mode when
// missing; refused when it is a symlink, not a directory, not owned by us, or
// writable by group or others.
Result<void> ensure_private_dir(const std::string& path, mode_t mode = 0700);

}  // namespace lunwatch
