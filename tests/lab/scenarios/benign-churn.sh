#!/bin/bash
# Scenario 3 "benign-churn" (everything done right; nothing may leak):
#   1. volA at LUN 1 over two portals (dm-multipath) for instance A; I/O.
#   2. clean detach in os-brick's order: the guest lets go (A stops), flush the map,
#      delete the sd devices, log out; then the array unmaps LUN 1.
#   3. re-attach of a different volume (volC, on an iblock/loop backstore) at the same
#      LUN 1 for instance B: new sessions, new sd devices, a new map named for volC.
#   4. iSCSI connection drop and recovery on portal 1 with no remap, under B's I/O.
#   5. online resize of volC (the array grows it; os-brick rescans the sd devices and
#      multipathd resizes the map) under B's I/O.
#   GROUND TRUTH: A only ever read volA, B only ever read volC; sysfs wwid == SG_IO
#   identity at every step; the kernel logged no LOGICAL UNIT NOT SUPPORTED error.
#   lunwatch runs with --guard enforce (LAB_GUARD=monitor to change): no alert above
#   SEVERITY_WARNING; no I/O of A or B refused except transient refusals during
#   re-verification, each resolved within a bound (printed).
LAB_GUARD=${LAB_GUARD:-enforce}
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_C=c3c3c3c3-0000-4000-8000-00000000000c

step "load modules, start lunwatch"
load_modules
lw_start

step "target with two portals; volA (fileio) and volC (iblock on a loop device)"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create_iblock volC "$SERIAL_C" 64 VOLUME-C-MARKER
initiator_up

identity_ok() { # sdX SERIAL: sysfs wwid == SG_IO VPD 0x83 and SG_IO serial == SERIAL
	local sw vw vs
	sw=$(sysfs_wwid "$1") vw=$(vpd_naa "$1") vs=$(vpd_serial "$1")
	detail "$1: sysfs wwid=$sw SG_IO naa=$vw serial=$vs"
	[[ -n $sw && $sw == "$vw" && $vs == "$2" ]]
}

step "attach volA to instance A at LUN 1"
lun_map "$IQN" 1 volA
iscsi_login "$IQN" "$P1"
iscsi_login "$IQN" "$P2"
read -r A1 A2 <<< "$(attach_paths "$IQN" 1 "$P1" "$P2")"
AH1=$(hctl_of "$A1") AH2=$(hctl_of "$A2") AM1=$(majmin "$A1") AM2=$(majmin "$A2")
gt_check "$A1 identity is volA (sysfs == SG_IO)" identity_ok "$A1" "$SERIAL_A"
NAA_A=$(vpd_naa "$A1")
WWID_A=$(mpath_name "$NAA_A")
DMA=$(mpath_create "$WWID_A" "$A1" "$A2")
log "volA = $DMA over $A1 ($AH1) $A2 ($AH2)"
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DMA"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads volA" || gt_fail "A never read volA"
ok0=$(instance_ok A)
wait_for "A does some I/O" 20 instance_ok_more A "$((ok0 + 5))" || true

step "clean detach (os-brick order): guest releases, flush map, delete sd devices, logout; array unmaps"
instance_stop A
gt_check "flush of map $WWID_A" dmsetup remove "$WWID_A"
sd_delete "$A1"
sd_delete "$A2"
wait_for "$A1 and $A2 gone" 30 bash -c "[[ ! -e /sys/class/scsi_device/$AH1 && ! -e /sys/class/scsi_device/$AH2 ]]" \
	&& gt_pass "sd devices $A1 ($AH1) and $A2 ($AH2) deleted" || gt_fail "sd devices not deleted"
S1_OLD=$(iscsi_session "$IQN" "$P1") S2_OLD=$(iscsi_session "$IQN" "$P2")
gt_check "logout of portal 1" iscsi_logout "$IQN" "$P1"
gt_check "logout of portal 2" iscsi_logout "$IQN" "$P2"
lun_unmap "$IQN" 1
cinder_status A ATTACHMENT_DELETED
gt_check "no session left" bash -c '! ls /sys/class/iscsi_session/ | grep -q session'

step "re-attach: volC at the same LUN 1 for instance B"
T_REATTACH=$(mono_ns)
lun_map "$IQN" 1 volC
iscsi_login "$IQN" "$P1"
iscsi_login "$IQN" "$P2"
S1=$(iscsi_session "$IQN" "$P1") S2=$(iscsi_session "$IQN" "$P2")
read -r C1 C2 <<< "$(attach_paths "$IQN" 1 "$P1" "$P2")"
CH1=$(hctl_of "$C1") CH2=$(hctl_of "$C2") CM1=$(majmin "$C1") CM2=$(majmin "$C2")
log "volC paths: $C1 ($CH1) $C2 ($CH2) (volA's were $A1 ($AH1) $A2 ($AH2))"
gt_check "$C1 identity is volC (sysfs == SG_IO, fresh probe)" identity_ok "$C1" "$SERIAL_C"
gt_check "$C2 identity is volC (sysfs == SG_IO, fresh probe)" identity_ok "$C2" "$SERIAL_C"
NAA_C=$(vpd_naa "$C1")
WWID_C=$(mpath_name "$NAA_C")
DMC=$(mpath_create "$WWID_C" "$C1" "$C2")
log "volC ($NAA_C) = $DMC"
cinder_attach B 11 "$SERIAL_C" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_C instance_start B 11 "$DMC" -- -lab-interval-ms 150 -lab-heartbeat-s 2
instance_wait_marker B VOLUME-C-MARKER 30 && gt_pass "B reads volC" || gt_fail "B never read volC"

step "iSCSI connection drop on portal 1 and recovery (no remap) under B's I/O"
T_DROP=$(mono_ns)
net_drop "$P1"
wait_for "$S1 fails" 40 bash -c "[[ \$(cat /sys/class/iscsi_session/$S1/state) != LOGGED_IN ]]" \
	&& gt_pass "$S1 dropped ($(session_state "$S1"))" || gt_fail "$S1 did not notice the drop"
wait_for "path $C1 failed" 40 bash -c "[[ \$(dmsetup status $WWID_C) == *'$CM1 F'* ]]" \
	&& gt_pass "path $C1 failed" || gt_fail "path $C1 not failed: $(dmsetup status "$WWID_C")"
ok1=$(instance_ok B)
wait_for "B reads on path 2" 30 instance_ok_more B "$((ok1 + 5))" && gt_pass "B's I/O continues on $C2" || gt_fail "B's I/O stalled"
net_restore "$P1"
wait_for "$S1 LOGGED_IN" 60 bash -c "[[ \$(cat /sys/class/iscsi_session/$S1/state) == LOGGED_IN ]]" \
	&& gt_pass "$S1 recovered" || gt_fail "$S1 did not recover"
wait_for "path $C1 reinstated" 40 mpath_active_is "$WWID_C" 2 \
	&& gt_pass "path $C1 reinstated" || gt_fail "path $C1 not reinstated: $(dmsetup status "$WWID_C")"
gt_check "$C1 keeps its H:C:T:L and volC identity after the drop" bash -c "[[ \$(basename \$(readlink -f /sys/block/$C1/device)) == $CH1 ]]"
gt_check "$C1 identity still volC after recovery" identity_ok "$C1" "$SERIAL_C"

step "online resize of volC: 64 MiB -> 96 MiB"
T_RESIZE=$(mono_ns)
old=$(cat "/sys/block/$C1/size")
volume_grow volC 96 || gt_fail "grow volC"
sd_rescan "$C1"
sd_rescan "$C2"
want=$((96 * 2048))
wait_for "$C1 and $C2 see the new size" 30 bash -c "[[ \$(cat /sys/block/$C1/size) == $want && \$(cat /sys/block/$C2/size) == $want ]]" \
	&& gt_pass "sd devices rescanned: $old -> $want sectors" || gt_fail "sd size after rescan: $(cat "/sys/block/$C1/size") / $(cat "/sys/block/$C2/size"), want $want"
mpath_resize "$WWID_C" && wait_for "map resized" 10 bash -c "[[ \$(cat /sys/block/$DMC/size) == $want ]]" \
	&& gt_pass "map $DMC resized to $want sectors" || gt_fail "map $DMC size $(cat "/sys/block/$DMC/size"), want $want"
gt_check "$C1 identity unchanged by the resize" identity_ok "$C1" "$SERIAL_C"
ok2=$(instance_ok B)
wait_for "B reads after the resize" 30 instance_ok_more B "$((ok2 + 5))" && gt_pass "B's I/O continues after the resize" || gt_fail "B's I/O stalled after the resize"

step "who read what"
instance_stop B
log "A: $(grep '^total' "$LAB_OUT/instance-A.log")"
log "B: $(grep '^total' "$LAB_OUT/instance-B.log")"
gt_check "A only ever read volA ($(instance_markers A | tr '\n' ' '))" test "$(instance_markers A | tr '\n' ' ')" == "VOLUME-A-MARKER "
gt_check "B only ever read volC ($(instance_markers B | tr '\n' ' '))" test "$(instance_markers B | tr '\n' ' ')" == "VOLUME-C-MARKER "
gt_check "no LOGICAL UNIT NOT SUPPORTED error in the kernel log" bash -c '! dmesg | grep -qi "Logical unit not supported"'
collect_state final-churn

# volC's devices may reuse volA's names, numbers and H:C:T:L: what belongs to the
# re-attach must be seen again after it (lunwatch must not dedupe across a remove/add).
lw_expect flow "${INST_PID[A]}" "$DMA" "(instance A, volA)"
lw_expect edge "$DMA" "$A1"
lw_expect edge "$DMA" "$A2"
lw_expect bind "$A1" "$AH1" "$AM1"
lw_expect bind "$A2" "$AH2" "$AM2"
lw_expect lifecycle LC_SCSI_DEVICE_REMOVE "(.lifecycle.addr.hctl // \"\") == \"$AH1\"" "($AH1, clean detach)"
lw_expect lifecycle LC_SCSI_DEVICE_REMOVE "(.lifecycle.addr.hctl // \"\") == \"$AH2\"" "($AH2, clean detach)"
lw_expect_after "$T_REATTACH" flow "${INST_PID[B]}" "$DMC" "(instance B, volC)"
lw_expect_after "$T_REATTACH" edge "$DMC" "$C1"
lw_expect_after "$T_REATTACH" edge "$DMC" "$C2"
lw_expect_after "$T_REATTACH" bind "$C1" "$CH1" "$CM1"
lw_expect_after "$T_REATTACH" bind "$C2" "$CH2" "$CM2"
lw_expect_after "$T_REATTACH" lifecycle LC_SCSI_DEVICE_ADD "(.lifecycle.addr.hctl // \"\") == \"$CH1\"" "($CH1, re-attach)"
lw_expect_after "$T_REATTACH" lifecycle LC_SCSI_DEVICE_ADD "(.lifecycle.addr.hctl // \"\") == \"$CH2\"" "($CH2, re-attach)"
lw_expect_after "$T_REATTACH" lifecycle LC_SCSI_HOST_SCAN '((.lifecycle.addr.hctl // "") | endswith(":1"))' "(scan of LUN 1)"
lw_expect_after "$T_REATTACH" login "${S1#session}"
lw_expect_after "$T_REATTACH" login "${S2#session}"
lw_expect_after "$T_DROP" lifecycle LC_ISCSI_CONN_ERROR "(.lifecycle.session|tostring) == \"${S1#session}\"" "(session ${S1#session} drop)"
lw_expect_after "$T_DROP" lifecycle LC_ISCSI_SESSION_BLOCK "(.lifecycle.session|tostring) == \"${S1#session}\"" "(session ${S1#session} drop)"
lw_expect_after "$T_DROP" lifecycle LC_ISCSI_SESSION_UNBLOCK "(.lifecycle.session|tostring) == \"${S1#session}\"" "(session ${S1#session} recovery)"
lw_expect_after "$T_DROP" lifecycle LC_DM_PATH_FAIL "(.lifecycle.path_name // \"\") == \"$C1\"" "(path $C1)"
lw_expect_after "$T_DROP" lifecycle LC_DM_PATH_REINSTATE "(.lifecycle.path_name // \"\") == \"$C1\"" "(path $C1)"
lw_expect_after "$T_RESIZE" lifecycle LC_SCSI_DEVICE_RESCAN "(.lifecycle.addr.hctl // \"\") == \"$CH1\"" "($CH1, resize)"
lw_expect_after "$T_RESIZE" lifecycle LC_SCSI_DEVICE_RESCAN "(.lifecycle.addr.hctl // \"\") == \"$CH2\"" "($CH2, resize)"
lw_expect no_alert_above_warning
[[ $LAB_GUARD == enforce ]] && lw_expect guard_denials 5000 A B
lab_finish
