#!/bin/bash
# Scenario "ring-loss" (issue 12, point 3): the kernel's ring buffer overflows across
# the remap, so the events that would tell lunwatch about it are lost.
#   1. lunwatch runs with a one-page ring (--ring-buffer-kib 4); volA at LUN 1 for
#      instance A through dm-multipath, as in intentional.
#   2. lunwatch's loop is frozen (SIGSTOP: a starved or stalled agent); while it does
#      not read, a burst of host processes (an allowlisted backup tool) opens new flows
#      on the map and its paths: far more events than one page holds.
#   3. still frozen: LUN 1 unmapped, volB mapped at LUN 1 for instance B, LUN 1
#      scanned, the paths reinstated, B starts on the stale map; A reads volB (the
#      leak). The scan, the unit attentions, the SCSI errors, the path events and B's
#      first flow find the ring full. B stops (so no new flow has the device checked).
#   4. lunwatch resumes (SIGCONT).
#   GROUND TRUTH: A reads VOLUME-B-MARKER; SG_IO says volB on both paths.
#   LUNWATCH: the kernel counted the lost events (ringbuf_full); lunwatch said so in
#   one line and re-read the topology and every identity (lunwatch_kernel_resyncs_total);
#   CROSS_INSTANCE_ACCESS naming A, volB and the identity SG_IO answers within 5 s of
#   the resume (less than the periodic check's 10 s: the resync found it).
. "$(dirname "$0")/../lib/common.sh"

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_B=b2b2b2b2-0000-4000-8000-00000000000b
STORM=${LAB_STORM:-60}  # host processes in the burst, each a new flow on 1-3 devices

mkdir -p /run/lab
export LW_CONFIG=/run/lab/lunwatch.conf
printf '[agent]\nhost_allowlist = lwbackup\nring_buffer_kib = 4\n' > "$LW_CONFIG"
chmod 600 "$LW_CONFIG"
cp /bin/dd /run/lab/lwbackup
LW_METRICS=127.0.0.1:9477

step "load modules, start lunwatch with a one-page ring buffer (ring_buffer_kib = 4)"
load_modules
lw_start

step "target: $IQN with portals $P1 and $P2; volA and volB"
target_create "$IQN" "$P1" "$P2"
volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
volume_create volB "$SERIAL_B" 64 VOLUME-B-MARKER
initiator_up

step "attach volA to instance A at LUN 1"
lun_map "$IQN" 1 volA
attach_mpath "$IQN" 1 "$P1" "$P2"
NAA_A=$NAA WWID_A=$WWID
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DM"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads its own volume through $DM" \
	|| gt_fail "A never read VOLUME-A-MARKER through $DM"
# lunwatch has seen A on its volume before anything is lost
wait_for "lunwatch saw A's flow on $DM" 30 lw_has_event '.flow and (.flow.pid|tostring) == $p and .flow.dev_name == $d' \
	--arg p "${INST_PID[A]}" --arg d "$DM" || log "lunwatch has not reported A's flow yet"

step "freeze lunwatch (SIGSTOP); a burst of $STORM host processes on $DM, $SD1, $SD2"
kill -STOP "$LW_PID" && log "lunwatch (pid $LW_PID) stopped"
on_exit "kill -CONT $LW_PID"
# (waits name the readers: a bare wait would wait for lunwatch and the instances too)
burst=()
for ((i = 0; i < STORM; i++)); do
	for d in "$DM" "$SD1" "$SD2"; do
		/run/lab/lwbackup if="/dev/$d" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null &
		burst+=($!)
	done
	((i % 10 == 9)) && { wait "${burst[@]}"; burst=(); }
done
((${#burst[@]})) && wait "${burst[@]}"
log "the burst is done: $((STORM * 3)) short-lived readers"

step "still frozen: LUN 1 unmapped, volB mapped at LUN 1 for B, scanned; A reads volB"
instance_mark A
lun_unmap "$IQN" 1
wait_for "A's reads fail" 60 instance_saw A 'op=read err=' && gt_pass "A's reads fail once LUN 1 is unmapped" \
	|| gt_fail "A's reads did not fail after the unmap"
cinder_status A ATTACHMENT_DELETED
wait_for "both paths failed" 30 mpath_active_is "$WWID_A" 0 || log "paths of $DM not failed: $(dmsetup status "$WWID_A")"
cinder_attach B 11 "$SERIAL_B" "$IQN" 1 "$P1" "$P2"
lun_map "$IQN" 1 volB
scan_lun "$H1" 1
scan_lun "$H2" 1
wait_for "path checker reinstates both paths" 40 mpath_active_is "$WWID_A" 2 \
	&& gt_pass "the path checker reinstated both paths of $DM" || gt_fail "paths of $DM not reinstated: $(dmsetup status "$WWID_A")"
INST_SERIALS=$SERIAL_B instance_start B 11 "$DM"
instance_wait_marker B VOLUME-B-MARKER 30 && gt_pass "B reads volB through $DM" || gt_fail "B never read VOLUME-B-MARKER"
a_read_volB() { grep -qE 'op=read ok marker=VOLUME-B-MARKER( |$)|VOLUME-B-MARKER@' "$LAB_OUT/instance-A.log"; }
wait_for "A reads VOLUME-B-MARKER" 40 a_read_volB && gt_pass "LEAK: A reads VOLUME-B-MARKER through $DM while lunwatch is frozen" \
	|| gt_fail "A did not read volB's marker (no leak reproduced)"
NAA_B=$(vpd_naa "$SD1")
gt_check "SG_IO VPD 0x83 of $SD1 says volB ($NAA_B != $NAA_A)" test -n "$NAA_B" -a "$NAA_B" != "$NAA_A"

# B stops before the resume: a new flow of B's would have the device verified anyway;
# without one, only the resync (or the periodic check, 10 s here) finds the remap
instance_stop B
log "instance B stopped: no new flow after the resume"

step "lunwatch resumes (SIGCONT)"
T_CONT_MS=$(date +%s%3N)
kill -CONT "$LW_PID" && log "lunwatch resumed"
_cia_for_a() { [[ -n $(lw_alerts '.rule == "CROSS_INSTANCE_ACCESS" and .instance.name == $n' --arg n "${INST_NAME[A]}" | head -1) ]]; }
wait_for "CROSS_INSTANCE_ACCESS naming A" 30 _cia_for_a || log "no CROSS_INSTANCE_ACCESS naming A 30 s after the resume"
_resynced() { grep -qE '^lunwatch_kernel_resyncs_total [1-9]' < <(busybox wget -qO- "http://$LW_METRICS/metrics" 2>/dev/null); }
wait_for "lunwatch_kernel_resyncs_total >= 1" 10 _resynced || true
busybox wget -qO- "http://$LW_METRICS/metrics" > "$LAB_OUT/metrics.txt" 2>/dev/null
log "$(grep -E '^lunwatch_kernel_(drops_total\{cause="ringbuf_full"\}|resyncs_total)' "$LAB_OUT/metrics.txt" | tr '\n' ' ')"
collect_state leaked

A_NAME=${INST_NAME[A]} B_NAME=${INST_NAME[B]}
lw_expect metric_at_least 'lunwatch_kernel_drops_total{cause="ringbuf_full"}' 1
lw_expect stats_at_least .drops.ringbuf_full 1 "(the kernel's own count, at stop)"
lw_expect log_line 'kernel ring buffer full: [0-9]+ events lost; re-reading the topology and re-verifying every device' "(the loss said in one line)"
lw_expect metric_at_least lunwatch_kernel_resyncs_total 1
# (IDENTITY_CHANGED is not asked for: whether A's binding outlives the deletion of its
# attachment depends on which of the two the resumed agent reads first)
lw_expect alert CROSS_INSTANCE_ACCESS "(.instance.name == \"$A_NAME\") and (.owner_volume_id == \"$SERIAL_B\") and (.device_name == \"$DM\") and (.verified_wwid == \"$NAA_B\")" "(A=$A_NAME reads $B_NAME's volB, as SG_IO answers)"
lw_expect alert_after_ms CROSS_INSTANCE_ACCESS "$A_NAME" "$T_CONT_MS" 5000 "the resume"
lw_expect no_alert_naming CROSS_INSTANCE_ACCESS "$B_NAME" "(B reads its own volume)"
echo "A=${INST_PID[A]} B=${INST_PID[B]} dm=$DM paths=$SD1,$SD2" > "$LAB_OUT/facts.txt"
lab_finish
