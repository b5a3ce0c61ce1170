// The `lunwatch` command. Exit codes: 0 ok, 1 runtime error, 2 usage,
// 3 not root, 4 kernel BTF missing, 5 BPF not permitted, 6 memlock limit.
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <string>

#include "cli/commands.h"
#include "common/log.h"

int main(int argc, char** argv) {
  CLI::App app{"lunwatch: who does I/O to which SCSI LUN, and is it theirs (CVE-2023-2088)"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "debug logging (libbpf messages too)");
  std::string btf_dir = "/sys/kernel/btf";
  app.add_option("--btf-dir", btf_dir, "where the kernel's BTF lives (vmlinux and modules)")->capture_default_str();

  lunwatch::cli::RunOptions run;
  auto* run_cmd = app.add_subcommand("run", "load the probes and watch");
  run_cmd->add_flag("--events", run.events, "print every event as one JSON line on stdout");
  run_cmd->add_option("--events-file", run.events_file, "append event JSON lines to this file instead of stdout");
  run_cmd->add_option("--duration", run.duration_s, "stop after this many seconds (0: until SIGINT/SIGTERM)");
  run_cmd->add_option("--disable-hook", run.disabled_hooks, "hook name to leave off (repeatable)");
  run_cmd->add_flag("!--no-bpf-stats", run.bpf_stats, "do not turn on the kernel's per-program run time accounting");
  run_cmd->add_option("--ready-file", run.ready_file, "create this file once every probe is attached");
  run_cmd->add_option("--stats-file", run.stats_file,
                      "on exit, write kernel flow counters, drops and program stats as JSON here");

  bool probes_json = false;
  auto* probes_cmd = app.add_subcommand("probes", "show every hook and its state on this kernel");
  probes_cmd->add_flag("--json", probes_json, "one JSON document instead of a table");

  app.add_subcommand("version", "print the version");

  // Subcommands owned by other stages register below this line, one each.
  // (end of subcommand registrations)

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (verbose) lunwatch::log::set_level(lunwatch::log::Level::kDebug);
  run.verbose = verbose;
  run.btf_dir = btf_dir;

  if (*run_cmd) return lunwatch::cli::cmd_run(run);
  if (*probes_cmd) return lunwatch::cli::cmd_probes(probes_json, verbose, btf_dir);
  return lunwatch::cli::cmd_version();
}
