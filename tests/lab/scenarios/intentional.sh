#!/bin/bash
# Scenario 1 "intentional" (CVE-2023-2088, the attachment deleted through Cinder's API
# while Nova never disconnects the host side):
#   1. volA mapped at LUN 1 of a shared target, two portals, dm-multipath over both
#      paths; instance A (fake qemu) reads volA's marker through dm-N.
#   2. storage side only: LUN 1 unmapped. A's reads fail (ILLEGAL REQUEST, ASC 0x25).
#   3. volB mapped at LUN 1 for instance B; LUN 1 scanned as os-brick does
#      (echo "- - 1" > /sys/class/scsi_host/hostN/scan): the same sd devices are
#      reused, the path checker (TUR) reinstates the paths; os-brick hands B the dm
#      map that holds those sd devices.
#   4. GROUND TRUTH (asserted): A reads VOLUME-B-MARKER (the leak); sysfs wwid and
#      vpd_pg80 still say volA while SG_IO VPD 0x83/0x80 (sg_vpd) say volB.
#   lunwatch (--guard monitor): IDENTITY_CHANGED and CROSS_INSTANCE_ACCESS naming A, volB
#   (B's), dm-N, both paths' H:C:T:L, the target and LUN 1, within 1 s of A's first
#   read of volB; `lunwatch replay` of the recording raises CROSS_INSTANCE_ACCESS again.
# Scenario "intentional-guard" runs this file with LAB_GUARD=enforce: the ground truth
# flips (A never reads volB: its reads fail with EPERM; B reads and writes volB) and
# an alert with denied=true names A.
. "$(dirname "$0")/../lib/common.sh"
# A real Prometheus scrapes lunwatch here; lw_stop asks it for the alert counter.
export LAB_PROMETHEUS=${LAB_PROMETHEUS:-1}
GUARD=$([[ $LAB_GUARD == enforce ]] && echo 1 || echo 0)

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_B=b2b2b2b2-0000-4000-8000-00000000000b

# The agent runs with a config of its own: its allowlist adds a host backup tool
# (lwbackup, below); `lunwatch replay --config` of the recording must reach the live
# verdicts (replay_matches_live). orphan_grace repeats lw_start's --orphan-grace: a
# replay knows the config, not the live agent's flags.
mkdir -p /run/lab
export LW_CONFIG=/run/lab/lunwatch.conf
printf '[agent]\nhost_allowlist = lwbackup\norphan_grace = 5\n' > "$LW_CONFIG"
chmod 600 "$LW_CONFIG"

if [[ ${LAB_HUNG_CINDER:-0} == 1 ]]; then
	# Scenario hung-cinder: lunwatch's [cinder] endpoint accepts connections and never
	# answers (busybox nc, a persistent listener whose every connection runs sleep).
	step "a Keystone/Cinder endpoint that accepts and never answers (127.0.0.1:35357)"
	busybox nc -ll -p 35357 -e sleep 100000 > /dev/null 2>&1 &
	HUNG_PID=$!
	on_exit "kill $HUNG_PID"
	# busybox listens dual-stack: the socket shows in tcp6
	wait_for "the silent endpoint listens" 10 bash -c 'grep -qE ":8A1D 0+:0000 0A" /proc/net/tcp /proc/net/tcp6' \
		|| fatal "no listener on 127.0.0.1:35357"
	cat >> "$LW_CONFIG" <<-EOF
	[cinder]
	auth_url = http://127.0.0.1:35357/v3
	username = lunwatch
	password = hung-endpoint-pw
	user_domain_name = Default
	project_name = service
	project_domain_name = Default
	timeout = 30
	EOF
	chmod 600 "$LW_CONFIG"
fi

if [[ ${LAB_LATE_MODULES:-0} == 1 ]]; then
	# Scenario late-modules: lunwatch first, as on a hypervisor whose first volume
	# attach loads iscsi_tcp and dm_multipath after the agent started.
	step "start lunwatch before any storage module, then load them"
	lsmod | grep -qE '^(scsi_mod|iscsi_tcp|dm_multipath|scsi_transport_iscsi) ' \
		&& fatal "storage modules already loaded before lunwatch: $(lsmod | grep -E 'scsi|iscsi|dm_' | cut -d' ' -f1 | tr '\n' ' ')"
	LW_PROBES_JSON=$([[ ${LAB_HUNG_CINDER:-0} == 1 ]] && echo 0 || echo 1) lw_start
	[[ -s $LAB_OUT/probes.json ]] && mv "$LAB_OUT/probes.json" "$LAB_OUT/probes-before-modules.json"
	load_modules
	lw_late_hooks_attached
else
	step "load modules, start lunwatch"
	load_modules
	LW_PROBES_JSON=$([[ ${LAB_HUNG_CINDER:-0} == 1 ]] && echo 0 || echo 1) lw_start
fi

step "target: $IQN with portals $P1 and $P2; volA and volB on tmpfs"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create volB "$SERIAL_B" 64 VOLUME-B-MARKER
initiator_up

step "attach volA to instance A at LUN 1 (os-brick: login both portals, scan LUN 1, multipath)"
lun_map "$IQN" 1 volA
attach_mpath "$IQN" 1 "$P1" "$P2"
NAA_A=$NAA WWID_A=$WWID
log "paths: $SD1 ($HCTL1, host$H1 via $P1) and $SD2 ($HCTL2, host$H2 via $P2); volA is $NAA_A"
gt_check "sysfs wwid of $SD1 matches SG_IO VPD 0x83 at attach ($NAA_A)" test "$(sysfs_wwid "$SD1")" == "$NAA_A"
gt_check "SG_IO unit serial of $SD1 is volA's id" test "$(vpd_serial "$SD1")" == "$SERIAL_A"
log "multipath map $WWID_A = $DM over $SD1 $SD2"
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DM"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads its own volume (VOLUME-A-MARKER) through $DM" \
	|| gt_fail "A never read VOLUME-A-MARKER through $DM"
collect_state attached
# A host process on A's volume that the config allows (a backup agent's read)
cp /bin/dd /run/lab/lwbackup
/run/lab/lwbackup if="/dev/$DM" of=/dev/null bs=4096 count=4 iflag=direct 2>/dev/null \
	&& log "host process lwbackup read 16 KiB of $DM (allowed by $LW_CONFIG)" \
	|| log "host process lwbackup could not read $DM"

step "Cinder attachment delete, storage side only: LUN 1 unmapped (host untouched)"
instance_mark A
lun_unmap "$IQN" 1
if wait_for "A's reads fail" 60 instance_saw A 'op=read err='; then
	gt_pass "A's reads fail once LUN 1 is unmapped ($(instance_saw A 'err=5' && echo EIO || echo error))"
else
	gt_fail "A's reads did not fail after the unmap"
fi
# The target's answer is the ground truth: a TEST UNIT READY of our own on the path.
# The kernel's log of A's failed reads is supporting detail only: it is rate limited,
# and under enforce the guard may refuse A's I/O before any of it reaches the LUN.
if wait_for "LUN 1 answers LOGICAL UNIT NOT SUPPORTED" 20 lun_not_supported "$SD1"; then
	gt_pass "the target answers ILLEGAL REQUEST / LOGICAL UNIT NOT SUPPORTED (ASC 0x25) on $SD1 (sg_turs)"
	dmesg | grep -iE "Logical unit not supported|Illegal Request" | head -4 | while read -r l; do detail "kernel: $l"; done
else
	gt_fail "LUN 1 does not answer ASC 0x25 on $SD1: $(timeout -k 1 4 sg_turs -v "/dev/$SD1" 2>&1 | tail -2 | tr '\n' ' ')"
fi
# Cinder's driver unmapped the LUN (terminate_connection); now the attachment record is
# deleted (from here lunwatch's guard refuses A's I/O as stale in enforce mode)
cinder_status A ATTACHMENT_DELETED
wait_for "both paths failed" 30 mpath_active_is "$WWID_A" 0 \
	&& gt_pass "dm-multipath failed both paths of $DM" || gt_fail "paths of $DM not failed (status: $(dmsetup status "$WWID_A"))"
collect_state unmapped

step "volB mapped at LUN 1 for instance B; os-brick scans LUN 1 on both hosts"
# Cinder creates B's attachment record before the driver maps the LUN
# (attachment_create, then initialize_connection), as the real flow does.
cinder_attach B 11 "$SERIAL_B" "$IQN" 1 "$P1" "$P2"
lun_map "$IQN" 1 volB
instance_mark A
T_SCAN=$(mono_ns)
scan_lun "$H1" 1
scan_lun "$H2" 1
sleep 1
NSD1=$(sd_of "$H1" 1) NSD2=$(sd_of "$H2" 1)
gt_check "the scan reuses the same sd devices at the same H:C:T:L ($SD1 $HCTL1, $SD2 $HCTL2)" \
	test "$NSD1 $NSD2 $(hctl_of "$NSD1") $(hctl_of "$NSD2")" == "$SD1 $SD2 $HCTL1 $HCTL2"
# os-brick finds the multipath device through the sd devices' holders
BDM=$(holder_of "$SD1")
gt_check "os-brick's holder lookup for volB's paths returns A's map $DM" test "$BDM" == "$DM"
if wait_for "path checker reinstates both paths" 40 mpath_active_is "$WWID_A" 2; then
	gt_pass "the path checker (TUR ok, no WWID recheck) reinstated both paths of $DM"
else
	gt_fail "paths of $DM not reinstated: $(dmsetup status "$WWID_A")"
fi
INST_SERIALS=$SERIAL_B instance_start B 11 "${BDM:-$DM}"
instance_wait_marker B VOLUME-B-MARKER 30 && gt_pass "B reads volB (VOLUME-B-MARKER)" || gt_fail "B never read VOLUME-B-MARKER"

if ((GUARD)); then
	step "THE GUARD: A's next reads must be refused, B's allowed"
	guard_refuses_leak A B VOLUME-B-MARKER
else
step "THE LEAK: A's next reads"
# A may have read volB before this step began (its reads resume as soon as the
# paths come back): look at the whole log, and at its heartbeat's marker counts.
a_read_volB() { grep -qE 'op=read ok marker=VOLUME-B-MARKER( |$)|VOLUME-B-MARKER@' "$LAB_OUT/instance-A.log"; }
if wait_for "instance A reads VOLUME-B-MARKER" 40 a_read_volB; then
	gt_pass "LEAK: instance A (pid ${INST_PID[A]}) reads VOLUME-B-MARKER, instance B's volume, through $DM"
	grep -m1 'marker=VOLUME-B-MARKER' "$LAB_OUT/instance-A.log" | while read -r l; do log "  A: $l"; done
else
	gt_fail "A did not read volB's marker (no leak reproduced); last A lines: $(tail -2 "$LAB_OUT/instance-A.log" | tr '\n' ' ')"
fi
for e in psync libaio io_uring; do
	wait_for "A reads volB with $e" 20 instance_engine_read A VOLUME-B-MARKER "$e" \
		&& gt_pass "A reads volB's marker with $e" || gt_fail "A did not read volB's marker with $e"
done
fi

step "identity: sysfs cache vs SG_IO"
for sd in "$SD1" "$SD2"; do
	sw=$(sysfs_wwid "$sd") vw=$(vpd_naa "$sd") ss=$(sysfs_serial "$sd") vs=$(vpd_serial "$sd")
	log "$sd: sysfs wwid=$sw vpd_pg80=$ss | SG_IO VPD 0x83=$vw 0x80=$vs"
	gt_check "$sd: sysfs wwid still says volA ($NAA_A)" test "$sw" == "$NAA_A"
	gt_check "$sd: SG_IO VPD 0x83 says another LU (volB) ($vw != $NAA_A)" test -n "$vw" -a "$vw" != "$NAA_A"
	gt_check "$sd: SG_IO VPD 0x80 unit serial is volB's id" test "$vs" == "$SERIAL_B"
	gt_check "$sd: sysfs vpd_pg80 cache still has volA's id" test "$ss" == "$SERIAL_A"
done
sg_vpd -p di "/dev/$SD1" > "$LAB_OUT/sg_vpd-di-$SD1.txt" 2>&1
gt_check "the dm map is still named for volA (uuid mpath-$WWID_A)" test "$(cat /sys/block/"$DM"/dm/uuid)" == "mpath-$WWID_A"
collect_state leaked

# What lunwatch must have seen.
lw_expect flow "${INST_PID[A]}" "$DM" "(instance A)"
lw_expect flow "${INST_PID[B]}" "$DM" "(instance B)"
lw_expect flow_cgroup "${INST_PID[A]}" 'machine-qemu\x2d1\x2dinstance\x2d0000000a.scope'
lw_expect edge "$DM" "$SD1"
lw_expect edge "$DM" "$SD2"
lw_expect bind "$SD1" "$HCTL1" "$(majmin "$SD1")"
lw_expect bind "$SD2" "$HCTL2" "$(majmin "$SD2")"
lw_expect lifecycle LC_SCSI_HOST_SCAN '((.lifecycle.addr.hctl // "") | endswith(":1"))' "(scan of LUN 1)"
lw_expect lifecycle LC_SCSI_DEVICE_ADD '(.lifecycle.addr.hctl // "") == "'"$HCTL1"'"' "($HCTL1)"
lw_expect login "${S1#session}"
lw_expect login "${S2#session}"
lw_expect lifecycle LC_DM_PATH_FAIL
lw_expect lifecycle LC_DM_PATH_REINSTATE
lw_expect scsi_error - 37 0
# What lunwatch must have concluded (alerts).
A_NAME=${INST_NAME[A]} B_NAME=${INST_NAME[B]}
NAMES_A="(.instance.name == \"$A_NAME\") and (.owner_volume_id == \"$SERIAL_B\") and ((.owner.name // \"\") == \"$B_NAME\") and (.device_name == \"$DM\")"
NAMES_PATHS="([.paths[]?.addr.hctl] | index(\"$HCTL1\") != null and index(\"$HCTL2\") != null) and any(.paths[]?; .target.iqn == \"$IQN\" and ((.target.lun // 0)|tostring) == \"1\")"
# IDENTITY_CHANGED names volB by the identity the paths now answer with (SG_IO)
NAA_B=$(vpd_naa "$SD1")
NAMES_A_IC="(.instance.name == \"$A_NAME\") and (.device_name == \"$DM\") and (.verified_wwid == \"$NAA_B\") and (.expected_wwid == \"$NAA_A\") and any(.paths[]?; .verified_serial == \"$SERIAL_B\")"
lw_expect alert IDENTITY_CHANGED "$NAMES_A_IC and $NAMES_PATHS" "(A=$A_NAME, bound $NAA_A now answers as volB $NAA_B, $DM, $HCTL1+$HCTL2, $IQN LUN 1)"
lw_expect alert CROSS_INSTANCE_ACCESS "$NAMES_A and $NAMES_PATHS" "(A=$A_NAME, owner $B_NAME/volB, $DM, $HCTL1+$HCTL2, $IQN LUN 1)"
# (hung-cinder: replay and dumps are intentional's to prove; skipped to keep it short)
if [[ ${LAB_HUNG_CINDER:-0} != 1 ]]; then
	lw_expect replay_reproduces CROSS_INSTANCE_ACCESS
	lw_expect replay_matches_live "$LW_CONFIG" lwbackup
	[[ ${LAB_GUARD:-monitor} == enforce ]] || lw_expect dump_checks CROSS_INSTANCE_ACCESS IDENTITY_CHANGED
fi
[[ ${LAB_LATE_MODULES:-0} == 1 ]] && lw_expect probes_after_modules
if ((GUARD)); then
	lw_expect alert_any "GUARD_DENIED CROSS_INSTANCE_ACCESS" "(.denied == true) and (.instance.name == \"$A_NAME\")" "with denied=true naming $A_NAME"
	lw_expect guard_reopen_time B "$DM" "$T_SCAN"
else
	lw_expect leak_alert_latency A "$A_NAME" VOLUME-B-MARKER 1000
fi
if [[ ${LAB_HUNG_CINDER:-0} == 1 ]]; then
	# The rightful new owner is never accused; the endpoint really hung lunwatch's
	# Cinder refresh (its log says the refresh was still running, off the loop).
	lw_expect no_alert_naming CROSS_INSTANCE_ACCESS "$B_NAME" "(B reads its own volB)"
	lw_expect no_alert_naming STALE_ATTACHMENT_IO "$B_NAME" "(B's attachment is live)"
	lw_expect log_line 'attachment source .*: refresh still running after [0-9]+ ms' "(the Cinder refresh hung, off the event loop)"
fi
lw_finish_note="A=${INST_PID[A]} B=${INST_PID[B]} dm=$DM paths=$SD1,$SD2"
echo "$lw_finish_note" > "$LAB_OUT/facts.txt"
lab_finish
