#pragma once
// /etc/lunwatch/lunwatch.conf: INI in oslo.config style (the same parser the
// audit uses for nova.conf). Command-line flags override it.
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cli/agent.h"
#include "common/result.h"
#include "inventory/cinder.h"

namespace lunwatch::cli {

inline constexpr char kDefaultConfig[] = "/etc/lunwatch/lunwatch.conf";

// Applies [agent] to o and returns the [cinder] Keystone settings when the
// section has an auth_url. A missing file is fine when not given explicitly.
// Strict: an unknown section or key, a number that is not a plain finite
// number ("10s", "nan"), a boolean that is not one, a value whose
// $-interpolation fails (a password with a lone '$') is an error naming the
// file and line, never the value of a secret.
Result<std::optional<inventory::KeystoneConfig>> load_config(const std::string& path, bool explicit_path,
                                                             AgentOptions& o);

// The whole option set after config and flags: intervals finite and in range,
// alert_format / dump_severity / guard known, metrics_listen host:port or "".
Result<void> validate_options(const AgentOptions& o);

// A plain finite decimal number ("10", "0.5", "1e3"); nullopt for "10s", "nan",
// "inf", "" or trailing text.
std::optional<double> parse_number(std::string_view s);

}  // namespace lunwatch::cli
