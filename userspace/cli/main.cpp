// The `lunwatch` command. Exit codes: 0 ok, 1 runtime error, 2 usage,
// 3 not root, 4 kernel BTF missing, 5 BPF not permitted, 6 memlock limit.
#include <CLI/CLI.hpp>

#include <sys/stat.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "cli/agent.h"
#include "cli/cmd_audit.h"
#include "cli/commands.h"
#include "cli/config.h"
#include "common/log.h"

namespace {
int lunwatch_main(int argc, char** argv);
}  // namespace

int main(int argc, char** argv) {
  // Whatever a parser or the filesystem throws, one line and a status, never
  // an abort with a core: anything a user can put on the host must not kill us.
  try {
    return lunwatch_main(argc, argv);
  } catch (const std::exception& e) {
    lunwatch::log::error(std::string("unexpected error: ") + e.what());
  } catch (...) {
    lunwatch::log::error("unexpected error");
  }
  return 1;
}

namespace {
int lunwatch_main(int argc, char** argv) {
  ::umask(077);  // nothing lunwatch writes (alerts, dumps, recordings, state) is for other users
  CLI::App app{"lunwatch: who does I/O to which SCSI LUN, and is it theirs (CVE-2023-2088)"};
  app.require_subcommand(1);
  bool verbose = false;
  app.add_flag("-v,--verbose", verbose, "debug logging (libbpf messages too)");
  std::string btf_dir = "/sys/kernel/btf";
  app.add_option("--btf-dir", btf_dir, "where the kernel's BTF lives (vmlinux and modules)")->capture_default_str();

  lunwatch::cli::AgentOptions agent;
  auto& run = agent.run;
  auto* run_cmd = app.add_subcommand("run", "load the probes, watch, and alert on cross-instance access");
  std::string config_path = lunwatch::cli::kDefaultConfig;
  run_cmd->add_option("--config", config_path, "INI config ([agent], [cinder]); flags override it")
      ->capture_default_str();
  bool check_config = false;
  run_cmd->add_flag("--check-config", check_config,
                    "check the config and flags, print \"config ok\" and exit (0 ok, 2 not)");
  run_cmd->add_flag("--events", run.events, "print every event as one JSON line on stdout");
  run_cmd->add_option("--events-file", run.events_file, "append event JSON lines to this file instead of stdout");
  run_cmd->add_option("--duration", run.duration_s, "stop after this many seconds (0: until SIGINT/SIGTERM)");
  run_cmd->add_option("--disable-hook", run.disabled_hooks,
                      "hook name, or attach kind (fentry, tp_btf, kprobe, raw_tp) to leave off (repeatable)");
  run_cmd->add_flag("!--no-bpf-stats", run.bpf_stats, "do not turn on the kernel's per-program run time accounting");
  run_cmd->add_option("--ready-file", run.ready_file, "create this file once every probe is attached");
  run_cmd->add_option("--stats-file", run.stats_file,
                      "on exit, write kernel flow counters, drops and program stats as JSON here");
  run_cmd->add_option("--alerts-file", agent.alerts_file, "append alerts (JSON lines) here instead of stdout");
  run_cmd->add_option("--alert-format", agent.alert_format, "json (lunwatch's Alert) or falco (Falcosidekick)")
      ->check(CLI::IsMember({"json", "falco"}))
      ->capture_default_str();
  run_cmd->add_option("--record", agent.record_file, "record every correlator input here, for `lunwatch replay`");
  run_cmd->add_option("--libvirt-dir", agent.libvirt_dir, "libvirt's live domain XML folder")->capture_default_str();
  run_cmd->add_flag("!--no-libvirt", agent.libvirt, "do not read libvirt domain XML");
  run_cmd->add_option("--attachments", agent.attachment_files,
                      "JSON attachment records: a file or a folder of *.json (repeatable)");
  run_cmd->add_option("--host-allowlist", agent.host_allowlist_extra,
                      "comm prefix of a host process allowed to do I/O to volume devices, beside the built-in "
                      "list (repeatable; [agent] host_allowlist)");
  run_cmd->add_option("--sysfs", agent.sysfs_root, "sysfs root")->capture_default_str();
  run_cmd->add_option("--state-file", agent.state_file, "bound identities (attachment -> WWID), kept across restarts")
      ->capture_default_str();
  run_cmd->add_option("--inventory-interval", agent.inventory_interval_s, "seconds between attachment source refreshes")
      ->capture_default_str();
  run_cmd->add_option("--topology-interval", agent.topology_interval_s, "seconds between full sysfs re-reads")
      ->capture_default_str();
  run_cmd
      ->add_option("--verify-interval", agent.verify_interval_s,
                   "seconds between periodic SG_IO re-verification of every SCSI device")
      ->capture_default_str();
  run_cmd->add_option("--verify-timeout", agent.verify_timeout_s, "SG_IO INQUIRY timeout in seconds")
      ->capture_default_str();
  run_cmd
      ->add_option("--verify-max-age", agent.verify_max_age_s,
                   "seconds a held device's paths may go without a good SG_IO verification before "
                   "lunwatch_identity_held_overdue_paths counts them (0: 3 x verify-interval + verify-timeout)")
      ->capture_default_str();
  run_cmd
      ->add_option("--ring-buffer-kib", agent.ring_buffer_kib,
                   "size of the kernel's event ring buffer in KiB, a power of two >= 4 (a full ring is counted in "
                   "lunwatch_kernel_drops_total and loses nothing for good)")
      ->capture_default_str();
  run_cmd
      ->add_option("--orphan-grace", agent.orphan_grace_s, "seconds a device may stay unexplained before ORPHAN_DEVICE")
      ->capture_default_str();
  run_cmd
      ->add_option("--alert-quiet", agent.alert_quiet_s,
                   "seconds without a repeat after which HOST_PROCESS_ACCESS and GUARD_DENIED resolve (0: never)")
      ->capture_default_str();
  run_cmd
      ->add_option("--metrics-listen", agent.metrics_listen,
                   "serve Prometheus /metrics on addr:port (\"\" to turn off)")
      ->capture_default_str();
  run_cmd
      ->add_option("--guard", agent.guard_mode,
                   "guard mode: off, monitor (report what would be refused), enforce (refuse it)")
      ->check(CLI::IsMember({"off", "monitor", "enforce"}))
      ->capture_default_str();
  run_cmd
      ->add_option("--contain", agent.contain_actions,
                   "on a confirmed leak the guard did not refuse: offline (the SCSI device paths), pause (the "
                   "libvirt domain), offline,pause, or none")
      ->capture_default_str();
  run_cmd->add_option("--virsh", agent.contain.virsh, "virsh used to pause a domain")->capture_default_str();
  run_cmd->add_option("--libvirt-uri", agent.contain.libvirt_uri, "libvirt URI for virsh")->capture_default_str();
  run_cmd->add_option("--dump-dir", agent.dump_dir, "where capture dumps go")->capture_default_str();
  run_cmd
      ->add_option("--dump-severity", agent.dump_severity,
                   "capture on alerts at or above: critical, high, warning, off")
      ->check(CLI::IsMember({"critical", "high", "warning", "off"}))
      ->capture_default_str();
  run_cmd->add_option("--dump-before", agent.dump_before_s, "seconds of history before the trigger")
      ->capture_default_str();
  run_cmd->add_option("--dump-after", agent.dump_after_s, "seconds recorded after the trigger")->capture_default_str();
  run_cmd->add_option("--dump-max-files", agent.dump_max_files, "captures kept")->capture_default_str();
  run_cmd->add_option("--dump-max-bytes", agent.dump_max_bytes, "total bytes of captures kept")->capture_default_str();
  run_cmd->add_option("--recorder-max-bytes", agent.recorder_max_bytes, "flight recorder memory bound")
      ->capture_default_str();
  run_cmd->add_option("--pid-file", agent.pid_file, "pid file (`lunwatch dump now` signals it)")->capture_default_str();
  run_cmd->add_option("--hostname", agent.hostname, "name of this hypervisor in alerts (default: gethostname)");

  lunwatch::cli::GuardCommand guard_cmd_opts;
  auto* guard_cmd = app.add_subcommand("guard", "the guard's policy: status, mode, release, quarantine");
  guard_cmd->require_subcommand(0, 1);
  auto* g_status = guard_cmd->add_subcommand("status", "mode, guarded devices, owners, denials");
  auto* g_mode = guard_cmd->add_subcommand("mode", "set the guard mode now (off, monitor, enforce)");
  g_mode->add_option("MODE", guard_cmd_opts.arg)->required()->check(CLI::IsMember({"off", "monitor", "enforce"}));
  auto* g_release = guard_cmd->add_subcommand("release", "stop guarding DEVICE (until the agent re-arms it)");
  g_release->add_option("DEVICE", guard_cmd_opts.arg, "/dev/dm-0, dm-0 or 254:0")->required();
  auto* g_quar = guard_cmd->add_subcommand("quarantine", "refuse DEVICE to every process but the allowlist");
  g_quar->add_option("DEVICE", guard_cmd_opts.arg, "/dev/dm-0, dm-0 or 254:0")->required();
  auto* g_arm = guard_cmd->add_subcommand("arm", "guard DEVICE by hand: only --owner PIDs among instance processes");
  g_arm->add_option("DEVICE", guard_cmd_opts.arg, "/dev/dm-0, dm-0 or 254:0")->required();
  g_arm->add_option("--owner", guard_cmd_opts.owners, "pid allowed (repeatable)")->required();
  g_arm->add_option("--instance", guard_cmd_opts.instances, "pid the guard applies to (repeatable)");
  (void)g_status;

  lunwatch::cli::DumpCommand dump_opts;
  auto* dump_cmd = app.add_subcommand("dump", "forensic capture dumps: show, verify, now");
  dump_cmd->require_subcommand(1);
  auto* d_show = dump_cmd->add_subcommand("show", "summary and timeline of a capture");
  d_show->add_option("FILE", dump_opts.file)->required();
  d_show->add_flag("--json", dump_opts.json, "the whole capture as JSON");
  auto* d_verify = dump_cmd->add_subcommand("verify", "check a capture's checksum and structure");
  d_verify->add_option("FILE", dump_opts.file)->required();
  auto* d_now = dump_cmd->add_subcommand("now", "ask the running agent for a capture now (SIGUSR1)");
  d_now->add_option("--pid-file", dump_opts.pid_file)->capture_default_str();
  d_now->add_option("--dump-dir", dump_opts.dump_dir)->capture_default_str();
  d_now->add_option("--timeout", dump_opts.timeout_s, "seconds to wait for the file")->capture_default_str();

  bool metrics_json = false;
  auto* metrics_cmd = app.add_subcommand("metrics", "list every Prometheus metric lunwatch exports");
  metrics_cmd->add_flag("--json", metrics_json, "as JSON");

  lunwatch::cli::TopologyOptions topo;
  auto* topo_cmd =
      app.add_subcommand("topology", "who uses what: instance -> volume -> dm -> paths, with verified WWIDs");
  topo_cmd->add_flag("--json", topo.json, "one JSON document (TopologyReport)");
  topo_cmd->add_flag("!--no-verify", topo.verify, "do not send SG_IO INQUIRY (show cached identities only)");
  topo_cmd->add_option("--verify-timeout", topo.verify_timeout_s, "SG_IO INQUIRY timeout in seconds");
  topo_cmd->add_option("--sysfs", topo.sysfs_root, "sysfs root")->capture_default_str();
  topo_cmd->add_option("--config", config_path, "the agent's config: the correlator judges with its [agent] settings")
      ->capture_default_str();
  topo_cmd->add_option("--libvirt-dir", topo.libvirt_dir, "libvirt's live domain XML folder")->capture_default_str();
  topo_cmd->add_flag("!--no-libvirt", topo.libvirt, "do not read libvirt domain XML");
  topo_cmd->add_option("--attachments", topo.attachment_files, "JSON attachment records (file or folder, repeatable)");
  topo_cmd->add_option("--state-file", topo.state_file, "bound identities")->capture_default_str();

  std::string replay_file, replay_format = "json";
  bool replay_events = false;
  auto* replay_cmd = app.add_subcommand("replay", "run the correlator on a recording and print its alerts");
  replay_cmd->add_option("FILE", replay_file, "a recording from `lunwatch run --record`")->required();
  replay_cmd
      ->add_option("--config", config_path,
                   "the agent's config: the correlator judges with its [agent] settings (host_allowlist, "
                   "orphan_grace, hostname)")
      ->capture_default_str();
  replay_cmd->add_option("--alert-format", replay_format, "json or falco")->check(CLI::IsMember({"json", "falco"}));
  replay_cmd->add_flag("--events", replay_events, "print the events too");

  bool probes_json = false;
  auto* probes_cmd = app.add_subcommand("probes", "show every hook and its state on this kernel");
  probes_cmd->add_flag("--json", probes_json, "one JSON document instead of a table");
  std::vector<std::string> probes_disabled;
  probes_cmd->add_option("--disable-hook", probes_disabled,
                         "hook name, or attach kind (fentry, tp_btf, kprobe, raw_tp) to leave off (repeatable)");

  app.add_subcommand("version", "print the version");

  // Subcommands owned by other stages register below this line, one each.
  auto* audit_cmd = lunwatch::cli::add_audit_command(app);
  // (end of subcommand registrations)

  // The config file sets defaults; flags parsed afterwards override them.
  {
    bool explicit_config = false, help = false;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--config" && i + 1 < argc) {
        config_path = argv[i + 1];
        explicit_config = true;
      } else if (a.rfind("--config=", 0) == 0) {
        config_path = a.substr(9);
        explicit_config = true;
      } else if (a == "--help" || a == "-h") {
        help = true;
      }
    }
    // run, replay and topology share the config: replay and topology judge
    // with the correlator options the live agent uses.
    bool is_run = false;
    for (int i = 1; i < argc && !is_run; ++i) {
      std::string a = argv[i];
      is_run = a == "run" || a == "replay" || a == "topology";
    }
    if (is_run && !help) {
      auto cfg = lunwatch::cli::load_config(config_path, explicit_config, agent);
      if (!cfg.ok()) {
        lunwatch::log::error(cfg.error().message);
        return 2;
      }
      agent.cinder = std::move(cfg.value());
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (verbose) lunwatch::log::set_level(lunwatch::log::Level::kDebug);
  run.verbose = verbose;
  run.btf_dir = btf_dir;

  if (*run_cmd) {
    if (auto v = lunwatch::cli::validate_options(agent); !v) {
      lunwatch::log::error(v.error().message);
      return 2;
    }
    if (check_config) return std::printf("config ok\n"), 0;
    return lunwatch::cli::run_agent(agent);
  }
  if (*guard_cmd) {
    if (*g_mode) guard_cmd_opts.action = "mode";
    if (*g_release) guard_cmd_opts.action = "release";
    if (*g_quar) guard_cmd_opts.action = "quarantine";
    if (*g_arm) guard_cmd_opts.action = "arm";
    return lunwatch::cli::cmd_guard(guard_cmd_opts);
  }
  if (*dump_cmd) {
    if (*d_verify) dump_opts.action = "verify";
    if (*d_now) dump_opts.action = "now";
    return lunwatch::cli::cmd_dump(dump_opts);
  }
  if (*metrics_cmd) return lunwatch::cli::cmd_metrics(metrics_json);
  if (*topo_cmd) return lunwatch::cli::cmd_topology(topo, agent);
  if (*replay_cmd) return lunwatch::cli::cmd_replay(replay_file, replay_format, replay_events, agent);
  if (*probes_cmd) return lunwatch::cli::cmd_probes(probes_json, verbose, btf_dir, probes_disabled);
  if (*audit_cmd) return lunwatch::cli::cmd_audit();
  return lunwatch::cli::cmd_version();
}
}  // namespace
