/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Data path: who submits I/O to which block device, and how devices stack.
 * Runs in the submitter's context on every bio: O(1) map work, and the ring
 * buffer is written only for a flow or an edge never seen before, and a flow
 * enters the map only with its event (reserved first).
 */
#pragma once

#include "maps.bpf.h"
#include "core_fixes.bpf.h"
#include <bpf/bpf_tracing.h>

const volatile struct lw_config lw_cfg = {};

static __always_inline int lw_op_dir(__u32 op)
{
	return op == LW_OP_READ ? 0 : 1;
}

static __always_inline void lw_flow_add(struct lw_flow_val *v, int dir, __u32 op, __u64 bytes,
					__u64 now)
{
	__sync_fetch_and_add(&v->ios[dir], 1);
	if (op == LW_OP_READ || op == LW_OP_WRITE)
		__sync_fetch_and_add(&v->bytes[dir], bytes);
	v->last_ns = now;
}

/* Fills and submits a reserved new-flow event. */
static __always_inline void lw_submit_flow(struct lw_flow_event *e, __u64 cgroup_id, __u64 bytes,
					   __u64 pid_tgid, __u32 dev, __u32 op)
{
	e->cgroup_id = cgroup_id;
	e->bytes = bytes;
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->dev = dev;
	e->op = op;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline int lw_handle_bio(struct bio *bio, const bool btf)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	if (tgid == lw_cfg.self_tgid)
		return 0;

	struct lw_flow_key key = {
		.tgid = tgid,
		.dev = LW_ARG_READ(btf, bio->bi_bdev->bd_dev, bio, bi_bdev, bd_dev),
	};
	if (!key.dev)
		return 0;
	__u32 op = LW_ARG_READ(btf, bio->bi_opf, bio, bi_opf) & 0xff;
	__u64 bytes = LW_ARG_READ(btf, bio->bi_iter.bi_size, bio, bi_iter.bi_size);
	int dir = lw_op_dir(op);
	__u64 now = bpf_ktime_get_ns();
	__u64 seq = 0;
	if (bpf_core_field_exists(struct gendisk, diskseq))
		seq = LW_ARG_READ(btf, bio->bi_bdev->bd_disk->diskseq, bio, bi_bdev, bd_disk,
				  diskseq);

	/* The common case: one map lookup, one per-CPU counter. Bios seen
	 * (LW_STAT_IO_SEEN as userspace reports it) = FLOW_REPEAT + the slow-path
	 * bios counted in the IO_SEEN slot below (Probes::stats() adds them). */
	struct lw_flow_val *v = bpf_map_lookup_elem(&flows, &key);
	if (v && v->diskseq == seq) {
		lw_flow_add(v, dir, op, bytes, now);
		lw_count(&stats, LW_STAT_FLOW_REPEAT);
		return 0;
	}
	lw_count(&stats, LW_STAT_IO_SEEN);
	if (v) {
		/* The same dev_t, another disk (removed and re-created, as a LUN
		 * re-scanned under the same name): a new flow to userspace, its
		 * counters kept. Without room in the ring the old disk's number
		 * stays and the next bio tries again. */
		struct lw_flow_event *re;
		if (!LW_RESERVE_AT(re, LW_EV_FLOW_NEW, now))
			return 0;
		v->diskseq = seq;
		v->first_ns = now;
		v->cgroup_id = bpf_get_current_cgroup_id();
		lw_flow_add(v, dir, op, bytes, now);
		lw_submit_flow(re, v->cgroup_id, bytes, pid_tgid, key.dev, op);
		return 0;
	}

	/* The event is reserved before the flow enters the map: a flow in the
	 * map is a flow userspace was told about. With the ring full, nothing is
	 * inserted (the drop is counted) and the next bio of this flow tries
	 * again, so a process whose first I/O meets a full ring is still seen. */
	struct lw_flow_event *e;
	if (!LW_RESERVE_AT(e, LW_EV_FLOW_NEW, now))
		return 0;
	struct lw_flow_val nv = {};
	nv.first_ns = now;
	nv.diskseq = seq;
	nv.cgroup_id = bpf_get_current_cgroup_id();
	lw_flow_add(&nv, dir, op, bytes, now);
	long err = bpf_map_update_elem(&flows, &key, &nv, BPF_NOEXIST);
	if (err) {
		bpf_ringbuf_discard(e, 0);
		if (err == -LW_EEXIST) { /* another CPU won the race and reported it */
			v = bpf_map_lookup_elem(&flows, &key);
			if (v)
				lw_flow_add(v, dir, op, bytes, now);
		} else {
			lw_drop(LW_DROP_FLOW_MAP_FULL);
		}
		return 0;
	}
	lw_submit_flow(e, nv.cgroup_id, bytes, pid_tgid, key.dev, op);
	return 0;
}

static __always_inline int lw_handle_edge(__u32 upper, __u32 lower, __u32 kind)
{
	if (!upper || !lower || upper == lower)
		return 0;
	struct lw_edge_key key = {.upper = upper, .lower = lower};
	if (bpf_map_lookup_elem(&edges, &key))
		return 0;
	__u64 now = bpf_ktime_get_ns();
	/* As for flows: the event is reserved before the edge enters the map, so
	 * an edge in the map is an edge userspace was told about; with the ring
	 * full nothing is inserted and the next remap of the pair tries again. */
	struct lw_edge_event *e;
	if (!LW_RESERVE_AT(e, LW_EV_STACK_EDGE, now))
		return 0;
	long err = bpf_map_update_elem(&edges, &key, &now, BPF_NOEXIST);
	if (err) {
		bpf_ringbuf_discard(e, 0);
		if (err != -LW_EEXIST) /* EEXIST: another CPU reported it */
			lw_drop(LW_DROP_EDGE_MAP_FULL);
		return 0;
	}
	e->upper = upper;
	e->lower = lower;
	e->kind = kind;
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* bio-based remap (dm-linear, dm-crypt, partitions): bio now points below. */
static __always_inline int lw_handle_bio_remap(struct bio *bio, __u32 upper, const bool btf)
{
	__u32 lower = LW_ARG_READ(btf, bio->bi_bdev->bd_dev, bio, bi_bdev, bd_dev);
	return lw_handle_edge(upper, lower, LW_EDGE_BIO_REMAP);
}

/* request-based remap (dm-multipath): rq is the clone on the path device. */
static __always_inline int lw_handle_rq_remap(struct request *rq, __u32 upper, const bool btf)
{
	struct gendisk *disk;
	if (btf) {
		disk = ((struct request_queue___lw *)rq->q)->disk;
	} else {
		struct request_queue___lw *q = (void *)BPF_CORE_READ(rq, q);
		disk = BPF_CORE_READ(q, disk);
	}
	return lw_handle_edge(upper, lw_disk_devt_arg(disk, btf), LW_EDGE_RQ_REMAP);
}

SEC("tp_btf/block_bio_queue")
int BPF_PROG(lw_bio_queue, struct bio *bio)
{
	return lw_handle_bio(bio, true);
}

SEC("raw_tp/block_bio_queue")
int BPF_PROG(lw_bio_queue_raw, struct bio *bio)
{
	return lw_handle_bio(bio, false);
}

SEC("tp_btf/block_bio_remap")
int BPF_PROG(lw_bio_remap, struct bio *bio, dev_t dev, sector_t from)
{
	return lw_handle_bio_remap(bio, dev, true);
}

SEC("raw_tp/block_bio_remap")
int BPF_PROG(lw_bio_remap_raw, struct bio *bio, dev_t dev, sector_t from)
{
	return lw_handle_bio_remap(bio, dev, false);
}

SEC("tp_btf/block_rq_remap")
int BPF_PROG(lw_rq_remap, struct request *rq, dev_t dev, sector_t from)
{
	return lw_handle_rq_remap(rq, dev, true);
}

SEC("raw_tp/block_rq_remap")
int BPF_PROG(lw_rq_remap_raw, struct request *rq, dev_t dev, sector_t from)
{
	return lw_handle_rq_remap(rq, dev, false);
}
