#!/bin/bash
# Scenario "restart" (issue 12, point 7): the agent is SIGKILLed (a crash; systemd's
# Restart=always brings it back) and the LUN is remapped while no agent runs.
#   1. volA at LUN 1 over both portals, dm-multipath; instance A reads (and writes) it;
#      lunwatch has verified and bound it.
#   2. lunwatch SIGKILLed. LUN 1 unmapped; A's reads fail; Cinder deletes A's record.
#   3. volB mapped at LUN 1 for B, LUN 1 scanned, the checker reinstates the paths;
#      B starts on the same map (os-brick's holder lookup) and reads volB.
#   4. lunwatch started again (same state file, same pinned guard).
#   monitor (this file): GROUND TRUTH A reads volB during the downtime (the leak);
#     LUNWATCH IDENTITY_CHANGED and CROSS_INSTANCE_ACCESS naming A within 30 s of the
#     restarted agent being ready (time from its start printed too).
#   enforce (restart-guard.sh): GROUND TRUTH A reads 0 bytes of volB, during the
#     downtime too (the pinned fail-closed hooks closed the map on the scan); B is never
#     refused once the restarted agent is ready; LUNWATCH an alert with denied=true
#     naming A after the restart.
. "$(dirname "$0")/../lib/common.sh"
GUARD=$([[ $LAB_GUARD == enforce ]] && echo 1 || echo 0)

IQN=iqn.2010-10.org.openstack:volumes-shared
P1=127.0.0.1 P2=127.0.0.2
SERIAL_A=a1a1a1a1-0000-4000-8000-00000000000a
SERIAL_B=b2b2b2b2-0000-4000-8000-00000000000b

step "load modules, start lunwatch (guard $LAB_GUARD)"
load_modules
lw_start

step "volA at LUN 1 for instance A, two paths, dm-multipath"
shared_target_volA_attached
cinder_attach A 10 "$SERIAL_A" "$IQN" 1 "$P1" "$P2"
INST_SERIALS=$SERIAL_A instance_start A 10 "$DM"
instance_wait_marker A VOLUME-A-MARKER 30 && gt_pass "A reads its own volume (VOLUME-A-MARKER) through $DM" \
	|| gt_fail "A never read VOLUME-A-MARKER through $DM"
wait_for "lunwatch bound A's volume (state file)" 40 grep -q "${NAA_A#naa.}" /run/lunwatch/bindings.json \
	|| log "no binding of ${NAA_A} in /run/lunwatch/bindings.json: $(head -c 300 /run/lunwatch/bindings.json 2>/dev/null)"
if ((GUARD)); then
	wait_for "the guard armed $DM for A" 30 bash -c "'$LAB_LUNWATCH' guard status 2>/dev/null | grep -q '$DM.*verified'" \
		|| log "guard status: $("$LAB_LUNWATCH" guard status 2>&1 | head -5 | tr '\n' '|')"
fi

step "lunwatch SIGKILLed; the remap happens while no agent runs"
lw_kill
T_KILL=$(mono_ns)
# what stays in the kernel while no agent runs: pins, links, the guard's view
bpf_state() { { echo "== $1"; ls /sys/fs/bpf/lunwatch; bpftool link show 2>&1 | grep -E '^[0-9]+:|prog_id' | paste - - | cut -c1-160; "$LAB_LUNWATCH" guard status 2>&1; } >> "$LAB_OUT/downtime-bpf.txt"; }
bpf_state "after the kill"
instance_mark A
lun_unmap "$IQN" 1
wait_for "A's reads fail" 60 instance_saw A 'op=read err=' && gt_pass "A's reads fail once LUN 1 is unmapped" \
	|| gt_fail "A's reads did not fail after the unmap"
cinder_status A ATTACHMENT_DELETED
wait_for "both paths failed" 30 mpath_active_is "$WWID_A" 0 || true
cinder_attach B 11 "$SERIAL_B" "$IQN" 1 "$P1" "$P2"
lun_map "$IQN" 1 volB
scan_lun "$H1" 1
scan_lun "$H2" 1
wait_for "path checker reinstates both paths" 40 mpath_active_is "$WWID_A" 2 \
	&& gt_pass "the checker reinstated both paths of $DM (now volB) while no agent ran" || gt_fail "paths not reinstated"
bpf_state "after the remap and reinstatement"
BDM=$(holder_of "$SD1")
INST_SERIALS=$SERIAL_B instance_start B 11 "${BDM:-$DM}"
instance_wait_marker B VOLUME-B-MARKER 30 && gt_pass "B reads volB (VOLUME-B-MARKER) while no agent runs" \
	|| gt_fail "B never read VOLUME-B-MARKER"
# a few more of A's reads against whatever the kernel has while no agent runs
n0=$(instance_reads A)
_a_more() { (($(instance_reads A) > n0 + 5)); }
wait_for "A reads on during the downtime" 30 _a_more || true
if ((GUARD)); then
	st=$("$LAB_LUNWATCH" guard status 2>&1 | grep "$DM" | head -1)
	log "guard status during the downtime: $st"
	if grep -q 'marker=VOLUME-B-MARKER' "$LAB_OUT/instance-A.log"; then
		gt_fail "GUARD DOWNTIME: A read volB while no agent ran ($(grep -c 'VOLUME-B-MARKER' "$LAB_OUT/instance-A.log") lines)"
	else
		gt_pass "GUARD DOWNTIME: A read 0 bytes of volB while no agent ran (last read: $(grep 'op=read' "$LAB_OUT/instance-A.log" | tail -1 | grep -oE 'op=read [^ ]+( \([^)]*\))?'); guard status: ${st:-?})"
	fi
else
	a_read_volB() { grep -qE 'op=read ok marker=VOLUME-B-MARKER( |$)' "$LAB_OUT/instance-A.log"; }
	wait_for "A reads VOLUME-B-MARKER" 30 a_read_volB && gt_pass "LEAK during the downtime: A reads volB" \
		|| gt_fail "A did not read volB during the downtime"
fi
DOWN_S=$((($(mono_ns) - T_KILL) / 1000000000))

step "lunwatch restarted (after ${DOWN_S}s down)"
T_START_MS=$(date +%s%3N)
hb_denied() { grep -E '^heartbeat ' "$LAB_OUT/instance-$1.log" | tail -1 | grep -oE 'read_denied=[0-9]+' | head -1 | cut -d= -f2; }
lw_restart
T_READY_MS=$(date +%s%3N)
T_READY=$(mono_ns)
log "restarted agent ready $((T_READY_MS - T_START_MS)) ms after its start"
instance_mark B
b_denied0=$(hb_denied B)
if ((GUARD)); then
	step "after the restart: A refused, B never"
	n0=$(instance_reads A)
	_a_refused() { (($(instance_reads A) > n0 + 3)) && grep 'op=read' "$LAB_OUT/instance-A.log" | tail -1 | grep -q 'op=read err=1 '; }
	wait_for "A's reads refused (EPERM) after the restart" 40 _a_refused \
		&& gt_pass "GUARD: A's reads refused with EPERM after the restart" || gt_fail "A's reads not refused after the restart: $(grep 'op=read' "$LAB_OUT/instance-A.log" | tail -2 | tr '\n' ' ')"
	ok0=$(instance_ok B)
	wait_for "B reads on" 30 instance_ok_more B "$((ok0 + 10))" || true
	sleep 6 # one more heartbeat of B (every 5 s) to compare its refusal counter
	if instance_saw B 'op=read err=1 |^open-denied' || [[ $(hb_denied B) != "${b_denied0:-0}" ]]; then
		gt_fail "GUARD: B was refused after the restarted agent was ready ($(grep -E 'op=read err=1 |^open-denied' "$LAB_OUT/instance-B.log" | tail -2 | tr '\n' ' '); read_denied ${b_denied0:-0} -> $(hb_denied B))"
	else
		gt_pass "GUARD: B never refused after the restarted agent was ready ($(($(instance_ok B) - ok0)) good reads since; read_denied stays ${b_denied0:-0})"
	fi
	if grep -q 'marker=VOLUME-B-MARKER' "$LAB_OUT/instance-A.log"; then
		gt_fail "GUARD: A read volB at some point ($(grep -m1 'VOLUME-B-MARKER' "$LAB_OUT/instance-A.log" | cut -c1-120))"
	else
		gt_pass "GUARD: A read 0 bytes of volB over the whole run (kill, remap, restart)"
	fi
else
	step "after the restart: the remap made during the downtime must be raised"
	a_cross() { grep -q . < <(lw_alerts '.rule == "CROSS_INSTANCE_ACCESS" and .instance.name == $a' --arg a "${INST_NAME[A]}"); }
	wait_for "CROSS_INSTANCE_ACCESS naming A" 40 a_cross || true
fi
collect_state restarted

A_NAME=${INST_NAME[A]}
# restart_latency RULE: the first RULE alert naming A raised by the restarted agent,
# timed from the agent being ready (<= 30 s) and from its start
restart_latency() {
	local rule=$1 t
	t=$(lw_alerts '.rule == $r and .instance.name == $a and (.unix_ms|tonumber) >= $s' --arg r "$rule" --arg a "$A_NAME" --argjson s "$T_START_MS" | head -1 | jq -r '.unix_ms')
	if [[ -z $t || $t == null ]]; then
		lw_record FAIL "no $rule naming $A_NAME from the restarted agent (alerts: $(alerts_seen))"
		return
	fi
	lw_note "RESTART: $rule naming $A_NAME $((t - T_READY_MS)) ms after the restarted agent was ready, $((t - T_START_MS)) ms after its start (ready took $((T_READY_MS - T_START_MS)) ms; down ${DOWN_S} s)"
	((t - T_READY_MS <= 30000)) && lw_record PASS "$rule naming $A_NAME within 30 s of the restart ($((t - T_READY_MS)) ms after ready)" \
		|| lw_record FAIL "$rule naming $A_NAME only $((t - T_READY_MS)) ms after the restarted agent was ready"
}
lw_expect restart_latency IDENTITY_CHANGED
if ((GUARD)); then
	lw_expect alert_any "GUARD_DENIED CROSS_INSTANCE_ACCESS" "(.denied == true) and (.instance.name == \"$A_NAME\") and ((.unix_ms|tonumber) >= $T_START_MS)" "with denied=true naming $A_NAME after the restart"
else
	lw_expect restart_latency CROSS_INSTANCE_ACCESS
fi
lab_finish
