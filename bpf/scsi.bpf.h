/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * SCSI command path: which sd device answers at which host:channel:target:LUN
 * (reported once per binding), and commands that complete with an error, with
 * their sense data (rate-limited per device).
 */
#pragma once

#include "maps.bpf.h"
#include "core_fixes.bpf.h"
#include "guard.bpf.h"
#include <bpf/bpf_tracing.h>

#define LW_SAM_STAT_CHECK_CONDITION 0x02

static __always_inline void lw_sdev_addr(struct scsi_device___lw *sdev, struct lw_scsi_addr *a,
					 const bool btf)
{
	a->host = LW_ARG_READ(btf, sdev->host->host_no, sdev, host, host_no);
	a->channel = LW_ARG_READ(btf, sdev->channel, sdev, channel);
	a->id = LW_ARG_READ(btf, sdev->id, sdev, id);
	a->lun = LW_ARG_READ(btf, sdev->lun, sdev, lun);
	a->pad = 0;
}

/*
 * The gendisk a command is for. Its request's queue is the device's own:
 * scsi_queue_rq takes the scsi_device from req->q->queuedata and sets
 * cmd->device to it, and scsi_alloc_sdev pairs sdev->request_queue with
 * q->queuedata, so cmd->device->request_queue == the request's q. Going through
 * the device (not back from the command to its request, at a negative offset
 * the verifier refuses for BTF pointers) keeps tp_btf's reads plain loads.
 */
static __always_inline struct gendisk *lw_sdev_disk(struct scsi_device___lw *sdev, const bool btf)
{
	return LW_ARG_READ(btf, sdev->request_queue->disk, sdev, request_queue, disk);
}

static __always_inline int lw_handle_dispatch(struct scsi_cmnd___lw *cmd, const bool btf)
{
	/* Commands sent before a disk driver binds (scan INQUIRY, REPORT LUNS)
	 * have no gendisk: nothing to bind yet. */
	struct scsi_device___lw *sdev = LW_ARG_READ(btf, cmd->device, cmd, device);
	struct gendisk *disk = lw_sdev_disk(sdev, btf);
	__u32 dev = lw_disk_devt_arg(disk, btf);
	if (!dev)
		return 0;
	struct lw_scsi_addr addr;
	lw_sdev_addr(sdev, &addr, btf);

	struct lw_scsi_addr *old = bpf_map_lookup_elem(&bindings, &dev);
	if (old && old->host == addr.host && old->channel == addr.channel && old->id == addr.id &&
	    old->lun == addr.lun)
		return 0;

	struct lw_bind_event *e;
	if (!LW_RESERVE(e, LW_EV_SCSI_BIND))
		return 0;
	e->addr = addr;
	e->dev = dev;
	e->prev_valid = old ? 1 : 0;
	if (old)
		e->prev = *old;
	else
		__builtin_memset(&e->prev, 0, sizeof(e->prev));
	lw_disk_name(disk, e->disk_name, sizeof(e->disk_name));
	bpf_ringbuf_submit(e, 0);
	if (bpf_map_update_elem(&bindings, &dev, &addr, BPF_ANY))
		lw_drop(LW_DROP_BIND_MAP_FULL);
	return 0;
}

static __always_inline int lw_handle_done(struct scsi_cmnd___lw *cmd, const bool btf)
{
	int result = LW_ARG_READ(btf, cmd->result, cmd, result);
	if (result == 0)
		return 0;
	struct scsi_device___lw *sdev = LW_ARG_READ(btf, cmd->device, cmd, device);
	struct gendisk *disk = lw_sdev_disk(sdev, btf);
	__u32 dev = lw_disk_devt_arg(disk, btf);
	__u8 sense[LW_SENSE_LEN] = {};
	__u8 status = result & 0xff;
	unsigned char *sb = LW_ARG_READ(btf, cmd->sense_buffer, cmd, sense_buffer);
	if (status == LW_SAM_STAT_CHECK_CONDITION && sb)
		bpf_probe_read_kernel(sense, sizeof(sense), sb);

	/* Rate limit per device; a different (result, key, asc, ascq) always passes. */
	/* Load every byte we may need at a constant offset first: a computed
	 * stack offset (the compiler merges the two layouts' loads) is refused
	 * by the verifier ("bitwise operator on pointer"). */
	__u8 fmt = sense[0] & 0x7f;
	__u8 s1 = sense[1], s2 = sense[2], s3 = sense[3], s12 = sense[12], s13 = sense[13];
	asm volatile("" : "+r"(s1), "+r"(s2), "+r"(s3), "+r"(s12), "+r"(s13));
	__u8 key = 0, asc = 0, ascq = 0;
	if (fmt >= 0x72) { /* descriptor format */
		key = s1 & 0xf;
		asc = s2;
		ascq = s3;
	} else if (fmt >= 0x70) { /* fixed format */
		key = s2 & 0xf;
		asc = s12;
		ascq = s13;
	}
	/* Identity may have changed under the holders: close guarded devices now. */
	if (key == 5 && (asc == 0x25 || asc == 0x68))
		lw_guard_close(~0U, ~0ULL, dev, LW_CLOSE_LUN_NOT_SUPPORTED);
	else if (key == 6 && (asc == 0x3f || asc == 0x29))
		lw_guard_close(~0U, ~0ULL, dev, LW_CLOSE_UNIT_ATTENTION);

	__u32 rkey = ((__u32)result << 8) ^ ((__u32)key << 16) ^ ((__u32)asc << 8) ^ ascq;
	__u64 now = bpf_ktime_get_ns();
	__u16 suppressed = 0;
	struct lw_ratelimit *rl = bpf_map_lookup_elem(&err_limit, &dev);
	if (rl) {
		if (rl->last_key == rkey && now - rl->last_ns < lw_cfg.error_ratelimit_ns) {
			__sync_fetch_and_add(&rl->suppressed, 1);
			lw_drop(LW_DROP_ERROR_RATELIMIT);
			return 0;
		}
		suppressed = rl->suppressed > 0xffff ? 0xffff : rl->suppressed;
		rl->suppressed = 0;
		rl->last_ns = now;
		rl->last_key = rkey;
	} else {
		struct lw_ratelimit nrl = {.last_ns = now, .last_key = rkey};
		bpf_map_update_elem(&err_limit, &dev, &nrl, BPF_ANY);
	}

	struct lw_error_event *e;
	if (!LW_RESERVE_AT(e, LW_EV_SCSI_ERROR, now))
		return 0;
	lw_sdev_addr(sdev, &e->addr, btf);
	e->dev = dev;
	e->result = result;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->cdb0 = lw_scsi_cdb0(cmd);
	e->sense_len = status == LW_SAM_STAT_CHECK_CONDITION ? LW_SENSE_LEN : 0;
	e->suppressed = suppressed;
	__builtin_memcpy(e->sense, sense, sizeof(sense));
	lw_disk_name(disk, e->disk_name, sizeof(e->disk_name));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/scsi_dispatch_cmd_start")
int BPF_PROG(lw_scsi_start, struct scsi_cmnd___lw *cmd)
{
	return lw_handle_dispatch(cmd, true);
}

SEC("raw_tp/scsi_dispatch_cmd_start")
int BPF_PROG(lw_scsi_start_raw, struct scsi_cmnd___lw *cmd)
{
	return lw_handle_dispatch(cmd, false);
}

SEC("tp_btf/scsi_dispatch_cmd_done")
int BPF_PROG(lw_scsi_done, struct scsi_cmnd___lw *cmd)
{
	return lw_handle_done(cmd, true);
}

SEC("raw_tp/scsi_dispatch_cmd_done")
int BPF_PROG(lw_scsi_done_raw, struct scsi_cmnd___lw *cmd)
{
	return lw_handle_done(cmd, false);
}
