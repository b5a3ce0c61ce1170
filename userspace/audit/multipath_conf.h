#pragma once
// multipath.conf is not INI: it is multipath-tools' block syntax
//   defaults {
//       recheck_wwid yes
//   }
//   devices { device { vendor "PURE" product "FlashArray" } }
// Keywords and values are words or "quoted strings"; '#' and '!' start a
// comment; a keyword followed by '{' opens a block. This parser keeps every
// keyword with its line for evidence; it does not validate keywords.
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lunwatch::audit {

struct MpathBlock;

struct MpathOption {
  std::string key;
  std::string value;  // values joined by one space, quotes removed
  int line = 0;
};

struct MpathBlock {
  std::string name;
  int line = 0;
  std::string file;
  std::vector<MpathOption> options;
  std::vector<MpathBlock> blocks;

  // The last value of key directly in this block, nullptr when absent.
  const MpathOption* find(std::string_view key) const;
};

// The top level holds the file's blocks (defaults, blacklist, devices,
// overrides, multipaths, ...). Errc::kParse "<file>:<line>: <what>" on an
// unbalanced brace or a stray token.
Result<MpathBlock> parse_multipath_conf(std::string_view text, const std::string& file);

}  // namespace lunwatch::audit
