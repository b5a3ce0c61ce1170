// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * lunwatch's kernel side, one object built from one file per concern:
 *   io.bpf.h        bio submission flows and device stack edges
 *   scsi.bpf.h      sd dev_t <-> host:channel:target:LUN, command errors + sense
 *   lifecycle.bpf.h scans, add/remove/rescan, iSCSI, multipath paths, unit attentions
 *   guard.bpf.h     BPF LSM: refuse I/O to non-owners; fail closed on reconnect events
 * Maps are all in maps.bpf.h, kernel differences in core_fixes.bpf.h, and the
 * records userspace reads in lunwatch.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "lunwatch.h"
#include "maps.bpf.h"
#include "core_fixes.bpf.h"
#include "io.bpf.h"
#include "guard.bpf.h"
#include "scsi.bpf.h"
#include "lifecycle.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
