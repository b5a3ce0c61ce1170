/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Every map lunwatch's kernel side uses, one line each. */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "lunwatch.h"
#include "errno.bpf.h"

#define LW_FLOWS_MAX	65536
#define LW_EDGES_MAX	8192
#define LW_BINDINGS_MAX 16384

/* Rare events to userspace: new flows, edges, bindings, errors, lifecycle. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} events SEC(".maps");

/* (tgid, dev) -> byte and I/O counters. LRU with per-CPU free lists, so a full
 * map evicts instead of failing and CPUs do not contend on one LRU lock. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LW_FLOWS_MAX);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);
	__type(key, struct lw_flow_key);
	__type(value, struct lw_flow_val);
} flows SEC(".maps");

/* (upper, lower) device pairs already reported. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LW_EDGES_MAX);
	__type(key, struct lw_edge_key);
	__type(value, __u64);
} edges SEC(".maps");

/* sd dev_t -> the SCSI address it was last seen at. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LW_BINDINGS_MAX);
	__type(key, __u32);
	__type(value, struct lw_scsi_addr);
} bindings SEC(".maps");

struct lw_ratelimit {
	__u64 last_ns;
	__u32 last_key;
	__u32 suppressed;
};

/* sd dev_t -> per-device error rate limit state. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, LW_BINDINGS_MAX);
	__type(key, __u32);
	__type(value, struct lw_ratelimit);
} err_limit SEC(".maps");

/* Lost events and updates, by enum lw_drop_cause. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LW_DROP_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* Data-path and emission counters, by enum lw_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* ---- guard: pinned under /sys/fs/bpf/lunwatch so policy outlives the agent */

/* dev_t -> policy for that block device. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct lw_guard_dev);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_devs SEC(".maps");

/* tgid -> 1: processes the guard applies to (instance qemu processes). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_procs SEC(".maps");

/* cgroup v2 id -> 1: instance scopes (machine-qemu-N-NAME.scope); every process
 * in them is an instance process, whether or not userspace knows its pid yet. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_cgroups SEC(".maps");

/* tgid -> 1: allowed everywhere, quarantine included (the agent, multipathd). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_allow SEC(".maps");

/* [0]: mode and reporting settings, changeable at run time. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lw_guard_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_cfg SEC(".maps");

/* Guard counters by enum lw_guard_stat. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, LW_GSTAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} guard_stats SEC(".maps");

/* (tgid, dev) -> last report time, to rate-limit denial events. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct lw_flow_key);
	__type(value, __u64);
} guard_reported SEC(".maps");

static __always_inline void lw_count(void *map, __u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(map, &idx);
	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline void lw_drop(__u32 cause)
{
	lw_count(&drops, cause);
}

/* Reserve a ring-buffer record with its header filled (stamped `now`, for a
 * caller that already read the clock), or count the drop. */
#define LW_RESERVE_AT(ptr, ev_type, now)                                                           \
	({                                                                                         \
		(ptr) = bpf_ringbuf_reserve(&events, sizeof(*(ptr)), 0);                           \
		if (!(ptr)) {                                                                      \
			lw_drop(LW_DROP_RINGBUF_FULL);                                             \
		} else {                                                                           \
			(ptr)->hdr.ts_ns = (now);                                                  \
			(ptr)->hdr.type = (ev_type);                                               \
			(ptr)->hdr.size = sizeof(*(ptr));                                          \
			lw_count(&stats, LW_STAT_EVENTS_BASE + (ev_type));                         \
		}                                                                                  \
		(ptr) != 0;                                                                        \
	})

/* Same, stamped with the current time. */
#define LW_RESERVE(ptr, ev_type) LW_RESERVE_AT(ptr, ev_type, bpf_ktime_get_ns())
