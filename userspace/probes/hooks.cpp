#include "probes/hooks.h"

namespace lunwatch::probes {

const char* attach_kind_name(AttachKind k) {
  switch (k) {
    case AttachKind::kTpBtf: return "tp_btf";
    case AttachKind::kRawTp: return "raw_tp";
    case AttachKind::kFentry: return "fentry";
    case AttachKind::kKprobe: return "kprobe";
    case AttachKind::kLsm: return "lsm";
  }
  return "?";
}

namespace {

HookSpec tracepoint(std::string subsystem, std::string tp, std::string prog, std::string purpose) {
  return {tp,
          std::move(subsystem),
          tp,
          std::move(purpose),
          {{prog, AttachKind::kTpBtf}, {prog + "_raw", AttachKind::kRawTp}}};
}

HookSpec function(std::string subsystem, std::string name, std::string fn, std::string prog, std::string purpose) {
  return {std::move(name),
          std::move(subsystem),
          std::move(fn),
          std::move(purpose),
          {{prog, AttachKind::kFentry}, {prog + "_kp", AttachKind::kKprobe}}};
}

}  // namespace

const std::vector<HookSpec>& hook_specs() {
  static const std::vector<HookSpec> specs = {
      tracepoint("block", "block_bio_queue", "lw_bio_queue", "per-process I/O flows (submitter context)"),
      tracepoint("block", "block_bio_remap", "lw_bio_remap", "bio-based stack edges (dm-linear, dm-crypt)"),
      tracepoint("block", "block_rq_remap", "lw_rq_remap", "request-based stack edges (dm-multipath -> sd)"),
      tracepoint("scsi", "scsi_dispatch_cmd_start", "lw_scsi_start", "sd device <-> host:channel:target:LUN"),
      tracepoint("scsi", "scsi_dispatch_cmd_done", "lw_scsi_done", "command errors and sense data"),
      function("scsi", "scsi_device_add", "scsi_sysfs_add_sdev", "lw_sdev_add", "SCSI device added"),
      function("scsi", "scsi_device_remove", "__scsi_remove_device", "lw_sdev_remove", "SCSI device removed"),
      function("scsi", "scsi_device_rescan", "scsi_rescan_device", "lw_sdev_rescan", "SCSI device rescanned"),
      function("scsi", "scsi_host_scan", "scsi_scan_host_selected", "lw_host_scan", "host scan (sysfs scan, os-brick)"),
      function("iscsi", "iscsi_host_scan", "iscsi_user_scan", "lw_iscsi_scan",
               "sysfs scan of an iSCSI host (os-brick's LUN scan)"),
      function("fc", "fc_host_scan", "fc_user_scan", "lw_fc_scan", "sysfs scan of an FC host"),
      function("scsi", "scsi_device_event", "sdev_evt_send_simple", "lw_sdev_event",
               "unit attentions: LUN inventory/inquiry/capacity changed"),
      function("iscsi", "iscsi_session_block", "iscsi_block_session", "lw_iscsi_block", "iSCSI session blocked"),
      function("iscsi", "iscsi_session_unblock", "iscsi_unblock_session", "lw_iscsi_unblock",
               "iSCSI session unblocked (recovered)"),
      function("iscsi", "iscsi_conn_error", "iscsi_conn_error_event", "lw_iscsi_err", "iSCSI connection error"),
      function("iscsi", "iscsi_conn_login", "iscsi_conn_login_event", "lw_iscsi_login", "iSCSI login state change"),
      function("dm", "dm_path_event", "dm_path_uevent", "lw_dm_path", "dm-multipath path failed / reinstated"),
      {"guard_file_permission",
       "guard",
       "file_permission",
       "guard: refuse read/write of a guarded block device",
       {{"lw_guard_perm", AttachKind::kLsm}}},
      {"guard_file_open",
       "guard",
       "file_open",
       "guard: refuse opening a guarded block device",
       {{"lw_guard_open", AttachKind::kLsm}}},
  };
  return specs;
}

}  // namespace lunwatch::probes
