#!/bin/bash
# Diagnostics (not part of "all"): load every storage module, then show what
# `lunwatch probes` attaches on the guest kernel, with libbpf's and the
# verifier's messages for anything that fails (probes-verbose.txt).
modprobe sd_mod; modprobe iscsi_tcp; modprobe dm_multipath; modprobe scsi_debug max_luns=1 2>/dev/null
LW=${LAB_LUNWATCH:-$LAB_REPO/build/lunwatch}
"$LW" probes > "$LAB_OUT/probes.txt" 2>&1
rc=$?
"$LW" -v probes > "$LAB_OUT/probes-verbose.txt" 2>&1
cat "$LAB_OUT/probes.txt"
grep -c "attached" "$LAB_OUT/probes.txt" | sed 's/^/[lab] probes attached: /'
if grep -qE "failed" "$LAB_OUT/probes.txt"; then echo "[lab] FAIL: a hook failed"; exit 3; fi
exit $rc
