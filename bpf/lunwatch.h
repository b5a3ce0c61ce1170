/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The only definition of what the kernel side tells userspace: ring-buffer
 * records, map keys and values, drop causes. Included by the BPF programs
 * (after vmlinux.h) and by the C++ decoder (which static_asserts every size).
 *
 * Rules: fixed-width types, 64-bit fields first, every record starts with
 * struct lw_hdr, and a record never shrinks (new fields go at the end, the
 * decoder accepts a longer record than it knows).
 *
 * Device numbers here are the kernel's encoding: major << 20 | minor.
 */
#pragma once

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define LW_COMM_LEN  16
#define LW_SENSE_LEN 32
#define LW_NAME_LEN  32

/* Kernel dev_t encoding (include/linux/kdev_t.h). */
#define LW_MINORBITS 20
#define LW_MINORMASK ((1U << LW_MINORBITS) - 1)

enum lw_event_type {
	LW_EV_FLOW_NEW = 1,   /* first I/O of a (tgid, dev) flow */
	LW_EV_STACK_EDGE = 2, /* first remap from an upper to a lower device */
	LW_EV_SCSI_BIND = 3,  /* a block device seen at a SCSI address (new or changed) */
	LW_EV_SCSI_ERROR = 4, /* a SCSI command completed with a non-good result */
	LW_EV_LIFECYCLE = 5,  /* scan, add/remove/rescan, iSCSI, multipath path, device event */
	LW_EV_GUARD = 6,      /* the guard refused (or, in monitor mode, would refuse) I/O */
	LW_EV_MAX = 7,
};

/* Block operation, the kernel's REQ_OP_* low byte. */
enum lw_op {
	LW_OP_READ = 0,
	LW_OP_WRITE = 1,
	LW_OP_FLUSH = 2,
	LW_OP_DISCARD = 3,
	LW_OP_SECURE_ERASE = 5,
	LW_OP_WRITE_ZEROES = 9,
};

enum lw_edge_kind {
	LW_EDGE_BIO_REMAP = 1, /* bio-based dm (linear, crypt...): block_bio_remap */
	LW_EDGE_RQ_REMAP = 2,  /* request-based dm (multipath): block_rq_remap */
};

enum lw_lifecycle_kind {
	LW_LC_SCSI_DEVICE_ADD = 1,
	LW_LC_SCSI_DEVICE_REMOVE = 2,
	LW_LC_SCSI_DEVICE_RESCAN = 3,
	LW_LC_SCSI_HOST_SCAN = 4,
	LW_LC_ISCSI_SESSION_BLOCK = 5,
	LW_LC_ISCSI_SESSION_UNBLOCK = 6,
	LW_LC_ISCSI_CONN_ERROR = 7,
	LW_LC_ISCSI_CONN_LOGIN = 8,
	LW_LC_DM_PATH_FAIL = 9,
	LW_LC_DM_PATH_REINSTATE = 10,
	LW_LC_SCSI_DEVICE_EVENT = 11,
	LW_LC_MAX = 12,
};

/* Why an event or an update was lost; index into the `drops` map. */
enum lw_drop_cause {
	LW_DROP_RINGBUF_FULL = 0,    /* bpf_ringbuf_reserve failed */
	LW_DROP_FLOW_MAP_FULL = 1,   /* flow insert failed (not EEXIST) */
	LW_DROP_EDGE_MAP_FULL = 2,   /* stack-edge insert failed */
	LW_DROP_BIND_MAP_FULL = 3,   /* SCSI binding insert failed */
	LW_DROP_ERROR_RATELIMIT = 4, /* SCSI error suppressed by the per-device rate limit */
	LW_DROP_READ_FAULT = 5,	     /* a kernel read needed for an event failed */
	LW_DROP_MAX = 6,
};

/* Counters indexed by this enum live in the per-CPU `stats` map. */
enum lw_stat {
	/* bios seen on the data path. The kernel counts here only the bios that
	 * were not a FLOW_REPEAT (new flow, insert race, map full), so that the
	 * common case costs one counter; readers add FLOW_REPEAT to get every bio
	 * (Probes::stats() does). */
	LW_STAT_IO_SEEN = 0,
	LW_STAT_FLOW_REPEAT = 1, /* bios that only updated an existing flow */
	LW_STAT_EVENTS_BASE = 2, /* + lw_event_type: events written to the ring buffer */
	LW_STAT_MAX = LW_STAT_EVENTS_BASE + LW_EV_MAX,
};

/* SCSI_SCAN wildcard as passed to scsi_scan_host_selected (SCAN_WILD_CARD). */
#define LW_SCAN_WILD_CARD 0xffffffffU

struct lw_hdr {
	__u64 ts_ns; /* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 type;  /* enum lw_event_type */
	__u32 size;  /* bytes of the whole record, header included */
};

struct lw_flow_key {
	__u32 tgid;
	__u32 dev;
};

struct lw_flow_val {
	__u64 bytes[2]; /* [0] read, [1] write (other ops count in ios only) */
	__u64 ios[2];	/* [0] read-like, [1] write-like (write, discard, zeroes, flush) */
	__u64 first_ns;
	__u64 last_ns;
	__u64 cgroup_id;
	/* The disk's sequence number (gendisk diskseq, unique per disk since boot;
	 * 0 before 5.15): a device removed and re-created under the same dev_t
	 * is another disk, and the flow is reported again on its first bio. */
	__u64 diskseq;
};

struct lw_edge_key {
	__u32 upper;
	__u32 lower;
};

struct lw_scsi_addr {
	__u64 lun;
	__u32 host;
	__u32 channel;
	__u32 id;
	__u32 pad;
};

struct lw_flow_event {
	struct lw_hdr hdr;
	__u64 cgroup_id;
	__u64 bytes;
	__u32 tgid;
	__u32 tid;
	__u32 dev;
	__u32 op;
	char comm[LW_COMM_LEN];
};

struct lw_edge_event {
	struct lw_hdr hdr;
	__u32 upper;
	__u32 lower;
	__u32 kind; /* enum lw_edge_kind */
	__u32 tgid; /* who was running when the remap happened */
};

struct lw_bind_event {
	struct lw_hdr hdr;
	struct lw_scsi_addr addr;
	__u32 dev;
	__u32 prev_valid; /* 1 when the device was bound to another address before */
	struct lw_scsi_addr prev;
	char disk_name[LW_NAME_LEN]; /* gendisk name ("sda"): sysfs may not show it yet */
};

struct lw_error_event {
	struct lw_hdr hdr;
	struct lw_scsi_addr addr;
	__u32 dev;
	__u32 result; /* scsi_cmnd->result: host byte << 16 | status byte */
	__u32 tgid;
	__u8 cdb0;	  /* opcode of the failed command */
	__u8 sense_len;	  /* bytes valid in sense[] */
	__u16 suppressed; /* errors on this device not reported since the last event */
	__u8 sense[LW_SENSE_LEN];
	char disk_name[LW_NAME_LEN];
};

struct lw_lifecycle_event {
	struct lw_hdr hdr;
	struct lw_scsi_addr addr; /* host/channel/id/lun; LW_SCAN_WILD_CARD where wild */
	__u32 kind;		  /* enum lw_lifecycle_kind */
	__u32 dev;		  /* block device when known, else 0 */
	__u32 session;		  /* iSCSI session id (sid) when known, else ~0 */
	__s32 code; /* kind-specific: iSCSI error, login state, valid paths, event type */
	__u32 tgid;
	__u32 pad;
	char name[LW_NAME_LEN]; /* kind-specific: dm path "8:16", map name, target */
};

/* ---------------------------------------------------------------- guard */

enum lw_guard_mode {
	LW_GUARD_OFF = 0,
	LW_GUARD_MONITOR = 1, /* decide and report, never refuse */
	LW_GUARD_ENFORCE = 2,
};

enum lw_guard_state {
	LW_GUARD_VERIFIED = 1, /* identity verified: only owners among instance processes */
	LW_GUARD_UNVERIFIED =
		2, /* identity may have changed: no instance process until re-verified */
	LW_GUARD_QUARANTINE = 3, /* nobody but the allowlist */
};

/* Why the kernel closed a device by itself (fail closed on reconnect). */
enum lw_guard_close {
	LW_CLOSE_NONE = 0,
	LW_CLOSE_SCAN = 1,
	LW_CLOSE_RESCAN = 2,
	LW_CLOSE_SESSION_UNBLOCK = 3,
	LW_CLOSE_UNIT_ATTENTION = 4,
	LW_CLOSE_LUN_NOT_SUPPORTED = 5,
	LW_CLOSE_PATH_REINSTATE = 6,
};

#define LW_GUARD_MAX_OWNERS	   4
#define LW_GUARD_MAX_PATHS	   8
#define LW_GUARD_MAX_OWNER_CGROUPS 4

struct lw_guard_path {
	__u32 dev;  /* sd dev_t */
	__u32 host; /* SCSI host number */
	__u64 lun;
};

/* Policy for one block device (dm map or sd): written by userspace, closed by the kernel. */
struct lw_guard_dev {
	__u64 generation;   /* userspace's policy generation when it armed this entry */
	__u64 closed_ns;    /* when the kernel closed it (0: not closed by the kernel) */
	__u32 state;	    /* enum lw_guard_state */
	__u32 close_reason; /* enum lw_guard_close */
	__u32 n_owners;
	__u32 n_paths;
	__u32 owners[LW_GUARD_MAX_OWNERS]; /* tgids of the instance processes allowed */
	struct lw_guard_path paths[LW_GUARD_MAX_PATHS];
	/* Paths (bit i: paths[i]) that the kernel's closes since the last arm were
	 * about: only they must re-verify before the device re-opens. All bits when
	 * a close named the device itself. */
	__u32 closed_paths;
	__u32 n_owner_cgroups;
	/* cgroup v2 ids of the owners' instance scopes: any process in them is an
	 * owner (qemu's helpers, a restarted qemu before userspace knows its pid). */
	__u64 owner_cgroups[LW_GUARD_MAX_OWNER_CGROUPS];
};

struct lw_guard_cfg {
	__u32 mode; /* enum lw_guard_mode */
	__u32 pad;
	__u64 report_ratelimit_ns;
};

enum lw_guard_stat {
	LW_GSTAT_CHECKS = 0,	 /* decisions on a guarded device for instance processes (or anyone,
				    quarantined) */
	LW_GSTAT_DENIED = 1,	 /* refused (enforce) */
	LW_GSTAT_WOULD_DENY = 2, /* would refuse (monitor) */
	LW_GSTAT_CLOSED = 3,	 /* devices closed by the kernel on reconnect events */
	LW_GSTAT_MAX = 4,
};

struct lw_guard_event {
	struct lw_hdr hdr;
	__u32 tgid;
	__u32 dev;
	__u32 state;  /* device state at the decision */
	__u32 mode;   /* guard mode at the decision */
	__u32 mask;   /* MAY_READ 4 / MAY_WRITE 2 (file_permission), 0 for open */
	__u32 denied; /* 1 refused, 0 monitor only */
	__u32 suppressed;
	__u32 pad;
	char comm[LW_COMM_LEN];
};

/* Settings written by userspace before load (rodata). */
struct lw_config {
	__u64 error_ratelimit_ns; /* minimum gap between two error events per device */
	__u32 self_tgid;	  /* the agent itself: its own I/O is not traced */
	__u32 pad;
};
