#!/bin/bash
# Scenario 2 "accidental" (CVE-2023-2088 after a detach that failed on a network error
# and was ignored):
#   1. volA at LUN 1, dm-multipath over portals 1 and 2, instance A doing I/O.
#   2. network fault: iSCSI traffic to/from portal 2 dropped (nft). Path 2 fails
#      (connection error, session blocked), A's I/O continues on path 1.
#   3. Nova detaches volA under the fault. The guest-side detach times out, so A's qemu
#      still holds the disk; os-brick's disconnect (not forced) runs in its order:
#      flush the map -> fails (map in use); the portal-2 logout -> fails/times out on
#      the dropped traffic. os-brick gives up: map + sd devices stay. Nova ignores
#      the error and Cinder deletes the attachment: the array unmaps LUN 1.
#   4. The network heals (session 2 recovers). volB is attached for instance B at the
#      same LUN: the scan finds the existing sd devices, os-brick's holder lookup
#      returns the stale map (still named for volA), the path checker reinstates paths.
#   GROUND TRUTH: B is handed the stale map and reads volB through it; A (still open)
#   reads volB's marker (the leak); sysfs wwid says volA, SG_IO says volB.
#   lunwatch: MULTIPATH_WWID_MISMATCH or IDENTITY_CHANGED on the stale map,
#   ORPHAN_DEVICE for the devices left behind once Cinder says A's attachment is
#   deleted, and CROSS_INSTANCE_ACCESS naming A with owner volB.
# Scenario "accidental-guard" runs this file with LAB_GUARD=enforce: the ground truth
# flips as in intentional-guard (A's reads refused with EPERM, A never reads volB's
# marker, B normal) and an alert with denied=true names A.
. "$(dirname "$0")/../lib/common.sh"
GUARD=$([[ ${LAB_GUARD:-monitor} == enforce ]] && echo 1 || echo 0)

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_B=b2b2b2b2-0000-4000-8000-00000000000b

step "load modules, start lunwatch"
load_modules
lw_start

step "target with two portals; volA, volB"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create volB "$SERIAL_B" 64 VOLUME-B-MARKER
initiator_up

step "attach volA to instance A at LUN 1 over both portals"
lun_map "$IQN" 1 volA
attach_mpath "$IQN" 1 "$P1" "$P2"
NAA_A=$NAA WWID_A=$WWID
log "volA ($NAA_A) = $DM over $SD1 ($HCTL1 via $P1) and $SD2 ($HCTL2 via $P2)"
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DM"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads VOLUME-A-MARKER through $DM" || gt_fail "A never read its volume"

step "Nova detach of volA; os-brick disconnect_volume (force=False) while portal $P2's network fails"
S2_OLD=$S2
# The guest-side detach timed out: A's qemu still holds $DM (as with a stuck I/O).
net_drop "$P2"
log "nft: iSCSI traffic of $P2 dropped (session $S2 still $(session_state "$S2"))"
if dmsetup remove "$WWID_A" 2> "$LAB_OUT/flush.err"; then
	gt_fail "flush of $WWID_A unexpectedly succeeded while A holds it"
else
	gt_pass "os-brick step 1, flush multipath map: failed ($(tr '\n' ' ' < "$LAB_OUT/flush.err" | cut -c1-80))"
fi
# os-brick stops here when not forced; a forced cleanup goes on to log out of the
# portal whose network is broken: that logout fails on the fault.
t0=$SECONDS
if timeout -k 2 40 iscsiadm -m node -T "$IQN" -p "$P2:3260" --logout > "$LAB_OUT/logout.out" 2>&1; then
	log "logout of $S2 returned success after $((SECONDS - t0))s: $(tr '\n' ' ' < "$LAB_OUT/logout.out")"
else
	gt_pass "portal-2 logout failed on the network fault after $((SECONDS - t0))s ($(tail -1 "$LAB_OUT/logout.out"))"
fi
log "session $S2 now: $(session_state "$S2" || echo gone)"
instance_mark A
if wait_for "path $SD2 failed in $DM" 40 bash -c "[[ \$(dmsetup status $WWID_A) == *'$MM2 F'* ]]"; then
	gt_pass "dm-multipath failed path $SD2 ($MM2)"
else
	gt_fail "path $SD2 not failed: $(dmsetup status "$WWID_A")"
fi
ok0=$(instance_ok A)
wait_for "A still reads through path 1" 30 instance_ok_more A "$((ok0 + 3))" \
	&& gt_pass "A's I/O continues on path 1 ($SD1)" || gt_fail "A's I/O stalled with one path left"
log "os-brick raises; Nova logs the error and carries on; Cinder deletes the attachment"
# Nova detached the disk from the guest before os-brick's disconnect failed:
# libvirt no longer lists it, so nothing explains the devices left behind.
INST_SERIALS= libvirt_domain "${INST_NAME[A]}" "${INST_UUID[A]}" "${INST_PID[A]}"
gt_check "multipath map $WWID_A ($DM) left behind" dm_of "$WWID_A"
gt_check "sd device $SD1 left behind" test -e "/sys/block/$SD1"
if [[ -e /sys/block/$SD2 ]]; then gt_pass "sd device $SD2 left behind"; else log "note: $SD2 went away with the logout"; fi
collect_state failed-detach

step "Cinder attachment delete: the array unmaps LUN 1; the network heals"
instance_mark A
cinder_status A ATTACHMENT_DELETED
lun_unmap "$IQN" 1
# (under enforce they may fail already: the guard revoked the map when Nova
# detached the disk from A's domain)
wait_for "A's reads fail (LUN gone)" 40 instance_reads_fail A \
	&& gt_pass "A's reads fail after the unmap" || gt_fail "A's reads did not fail after the unmap"
net_restore "$P2"
if ! iscsi_session "$IQN" "$P2" > /dev/null; then
	log "portal-2 session gone (logout went through); os-brick would log in again on the next attach"
	iscsi_login "$IQN" "$P2"
	S2=$(iscsi_session "$IQN" "$P2") H2=$(iscsi_host "$IQN" "$P2")
fi
wait_for "session $S2 LOGGED_IN again" 60 bash -c "[[ \$(cat /sys/class/iscsi_session/$S2/state) == LOGGED_IN ]]" \
	&& gt_pass "portal-2 session $S2 recovered" || gt_fail "session $S2 did not recover: $(session_state "$S2")"

# Time passes before the next attach: Cinder says A's attachment is gone while its map
# and sd devices remain (lunwatch: ORPHAN_DEVICE after --orphan-grace 5 s).
if [[ -n $LW_PID ]]; then
	wait_for "lunwatch reports the leftover devices (ORPHAN_DEVICE)" 25 grep -q '"ORPHAN_DEVICE"' "$LW_ALERTS" \
		&& log "lunwatch: ORPHAN_DEVICE raised for the leftovers" || log "lunwatch: no ORPHAN_DEVICE within 25 s of Cinder's delete"
fi

step "attach volB for instance B at the same LUN 1 (os-brick connect_volume)"
lun_map "$IQN" 1 volB
cinder_attach B 11 "$SERIAL_B" "$IQN" 1 "$P1" "$P2"
scan_lun "$H1" 1
scan_lun "$H2" 1
wait_for "LUN 1 on host$H2" 30 sd_of "$H2" 1 || true
NSD1=$(sd_of "$H1" 1) NSD2=$(sd_of "$H2" 1)
log "after the scan: host$H1 LUN 1 = $NSD1, host$H2 LUN 1 = $NSD2"
gt_check "the scan found the stale $SD1 at $HCTL1 (same device, not a new one)" test "$NSD1" == "$SD1"
BDM=$(holder_of "$NSD1")
gt_check "os-brick's holder lookup hands B the stale map $DM" test "$BDM" == "$DM"
# a path whose sd device came back new (after a logout) joins the map as multipathd
# would add it by its (cached, at probe time correct) WWID: the map name says volA
if [[ -n $NSD2 && $NSD2 != "$SD2" && -z $(holder_of "$NSD2") ]]; then
	log "new path $NSD2 (WWID $(sysfs_wwid "$NSD2")) is not in $DM"
fi
# a path's own state (the status line's group state is also 'A': not that)
wait_for "a path of $DM active" 40 mpath_any_active "$WWID_A" \
	&& gt_pass "path checker reinstated path(s) of the stale map (TUR ok)" || gt_fail "no path of $DM reinstated: $(dmsetup status "$WWID_A")"
INST_SERIALS=$SERIAL_B instance_start B 11 "${BDM:-$DM}"
instance_wait_marker B VOLUME-B-MARKER 30 && gt_pass "B reads volB through the stale map $DM (named mpath-$WWID_A, volA's WWID)" \
	|| gt_fail "B did not read volB through $DM"
if ((GUARD)); then
	step "THE GUARD: A's reads through the stale map refused, B's allowed"
	guard_refuses_leak A B VOLUME-B-MARKER
elif instance_wait_marker A VOLUME-B-MARKER 40; then
	gt_pass "LEAK: instance A (pid ${INST_PID[A]}) reads VOLUME-B-MARKER through the stale map"
else
	gt_fail "A did not read volB (no leak reproduced)"
fi
sw=$(sysfs_wwid "$SD1") vs=$(vpd_serial "$SD1") vw=$(vpd_naa "$SD1")
log "$SD1: sysfs wwid=$sw | SG_IO VPD 0x83=$vw 0x80=$vs"
gt_check "$SD1 sysfs wwid still volA's" test "$sw" == "$NAA_A"
gt_check "$SD1 SG_IO unit serial is volB's" test "$vs" == "$SERIAL_B"
gt_check "stale map uuid still mpath-$WWID_A" test "$(cat /sys/block/"$DM"/dm/uuid)" == "mpath-$WWID_A"
collect_state leaked

lw_expect flow "${INST_PID[A]}" "$DM" "(instance A)"
lw_expect flow "${INST_PID[B]}" "$DM" "(instance B, stale map)"
lw_expect edge "$DM" "$SD1"
lw_expect edge "$DM" "$SD2"
lw_expect bind "$SD1" "$HCTL1" "$MM1"
lw_expect bind "$SD2" "$HCTL2" "$MM2"
lw_expect lifecycle LC_ISCSI_CONN_ERROR "(.lifecycle.session|tostring) == \"${S2_OLD#session}\"" "(session ${S2_OLD#session})"
lw_expect lifecycle LC_ISCSI_SESSION_BLOCK "(.lifecycle.session|tostring) == \"${S2_OLD#session}\"" "(session ${S2_OLD#session})"
lw_expect lifecycle LC_ISCSI_SESSION_UNBLOCK "(.lifecycle.session|tostring) == \"${S2#session}\"" "(session ${S2#session} recovery/login)"
lw_expect lifecycle LC_DM_PATH_FAIL "(.lifecycle.path_name // \"\") == \"$SD2\"" "(path $SD2)"
lw_expect lifecycle LC_DM_PATH_REINSTATE
lw_expect lifecycle LC_SCSI_HOST_SCAN '((.lifecycle.addr.hctl // "") | endswith(":1"))' "(scan of LUN 1)"
lw_expect scsi_error - 37 0
lw_expect alert_any "MULTIPATH_WWID_MISMATCH IDENTITY_CHANGED" "true" "(the stale map $DM / its paths)"
lw_expect alert ORPHAN_DEVICE "true" "(leftovers of A's deleted attachment)"
lw_expect alert CROSS_INSTANCE_ACCESS "(.instance.name == \"${INST_NAME[A]}\") and (.owner_volume_id == \"$SERIAL_B\") and (.device_name == \"$DM\")" \
	"(A=${INST_NAME[A]} on the stale map $DM, owner volB)"
((GUARD)) && lw_expect alert_any "GUARD_DENIED CROSS_INSTANCE_ACCESS" "(.denied == true) and (.instance.name == \"${INST_NAME[A]}\")" "with denied=true naming ${INST_NAME[A]}"
lab_finish
