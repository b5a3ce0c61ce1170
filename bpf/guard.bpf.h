/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Guard: BPF LSM programs that refuse reads and writes on a guarded block
 * device to instance processes that are not its verified owners, including
 * on file descriptors opened long ago (file_permission covers read/write,
 * psync, libaio and io_uring submissions). Non-block files return after one
 * mode check; the decision is map lookups only.
 *
 * Fail closed on reconnect: the lifecycle hooks that mean "identity may have
 * changed" close the affected devices here, synchronously, until userspace
 * re-verifies through SG_IO and re-arms them.
 */
#pragma once

#include "maps.bpf.h"
#include "core_fixes.bpf.h"
#include <bpf/bpf_tracing.h>

#define LW_S_IFMT  00170000
#define LW_S_IFBLK 0060000

static __always_inline void lw_gcount(__u32 idx)
{
	lw_count(&guard_stats, idx);
}

/* The owners' instance scopes (libvirt's machine scopes), when known, decide:
 * a pid alone is no proof, since the pid of a qemu that exited (while no agent
 * ran to update these maps, say) may name another process by now, one that
 * runs outside the scope. Without known scopes the owners' tgids decide. */
static __always_inline bool lw_is_owner(struct lw_guard_dev *g, __u32 tgid, __u64 cgid)
{
	if (g->n_owner_cgroups) {
		if (!cgid)
			cgid = bpf_get_current_cgroup_id();
#pragma unroll
		for (int i = 0; i < LW_GUARD_MAX_OWNER_CGROUPS; i++)
			if (i < g->n_owner_cgroups && g->owner_cgroups[i] == cgid)
				return true;
		return false;
	}
#pragma unroll
	for (int i = 0; i < LW_GUARD_MAX_OWNERS; i++)
		if (i < g->n_owners && g->owners[i] == tgid)
			return true;
	return false;
}

static __always_inline void lw_guard_report(__u32 tgid, __u32 dev, struct lw_guard_dev *g,
					    __u32 mode, __u32 mask, bool denied, __u64 ratelimit_ns)
{
	struct lw_flow_key k = {.tgid = tgid, .dev = dev};
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&guard_reported, &k);
	if (last && now - *last < ratelimit_ns)
		return;
	bpf_map_update_elem(&guard_reported, &k, &now, BPF_ANY);
	struct lw_guard_event *e;
	if (!LW_RESERVE(e, LW_EV_GUARD))
		return;
	e->tgid = tgid;
	e->dev = dev;
	e->state = g->state;
	e->mode = mode;
	e->mask = mask;
	e->denied = denied;
	e->suppressed = 0;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int lw_guard_check(struct file *file, __u32 mask)
{
	/* LSM programs get BTF-typed arguments: plain (CO-RE relocated, fault-safe)
	 * loads, no bpf_probe_read_kernel calls on the path every read and write
	 * of every file takes. */
	struct inode *inode = file->f_inode;
	if (!inode)
		return 0;
	umode_t imode = inode->i_mode;
	if ((imode & LW_S_IFMT) != LW_S_IFBLK)
		return 0; /* not a block device: the common case, two loads and a compare */

	__u32 zero = 0;
	struct lw_guard_cfg *cfg = bpf_map_lookup_elem(&guard_cfg, &zero);
	if (!cfg || cfg->mode == LW_GUARD_OFF)
		return 0;
	__u32 dev = inode->i_rdev;
	struct lw_guard_dev *g = bpf_map_lookup_elem(&guard_devs, &dev);
	if (!g)
		return 0;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	/* An instance process: its tgid is known, or it runs in an instance's
	 * cgroup scope. Host processes are watched (HOST_PROCESS_ACCESS), not
	 * refused, except on a quarantined device. */
	__u64 cgid = 0; /* looked up only when the tgid says nothing */
	bool instance = bpf_map_lookup_elem(&guard_procs, &tgid);
	if (!instance) {
		cgid = bpf_get_current_cgroup_id();
		instance = bpf_map_lookup_elem(&guard_cgroups, &cgid);
	}
	if (g->state != LW_GUARD_QUARANTINE && !instance)
		return 0;
	lw_gcount(LW_GSTAT_CHECKS);
	if (bpf_map_lookup_elem(&guard_allow, &tgid))
		return 0;
	bool deny = g->state != LW_GUARD_VERIFIED || !lw_is_owner(g, tgid, cgid);
	if (!deny)
		return 0;
	bool enforce = cfg->mode == LW_GUARD_ENFORCE;
	lw_gcount(enforce ? LW_GSTAT_DENIED : LW_GSTAT_WOULD_DENY);
	lw_guard_report(tgid, dev, g, cfg->mode, mask, enforce, cfg->report_ratelimit_ns);
	return enforce ? -LW_EPERM : 0;
}

SEC("lsm/file_permission")
int BPF_PROG(lw_guard_perm, struct file *file, int mask, int ret)
{
	if (ret)
		return ret;
	return lw_guard_check(file, mask);
}

SEC("lsm/file_open")
int BPF_PROG(lw_guard_open, struct file *file, int ret)
{
	if (ret)
		return ret;
	return lw_guard_check(file, 0);
}

/* ---- fail closed: called from the lifecycle and error handlers */

struct lw_close_ctx {
	__u64 lun;  /* ~0: any */
	__u32 host; /* ~0: any */
	__u32 dev;  /* a path or the device itself; 0: match by host/lun */
	__u32 reason;
	__u32 closed;
};

static long lw_close_cb(void *map, __u32 *key, struct lw_guard_dev *g, struct lw_close_ctx *c)
{
	if (g->state == LW_GUARD_QUARANTINE)
		return 0;
	__u32 hit = 0;
	if (c->dev && *key == c->dev)
		hit = ~0U;
#pragma unroll
	for (int i = 0; i < LW_GUARD_MAX_PATHS; i++) {
		if (i >= g->n_paths)
			break;
		struct lw_guard_path *p = &g->paths[i];
		if (c->dev) {
			if (p->dev == c->dev)
				hit |= 1U << i;
		} else if ((c->host == ~0U || p->host == c->host) &&
			   (c->lun == ~0ULL || p->lun == c->lun)) {
			hit |= 1U << i;
		}
	}
	if (!hit)
		return 0;
	/* A device already closed gains the new paths, and its answers must come
	 * after this event too. */
	if (g->state == LW_GUARD_VERIFIED) {
		g->state = LW_GUARD_UNVERIFIED;
		g->close_reason = c->reason;
		c->closed++;
	}
	g->closed_paths |= hit;
	g->closed_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline void lw_guard_close(__u32 host, __u64 lun, __u32 dev, __u32 reason)
{
	__u32 zero = 0;
	struct lw_guard_cfg *cfg = bpf_map_lookup_elem(&guard_cfg, &zero);
	if (!cfg || cfg->mode == LW_GUARD_OFF)
		return;
	struct lw_close_ctx c = {.lun = lun, .host = host, .dev = dev, .reason = reason};
	bpf_for_each_map_elem(&guard_devs, lw_close_cb, &c, 0);
	if (c.closed)
		lw_gcount(LW_GSTAT_CLOSED);
}
