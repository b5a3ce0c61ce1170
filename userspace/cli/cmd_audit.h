#pragma once
// `lunwatch audit`: registration and the command itself. main.cpp calls
// add_audit_command() with the other registrations and cmd_audit() when the
// subcommand was given; the options live in cmd_audit.cpp.
#include <CLI/CLI.hpp>

namespace lunwatch::cli {

CLI::App* add_audit_command(CLI::App& app);
// Exit status: 0 clean, 1 findings, 2 could not (fully) audit.
int cmd_audit();

}  // namespace lunwatch::cli
