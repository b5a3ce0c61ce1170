#!/bin/bash
# Boot check only: the guest is up, modules load, the output share is writable.
echo "[lab] smoke: $(uname -r) $(nproc) cpus; lsm=$(cat /sys/kernel/security/lsm)"
modprobe sd_mod && modprobe iscsi_tcp && modprobe dm_multipath && modprobe target_core_file && modprobe iscsi_target_mod && echo "[lab] modules ok"
ls /sys/kernel/btf/vmlinux && echo "[lab] btf ok"
echo hello > "$LAB_OUT/hello.txt"
exit 0
