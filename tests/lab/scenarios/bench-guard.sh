#!/bin/bash
# Guard overhead (tests/bench/guard runs this; not part of "all"): in one run,
# guard off vs enforce for (1) a syscall-heavy non-block workload (512-byte
# psync reads and writes on tmpfs) and (2) the owner's O_DIRECT I/O on a
# guarded block device (a loop device over tmpfs), interleaved rounds, fio's
# IOPS, ratios against the "off" rounds of the same run. "off" is the pinned
# mode (programs attached, decision skipped), so the programs' own cost is
# measured apart: lw_guard_perm's run time per call from kernel.bpf_stats
# against one operation's time in the "off" rounds (an implied ratio).
. "$(dirname "$0")/../lib/common.sh"
LW=${LAB_LUNWATCH:-$LAB_REPO/build/lunwatch}
ROUNDS=${BENCH_ROUNDS:-3} RUNTIME=${BENCH_RUNTIME:-4}
modprobe loop 2>/dev/null
truncate -s 64M /tmp/bench.img
LOOP=$(losetup -f --show /tmp/bench.img)
truncate -s 16M /tmp/bench.file
"$LW" run --guard enforce --no-libvirt --metrics-listen "" --state-file /tmp/b.json --dump-severity off \
	--ready-file /tmp/lw.ready > /dev/null 2> "$LAB_OUT/lunwatch.stderr" &
LWP=$!
wait_for "lunwatch ready" 60 test -f /tmp/lw.ready || { cat "$LAB_OUT/lunwatch.stderr"; exit 1; }
"$LW" guard status > "$LAB_OUT/guard-status-start.txt" 2>&1
grep -q 'guard mode: enforce' "$LAB_OUT/guard-status-start.txt" || { echo "[lab] guard not active"; cat "$LAB_OUT/guard-status-start.txt"; exit 1; }

iops() { jq -r '[.jobs[] | (.read.iops + .write.iops)] | add | floor' "$1"; }
fio_tmpfs() {
	fio --name=sys --filename=/tmp/bench.file --size=16M --bs=512 --rw=randrw --ioengine=psync \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --output-format=json --output="$1" > /dev/null 2>&1
}
fio_block() { # owner I/O: fio is armed as the device's owner once it runs
	fio --name=blk --filename="$LOOP" --bs=4k --rw=randread --ioengine=io_uring --iodepth=32 --direct=1 \
		--time_based --runtime="$RUNTIME" --ramp_time=1 --output-format=json --output="$1" > /dev/null 2>&1 &
	local pid=$!
	if [[ $2 == enforce ]]; then
		"$LW" guard arm "$LOOP" --owner "$pid" > /dev/null
	fi
	wait "$pid"
}
set_mode() { "$LW" guard mode "$1" > /dev/null; }

# The guard program's own cost per call, from kernel.bpf_stats (lunwatch run turns
# it on): the file_permission program runs on every read/write, block or not.
prog_stats() { # prints "run_time_ns run_cnt" of the named program
	bpftool -j prog show name "$1" 2>/dev/null | jq -rs '[.[] | if type == "array" then .[] else . end] | "\(map(.run_time_ns // 0) | add // 0) \(map(.run_cnt // 0) | add // 0)"'
}
declare -A R PROG_NS PROG_CNT
# measured W MODE CMD...: runs CMD; in enforce rounds adds lw_guard_perm's run time
# and runs during it to workload W's totals
measured() {
	local w=$1 mode=$2 ns0 cnt0 ns1 cnt1
	shift 2
	read -r ns0 cnt0 <<< "$(prog_stats lw_guard_perm)"
	"$@"
	read -r ns1 cnt1 <<< "$(prog_stats lw_guard_perm)"
	if [[ $mode == enforce && -n $ns1 ]]; then
		PROG_NS[$w]=$((${PROG_NS[$w]:-0} + ns1 - ns0)) PROG_CNT[$w]=$((${PROG_CNT[$w]:-0} + cnt1 - cnt0))
	fi
}
for r in $(seq 1 "$ROUNDS"); do
	for mode in off enforce; do
		set_mode "$mode"
		[[ $mode == enforce ]] || "$LW" guard release "$LOOP" > /dev/null 2>&1
		measured tmpfs "$mode" fio_tmpfs "$LAB_OUT/tmpfs-$mode-$r.json"
		measured block "$mode" fio_block "$LAB_OUT/block-$mode-$r.json" "$mode"
		R[tmpfs-$mode]+="$(iops "$LAB_OUT/tmpfs-$mode-$r.json") "
		R[block-$mode]+="$(iops "$LAB_OUT/block-$mode-$r.json") "
	done
done
set_mode enforce
"$LW" guard status > "$LAB_OUT/guard-status-end.txt" 2>&1
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
{
	printf '%-42s %-24s %10s %8s %8s\n' "workload (IOPS, guest kernel under QEMU)" rounds median ratio target
	for w in tmpfs block; do
		off=$(median <<< "${R[$w-off]}")
		on=$(median <<< "${R[$w-enforce]}")
		target=0.99
		[[ $w == block ]] && target=0.98
		ratio=$(awk -v a="$on" -v b="$off" 'BEGIN {printf "%.3f", a / b}')
		desc="syscall-heavy tmpfs 512B psync"
		[[ $w == block ]] && desc="owner O_DIRECT 4k io_uring qd32"
		printf '%-42s %-24s %10.0f %8s %8s\n' "$desc (off)" "${R[$w-off]}" "$off" 1.000 -
		printf '%-42s %-24s %10.0f %8s %8s\n' "$desc (enforce)" "${R[$w-enforce]}" "$on" "$ratio" ">=$target"
	done
	# the program's cost against one operation of the "off" rounds of this run:
	# steadier under TCG than the IOPS ratio, which carries the emulator's noise
	for w in tmpfs block; do
		if ((${PROG_CNT[$w]:-0} > 0)); then
			target=0.99 what="tmpfs rounds; one tmpfs op"
			[[ $w == block ]] && target=0.98 what="guarded-device rounds; one owner I/O"
			awk -v ns="${PROG_NS[$w]}" -v n="${PROG_CNT[$w]}" -v iops="$(median <<< "${R[$w-off]}")" -v what="$what" -v t="$target" 'BEGIN {
				per = ns / n; op = 1e9 / iops
				printf "lw_guard_perm: %.0f ns per call over %d calls (%s (off) %.0f ns); implied ratio %.4f (target >=%s)\n", per, n, what, op, op / (op + per), t
			}'
		else
			echo "lw_guard_perm ($w): no run time (kernel.bpf_stats off or bpftool missing)"
		fi
	done
	echo "denials during the owner's runs: $(grep -o 'denied [0-9]*' "$LAB_OUT/guard-status-end.txt")"
} | tee "$LAB_OUT/bench-guard.txt"
kill "$LWP" 2>/dev/null
wait "$LWP" 2>/dev/null
"$LW" guard mode off > /dev/null 2>&1
losetup -d "$LOOP"
exit 0
