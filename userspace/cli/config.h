#pragma once
// /etc/lunwatch/lunwatch.conf: INI in oslo.config style (the same parser the
// audit uses for nova.conf). Command-line flags override it.
#include <memory>
#include <optional>
#include <string>

#include "cli/agent.h"
#include "common/result.h"
#include "inventory/cinder.h"

namespace lunwatch::cli {

inline constexpr char kDefaultConfig[] = "/etc/lunwatch/lunwatch.conf";

// Applies [agent] to o and returns the [cinder] Keystone settings when the
// section has an auth_url. A missing file is fine when not given explicitly.
Result<std::optional<inventory::KeystoneConfig>> load_config(const std::string& path, bool explicit_path,
                                                              AgentOptions& o);

}  // namespace lunwatch::cli
