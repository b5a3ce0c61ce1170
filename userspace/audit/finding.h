#pragma once
// What the posture audit reports: checks (each one ran, was not applicable, or
// could not run, and why) and findings (a stable id, a severity, the evidence
// and the exact fix). Plain structs so `lunwatch run` can export them as
// metrics and other sinks can render them.
#include <string>
#include <string_view>
#include <vector>

namespace lunwatch::audit {

enum class Severity { kInfo = 0, kLow = 1, kMedium = 2, kHigh = 3, kCritical = 4 };
const char* severity_name(Severity s);

enum class CheckStatus {
  kOk,             // ran, nothing to report
  kFindings,       // ran, reported findings (info findings included)
  kNotApplicable,  // nothing to check on this host (reason says why)
  kCouldNotCheck,  // should have run but could not (reason says why)
};
const char* check_status_name(CheckStatus s);

// Where a finding comes from. Values of secret options are never stored here
// (redact() first); empty fields are left out of the output.
struct Evidence {
  std::string file;
  std::string section;
  std::string key;
  int line = 0;
  std::string value;       // the value found, "" when the option is not set
  bool value_set = false;  // false: the option is absent (default applies)
  std::string note;        // one sentence of context (default value, source, ...)
};

struct Finding {
  std::string id;     // stable, e.g. LW-AUDIT-OSBRICK-VERSION
  std::string check;  // the check that produced it, e.g. "versions.os-brick"
  Severity severity = Severity::kInfo;
  std::string title;    // one line
  std::string subject;  // what it is about (package install path, device, image id)
  std::vector<Evidence> evidence;
  std::string fix;  // exact line(s) to set or command to run
};

struct CheckResult {
  std::string id;     // e.g. "nova.service_user"
  std::string title;  // what it looks at
  CheckStatus status = CheckStatus::kOk;
  std::string reason;  // for not applicable / could not check, and notes for ok
};

struct Report {
  std::string root;
  std::vector<CheckResult> checks;
  std::vector<Finding> findings;
};

// 0: no finding of severity low or above and every check ran or was not
// applicable; 1: at least one finding of severity low or above; 2: no such
// finding but some check could not run (the host could not be fully audited).
int exit_status(const Report& r);

// True for option names whose values are secrets (passwords, application
// credential secrets, tokens, URLs with credentials).
bool is_secret_key(std::string_view key);
// The value to show for key: "<redacted>" for secrets, a URL with its password
// masked for transport_url/connection-style values, else the value itself.
std::string redact(std::string_view key, std::string_view value);

}  // namespace lunwatch::audit
