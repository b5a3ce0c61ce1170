#!/bin/bash
# Scenario "containment": the intentional leak with a real libvirt domain as the
# offending instance and lunwatch's containment actions on (--contain
# offline,pause; guard in monitor mode, so the leak is not refused and
# containment is what stops it).
#   1. volA at LUN 1 over two portals, dm-multipath; instance A is a real qemu
#      domain started by a real libvirtd, its disk the map; qemu reads volA.
#   2. LUN 1 unmapped on the target only (the attachment deleted in Cinder).
#   3. volB mapped at LUN 1 for instance B (the lab's instance helper); the scan
#      reuses the sd devices; B is handed A's map.
#   4. A's qemu reads the disk again: volB's marker (the leak, real qemu).
#   GROUND TRUTH: libvirt reports A paused; both SCSI paths are offline in sysfs;
#   A's qemu can no longer read the LUN; B's I/O fails too (the documented cost
#   of offlining). lunwatch: CROSS_INSTANCE_ACCESS naming A, written again with
#   containment results: pause_domain done for A's uuid, offline_scsi_device done
#   for both H:C:T:L; the time from the alert to each result is printed.
. "$(dirname "$0")/../lib/common.sh"
. "$LAB_LIB/libvirt.sh"
export LAB_CONTAIN=offline,pause

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_B=b2b2b2b2-0000-4000-8000-00000000000b

step "load modules, start libvirtd, start lunwatch (--contain $LAB_CONTAIN, guard $LAB_GUARD)"
load_modules
libvirtd_start
lw_start

step "target: $IQN with portals $P1 and $P2; volA and volB"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create volB "$SERIAL_B" 64 VOLUME-B-MARKER
initiator_up

step "attach volA to instance A (a real libvirt domain) at LUN 1"
lun_map "$IQN" 1 volA
attach_mpath "$IQN" 1 "$P1" "$P2"
NAA_A=$NAA WWID_A=$WWID
log "volA = $DM over $SD1 ($HCTL1) and $SD2 ($HCTL2)"
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
libvirtd_wait 180
vm_start A 10 "$DM" "$SERIAL_A"
gt_check "libvirt runs A" vm_state_is A running
got=$(vm_read A)
gt_check "A's qemu reads its own volume through $DM (read: $got)" test "$got" == VOLUME-A-MARKER
collect_state attached

step "Cinder attachment delete, storage side only: LUN 1 unmapped (host untouched)"
lun_unmap "$IQN" 1
cinder_status A ATTACHMENT_DELETED
got=$(vm_read A)
gt_check "A's qemu cannot read once LUN 1 is unmapped ($got)" test "${got:0:5}" == ERROR
wait_for "both paths failed" 30 mpath_active_is "$WWID_A" 0 \
	&& gt_pass "dm-multipath failed both paths of $DM" || gt_fail "paths of $DM not failed: $(dmsetup status "$WWID_A")"

step "volB mapped at LUN 1 for instance B; os-brick scans; B is handed A's map"
cinder_attach B 11 "$SERIAL_B" "$IQN" 1 "$P1" "$P2"
lun_map "$IQN" 1 volB
scan_lun "$H1" 1
scan_lun "$H2" 1
wait_for "path checker reinstates both paths" 40 mpath_active_is "$WWID_A" 2 \
	&& gt_pass "both paths of $DM reinstated (TUR ok, no WWID recheck)" || gt_fail "paths not reinstated: $(dmsetup status "$WWID_A")"
BDM=$(holder_of "$SD1")
gt_check "os-brick's holder lookup for volB returns A's map $DM" test "$BDM" == "$DM"
INST_SERIALS=$SERIAL_B instance_start B 11 "${BDM:-$DM}"
instance_wait_marker B VOLUME-B-MARKER 30 && gt_pass "B reads volB" || gt_fail "B never read VOLUME-B-MARKER"
instance_mark B

step "THE LEAK: A's qemu reads its disk again"
T_LEAK=$(date +%s%3N)
got=$(vm_read A)
if [[ $got == VOLUME-B-MARKER ]]; then
	gt_pass "LEAK: A's real qemu (pid ${INST_PID[A]}) read VOLUME-B-MARKER, instance B's volume, through $DM"
else
	gt_fail "A's qemu did not read volB ($got): no leak to contain"
fi

step "CONTAINMENT: lunwatch pauses A and offlines the paths"
if wait_for "libvirt reports A paused" 40 vm_state_is A paused; then
	gt_pass "libvirt says A is paused ($(vm_state A)), $(($(date +%s%3N) - T_LEAK)) ms after the leaking read began"
else
	gt_fail "A is not paused: libvirt says '$(vm_state A)'"
fi
sd_state() { local s; read -r s < "/sys/block/$1/device/state" && echo "$s"; }
for sd in "$SD1" "$SD2"; do
	wait_for "$sd offline" 20 bash -c "[[ \$(cat /sys/block/$sd/device/state) == offline ]]" \
		&& gt_pass "$sd ($(hctl_of "$sd")) is offline in sysfs" || gt_fail "$sd state is '$(sd_state "$sd")', not offline"
done
got=$(vm_read A)
gt_check "A's qemu can no longer read the LUN ($got)" test "${got:0:5}" == ERROR
wait_for "B's I/O fails with the paths offline" 30 instance_saw B 'op=read err=' \
	&& gt_pass "the cost: B's reads fail too while the paths are offline ($(grep 'op=read err=' "$LAB_OUT/instance-B.log" | tail -1 | cut -c1-100))" \
	|| gt_fail "B's reads did not fail with both paths offline"
collect_state contained

A_NAME=${INST_NAME[A]} A_UUID=${INST_UUID[A]}
lw_expect flow "${INST_PID[A]}" "$DM" "(A's real qemu)"
lw_expect alert CROSS_INSTANCE_ACCESS "(.instance.name == \"$A_NAME\") and (.owner_volume_id == \"$SERIAL_B\") and (.device_name == \"$DM\")" \
	"(A=$A_NAME, real qemu pid ${INST_PID[A]}, owner volB, $DM)"
lw_expect alert CROSS_INSTANCE_ACCESS "(.instance.name == \"$A_NAME\") and any(.containment[]?; .kind == \"CONTAIN_PAUSE_DOMAIN\" and .result == \"CONTAIN_DONE\" and .target == \"$A_UUID\")" \
	"with containment: pause_domain done for $A_UUID"
for h in "$HCTL1" "$HCTL2"; do
	lw_expect alert CROSS_INSTANCE_ACCESS "any(.containment[]?; .kind == \"CONTAIN_OFFLINE_SCSI_DEVICE\" and .result == \"CONTAIN_DONE\" and .target == \"$h\")" \
		"with containment: offline_scsi_device done for $h"
done
lw_expect containment_times
lab_finish
