#!/bin/bash
# Scenario "late-modules": scenario intentional with lunwatch started before any
# storage module is loaded (scsi_mod, iscsi_tcp, dm_multipath come after it, as on a
# hypervisor's first volume attach). lunwatch must attach the SCSI, iSCSI and dm hooks
# when their modules (and module BTF) appear, report them attached in its metrics
# (lunwatch_probe_state), and catch the leak as in intentional. See intentional.sh.
export LAB_LATE_MODULES=1
exec bash "$(dirname "$0")/intentional.sh"
