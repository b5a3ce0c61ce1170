/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Kernel differences live here and only here.
 *
 * vmlinux.h is generated from the build host's BTF, which may lack the SCSI,
 * iSCSI and device-mapper types entirely (they are modules, or absent). So the
 * few fields we read from them are declared as cut-down "flavors"
 * (struct x___lw): libbpf ignores the ___suffix when it relocates, so each
 * field is found by name in the running kernel's (or its module's) BTF.
 * Never compare kernel version numbers: distributions backport.
 */
#pragma once

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

struct Scsi_Host___lw {
	unsigned int host_no;
	struct device shost_gendev;
} __attribute__((preserve_access_index));

struct request_queue___lw {
	struct gendisk *disk;
} __attribute__((preserve_access_index));

struct scsi_device___lw {
	struct Scsi_Host___lw *host;
	struct request_queue___lw *request_queue;
	unsigned int id;
	unsigned int channel;
	unsigned long long lun;
	struct device sdev_gendev;
} __attribute__((preserve_access_index));

/*
 * The CDB became an inline array in v5.19 ("scsi: core: Remove the cmd_len
 * and cmnd pointer"-era rework, commit ce70fd9a551a); before it was a pointer.
 * Both flavors are declared; bpf_core_field_size tells which one the kernel has.
 */
struct scsi_cmnd___lw {
	struct scsi_device___lw *device;
	unsigned char cmnd[32];
	unsigned char *sense_buffer;
	int result;
} __attribute__((preserve_access_index));

struct scsi_cmnd___lw_old {
	unsigned char *cmnd;
} __attribute__((preserve_access_index));

struct iscsi_cls_session___lw {
	unsigned int sid;
	unsigned int target_id;
	struct device dev;
} __attribute__((preserve_access_index));

struct iscsi_cls_conn___lw {
	unsigned int cid;
	struct device dev;
} __attribute__((preserve_access_index));

struct mapped_device___lw {
	struct gendisk *disk;
	char name[16];
} __attribute__((preserve_access_index));

struct dm_table___lw {
	struct mapped_device___lw *md;
} __attribute__((preserve_access_index));

struct dm_target___lw {
	struct dm_table___lw *table;
} __attribute__((preserve_access_index));

/*
 * Reading tracepoint arguments (io.bpf.h, scsi.bpf.h). tp_btf programs get
 * BTF-typed pointers: a plain field load is CO-RE relocated (vmlinux.h types
 * and the ___lw flavors carry preserve_access_index) and the verifier turns it
 * into a fault-safe load (a NULL or bad pointer reads 0), far cheaper than a
 * bpf_probe_read_kernel call per field. raw_tp programs get
 * untyped u64s, so their reads must stay BPF_CORE_READ. Each handler takes
 * `btf` as a compile-time constant and, being always inlined, keeps one code
 * path: the other branch is folded away in each program.
 */
#define LW_ARG_READ(btf, direct, src, ...) ((btf) ? (direct) : BPF_CORE_READ(src, __VA_ARGS__))

/* The gendisk's name ("sda", "dm-0"), or "" without a disk. */
static __always_inline void lw_disk_name(struct gendisk *disk, char *out, int len)
{
	if (disk)
		bpf_probe_read_kernel_str(out, len, &disk->disk_name);
	else
		out[0] = 0;
}

/* Kernel dev_t encoding of (major, minor). */
static __always_inline __u32 lw_devt(__u32 major, __u32 minor)
{
	return major << LW_MINORBITS | minor;
}

/* Kernel dev_t of a gendisk (whole disk), through probe reads. */
static __always_inline __u32 lw_disk_devt(struct gendisk *disk)
{
	if (!disk)
		return 0;
	return lw_devt(BPF_CORE_READ(disk, major), BPF_CORE_READ(disk, first_minor));
}

/* Same, by plain loads when disk came from a BTF-typed argument (btf: see LW_ARG_READ). */
static __always_inline __u32 lw_disk_devt_arg(struct gendisk *disk, const bool btf)
{
	if (!disk)
		return 0;
	return lw_devt(LW_ARG_READ(btf, disk->major, disk, major),
		       LW_ARG_READ(btf, disk->first_minor, disk, first_minor));
}

/* First CDB byte, whichever layout the kernel has. */
static __always_inline __u8 lw_scsi_cdb0(struct scsi_cmnd___lw *cmd)
{
	__u8 op = 0;
	if (bpf_core_field_size(cmd->cmnd) > sizeof(void *)) {
		bpf_core_read(&op, 1, &cmd->cmnd[0]);
	} else {
		unsigned char *p = BPF_CORE_READ((struct scsi_cmnd___lw_old *)cmd, cmnd);
		bpf_probe_read_kernel(&op, 1, p);
	}
	return op;
}

/* Read a pointer-sized value at addr (kernel memory, may fault: then 0). */
static __always_inline __u64 lw_read_ptr(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_kernel(&v, sizeof(v), (void *)addr);
	return v;
}

/* host_no of the Scsi_Host whose shost_gendev is dev (iSCSI sessions hang
 * below it: iscsi_add_session sets session->dev.parent = &shost->shost_gendev). */
static __always_inline __u32 lw_host_no_of_gendev(__u64 dev)
{
	if (!dev)
		return ~0U;
	__u64 shost = dev - bpf_core_field_offset(struct Scsi_Host___lw, shost_gendev);
	__u32 host_no = ~0U;
	bpf_probe_read_kernel(
		&host_no, sizeof(host_no),
		(void *)(shost + bpf_core_field_offset(struct Scsi_Host___lw, host_no)));
	return host_no;
}
