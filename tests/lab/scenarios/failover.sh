#!/bin/bash
# Scenario 4 "failover" (benign: a portal goes down and comes back under I/O):
#   volA at LUN 1 over portals 1 and 2 (dm-multipath), instance A reading and writing
#   continuously with psync, libaio and io_uring. Portal 2's traffic is dropped, then
#   restored; then portal 1's. Each time the path fails and is reinstated.
#   GROUND TRUTH: A's I/O never fails and keeps going through each outage, A only ever
#   reads VOLUME-A-MARKER, the sd devices keep their H:C:T:L, and every path's identity
#   (sysfs wwid and SG_IO VPD 0x83) stays volA's.
#   lunwatch runs with --guard enforce (LAB_GUARD=monitor to change): no alert above
#   SEVERITY_WARNING; no I/O of A refused except transient refusals during
#   re-verification, each resolved within a bound (printed).
LAB_GUARD=${LAB_GUARD:-enforce}
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a

step "load modules, start lunwatch"
load_modules
lw_start

step "target with two portals; volA at LUN 1; instance A"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
initiator_up
lun_map "$IQN" 1 volA
attach_mpath "$IQN" 1 "$P1" "$P2"
declare -A SESS=([$P1]=$S1 [$P2]=$S2) SD=([$P1]=$SD1 [$P2]=$SD2)
NAA_A=$NAA WWID_A=$WWID
log "volA ($NAA_A) = $DM over $SD1 ($HCTL1 via $P1) and $SD2 ($HCTL2 via $P2)"
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DM" -- -lab-interval-ms 100 -lab-heartbeat-s 2
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads VOLUME-A-MARKER through $DM" || gt_fail "A never read its volume"

outage() {
	local ip=$1 sd=$2 sess=$3 mm
	mm=$(majmin "$sd")
	step "portal $ip down under I/O (path $sd, $sess)"
	local r0
	r0=$(instance_ok A)
	net_drop "$ip"
	wait_for "$sess fails" 40 bash -c "[[ \$(cat /sys/class/iscsi_session/$sess/state) != LOGGED_IN ]]" \
		&& gt_pass "$sess left LOGGED_IN ($(session_state "$sess"))" || gt_fail "$sess did not notice the outage"
	wait_for "path $sd failed" 40 bash -c "[[ \$(dmsetup status $WWID_A) == *'$mm F'* ]]" \
		&& gt_pass "path $sd failed in $DM" || gt_fail "path $sd not failed: $(dmsetup status "$WWID_A")"
	local r1 r2
	r1=$(instance_ok A)
	wait_for "A's I/O progresses on the other path" 30 instance_ok_more A "$((r1 + 10))" || true
	r2=$(instance_ok A)
	if ((r2 > r1 + 10)); then gt_pass "A's I/O continued during the outage (good reads $r0 -> $r1 -> $r2)"; else gt_fail "A's I/O stalled during the outage (good reads $r0 -> $r1 -> $r2)"; fi
	step "portal $ip back"
	net_restore "$ip"
	wait_for "$sess LOGGED_IN" 60 bash -c "[[ \$(cat /sys/class/iscsi_session/$sess/state) == LOGGED_IN ]]" \
		&& gt_pass "$sess recovered" || gt_fail "$sess did not recover: $(session_state "$sess")"
	wait_for "path $sd reinstated" 40 mpath_active_is "$WWID_A" 2 \
		&& gt_pass "path $sd reinstated (2 active paths)" || gt_fail "path $sd not reinstated: $(dmsetup status "$WWID_A")"
}
outage "$P2" "$SD2" "${SESS[$P2]}"
outage "$P1" "$SD1" "${SESS[$P1]}"

step "after both outages"
ok0=$(instance_ok A)
wait_for "A reads after recovery" 20 instance_ok_more A "$((ok0 + 10))" \
	&& gt_pass "A reads after both outages" || gt_fail "A does not read after the outages"
instance_stop A
total=$(grep '^total' "$LAB_OUT/instance-A.log")
log "A: $total"
# errors other than the guard's refusals (EPERM; judged by guard_denials below)
io_errors_other_than_denials() {
	local re we rd wd
	re=$(grep -oE 'read_errors=[0-9]+' <<< "$total" | cut -d= -f2) we=$(grep -oE 'write_errors=[0-9]+' <<< "$total" | cut -d= -f2)
	rd=$(grep -oE 'read_denied=[0-9]+' <<< "$total" | cut -d= -f2) wd=$(grep -oE 'write_denied=[0-9]+' <<< "$total" | cut -d= -f2)
	((re - ${rd:-0} == 0 && we - ${wd:-0} == 0))
}
gt_check "A's I/O completed without a single error other than guard refusals ($total)" io_errors_other_than_denials
gt_check "A only ever read VOLUME-A-MARKER" test "$(instance_markers A | tr '\n' ' ')" == "VOLUME-A-MARKER "
for sd in "$SD1" "$SD2"; do
	gt_check "$sd keeps its H:C:T:L" test "$(hctl_of "$sd")" == "$([[ $sd == "$SD1" ]] && echo "$HCTL1" || echo "$HCTL2")"
	sw=$(sysfs_wwid "$sd") vw=$(vpd_naa "$sd")
	gt_check "$sd identity unchanged: sysfs wwid $sw == SG_IO $vw == volA" test "$sw" == "$NAA_A" -a "$vw" == "$NAA_A"
done
collect_state after

lw_expect flow "${INST_PID[A]}" "$DM" "(instance A)"
lw_expect edge "$DM" "$SD1"
lw_expect edge "$DM" "$SD2"
lw_expect bind "$SD1" "$HCTL1" "$MM1"
lw_expect bind "$SD2" "$HCTL2" "$MM2"
for ip in "$P1" "$P2"; do
	n=${SESS[$ip]#session}
	lw_expect lifecycle LC_ISCSI_CONN_ERROR "(.lifecycle.session|tostring) == \"$n\"" "(session $n)"
	lw_expect lifecycle LC_ISCSI_SESSION_BLOCK "(.lifecycle.session|tostring) == \"$n\"" "(session $n)"
	lw_expect lifecycle LC_ISCSI_SESSION_UNBLOCK "(.lifecycle.session|tostring) == \"$n\"" "(session $n)"
	lw_expect lifecycle LC_DM_PATH_FAIL "(.lifecycle.path_name // \"\") == \"${SD[$ip]}\"" "(path ${SD[$ip]})"
	lw_expect lifecycle LC_DM_PATH_REINSTATE "(.lifecycle.path_name // \"\") == \"${SD[$ip]}\"" "(path ${SD[$ip]})"
done
lw_expect no_alert_above_warning
# Bound: a path reinstated while the other portal is being dropped re-opens only
# once every path has answered since the close; the dropping path's SG_IO answers
# with its timeout (--verify-timeout, 3 s by default), so verify timeout + 3 s.
[[ $LAB_GUARD == enforce ]] && lw_expect guard_denials 6000 A
lab_finish
