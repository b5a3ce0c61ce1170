#pragma once
// An INI reader with oslo.config's rules, so one parser serves lunwatch's own
// config and the audit of nova.conf / cinder.conf.
//
// Rules (oslo_config/iniparser.py and cfg.py):
// - A line starting (column 0) with '#' or ';' is a comment; there are no
//   inline comments ("a = 1 # x" has the value "1 # x").
// - "key = value" or "key: value" (the first of '=' / ':' splits); the value is
//   stripped and one pair of matching surrounding quotes is removed.
// - A line starting with a space or tab continues the previous value (joined
//   with '\n'); a blank line ends it. A continuation line with no key before it
//   is an error.
// - Section names are case-insensitive except DEFAULT, which must be spelled
//   "DEFAULT" ([default] is a group named "default"). Keys are case-sensitive.
// - A section may appear many times: its keys merge; a later key wins (every
//   occurrence is kept for multi-valued options). merge() layers files the way
//   repeated --config-file does: the later file wins key by key.
// - "$name" / "${name}" interpolate another option of the same section, then of
//   DEFAULT; "${section.name}" names the section; "$$" is a literal '$'. Loops
//   and unknown names are reported as errors, never followed forever; nesting
//   (16 levels), references followed (10000) and the result (64 KiB) are
//   bounded, and no error quotes a value (it may be a password).
// Values remember their file and line, for evidence in findings.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lunwatch::ini {

struct Entry {
  std::string key;
  std::string value;  // raw: quotes removed, continuation lines joined with '\n'
  std::string file;
  int line = 0;  // line of the "key =" line (1-based)
};

struct Section {
  std::string name;  // as first written
  std::string file;  // where the section first appeared
  int line = 0;
  std::vector<Entry> entries;  // every assignment, in order
};

class Config {
 public:
  // Parses text; `file` names it in errors and evidence. Errors (Errc::kParse)
  // read "<file>:<line>: <what>".
  static Result<Config> parse(std::string_view text, const std::string& file);
  // Reads and parses a file; Errc::kIo / kNotFound when it cannot be read.
  static Result<Config> load(const std::string& path);

  // Layers `later` over this one (the later file wins key by key).
  void merge(const Config& later);

  // oslo.config's group-name normalisation: DEFAULT stays, others lower-case.
  static std::string normalize_section(std::string_view name);

  bool has_section(std::string_view section) const;
  const Section* section(std::string_view section) const;
  // The winning (last) assignment of key in section, without DEFAULT fallback
  // (oslo.config reads a group's options only from that group).
  const Entry* find(std::string_view section, std::string_view key) const;
  // Every assignment of key in section, in order (multi-valued options).
  std::vector<const Entry*> find_all(std::string_view section, std::string_view key) const;
  // The winning value with $-interpolation applied.
  Result<std::string> resolved(std::string_view section, std::string_view key) const;
  // Interpolates `value` as if it were an option of `section`.
  Result<std::string> interpolate(std::string_view section, std::string_view value) const;

  std::vector<std::string> section_names() const;  // normalised, sorted
  const std::vector<std::string>& files() const { return files_; }

 private:
  Result<std::string> interpolate_with(const std::string& section, std::string_view value,
                                       std::vector<std::string>& stack, size_t& refs_left) const;

  std::map<std::string, Section> sections_;  // by normalised name
  std::vector<std::string> files_;
};

// oslo.config Boolean: true/yes/on/1 and false/no/off/0, any case, surrounding
// whitespace ignored. nullopt for anything else (oslo refuses to start).
std::optional<bool> parse_bool(std::string_view value);

// oslo.config List: comma-separated, items stripped of whitespace (newlines of
// continuation lines included), quoted items keep their commas, a trailing
// comma and empty input give no item.
std::vector<std::string> parse_list(std::string_view value);

}  // namespace lunwatch::ini
