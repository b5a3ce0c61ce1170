#!/bin/bash
# Scenario "queue-guard" (issue 12, point 9): I/O already inside the block layer.
#   volA at LUN 1 over both portals, the dm-multipath map with queue_if_no_path (real
#   multipathd's setting for LIO and many arrays); instance A only writes (4 KiB at
#   1 MiB, "written-by guest=instance-0000000a,..."), guard in enforce.
#   LUN 1 unmapped: A's write in flight fails on both paths and dm queues it (no path
#   left). volB mapped at LUN 1 for B, LUN 1 scanned, the checker reinstates the paths:
#   a write still queued in dm then goes to volB, past the guard (it was allowed at the
#   system call, before the unmap).
#   GROUND TRUTH: A's queued write fails (EIO) instead of waiting for a path (or, when
#   the guard closed the map before A's next write, A's writes return EPERM: none
#   waits in dm); volB's
#   backing file is byte-identical to its copy taken before the remap (0 bytes of A's
#   writes landed), B reads volB; the map queues again at the end (the operator's
#   queue_if_no_path restored once re-verified).
#   LUNWATCH: "switched to fail_if_no_path" and "queue_if_no_path restored" for the map;
#   an alert with denied=true naming A.
export LAB_GUARD=enforce
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_B=b2b2b2b2-0000-4000-8000-00000000000b

step "load modules, start lunwatch (guard enforce)"
load_modules
lw_start

step "volA at LUN 1, two paths, dm-multipath with queue_if_no_path; A writes"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create volB "$SERIAL_B" 64 VOLUME-B-MARKER
initiator_up
lun_map "$IQN" 1 volA
MPATH_FEATURES="1 queue_if_no_path" attach_mpath "$IQN" 1 "$P1" "$P2"
WWID_A=$WWID
queues() { dmsetup table "$WWID_A" | grep -q ' queue_if_no_path'; }
gt_check "the map queues when no path is left (table: $(dmsetup table "$WWID_A" | cut -c1-80))" queues
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DM" -- -lab-read 0 -lab-interval-ms 100 -lab-engines psync
A_NAME=${INST_NAME[A]}
wait_for "A's writes succeed" 30 grep -q 'op=write ok' "$LAB_OUT/instance-A.log" || true
a_landed_on_A() { grep -aq "written-by guest=$A_NAME" "${VOL_FILE[volA]}"; }
wait_for "A's write in volA's backing file" 20 a_landed_on_A && gt_pass "A's writes land in its own volume (volA's backing file)" \
	|| gt_fail "A's writes never reached volA's backing file"
cp "${VOL_FILE[volB]}" "$VOL_DIR/volB.before"

step "LUN 1 unmapped (storage side only): A's write is queued in dm, both paths down"
instance_mark A
T_UNMAP=$(mono_ns)
lun_unmap "$IQN" 1
wait_for "both paths failed" 40 mpath_active_is "$WWID_A" 0 \
	&& gt_pass "dm-multipath failed both paths of $DM" || gt_fail "paths of $DM not failed: $(dmsetup status "$WWID_A")"
# A writes with psync, one write at a time: either its write was in flight when the
# paths failed, dm queued it and it must now fail (EIO); or the guard closed the map
# before A's next write (the path checker's failures come first), so A is refused at
# the system call (EPERM) and nothing of A's waits in dm: its later writes return.
a_write_not_queued() { instance_saw A 'op=write err=5 ' || instance_saw A 'op=write err=1 '; }
if wait_for "A's queued write fails, or A's writes return refused" 30 a_write_not_queued; then
	if instance_saw A 'op=write err=5 '; then
		gt_pass "A's write queued in dm failed with EIO instead of waiting for a path ($(grep 'op=write err=5 ' "$LAB_OUT/instance-A.log" | head -1 | cut -c1-120))"
	else
		gt_pass "no write of A's waits in dm: the guard refused A's next write at the system call (EPERM) before any was queued; A's synchronous writes keep returning ($(grep 'op=write err=1 ' "$LAB_OUT/instance-A.log" | head -1 | cut -c1-120))"
	fi
else
	gt_fail "A's write did not fail: still queued in dm? (A's last lines: $(tail -2 "$LAB_OUT/instance-A.log" | tr '\n' ' '); table: $(dmsetup table "$WWID_A" | cut -c1-60))"
fi
dmsetup table "$WWID_A" > "$LAB_OUT/table-unverified.txt"
cinder_status A ATTACHMENT_DELETED

step "volB at LUN 1 for B; scan; the checker reinstates the paths"
cinder_attach B 11 "$SERIAL_B" "$IQN" 1 "$P1" "$P2"
lun_map "$IQN" 1 volB
scan_lun "$H1" 1
scan_lun "$H2" 1
wait_for "path checker reinstates both paths" 40 mpath_active_is "$WWID_A" 2 \
	&& gt_pass "the checker reinstated both paths of $DM (now volB)" || gt_fail "paths not reinstated: $(dmsetup status "$WWID_A")"
BDM=$(holder_of "$SD1")
INST_SERIALS=$SERIAL_B instance_start B 11 "${BDM:-$DM}" -- -lab-write 0
instance_wait_marker B VOLUME-B-MARKER 30 && gt_pass "B reads volB (VOLUME-B-MARKER)" || gt_fail "B never read VOLUME-B-MARKER"
n0=$(grep -c 'op=write' "$LAB_OUT/instance-A.log")
_a_refused() { grep 'op=write' "$LAB_OUT/instance-A.log" | tail -1 | grep -q 'op=write err=1 '; }
wait_for "A's writes refused (EPERM)" 40 _a_refused && gt_pass "GUARD: A's writes refused with EPERM after the remap" \
	|| gt_fail "A's writes not refused: $(grep 'op=write' "$LAB_OUT/instance-A.log" | tail -2 | tr '\n' ' ')"
wait_for "queue_if_no_path restored" 30 queues && gt_pass "the map queues again (queue_if_no_path restored once re-verified)" \
	|| gt_fail "the map no longer queues: $(dmsetup table "$WWID_A" | cut -c1-80)"
sleep 2
kill -TERM "${INST_PID[A]}" 2>/dev/null
wait_for "A stopped" 20 bash -c "! kill -0 ${INST_PID[A]} 2>/dev/null" || true

step "THE BYTES: volB's backing file against its copy from before the remap"
diff_bytes=$(cmp -l "$VOL_DIR/volB.before" "${VOL_FILE[volB]}" 2>/dev/null | wc -l)
landed=$(grep -ac "written-by guest=$A_NAME" "${VOL_FILE[volB]}")
if ((diff_bytes == 0 && landed == 0)); then
	gt_pass "0 bytes of A's writes landed in volB (cmp: $diff_bytes bytes differ; 'written-by guest=$A_NAME' found $landed times)"
else
	gt_fail "A's writes landed in volB: $diff_bytes bytes differ, 'written-by guest=$A_NAME' found $landed times"
fi
grep -E '^total ' "$LAB_OUT/instance-A.log" | tail -1 | while read -r l; do log "A: $l"; done
collect_state queued

lw_expect alert_any "GUARD_DENIED CROSS_INSTANCE_ACCESS" "(.denied == true) and (.instance.name == \"$A_NAME\")" "with denied=true naming $A_NAME"
dm_switch() {
	local sw rs
	sw=$(grep -m1 "dm: $WWID_A.*switched to fail_if_no_path" "$LAB_OUT/lunwatch.stderr")
	rs=$(grep -m1 "dm: $WWID_A verified again: queue_if_no_path restored" "$LAB_OUT/lunwatch.stderr")
	[[ -n $sw ]] && lw_record PASS "lunwatch switched $WWID_A to fail_if_no_path while unverified" \
		|| lw_record FAIL "no 'switched to fail_if_no_path' line for $WWID_A (dm lines: $(grep 'dm: ' "$LAB_OUT/lunwatch.stderr" | head -3 | tr '\n' '|'))"
	[[ -n $rs ]] && lw_record PASS "lunwatch restored queue_if_no_path on $WWID_A once re-verified" \
		|| lw_record FAIL "no 'queue_if_no_path restored' line for $WWID_A"
}
lw_expect dm_switch
lab_finish
