#!/bin/bash
# Scenario "verify-many" (issue 12, point 1): more SCSI paths than the old verifier's
# 16 checks in flight, several LUNs remapped at once, single-path devices included.
#   24 volumes at LUNs 1..24 of one target with two portals. LUNs 1..16 are used
#   single-path (the instance opens /dev/sdX on portal 1); LUNs 17..24 through
#   dm-multipath maps over both portals (portal 2 is scanned for those LUNs only).
#   8 instances hold 2 single-path devices and one map each: 32 held SCSI paths.
#   Once every instance reads its markers and one periodic round has run, 6 LUNs are
#   remapped at once on the target only (no host scan): 4 single-path (LUNs 1, 5, 9,
#   13) and 2 maps (LUNs 17, 21), each to another tenant's volume.
#   GROUND TRUTH: each remapped device now reads the other volume's marker (the leak
#   is real for all 6); the 18 others still read their own.
#   LUNWATCH (--guard monitor, --verify-interval 10): IDENTITY_CHANGED for each of the 6
#   remapped devices naming its instance and device; every held SCSI path gets
#   periodic checks in every round (min checks per path printed; each >= 2); the
#   verify queue metrics show the 32 held paths and none overdue.
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-many
P1=127.0.0.1 P2=127.0.0.2
NV=24 NSINGLE=16 NI=8
REMAP=(1 5 9 13 17 21)
LW_METRICS=127.0.0.1:9477
ser_of() { printf 'c%07d-0000-4000-8000-%012d' "$1" "$1"; }    # volume k's id
wser_of() { printf 'd%07d-0000-4000-8000-%012d' "$1" "$1"; }   # the other tenant's volume at LUN k

step "load modules, start lunwatch"
load_modules
lw_start

step "target with $NV volumes (LUNs 1..$NV) and ${#REMAP[@]} other tenants' volumes"
target_create "$IQN" "$P1" "$P2"
for ((k = 1; k <= NV; k++)); do
	printf -v m 'VOLUME-V%02d-MARKER' "$k"
	volume_create "v$k" "$(ser_of $k)" 8 "$m"
	lun_map "$IQN" "$k" "v$k"
done
for k in "${REMAP[@]}"; do
	printf -v m 'VOLUME-W%02d-MARKER' "$k"
	volume_create "w$k" "$(wser_of $k)" 8 "$m"
done
initiator_up
iscsi_login "$IQN" "$P1"
iscsi_login "$IQN" "$P2"
H1=$(iscsi_host "$IQN" "$P1") H2=$(iscsi_host "$IQN" "$P2")

step "scan: LUNs 1..$NV on portal 1, LUNs $((NSINGLE + 1))..$NV on portal 2; $((NV - NSINGLE)) multipath maps"
echo "- - -" > "/sys/class/scsi_host/host$H1/scan"
for ((k = NSINGLE + 1; k <= NV; k++)); do scan_lun "$H2" "$k"; done
all_there() {
	local k
	for ((k = 1; k <= NV; k++)); do sd_of "$H1" "$k" > /dev/null || return 1; done
	for ((k = NSINGLE + 1; k <= NV; k++)); do sd_of "$H2" "$k" > /dev/null || return 1; done
}
wait_for "$((NV + NV - NSINGLE)) sd devices" 120 all_there && gt_pass "$((NV + NV - NSINGLE)) sd devices present" \
	|| gt_fail "not every sd device appeared"
declare -A DEV=() SDP=() SDP2=()
for ((k = 1; k <= NV; k++)); do SDP[$k]=$(sd_of "$H1" "$k"); done
for ((k = 1; k <= NSINGLE; k++)); do DEV[$k]=${SDP[$k]}; done
for ((k = NSINGLE + 1; k <= NV; k++)); do
	sd2=$(sd_of "$H2" "$k")
	wait_for "${SDP[$k]} has a size" 20 bash -c "[[ \$(cat /sys/block/${SDP[$k]}/size) != 0 && \$(cat /sys/block/$sd2/size) != 0 ]]" || true
	naa=$(vpd_naa "${SDP[$k]}")
	DEV[$k]=$(mpath_create "$(mpath_name "$naa")" "${SDP[$k]}" "$sd2")
	SDP2[$k]=$sd2
done
: > "$LAB_OUT/volumes.txt"
for ((k = 1; k <= NV; k++)); do echo "LUN $k v$k ${DEV[$k]} ${SDP[$k]} ${SDP2[$k]:-}" >> "$LAB_OUT/volumes.txt"; done
gt_check "single-path device of LUN 1 answers as v1 (SG_IO serial)" test "$(vpd_serial "${DEV[1]}")" == "$(ser_of 1)"

step "$NI instances: each holds 2 single-path devices and 1 map"
CINDER_BATCH=1
declare -A OWNER=()
for ((i = 0; i < NI; i++)); do
	for k in $((2 * i + 1)) $((2 * i + 2)); do
		cinder_attach "v$k" $((0x200 + i)) "$(ser_of $k)" "$IQN" "$k" "$P1"
		OWNER[$k]=i$i
	done
	k=$((NSINGLE + 1 + i))
	cinder_attach "v$k" $((0x200 + i)) "$(ser_of $k)" "$IQN" "$k" "$P1" "$P2"
	OWNER[$k]=i$i
done
CINDER_BATCH=
cinder_write
for ((i = 0; i < NI; i++)); do
	a=$((2 * i + 1)) b=$((2 * i + 2)) c=$((NSINGLE + 1 + i))
	INST_SERIALS="$(ser_of $a) $(ser_of $b) $(ser_of $c)" INST_NOWAIT=1 \
		instance_start "i$i" $((0x200 + i)) "${DEV[$a]}" "${DEV[$b]}" "${DEV[$c]}" -- -lab-interval-ms 1000 -lab-write 0 > /dev/null
done
# reads_marker KEY DEV MARKER: the instance's log shows an ok read of MARKER on DEV
reads_marker() { grep -qE "drive=/dev/$2 .*op=read ok marker=$3( |\$)" "$LAB_OUT/instance-$1.log"; }
all_own() {
	local k m
	for ((k = 1; k <= NV; k++)); do
		printf -v m 'VOLUME-V%02d-MARKER' "$k"
		reads_marker "${OWNER[$k]}" "${DEV[$k]}" "$m" || return 1
	done
}
wait_for "every instance reads its 3 volumes" 120 all_own && gt_pass "all $NI instances read their own $NV volumes" \
	|| gt_fail "some instance did not read its own volumes"

# One full periodic round before the remap (verify-interval 10 s).
periodic_round_covers() { # every held sd path has an ok periodic check after $1 (mono ns)
	local got need=0 p
	got=$(LW_AFTER=$1 lw_q '.identity and .identity.reason == "VERIFY_PERIODIC" and .identity.ok == true' | jq -r '.identity.dev_name' | sort -u)
	for p in "${SDP[@]}" "${SDP2[@]}"; do grep -qx "$p" <<< "$got" || return 1; done
}
T_ROUND=$(mono_ns)
wait_for "a periodic round covering every held path" 40 periodic_round_covers "$T_ROUND" \
	&& gt_pass "lunwatch's periodic round reached every one of the $((${#SDP[@]} + ${#SDP2[@]})) held paths" \
	|| gt_fail "a periodic round did not reach every held path (see events.jsonl)"

step "remap ${#REMAP[@]} LUNs at once (${REMAP[*]}), target only: each now another tenant's volume"
T_REMAP_MS=$(date +%s%3N)
T_REMAP=$(mono_ns)
for k in "${REMAP[@]}"; do lun_unmap "$IQN" "$k"; done
for k in "${REMAP[@]}"; do lun_map "$IQN" "$k" "w$k"; done
all_leak() {
	local k m
	for k in "${REMAP[@]}"; do
		printf -v m 'VOLUME-W%02d-MARKER' "$k"
		reads_marker "${OWNER[$k]}" "${DEV[$k]}" "$m" || return 1
	done
}
if wait_for "each remapped device reads the other tenant's volume" 90 all_leak; then
	gt_pass "all ${#REMAP[@]} remapped devices (${REMAP[*]}: 4 single-path, 2 maps) read the other tenant's marker (the leak is real)"
else
	gt_fail "not every remapped device read the other tenant's marker"
fi
# the others are untouched
ok_others=0
for ((k = 1; k <= NV; k++)); do
	[[ " ${REMAP[*]} " == *" $k "* ]] && continue
	printf -v m 'VOLUME-W%02d-MARKER' "$k"
	grep -qE "drive=/dev/${DEV[$k]} .*marker=VOLUME-W" "$LAB_OUT/instance-${OWNER[$k]}.log" || ok_others=$((ok_others + 1))
done
gt_check "the $((NV - ${#REMAP[@]})) other devices never read another volume ($ok_others clean)" test "$ok_others" == "$((NV - ${#REMAP[@]}))"
# every remap caught: wait for lunwatch (bounded by two periodic rounds)
remaps_caught() {
	local k
	for k in "${REMAP[@]}"; do
		grep -q . < <(lw_alerts '.rule == "IDENTITY_CHANGED" and .device_name == $d' --arg d "${DEV[$k]}") || return 1
	done
}
wait_for "lunwatch raised IDENTITY_CHANGED for every remap" 40 remaps_caught || true
# a second periodic round after the remap, so the per-path counts span rounds
T_ROUND2=$(mono_ns)
wait_for "another periodic round" 40 periodic_round_covers "$T_ROUND2" || true
METRICS=$(busybox wget -qO- "http://$LW_METRICS/metrics" 2>/dev/null | grep -E '^lunwatch_identity_(verify_queue|verify_oldest|verify_retries|held_|max_age|unknown)')
echo "$METRICS" > "$LAB_OUT/metrics-identity.txt"
collect_state remapped

# lunwatch: every remap caught, naming the device and its instance
for k in "${REMAP[@]}"; do
	i=${OWNER[$k]#i}
	printf -v iname 'instance-%08x' $((0x200 + i))
	lw_expect alert IDENTITY_CHANGED "(.device_name == \"${DEV[$k]}\") and (.instance.name == \"$iname\") and (.verified_wwid != .expected_wwid)" \
		"(LUN $k, ${DEV[$k]}, $iname)"
done
# remap_latency: from the remap to each device's IDENTITY_CHANGED (NOTE per device, max <= 2 rounds)
remap_latency() {
	local k t max=0 worst= all=
	for k in "${REMAP[@]}"; do
		t=$(lw_alerts '.rule == "IDENTITY_CHANGED" and .device_name == $d' --arg d "${DEV[$k]}" | head -1 | jq -r '.unix_ms // empty')
		[[ -n $t ]] || { lw_record FAIL "no IDENTITY_CHANGED for ${DEV[$k]} to time"; return; }
		t=$((t - T_REMAP_MS))
		all+="${DEV[$k]}=${t}ms "
		((t > max)) && max=$t worst=${DEV[$k]}
	done
	lw_note "remap -> IDENTITY_CHANGED: $all(max $max ms, $worst)"
	((max <= 25000)) && lw_record PASS "every remap caught within 25 s of the remap (max $max ms)" \
		|| lw_record FAIL "a remap caught only after $max ms ($worst): more than two periodic rounds"
}
# every_path_checked: per held path, ok periodic checks over the run (each >= 2)
every_path_checked() {
	local counts min=999999 max=0 p n missing=
	counts=$(lw_q '.identity and .identity.reason == "VERIFY_PERIODIC" and .identity.ok == true' | jq -r '.identity.dev_name' | sort | uniq -c)
	for p in "${SDP[@]}" "${SDP2[@]}"; do
		n=$(awk -v p="$p" '$2 == p {print $1}' <<< "$counts")
		n=${n:-0}
		((n < min)) && min=$n
		((n > max)) && max=$n
		((n < 2)) && missing+="$p($n) "
	done
	lw_note "ok periodic checks per held path: min $min, max $max over $((${#SDP[@]} + ${#SDP2[@]})) paths"
	[[ -z $missing ]] && lw_record PASS "every one of the $((${#SDP[@]} + ${#SDP2[@]})) held paths had >= 2 ok periodic checks (min $min, max $max)" \
		|| lw_record FAIL "held paths with fewer than 2 ok periodic checks: $missing"
}
queue_metrics() {
	local held overdue
	held=$(awk '$1 == "lunwatch_identity_held_paths" {print $2}' "$LAB_OUT/metrics-identity.txt")
	overdue=$(awk '$1 == "lunwatch_identity_held_overdue_paths" {print $2}' "$LAB_OUT/metrics-identity.txt")
	lw_note "identity metrics after the remap: $(tr '\n' ' ' < "$LAB_OUT/metrics-identity.txt")"
	[[ $held == "$((${#SDP[@]} + ${#SDP2[@]}))" && $overdue == 0 ]] \
		&& lw_record PASS "metrics: lunwatch_identity_held_paths $held, none overdue" \
		|| lw_record FAIL "metrics: lunwatch_identity_held_paths '$held' (want $((${#SDP[@]} + ${#SDP2[@]}))), overdue '$overdue' (want 0)"
}
lw_expect remap_latency
lw_expect every_path_checked
lw_expect queue_metrics
lab_finish
