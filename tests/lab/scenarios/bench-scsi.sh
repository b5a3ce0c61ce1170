#!/bin/bash
# SCSI command path cost (not part of "all"): the per-run cost of lunwatch's SCSI
# dispatch and completion programs (lw_scsi_start / lw_scsi_done, or their _raw
# fallbacks) from kernel.bpf_stats, while fio reads 4 KiB at random with O_DIRECT from
# one iSCSI sd device (LIO fileio on tmpfs, one portal). BENCH_ROUNDS rounds of
# BENCH_RUNTIME seconds; prints per round and overall ns per run and fio's IOPS.
# Compare builds with LAB_LUNWATCH=/path/to/other/lunwatch scripts/lab bench-scsi.
. "$(dirname "$0")/../lib/common.sh"
ROUNDS=${BENCH_ROUNDS:-3} RUNTIME=${BENCH_RUNTIME:-10}
IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1

step "load modules, start lunwatch"
load_modules
echo 1 > /proc/sys/kernel/bpf_stats_enabled
lw_start
[[ -n ${LW_PID:-} ]] || fatal "lunwatch did not start"

step "target $IQN, volA at LUN 1 over $P1"
target_create "$IQN" "$P1"
volume_create volA a1a1a1a1-0000-4000-8000-00000000000a 64 VOLUME-A-MARKER
iscsid_start
lun_map "$IQN" 1 volA
iscsi_login "$IQN" "$P1"
read -r SD <<< "$(attach_paths "$IQN" 1 "$P1")"
log "path: $SD ($(hctl_of "$SD"))"

# prog_stats NAME: "run_time_ns run_cnt" summed over the programs of that name
prog_stats() {
	bpftool -j prog show name "$1" 2>/dev/null | jq -rs '[.[] | if type == "array" then .[] else . end] | "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
}
# the attached variant of each hook: the tp_btf program, or its raw_tp fallback
pick() {
	local ns cnt
	read -r ns cnt <<< "$(prog_stats "$1")"
	((${cnt:-0} > 0)) && echo "$1" || echo "$1_raw"
}
fio --name=warm --filename="/dev/$SD" --bs=4k --rw=randread --ioengine=psync --direct=1 \
	--time_based --runtime=1 > /dev/null 2>&1
START=$(pick lw_scsi_start) DONE=$(pick lw_scsi_done)
log "programs: $START, $DONE"

TOT_S=0 TOT_SN=0 TOT_D=0 TOT_DN=0 IOPS=()
for r in $(seq 1 "$ROUNDS"); do
	read -r s0 sn0 <<< "$(prog_stats "$START")"
	read -r d0 dn0 <<< "$(prog_stats "$DONE")"
	fio --name=bench --filename="/dev/$SD" --bs=4k --rw=randread --ioengine=libaio --iodepth=8 --direct=1 \
		--time_based --runtime="$RUNTIME" --output-format=json --output="$LAB_OUT/fio-$r.json" > /dev/null 2>&1 \
		|| gt_fail "fio round $r failed"
	read -r s1 sn1 <<< "$(prog_stats "$START")"
	read -r d1 dn1 <<< "$(prog_stats "$DONE")"
	iops=$(jq -r '.jobs[0].read.iops | floor' "$LAB_OUT/fio-$r.json" 2>/dev/null)
	IOPS+=("${iops:-0}")
	TOT_S=$((TOT_S + s1 - s0)) TOT_SN=$((TOT_SN + sn1 - sn0)) TOT_D=$((TOT_D + d1 - d0)) TOT_DN=$((TOT_DN + dn1 - dn0))
	awk -v r="$r" -v i="${iops:-0}" -v s="$((s1 - s0))" -v sn="$((sn1 - sn0))" -v d="$((d1 - d0))" -v dn="$((dn1 - dn0))" \
		-v a="$START" -v b="$DONE" 'BEGIN {
		printf "round %d: fio %d IOPS; %s %.0f ns/run (%d runs); %s %.0f ns/run (%d runs)\n",
			r, i, a, sn ? s / sn : 0, sn, b, dn ? d / dn : 0, dn }' >> "$LAB_OUT/bench-scsi.txt"
	log "$(tail -1 "$LAB_OUT/bench-scsi.txt")"
done
awk -v s="$TOT_S" -v sn="$TOT_SN" -v d="$TOT_D" -v dn="$TOT_DN" -v a="$START" -v b="$DONE" -v iops="${IOPS[*]}" 'BEGIN {
	printf "all rounds: %s %.0f ns/run over %d runs; %s %.0f ns/run over %d runs; fio IOPS per round: %s\n",
		a, sn ? s / sn : 0, sn, b, dn ? d / dn : 0, dn, iops }' >> "$LAB_OUT/bench-scsi.txt"
log "$(tail -1 "$LAB_OUT/bench-scsi.txt")"
gt_check "the dispatch program ran on the benchmark's commands ($TOT_SN runs)" test "$TOT_SN" -gt 0
lw_expect bind "$SD" "$(hctl_of "$SD")"
lab_finish
