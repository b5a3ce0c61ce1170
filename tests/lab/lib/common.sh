# lunwatch lab, guest side: logging, deadlines, ground-truth assertions, cleanup.
# Sourced by every scenario (bash). Needs LAB_OUT, LAB_CACHE, LAB_REPO from guest/init.sh.
set -u -o pipefail

# Under TCG every fork+exec costs ~70 ms: use bash's loadable builtins where they exist
# (package bash-builtins); the external commands of the same name are the fallback.
for _b in sleep ln mkdir rm rmdir realpath basename dirname; do
	[[ -f /usr/lib/bash/$_b ]] && enable -f "/usr/lib/bash/$_b" "$_b" 2>/dev/null
done
unset _b

LAB_SCENARIO=${LAB_SCENARIO:-$(basename "$0" .sh)}
LAB_OUT=${LAB_OUT:-/tmp/lab-out/$LAB_SCENARIO}
LAB_LIB=$(dirname "${BASH_SOURCE[0]}")
mkdir -p "$LAB_OUT"
GT_FILE=$LAB_OUT/ground-truth.txt
: > "$GT_FILE"
GT_FAILS=0
T_START=$SECONDS

log() { printf '[lab] %s +%ss: %s\n' "$LAB_SCENARIO" "$((SECONDS - T_START))" "$*"; }
step() { printf '[lab] %s +%ss: === %s\n' "$LAB_SCENARIO" "$((SECONDS - T_START))" "$*"; }
# Detail lines: scenario.log only (the console shows [lab] lines).
detail() { printf '      %s\n' "$*"; }
fatal() {
	log "FATAL: $*"
	gt_fail "scenario could not continue: $*"
	lab_finish
}

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: polls COMMAND (every 0.25 s) until it
# succeeds; returns 1 and logs what was awaited when the deadline passes.
wait_for() {
	local desc=$1 t=$2
	shift 2
	local deadline=$((SECONDS + t))
	while ! "$@" >/dev/null 2>&1; do
		if ((SECONDS >= deadline)); then
			log "TIMEOUT after ${t}s waiting for: $desc"
			return 1
		fi
		sleep 0.25
	done
	return 0
}

# Ground-truth assertions (what the kernel/storage really did; independent of lunwatch).
gt_pass() { echo "PASS: $*" >> "$GT_FILE"; log "ground truth PASS: $*"; }
gt_fail() {
	echo "FAIL: $*" >> "$GT_FILE"
	log "ground truth FAIL: $*"
	GT_FAILS=$((GT_FAILS + 1))
}
# gt_check DESCRIPTION COMMAND...: PASS when COMMAND succeeds.
gt_check() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then gt_pass "$desc"; else gt_fail "$desc"; fi
}

# Cleanup hooks run at exit (last registered first).
CLEANUPS=()
on_exit() { CLEANUPS=("$*" "${CLEANUPS[@]}"); }
_run_cleanups() {
	local c
	for c in "${CLEANUPS[@]}"; do eval "$c" >/dev/null 2>&1 || true; done
	CLEANUPS=()
}
_lab_finished=0
lab_finish() {
	((_lab_finished)) && exit "${_lab_rc:-1}"
	_lab_finished=1
	lw_stop 2>/dev/null || true
	lw_assert_all 2>/dev/null || true
	_run_cleanups
	collect_state final
	local rc=0
	if ((GT_FAILS > 0)); then rc=1; fi
	local lwf=${LW_FAILS:-0}
	if ((rc == 0 && lwf > 0)) && [[ ${LAB_REQUIRE_LUNWATCH:-0} == 1 ]]; then rc=3; fi
	{
		echo "scenario: $LAB_SCENARIO"
		echo "wall_in_guest_s: $((SECONDS - T_START))"
		echo "ground_truth: $(grep -c '^PASS' "$GT_FILE") pass, $GT_FAILS fail"
		if [[ -f $LAB_OUT/lunwatch-assertions.txt ]]; then
			echo "lunwatch: $(grep -c '^PASS' "$LAB_OUT/lunwatch-assertions.txt") pass, $lwf fail (required=${LAB_REQUIRE_LUNWATCH:-0})"
		else
			echo "lunwatch: not run (${LW_SKIP_REASON:-no binary})"
		fi
		echo "exit: $rc"
	} > "$LAB_OUT/summary.txt"
	log "summary: $(tr '\n' ';' < "$LAB_OUT/summary.txt")"
	if ((GT_FAILS > 0)); then
		log "ground-truth failures:"
		grep '^FAIL' "$GT_FILE" | sed 's/^/[lab]    /'
	fi
	if ((lwf > 0)); then
		log "lunwatch evidence missing ($([[ ${LAB_REQUIRE_LUNWATCH:-0} == 1 ]] && echo fails the scenario || echo not required)):"
		grep '^FAIL' "$LAB_OUT/lunwatch-assertions.txt" | sed 's/^/[lab]    /'
		# What a CI log needs to tell why (the output folder may not survive the run):
		# the agent's last words, its alert counts by rule, what it wrote.
		if [[ -f $LAB_OUT/lunwatch.stderr ]]; then
			log "lunwatch's log, last 12 lines of $(wc -l < "$LAB_OUT/lunwatch.stderr"):"
			tail -12 "$LAB_OUT/lunwatch.stderr" | cut -c1-300 | sed 's/^/[lab]    /'
		fi
		[[ -s ${LW_ALERTS:-/nonexistent} ]] && log "alerts by rule: $(jq -r .rule "$LW_ALERTS" 2>/dev/null | sort | uniq -c | tr -s ' \n' ' ')"
		log "output folder: $(cd "$LAB_OUT" && ls -p | grep -vE '^instance-|^libvirt-' | tr '\n' ' ' | cut -c1-600)"
	fi
	_lab_rc=$rc
	exit "$rc"
}
trap 'log "interrupted"; gt_fail "scenario interrupted (deadline?)"; lab_finish' TERM INT

# collect_state TAG: snapshot of the storage stack into $LAB_OUT/state-TAG.txt.
collect_state() {
	local f=$LAB_OUT/state-$1.txt
	{
		echo "## scsi devices (sysfs)"
		local d b st ww blk
		for d in /sys/class/scsi_device/*; do
			[[ -e $d ]] || continue
			blk=
			for b in "$d"/device/block/*; do [[ -e $b ]] && blk+="${b##*/} "; done
			st=; ww=
			read -r st < "$d/device/state" 2>/dev/null
			read -r ww < "$d/device/wwid" 2>/dev/null
			echo "${d##*/} ${blk:-(no block) }state=$st wwid=$ww"
		done
		echo "## dmsetup table/status"
		dmsetup table 2>&1
		dmsetup status 2>&1
		echo "## iscsi sessions"
		iscsiadm -m session 2>&1
		echo "## LIO luns"
		local l t
		for l in /sys/kernel/config/target/iscsi/*/tpgt_*/lun/lun_*; do
			[[ -e $l ]] || continue
			for t in "$l"/*; do [[ -L $t ]] && echo "$l -> $(realpath "$t")"; done
		done
	} > "$f" 2>&1
}

. "$LAB_LIB/storage.sh"
. "$LAB_LIB/instance.sh"
. "$LAB_LIB/lunwatch.sh"
