#!/bin/bash
# Scenario "lagging-owner" (issue 12, point 2): an array whose unit serials are NOT
# Cinder volume ids, and a Cinder view that lags: the new owner's attachment record
# arrives after the leaked read. Guard off (a host without the BPF LSM).
#   1. volA (serial SN0A1A1A1A1, Cinder id VOL_A) at LUN 1 over both portals,
#      dm-multipath; instance A reads it; lunwatch binds A's attachment to volA's WWID.
#   2. LUN 1 unmapped, A's record deleted; volB (serial SN0B2B2B2B2) mapped at LUN 1
#      and scanned; the checker reinstates the paths. Cinder has no record of volB's
#      attachment yet, and the serial names no volume: nobody is known to own volB.
#   3. GROUND TRUTH: A reads VOLUME-B-MARKER (the leak). LUNWATCH: IDENTITY_CHANGED
#      for A (its bound identity changed), and no CROSS_INSTANCE_ACCESS yet (no owner).
#   4. B's attachment record appears in Cinder, then B's libvirt domain (a running
#      instance on this host) gets the disk; B's qemu does no I/O (no new flow on the
#      device). LUNWATCH: CROSS_INSTANCE_ACCESS naming A and B's volume within
#      one inventory refresh (--inventory-interval 1: bound 2000 ms) of the record, its
#      trigger A's read after the remap (not A's first flow), its time the decision.
export LAB_GUARD=${LAB_GUARD:-off}  # before the libraries: their default is monitor
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=SN0A1A1A1A1 SERIAL_B=SN0B2B2B2B2  # the array's serials: no volume id in them
VOL_A=a1a1a1a1-0000-4000-8000-00000000000a
VOL_B=b2b2b2b2-0000-4000-8000-00000000000b
MAX_MS=2000

step "load modules, start lunwatch (guard $LAB_GUARD)"
load_modules
lw_start

step "volA at LUN 1 for instance A, two paths, dm-multipath"
shared_target_volA_attached
gt_check "the unit serial of $SD1 is the array's ($SERIAL_A), not a volume id" test "$(vpd_serial "$SD1")" == "$SERIAL_A"
cinder_attach A 10 "$VOL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$VOL_A instance_start A 10 "$DM"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads its own volume (VOLUME-A-MARKER) through $DM" \
	|| gt_fail "A never read VOLUME-A-MARKER through $DM"
wait_for "lunwatch bound A's volume (state file)" 40 grep -q "${NAA_A#naa.}" /run/lunwatch/bindings.json \
	|| log "no binding of ${NAA_A} in /run/lunwatch/bindings.json"

step "LUN 1 unmapped, A's record deleted; volB mapped at LUN 1 with no Cinder record yet"
instance_mark A
lun_unmap "$IQN" 1
wait_for "A's reads fail" 60 instance_saw A 'op=read err=' && gt_pass "A's reads fail once LUN 1 is unmapped" \
	|| gt_fail "A's reads did not fail after the unmap"
cinder_status A ATTACHMENT_DELETED
wait_for "both paths failed" 30 mpath_active_is "$WWID_A" 0 || true
T_REMAP_MS=$(date +%s%3N)
lun_map "$IQN" 1 volB
scan_lun "$H1" 1
scan_lun "$H2" 1
wait_for "path checker reinstates both paths" 40 mpath_active_is "$WWID_A" 2 \
	&& gt_pass "the checker reinstated both paths of $DM (now volB)" || gt_fail "paths not reinstated"
a_read_volB() { grep -qE 'op=read ok marker=VOLUME-B-MARKER( |$)|VOLUME-B-MARKER@' "$LAB_OUT/instance-A.log"; }
wait_for "instance A reads VOLUME-B-MARKER" 40 a_read_volB \
	&& gt_pass "LEAK: instance A reads VOLUME-B-MARKER (volB, serial $(vpd_serial "$SD1")) through $DM" \
	|| gt_fail "A did not read volB's marker (no leak reproduced)"
NAA_B=$(vpd_naa "$SD1")

A_NAME=${INST_NAME[A]}
if lw_enabled; then
	ic_seen() { [[ -n $(lw_alerts '.rule == "IDENTITY_CHANGED" and .instance.name == $n' --arg n "$A_NAME" | head -1) ]]; }
	wait_for "lunwatch: IDENTITY_CHANGED for A" 30 ic_seen || true
	# two refreshes with the lagging view: no owner of volB is known, nobody is accused
	sleep 2
	n_early=$(lw_alerts '.rule == "CROSS_INSTANCE_ACCESS"' | wc -l)
	lw_note "CROSS_INSTANCE_ACCESS before B's record: $n_early (no owner known yet)"
fi

step "B's attachment record arrives in Cinder; B's domain on this host gets the disk (its qemu does no I/O)"
T_REC_MS=$(date +%s%3N)
cinder_attach B 11 "$VOL_B" "$IQN" 1 "$P1" "$P2"
# Nova attaches to B, a running instance on this host: libvirt lists the disk (after
# the Cinder record, Nova's order). Only this host's instances' records explain its
# devices (another hypervisor may use the same IQN and LUN), so without B's domain
# the late record could not name the owner of the array serial. B's "qemu" is a
# stand-in that never touches the device: no new kernel flow.
sleep 100000 &
B_STANDIN=$!
on_exit "kill $B_STANDIN"
INST_SEQ=$((INST_SEQ + 1))
INST_SERIALS=$VOL_B libvirt_domain instance-0000000b 0000000b-0000-4000-8000-00000000000b "$B_STANDIN" "$DM"
if lw_enabled; then
	cross_seen() { [[ -n $(lw_alerts '.rule == "CROSS_INSTANCE_ACCESS" and .instance.name == $n' --arg n "$A_NAME" | head -1) ]]; }
	wait_for "lunwatch: CROSS_INSTANCE_ACCESS for A" 20 cross_seen || true
fi
collect_state after-record

lw_expect alert IDENTITY_CHANGED "(.instance.name == \"$A_NAME\") and (.verified_wwid == \"$NAA_B\") and (.expected_wwid == \"$NAA_A\")" "(A's bound $NAA_A now answers as $NAA_B)"
lw_expect alert CROSS_INSTANCE_ACCESS "(.instance.name == \"$A_NAME\") and (.owner_volume_id == \"$VOL_B\") and (.device_name == \"$DM\")" "(A=$A_NAME reads volB $VOL_B, owner known only from the late record)"
# owner_latency: the first CROSS_INSTANCE_ACCESS naming A comes within MAX_MS of B's
# record, and its trigger is A's read after the remap
owner_latency() {
	local al trig
	al=$(lw_alerts '.rule == "CROSS_INSTANCE_ACCESS" and .instance.name == $n' --arg n "$A_NAME" | head -1)
	if [[ -z $al ]]; then
		lw_record FAIL "CROSS_INSTANCE_ACCESS after B's late record: none"
		return
	fi
	local ms tms d
	ms=$(jq -r '.unix_ms|tonumber' <<< "$al")
	tms=$(jq -r '(.trigger.unix_ms // 0)|tonumber' <<< "$al")
	d=$((ms - T_REC_MS))
	lw_note "LATENCY: B's record written (unix_ms=$T_REC_MS) -> CROSS_INSTANCE_ACCESS (unix_ms=$ms): $d ms; trigger unix_ms=$tms, remap at $T_REMAP_MS"
	if ((d >= 0 && d <= MAX_MS)); then
		lw_record PASS "CROSS_INSTANCE_ACCESS within one inventory refresh of B's late record ($d ms <= $MAX_MS ms)"
	else
		lw_record FAIL "CROSS_INSTANCE_ACCESS $d ms after B's late record (want 0..$MAX_MS ms)"
	fi
	if jq -e '.trigger.flow.pid' <<< "$al" > /dev/null && ((tms >= T_REMAP_MS && tms <= T_REC_MS)); then
		lw_record PASS "its trigger is A's read after the remap (trigger unix_ms $tms in [$T_REMAP_MS, $T_REC_MS])"
	else
		lw_record FAIL "its trigger is not A's read after the remap (trigger unix_ms $tms, remap $T_REMAP_MS, record $T_REC_MS)"
	fi
	if [[ ${n_early:-0} == 0 ]]; then
		lw_record PASS "no CROSS_INSTANCE_ACCESS while no owner of volB was known"
	else
		lw_record FAIL "CROSS_INSTANCE_ACCESS before any owner of volB was known ($n_early)"
	fi
}
lw_expect owner_latency
lw_expect replay_reproduces CROSS_INSTANCE_ACCESS
echo "A=${INST_PID[A]} dm=$DM paths=$SD1,$SD2" > "$LAB_OUT/facts.txt"
lab_finish
