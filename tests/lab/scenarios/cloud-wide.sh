#!/bin/bash
# Scenario "cloud-wide" (issue 12, point 5): Cinder's attachment list is cloud-wide and
# carries no host; arrays that number LUNs per host give other hypervisors' volumes the
# same IQN and LUN numbers as this host's.
#   1. The list holds three other hosts' records (instances X1..X3, not on this host)
#      at LUN 1, 2 and 3 of the shared target before anything is attached here.
#   2. volA at LUN 1 for instance A (this host): the paths are verified by lunwatch
#      BEFORE A's own record exists (another host's record at LUN 1 is all there is),
#      then A's record, A starts and reads and writes its volume.
#   3. volE at LUN 3 for instance E, then a clean detach (os-brick order: instance
#      gone, map flushed, sd devices deleted, record deleted).
#   4. volL at LUN 2: a real leftover (no attachment of any instance here; X2's record
#      at LUN 2 is another host's).
#   LUNWATCH: no CROSS_INSTANCE_ACCESS / IDENTITY_CHANGED / GUARD_DENIED against A, no
#   alert above warning; A's volume bound to A, no X bound to anything (state file);
#   ORPHAN_DEVICE for the leftover's map; no ORPHAN_DEVICE for the flushed map of E.
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_E=e5e5e5e5-0000-4000-8000-00000000000e
SERIAL_L=1e1e1e1e-0000-4000-8000-00000000001e
X_SERIALS=(x1x1x1x1-0000-4000-8000-000000000001 x2x2x2x2-0000-4000-8000-000000000002 x3x3x3x3-0000-4000-8000-000000000003)

step "load modules, start lunwatch; the cloud-wide list already has other hosts' records at LUN 1, 2, 3"
load_modules
CINDER_BATCH=1
for i in 1 2 3; do cinder_attach "X$i" $((0x200 + i)) "${X_SERIALS[i - 1]}" "$IQN" "$i" "$P1" "$P2"; done
unset CINDER_BATCH
cinder_write
# libvirtd's run dir exists on a hypervisor before any instance: lunwatch knows
# which instances run here (none yet)
mkdir -p /run/libvirt/qemu
X_UUIDS=()
for i in 1 2 3; do printf -v u '%08x-0000-4000-8000-%012x' $((0x200 + i)) $((0x200 + i)); X_UUIDS+=("$u"); done
lw_start

step "target: $IQN with portals $P1 and $P2; volA, volE, volL"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create volE "$SERIAL_E" 64 VOLUME-E-MARKER
volume_create volL "$SERIAL_L" 64 VOLUME-L-MARKER
initiator_up

step "volA at LUN 1: paths verified by lunwatch while only X1's record names LUN 1"
lun_map "$IQN" 1 volA
attach_mpath "$IQN" 1 "$P1" "$P2"
DMA=$DM SDA1=$SD1 SDA2=$SD2 WWID_A=$WWID
log "volA = $DMA over $SDA1 $SDA2"
verified() { [[ -n $(lw_q '.identity and .identity.dev_name == $d and .identity.ok == true' --arg d "$1" | head -1) ]]; }
verified_both() { verified "$SDA1" && verified "$SDA2"; }
wait_for "lunwatch verified $SDA1 and $SDA2" 40 verified_both \
	|| log "no identity answer for $SDA1/$SDA2 in the events yet"
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DMA"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads its own volume (VOLUME-A-MARKER) through $DMA" \
	|| gt_fail "A never read VOLUME-A-MARKER through $DMA"
bound_a() { grep -q "${INST_UUID[A]}" /run/lunwatch/bindings.json 2>/dev/null; }
if wait_for "lunwatch bound A's volume (state file)" 30 bound_a; then
	lw_record PASS "A's volume bound to A (${INST_UUID[A]} in the state file)"
else
	lw_record FAIL "A's volume not bound to A: $(head -c 400 /run/lunwatch/bindings.json 2>/dev/null)"
fi
xb=
for u in "${X_UUIDS[@]}"; do grep -q "$u" /run/lunwatch/bindings.json 2>/dev/null && xb+="$u "; done
if [[ -z $xb ]]; then
	lw_record PASS "no other host's instance (X1..X3) bound to a device here"
else
	lw_record FAIL "other hosts' instances bound to devices here: $xb($(head -c 400 /run/lunwatch/bindings.json))"
fi

step "volE at LUN 3 for instance E, then a clean detach"
lun_map "$IQN" 3 volE
read -r SDE1 SDE2 <<< "$(attach_paths "$IQN" 3 "$P1" "$P2")"
WWID_E=$(mpath_name "$(vpd_naa "$SDE1")")
DME=$(mpath_create "$WWID_E" "$SDE1" "$SDE2")
DME_DEV=$(majmin "$DME")
log "volE = $DME ($DME_DEV) over $SDE1 $SDE2"
cinder_attach E 14 "$SERIAL_E" "$IQN" 3 "$P1" "$P2"
INST_SERIALS=$SERIAL_E instance_start E 14 "$DME"
instance_wait_marker E VOLUME-E-MARKER 30 && gt_pass "E reads volE" || gt_fail "E never read volE"
instance_stop E
gt_check "flush of map $WWID_E" dmsetup remove "$WWID_E"
sd_delete "$SDE1"
sd_delete "$SDE2"
wait_for "$SDE1 and $SDE2 gone" 30 bash -c "[[ ! -e /sys/block/$SDE1 && ! -e /sys/block/$SDE2 ]]" \
	&& gt_pass "E's sd devices deleted" || gt_fail "E's sd devices not deleted"
lun_unmap "$IQN" 3
cinder_status E ATTACHMENT_DELETED
T_FLUSH_MS=$(date +%s%3N)
# A false ORPHAN_DEVICE for the flushed map would come within the grace (5 s) and a
# topology refresh: watch for it for 10 s (the check below reads the alert log).
orphan_e() { grep -q "\"ORPHAN_DEVICE/$DME_DEV\"" "$LW_ALERTS"; }
wait_for "(expected NOT to happen) ORPHAN_DEVICE for the flushed $DME" 10 orphan_e || true

step "volL at LUN 2: a real leftover (X2's record at LUN 2 is another host's)"
lun_map "$IQN" 2 volL
read -r SDL1 SDL2 <<< "$(attach_paths "$IQN" 2 "$P1" "$P2")"
WWID_L=$(mpath_name "$(vpd_naa "$SDL1")")
DML=$(mpath_create "$WWID_L" "$SDL1" "$SDL2")
T_LEFT_MS=$(date +%s%3N)
log "leftover volL = $DML over $SDL1 $SDL2"
orphan_l() { grep -q . < <(lw_alerts '.rule == "ORPHAN_DEVICE" and .device_name == $d' --arg d "$DML"); }
wait_for "ORPHAN_DEVICE for the leftover $DML" 40 orphan_l || true
ok0=$(instance_ok A)
wait_for "A still does I/O" 20 instance_ok_more A "$((ok0 + 3))" && gt_pass "A's I/O continues" || gt_fail "A's I/O stalled"

A_NAME=${INST_NAME[A]}
lw_expect alert ORPHAN_DEVICE ".device_name == \"$DML\"" "(the local leftover $DML at LUN 2, not hidden by X2's record)"
lw_expect no_alert_naming CROSS_INSTANCE_ACCESS "$A_NAME" "(A reads its own volume)"
lw_expect no_alert_naming IDENTITY_CHANGED "$A_NAME" "(A's volume never changed)"
lw_expect no_alert_naming GUARD_DENIED "$A_NAME" "(A is never refused)"
lw_expect no_alert_above_warning
# the flushed map: no ORPHAN_DEVICE raised for it before the leftover appeared
# (dm minors are reused: the leftover's map may get the same number later)
no_orphan_for_flushed() {
	local bad
	bad=$(lw_alerts '.rule == "ORPHAN_DEVICE" and (.id | endswith("/" + $d)) and ((.unix_ms|tonumber) < ($t|tonumber))' \
		--arg d "$DME_DEV" --arg t "$T_LEFT_MS" | head -2 | alert_brief)
	if [[ -z $bad ]]; then
		lw_record PASS "no ORPHAN_DEVICE for the cleanly flushed map $DME ($DME_DEV) in the $(((T_LEFT_MS - T_FLUSH_MS) / 1000)) s after its flush"
	else
		lw_record FAIL "false ORPHAN_DEVICE for the flushed map $DME ($DME_DEV): $(tr '\n' '|' <<< "$bad" | cut -c1-300)"
	fi
}
lw_expect no_orphan_for_flushed
lab_finish
