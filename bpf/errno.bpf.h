/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The errno values the kernel side returns or compares against, by name.
 * vmlinux.h carries no macros and <errno.h> is userspace's, so they are
 * spelled here once (values from include/uapi/asm-generic/errno-base.h). */
#pragma once

#define LW_EPERM  1  /* the guard's refusal (LSM hooks return -LW_EPERM) */
#define LW_EEXIST 17 /* bpf_map_update_elem(BPF_NOEXIST): the key is there */
