#pragma once
// Cinder's policy file (policy.yaml or the older policy.json) and the small
// part of oslo.policy's rule language the OSSN-0092 stopgap needs: can a
// caller without the service role pass a rule?
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace lunwatch::audit {

struct PolicyRule {
  std::string name;
  std::string expr;
  std::string file;
  int line = 0;
};

struct PolicyFile {
  std::map<std::string, PolicyRule> rules;  // later files / keys win
  std::vector<std::string> files;
  void merge(const PolicyFile& later);
  const PolicyRule* find(std::string_view name) const;
};

// JSON when the text starts with '{', else the YAML subset policy files use:
// one `"name": "rule"` mapping per line, '#' comments, quoted or plain scalars,
// indented continuation lines and '>' / '|' block scalars.
// Errc::kParse "<file>:<line>: <what>" on anything else.
Result<PolicyFile> parse_policy(std::string_view text, const std::string& file);

enum class Tri { kFalse, kUnknown, kTrue };

struct Verdict {
  // kFalse: no caller without the service role passes; kTrue: every caller
  // passes; kUnknown: some caller without the service role may pass.
  Tri non_service_passes = Tri::kUnknown;
  std::vector<std::string> notes;  // undefined rules referenced, parse problems
};

// Evaluates rule `name` for a caller that lacks the service role and is not
// the service user (role:service, roles:service and service_* checks are
// false); every other check is unknown (some user may satisfy it); rule:X is
// expanded from the file (undefined -> unknown, loops -> unknown + note). A
// rule absent from the file means Cinder's default, which OSSN-0092 says lets
// project members through: kUnknown with a note.
Verdict evaluate_for_non_service(const PolicyFile& policy, std::string_view name);
// The same for a bare expression (tests).
Verdict evaluate_expr_for_non_service(const PolicyFile& policy, std::string_view expr);

}  // namespace lunwatch::audit
