/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Lifecycle: the moments a device's identity may change under a holder.
 * SCSI device add/remove/rescan, host scans (os-brick writes "C T L" to
 * scsi_host/hostH/scan), iSCSI session block/unblock, connection errors and
 * logins, dm-multipath path fail/reinstate, SCSI device events (unit
 * attentions). Each hook comes as fentry (preferred) and kprobe (fallback);
 * the loader autoloads one of the pair, or neither when the function is absent.
 */
#pragma once

#include "maps.bpf.h"
#include "core_fixes.bpf.h"
#include "guard.bpf.h"
#include <bpf/bpf_tracing.h>

/* Set by the loader from BTF: since v6.6 (commit 741b1e7bb3b6... "scsi: core:
 * Pass a SCSI device to scsi_rescan_device()") the argument is the scsi_device,
 * before it was its embedded struct device (sdev_gendev). */
const volatile bool lw_rescan_takes_sdev = false;

static __always_inline struct lw_lifecycle_event *lw_lc_begin(__u32 kind)
{
	struct lw_lifecycle_event *e;
	if (!LW_RESERVE(e, LW_EV_LIFECYCLE))
		return 0;
	e->kind = kind;
	e->addr.host = ~0U;
	e->addr.channel = ~0U;
	e->addr.id = ~0U;
	e->addr.lun = ~0ULL;
	e->addr.pad = 0;
	e->dev = 0;
	e->session = ~0U;
	e->code = 0;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->pad = 0;
	__builtin_memset(e->name, 0, sizeof(e->name));
	return e;
}

/* A removed device's number is reused by the next device (LIO and the SCSI
 * layer hand out the same sd name, dev_t and H:C:T:L): forget its edges and
 * binding, so the new one is reported afresh. Its flows stay, with their
 * counters; each carries the disk's sequence number (io.bpf.h), so a process
 * that reads the successor is reported as a new flow on its first bio. */
static long lw_forget_edge_cb(void *map, struct lw_edge_key *k, __u64 *v, __u32 *dev)
{
	if (k->lower == *dev || k->upper == *dev)
		bpf_map_delete_elem(map, k);
	return 0;
}

static __always_inline void lw_forget_dev(__u32 dev)
{
	if (!dev)
		return;
	bpf_map_delete_elem(&bindings, &dev);
	bpf_map_delete_elem(&err_limit, &dev);
	bpf_for_each_map_elem(&edges, lw_forget_edge_cb, &dev, 0);
}

static __always_inline int lw_lc_sdev(__u32 kind, struct scsi_device___lw *sdev, int code)
{
	__u32 host = ~0U, dev = 0;
	__u64 lun = ~0ULL;
	if (sdev) {
		host = BPF_CORE_READ(sdev, host, host_no);
		lun = BPF_CORE_READ(sdev, lun);
		dev = lw_disk_devt(BPF_CORE_READ(sdev, request_queue, disk));
	}
	/* A rescan or a unit attention: the identity may have changed. */
	if (sdev && kind == LW_LC_SCSI_DEVICE_RESCAN)
		lw_guard_close(host, lun, dev, LW_CLOSE_RESCAN);
	if (sdev && kind == LW_LC_SCSI_DEVICE_EVENT)
		lw_guard_close(host, lun, dev, LW_CLOSE_UNIT_ATTENTION);
	if (kind == LW_LC_SCSI_DEVICE_REMOVE)
		lw_forget_dev(dev);
	struct lw_lifecycle_event *e = lw_lc_begin(kind);
	if (!e)
		return 0;
	if (sdev) {
		e->addr.host = host;
		e->addr.channel = BPF_CORE_READ(sdev, channel);
		e->addr.id = BPF_CORE_READ(sdev, id);
		e->addr.lun = lun;
		e->dev = dev;
	}
	e->code = code;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int lw_lc_rescan(__u64 arg)
{
	__u64 sdev = arg;
	if (!lw_rescan_takes_sdev && arg)
		sdev = arg - bpf_core_field_offset(struct scsi_device___lw, sdev_gendev);
	return lw_lc_sdev(LW_LC_SCSI_DEVICE_RESCAN, (struct scsi_device___lw *)sdev, 0);
}

static __always_inline int lw_lc_host_scan(struct Scsi_Host___lw *shost, __u32 channel, __u32 id,
					   __u64 lun, int mode)
{
	__u32 host = BPF_CORE_READ(shost, host_no);
	/* A scan may map another volume at a LUN a holder still has open. */
	lw_guard_close(host, lun == (__u64)LW_SCAN_WILD_CARD ? ~0ULL : lun, 0, LW_CLOSE_SCAN);
	struct lw_lifecycle_event *e = lw_lc_begin(LW_LC_SCSI_HOST_SCAN);
	if (!e)
		return 0;
	e->addr.host = host;
	e->addr.channel = channel;
	e->addr.id = id;
	e->addr.lun = lun;
	e->code = mode;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

static __always_inline int lw_lc_session(__u32 kind, __u64 session, int code)
{
	__u32 sid = ~0U, target = ~0U, host = ~0U;
	if (session) {
		struct iscsi_cls_session___lw *s = (void *)session;
		sid = BPF_CORE_READ(s, sid);
		target = BPF_CORE_READ(s, target_id);
		__u64 parent = (__u64)BPF_CORE_READ(s, dev.parent);
		host = lw_host_no_of_gendev(parent);
	}
	/* A session back from recovery may be talking to a remapped LUN: closed
	 * whether or not the ring has room for the event (the guard never
	 * depends on it). */
	if (kind == LW_LC_ISCSI_SESSION_UNBLOCK && host != ~0U)
		lw_guard_close(host, ~0ULL, 0, LW_CLOSE_SESSION_UNBLOCK);
	struct lw_lifecycle_event *e = lw_lc_begin(kind);
	if (!e)
		return 0;
	if (session) {
		e->session = sid;
		e->addr.id = target;
		e->addr.host = host;
	}
	e->code = code;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* A connection's device hangs below its session's (iscsi_alloc_conn). */
static __always_inline int lw_lc_conn(__u32 kind, struct iscsi_cls_conn___lw *conn, int code)
{
	__u64 session = 0;
	if (conn) {
		__u64 parent = (__u64)BPF_CORE_READ(conn, dev.parent);
		if (parent)
			session =
				parent - bpf_core_field_offset(struct iscsi_cls_session___lw, dev);
	}
	return lw_lc_session(kind, session, code);
}

/* dm_uevent_type: DM_UEVENT_PATH_FAILED = 0, DM_UEVENT_PATH_REINSTATED = 1. */
static __always_inline int lw_lc_dm_path(int type, struct dm_target___lw *ti, const char *path,
					 unsigned int nr_valid)
{
	__u32 dev = lw_disk_devt(BPF_CORE_READ(ti, table, md, disk));
	/* A reinstated path may lead to a remapped LUN: closed first, whether or
	 * not the ring has room for the event. */
	if (type != 0)
		lw_guard_close(~0U, ~0ULL, dev, LW_CLOSE_PATH_REINSTATE);
	struct lw_lifecycle_event *e =
		lw_lc_begin(type == 0 ? LW_LC_DM_PATH_FAIL : LW_LC_DM_PATH_REINSTATE);
	if (!e)
		return 0;
	e->dev = dev;
	e->code = nr_valid;
	if (path)
		bpf_probe_read_kernel_str(e->name, sizeof(e->name), path);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* One fentry program and one kprobe twin per kernel function. */
#define LW_DUAL(func, name, call, ...)                                                             \
	SEC("fentry/" #func)                                                                       \
	int BPF_PROG(name, __VA_ARGS__)                                                            \
	{                                                                                          \
		return call;                                                                       \
	}                                                                                          \
	SEC("kprobe/" #func)                                                                       \
	int BPF_KPROBE(name##_kp, __VA_ARGS__)                                                     \
	{                                                                                          \
		return call;                                                                       \
	}

LW_DUAL(scsi_sysfs_add_sdev, lw_sdev_add, lw_lc_sdev(LW_LC_SCSI_DEVICE_ADD, sdev, 0),
	struct scsi_device___lw *sdev)

LW_DUAL(__scsi_remove_device, lw_sdev_remove, lw_lc_sdev(LW_LC_SCSI_DEVICE_REMOVE, sdev, 0),
	struct scsi_device___lw *sdev)

LW_DUAL(scsi_rescan_device, lw_sdev_rescan, lw_lc_rescan((__u64)arg), void *arg)

LW_DUAL(scsi_scan_host_selected, lw_host_scan, lw_lc_host_scan(shost, channel, id, lun, mode),
	struct Scsi_Host___lw *shost, unsigned int channel, unsigned int id, __u64 lun, int mode)

/* Transports with their own scan (iSCSI, FC) take sysfs scans away from
 * scsi_scan_host_selected: os-brick's "echo '- - 1' > hostH/scan" on an iSCSI
 * host lands in iscsi_user_scan. Same first four arguments. */
LW_DUAL(iscsi_user_scan, lw_iscsi_scan,
	lw_lc_host_scan(shost, channel, id, lun, 2 /* SCSI_SCAN_MANUAL */),
	struct Scsi_Host___lw *shost, unsigned int channel, unsigned int id, __u64 lun)

LW_DUAL(fc_user_scan, lw_fc_scan,
	lw_lc_host_scan(shost, channel, id, lun, 2 /* SCSI_SCAN_MANUAL */),
	struct Scsi_Host___lw *shost, unsigned int channel, unsigned int id, __u64 lun)

LW_DUAL(sdev_evt_send_simple, lw_sdev_event, lw_lc_sdev(LW_LC_SCSI_DEVICE_EVENT, sdev, evt),
	struct scsi_device___lw *sdev, int evt)

LW_DUAL(iscsi_block_session, lw_iscsi_block, lw_lc_session(LW_LC_ISCSI_SESSION_BLOCK, (__u64)s, 0),
	struct iscsi_cls_session___lw *s)

LW_DUAL(iscsi_unblock_session, lw_iscsi_unblock,
	lw_lc_session(LW_LC_ISCSI_SESSION_UNBLOCK, (__u64)s, 0), struct iscsi_cls_session___lw *s)

LW_DUAL(iscsi_conn_error_event, lw_iscsi_err, lw_lc_conn(LW_LC_ISCSI_CONN_ERROR, conn, err),
	struct iscsi_cls_conn___lw *conn, int err)

LW_DUAL(iscsi_conn_login_event, lw_iscsi_login, lw_lc_conn(LW_LC_ISCSI_CONN_LOGIN, conn, state),
	struct iscsi_cls_conn___lw *conn, int state)

LW_DUAL(dm_path_uevent, lw_dm_path, lw_lc_dm_path(type, ti, path, nr_valid), int type,
	struct dm_target___lw *ti, const char *path, unsigned int nr_valid)
