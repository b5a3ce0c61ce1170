# lunwatch lab, guest side: run the agent during a scenario and check its events.
# Event JSON follows proto/lunwatch.proto (proto3 JSON mapping, snake_case fields,
# uint64 as strings, enums by name, zero values omitted):
#   {"ts_ns":..,"seq":..,"flow":{"pid":..,"comm":..,"cgroup":..,"dev":"253:0","dev_name":"dm-0","op":"OP_READ",..}}
#   {"edge":{"upper_name":"dm-0","lower_name":"sda","kind":"EDGE_RQ_REMAP",..}}
#   {"scsi_bind":{"dev_name":"sda","addr":{"hctl":"0:0:0:1",..}}}
#   {"scsi_error":{"dev_name":"sda","addr":{..},"status":"CHECK_CONDITION","sense":{"asc":37,..}}}
#   {"lifecycle":{"kind":"LC_SCSI_HOST_SCAN","addr":{"hctl":"0:-:-:1"},"session":1,..}}
# Assertions are written to $LAB_OUT/lunwatch-assertions.txt as PASS:/FAIL: lines; a
# FAIL names exactly the evidence that was missing (a probe bug), separately from the
# ground truth. LAB_REQUIRE_LUNWATCH=1 makes any FAIL fail the scenario (exit 3).

LW_EVENTS=$LAB_OUT/events.jsonl
LW_ASSERT=$LAB_OUT/lunwatch-assertions.txt
LW_PID=
LW_FAILS=0
LW_SKIP_REASON=
LW_CHECKS=()
LAB_LUNWATCH=${LAB_LUNWATCH:-$LAB_REPO/build/lunwatch}
if [[ ${LAB_REQUIRE_LUNWATCH:-auto} == auto ]]; then
	if [[ -x $LAB_LUNWATCH ]]; then LAB_REQUIRE_LUNWATCH=1; else LAB_REQUIRE_LUNWATCH=0; fi
fi

LW_ALERTS=$LAB_OUT/alerts.jsonl
LW_RECORD=$LAB_OUT/recording.lwr
LW_CINDER=/run/lab/attachments.json
LAB_GUARD=${LAB_GUARD:-monitor}

# ---- Cinder's view (lunwatch --attachments): one record per attachment, rewritten
# atomically (tmp + mv) whenever the scenario's story changes Cinder.
declare -A CINDER_REC=()
CINDER_ORDER=()
# cinder_attach KEY NOVA_NUM VOLUME_ID IQN LUN PORTAL_IP...: attachment KEY attached
cinder_attach() {
	local key=$1 num=$2 vol=$3 iqn=$4 lun=$5
	shift 5
	local name uuid ip targets=
	printf -v name 'instance-%08x' "$num"
	printf -v uuid '%08x-0000-4000-8000-%012x' "$num" "$num"
	for ip in "$@"; do
		targets+="${targets:+,}{\"iqn\":\"$iqn\",\"portal\":\"$ip:3260\",\"lun\":$lun}"
	done
	[[ -n ${CINDER_REC[$key]:-} ]] || CINDER_ORDER+=("$key")
	CINDER_REC[$key]="{\"instance_uuid\":\"$uuid\",\"instance_name\":\"$name\",\"volume_id\":\"$vol\",\"attachment_id\":\"att-$key\",\"status\":\"ATTACHMENT_ATTACHED\",\"transport\":\"TRANSPORT_ISCSI\",\"targets\":[$targets]}"
	[[ -n ${CINDER_BATCH:-} ]] || cinder_write
}
# cinder_status KEY ATTACHMENT_ATTACHED|ATTACHMENT_DETACHED|ATTACHMENT_DELETED
cinder_status() {
	CINDER_REC[$1]=$(sed -E "s/\"status\":\"[A-Z_]+\"/\"status\":\"$2\"/" <<< "${CINDER_REC[$1]}")
	cinder_write
	log "Cinder: attachment att-$1 -> $2"
}
cinder_write() {
	local k body=
	for k in "${CINDER_ORDER[@]}"; do body+="${body:+,}${CINDER_REC[$k]}"; done
	mkdir -p "${LW_CINDER%/*}"
	echo "{\"attachments\":[$body]}" > "$LW_CINDER.tmp" && mv "$LW_CINDER.tmp" "$LW_CINDER"
	cp "$LW_CINDER" "$LAB_OUT/attachments.json" 2>/dev/null
}

lw_enabled() { [[ -n $LW_PID || -s $LW_EVENTS ]]; }

# lw_start: probes --json, then `run --events` in the background, waiting for its
# ready file (every probe attached). Call after load_modules, before any storage action.
# LAB_PROMETHEUS=1: lunwatch serves /metrics and a real Prometheus server
# (Debian's, from the shared root) scrapes it every second; lw_stop asks its
# HTTP API for the alert counter of LAB_PROMETHEUS_RULE before stopping.
LW_METRICS=""
lw_prometheus_start() {
	mkdir -p /tmp/prom
	cat > /tmp/prom.yml <<-EOF
	global: {scrape_interval: 1s, evaluation_interval: 1s}
	scrape_configs:
	  - job_name: lunwatch
	    static_configs: [{targets: ['127.0.0.1:9477']}]
	EOF
	prometheus --config.file=/tmp/prom.yml --storage.tsdb.path=/tmp/prom --web.listen-address=127.0.0.1:9090 \
		> "$LAB_OUT/prometheus.log" 2>&1 &
	LW_PROM_PID=$!
	log "prometheus (pid $LW_PROM_PID) scrapes lunwatch at 127.0.0.1:9477"
}
prom_query() { busybox wget -qO- "http://127.0.0.1:9090/api/v1/query?query=$1" 2>/dev/null; }
prom_has_value() { grep -qE '"value":\[[0-9.]+,"[1-9][0-9]*"\]' < <(prom_query "$1"); }
lw_prometheus_check() {
	local rule=${LAB_PROMETHEUS_RULE:-CROSS_INSTANCE_ACCESS} q
	q="lunwatch_alerts_total%7Brule%3D%22$rule%22%7D"
	if wait_for "Prometheus has lunwatch_alerts_total{rule=\"$rule\"} >= 1" 30 prom_has_value "$q"; then
		lw_record PASS "a real Prometheus scraped lunwatch: its API returns lunwatch_alerts_total{rule=\"$rule\"} = $(prom_query "$q" | grep -oE '"value":\[[^]]*\]')"
	else
		lw_record FAIL "Prometheus API: lunwatch_alerts_total{rule=\"$rule\"} not >= 1 ($(prom_query "$q" | cut -c1-200); up: $(prom_query 'up' | cut -c1-200))"
	fi
	kill "$LW_PROM_PID" 2>/dev/null
	wait "$LW_PROM_PID" 2>/dev/null
}

lw_start() {
	[[ ${LAB_PROMETHEUS:-0} == 1 ]] && LW_METRICS=127.0.0.1:9477
	if [[ ! -x $LAB_LUNWATCH ]]; then
		LW_SKIP_REASON="no lunwatch binary at $LAB_LUNWATCH"
		log "lunwatch: skipped ($LW_SKIP_REASON)"
		return 0
	fi
	# `probes --json` loads and verifies every program too: run it beside `run` (the
	# verifier is slow under TCG) and wait for both.
	# Only where asked (scenario intentional, or LAB_PROBES_JSON=1): it costs ~15 s.
	# Run before `run`, never beside it: two agents share /sys/fs/bpf/lunwatch pins.
	# LAB_DISABLE_HOOKS=a,b and LAB_FORCE_KPROBE=1 (every fentry off: the kprobe twins)
	local off=()
	lw_disable_args off
	((${#off[@]})) && log "lunwatch: ${off[*]}"
	if [[ ${LW_PROBES_JSON:-0} == 1 || ${LAB_PROBES_JSON:-0} == 1 ]]; then
		timeout -k 5 120 "$LAB_LUNWATCH" probes --json "${off[@]}" > "$LAB_OUT/probes.json" 2> "$LAB_OUT/probes.stderr"
		local prc=$?
		log "lunwatch probes --json: rc=$prc, $(jq -r '[.hooks[] | .status] | group_by(.) | map("\(.[0]):\(length)") | join(" ")' "$LAB_OUT/probes.json" 2>/dev/null)"
		jq -r '.hooks[] | select(.status != "HOOK_ATTACHED") | "      hook \(.name): \(.status) \(.reason // "")"' "$LAB_OUT/probes.json" 2>/dev/null
	fi
	local ready=$LAB_OUT/lunwatch.ready
	rm -f "$ready"
	local extra=("${off[@]}")
	[[ ${LAB_FORCE_KPROBE:-0} == 1 && ${LW_APPEND:-0} != 1 ]] && lw_expect ran_kprobe_twins
	# The help is read whole first: "lunwatch run --help | grep -q" under pipefail
	# fails whenever grep exits before lunwatch has written all of it (SIGPIPE), and
	# then the agent ran without the lab's flags (no --attachments, no --guard: the
	# guard scenarios' failures in CI).
	local run_help
	run_help=$("$LAB_LUNWATCH" run --help 2>&1)
	if grep -q -- --ready-file <<< "$run_help"; then
		extra+=(--ready-file "$ready" --stats-file "$LAB_OUT/lunwatch-stats.json")
	fi
	# detection: libvirt XML (instance.sh) + Cinder's view (cinder_* below) + alerts,
	# a recording for `lunwatch replay`, and the guard in LAB_GUARD's mode
	if grep -q -- --attachments <<< "$run_help"; then
		mkdir -p /run/lunwatch
		# Cinder's view: the lab's attachment file, or (LW_CINDER_API=1, openstack-*
		# scenarios) only the real Cinder API of LW_CONFIG's [cinder] section
		if [[ ${LW_CINDER_API:-0} != 1 ]]; then
			[[ -s $LW_CINDER ]] || cinder_write
			extra+=(--attachments "$LW_CINDER")
		fi
		extra+=(--inventory-interval 1 --orphan-grace 5 --verify-interval 10
			--state-file /run/lunwatch/bindings.json --alerts-file "$LW_ALERTS" --record "$LW_RECORD"
			--metrics-listen "$LW_METRICS" --guard "$LAB_GUARD" --dump-dir "$LAB_OUT/dumps" --dump-after 3
			--dump-before 120)
		# LW_CONFIG=FILE: the scenario's own INI config (intentional: an allowlist that
		# replay_matches_live replays with; hung-cinder: a [cinder] section)
		[[ -n ${LW_CONFIG:-} ]] && extra+=(--config "$LW_CONFIG")
		# containment (scenario containment): LAB_CONTAIN=offline,pause
		[[ -n ${LAB_CONTAIN:-} ]] && extra+=(--contain "$LAB_CONTAIN" --libvirt-uri qemu:///system)
		[[ ${LW_APPEND:-0} == 1 ]] || : > "$LW_ALERTS"
	fi
	log "lunwatch run: guard mode $LAB_GUARD"
	# LW_APPEND=1 (lw_restart): a second run appends to the same event and alert logs
	if [[ ${LW_APPEND:-0} == 1 ]]; then
		"$LAB_LUNWATCH" run --events "${extra[@]}" >> "$LW_EVENTS" 2>> "$LAB_OUT/lunwatch.stderr" &
	else
		"$LAB_LUNWATCH" run --events "${extra[@]}" > "$LW_EVENTS" 2> "$LAB_OUT/lunwatch.stderr" &
	fi
	LW_PID=$!
	LW_STARTED_S=$(($(mono_ns) / 1000000000))
	# LAB_PERF=start:SECONDS (scripts/lab): profile from the start, with DWARF call
	# graphs (report on the host: perf report -i OUT/SCENARIO/perf-start.data)
	if [[ ${LAB_PERF:-} == start:* ]] && command -v perf > /dev/null && [[ -z ${LW_PERF_PID:-} ]]; then
		perf record -q -F 49 --call-graph dwarf,16384 -p "$LW_PID" -o "$LAB_OUT/perf-start.data" -- sleep "${LAB_PERF#start:}" > /dev/null 2>&1 &
		LW_PERF_PID=$!
		log "perf: profiling lunwatch (pid $LW_PID) from its start for ${LAB_PERF#start:} s"
	fi
	local t0=$SECONDS
	if ((${#extra[@]})); then
		wait_for "lunwatch ready file" 90 test -e "$ready" || true
		[[ -n $LW_METRICS && ${LAB_PROMETHEUS:-0} == 1 ]] && lw_prometheus_start
	else
		sleep 10
	fi
	if ! kill -0 "$LW_PID" 2>/dev/null; then
		wait "$LW_PID"
		local rc=$?
		log "lunwatch run exited early (rc=$rc): $(tail -3 "$LAB_OUT/lunwatch.stderr" | tr '\n' ' ')"
		LW_PID=
		lw_record FAIL "lunwatch run --events started and stayed up (exited rc=$rc: $(tail -1 "$LAB_OUT/lunwatch.stderr"))"
		return 0
	fi
	log "lunwatch run --events: pid $LW_PID ready after $((SECONDS - t0))s ($(grep -m1 -o 'watching with.*' "$LAB_OUT/lunwatch.stderr"))"
	# hooks that did not attach in `run` (a probe failure the lead must see)
	local h rest
	while read -r h rest; do
		log "lunwatch hook $h FAILED in run: ${rest:0:200}"
		lw_record FAIL "hook $h attached in lunwatch run (${rest:0:300})"
	done < <(grep -E 'hook [a-z_]+: HOOK_FAILED' "$LAB_OUT/lunwatch.stderr" | sed 's/^.*hook \([a-z_]*\): /\1 /')
}

# lw_late_hooks_attached (scenario late-modules, after load_modules): every SCSI, iSCSI
# and dm hook that lunwatch reported "not present" before the modules loaded must be
# attached now, as its metrics say (lunwatch_probe_state{hook=...,state="attached"} 1).
lw_metric_attached() {
	grep -qE "^lunwatch_probe_state\{[^}]*hook=\"$1\"[^}]*state=\"attached\"[^}]*\} 1" \
		< <(busybox wget -qO- "http://$LW_METRICS/metrics" 2>/dev/null)
}
lw_late_hooks_attached() {
	lw_enabled || return 0
	local before=$LAB_OUT/probes-before-modules.json h hooks n=0 t0=$SECONDS
	hooks=$(jq -r '.hooks[] | select(.status == "HOOK_NOT_PRESENT" and (.subsystem == "scsi" or .subsystem == "iscsi" or .subsystem == "dm")) | .name' "$before" 2>/dev/null)
	if [[ -z $hooks ]]; then
		lw_record FAIL "before the storage modules loaded, lunwatch probes reported SCSI/iSCSI/dm hooks not present (none in $(basename "$before"))"
		return 0
	fi
	lw_record PASS "before the storage modules loaded: $(wc -w <<< "$hooks") SCSI/iSCSI/dm hooks not present ($(echo $hooks))"
	[[ -n $LW_METRICS ]] || { lw_record FAIL "late hooks: lunwatch serves no metrics here (LAB_PROMETHEUS=0)"; return 0; }
	for h in $hooks; do
		if wait_for "hook $h attached after its module loaded (metrics)" 90 lw_metric_attached "$h"; then
			n=$((n + 1))
		else
			lw_record FAIL "hook $h attached after its module loaded: lunwatch_probe_state says otherwise; lunwatch: $(grep -E "hook $h|late modules" "$LAB_OUT/lunwatch.stderr" | tail -2 | tr '\n' ' ' | cut -c1-300)"
		fi
	done
	(( n == $(wc -w <<< "$hooks") )) && lw_record PASS "all $n late hooks attached within $((SECONDS - t0)) s of the modules loading (lunwatch_probe_state); lunwatch logged $(grep -c 'attached late' "$LAB_OUT/lunwatch.stderr") 'attached late' lines"
	echo "NOTE: late hooks attached $((SECONDS - t0)) s after load_modules" >> "$LW_ASSERT"
}

# lw_threads PID: what each thread of a process is doing (state, CPU ticks, where it
# sleeps in the kernel, its kernel stack): tells a busy loop from a blocked call.
lw_threads() {
	local t
	for t in /proc/"$1"/task/*; do
		local st
		st=$(cut -d' ' -f3,14,15 "$t/stat" 2>/dev/null)
		echo "tid ${t##*/} $(cat "$t/comm" 2>/dev/null) state/utime/stime: $st wchan: $(cat "$t/wchan" 2>/dev/null)"
		sed 's/^/    /' "$t/stack" 2>/dev/null | head -12
	done
	if command -v gdb > /dev/null; then
		timeout -k 2 20 gdb -q -batch -p "$1" -ex 'thread apply all bt 20' 2>&1 | grep -E '^(Thread|#)' | head -120
	fi
}

lw_stop() {
	[[ -n $LW_PID ]] || return 0
	# let the ring buffer drain what the last actions produced
	sleep 1
	[[ -n ${LW_PROM_PID:-} ]] && lw_prometheus_check
	# LAB_PERF=SECONDS (scripts/lab): where the agent's CPU goes, before it stops
	if [[ -n ${LW_PERF_PID:-} ]]; then
		kill -INT "$LW_PERF_PID" 2>/dev/null
		wait "$LW_PERF_PID" 2>/dev/null
		LW_PERF_PID=
	fi
	if [[ -n ${LAB_PERF:-} && ${LAB_PERF} != start:* ]] && command -v perf > /dev/null; then
		log "perf: profiling lunwatch (pid $LW_PID) for $LAB_PERF s"
		timeout -k 5 $((LAB_PERF + 60)) perf record -q -F 99 -g -p "$LW_PID" -o "$LAB_OUT/perf.data" -- sleep "$LAB_PERF" > /dev/null 2>&1
		timeout -k 5 120 perf report -i "$LAB_OUT/perf.data" --no-children --stdio --percent-limit 2 > "$LAB_OUT/perf-report.txt" 2>&1
		log "perf: $LAB_OUT/perf-report.txt"
	fi
	local fds=(/proc/"$LW_PID"/fd/*) lim
	read -r _ _ _ lim _ < <(grep '^Max open files' /proc/"$LW_PID"/limits 2>/dev/null)
	echo "NOTE: lunwatch had ${#fds[@]} open descriptors at stop (limit ${lim:-?})" >> "$LW_ASSERT"
	# How long the stop takes, in two parts: until the run loop ends (its "stopped:"
	# line) and until the process is gone; a stop past 5 s gets its threads written
	# down (busy loop or blocked call), past 15 s it is killed.
	local t0 n=0 t_loop='' t_gone='' rc cpu
	# the agent's CPU time so far (user+system, in clock ticks of 10 ms) and its age
	cpu=$(awk '{ printf "%.1f s CPU in %.0f s", ($14 + $15) / 100, 0 }' /proc/"$LW_PID"/stat 2>/dev/null)
	cpu="${cpu% in 0 s} over $(($(mono_ns) / 1000000000 - LW_STARTED_S)) s"
	echo "NOTE: lunwatch used $cpu" >> "$LW_ASSERT"
	t0=$(mono_ns)
	kill -INT "$LW_PID" 2>/dev/null
	while kill -0 "$LW_PID" 2>/dev/null && ((n < 60)); do
		[[ -z $t_loop ]] && tail -1 "$LAB_OUT/lunwatch.stderr" | grep -q 'info: stopped:' && t_loop=$((($(mono_ns) - t0) / 1000000))
		((n == 20)) && lw_threads "$LW_PID" > "$LAB_OUT/lunwatch-stop-5s.txt" 2>&1
		sleep 0.25
		n=$((n + 1))
	done
	if kill -0 "$LW_PID" 2>/dev/null; then
		log "lunwatch did not stop on SIGINT within 15s; killing (its threads at 5 s: $LAB_OUT/lunwatch-stop-5s.txt)"
		head -30 "$LAB_OUT/lunwatch-stop-5s.txt" | while read -r l; do detail "stop: $l"; done
		kill -KILL "$LW_PID" 2>/dev/null
	else
		t_gone=$((($(mono_ns) - t0) / 1000000))
	fi
	wait "$LW_PID" 2>/dev/null
	rc=$?
	# where the agent's loop spent its time (--stats-file "loop_work", seconds by work)
	local lw_work
	lw_work=$(jq -r '(.loop_work // {}) | to_entries | sort_by(-.value.seconds) | .[:5] | map("\(.key) \(.value.seconds*10|round/10) s (\(.value.runs) runs, longest \(.value.longest_s*100|round/100) s)") | join("; ")' "$LAB_OUT/lunwatch-stats.json" 2>/dev/null)
	[[ -n $lw_work ]] && { log "lunwatch loop work: $lw_work"; echo "NOTE: loop work: $lw_work" >> "$LW_ASSERT"; }
	echo "NOTE: stop on SIGINT: run loop ended after ${t_loop:-?} ms, process gone after ${t_gone:-?} ms (rc=$rc)" >> "$LW_ASSERT"
	log "lunwatch used $cpu; stopped (rc=$rc; loop ended ${t_loop:-?} ms, gone ${t_gone:-killed at 15000} ms after SIGINT): $(wc -l < "$LW_EVENTS") event lines; $(tail -1 "$LAB_OUT/lunwatch.stderr")"
	LW_PID=
}

# lw_kill: SIGKILL the agent (a crash; systemd's Restart=always brings it back with
# lw_restart). Nothing of it runs afterwards but what it pinned in the kernel.
lw_kill() {
	[[ -n $LW_PID ]] || return 0
	kill -KILL "$LW_PID" 2>/dev/null
	wait "$LW_PID" 2>/dev/null
	log "lunwatch SIGKILLed (pid $LW_PID)"
	LW_PID=
}
# lw_restart: start the agent again, appending to the same logs; returns once it is ready
lw_restart() { LW_APPEND=1 lw_start; }

lw_record() {
	local when=
	[[ -n ${LW_AFTER:-} ]] && when=" [events after t=$((LW_AFTER / 1000000000)).$(printf '%02d' $((LW_AFTER / 10000000 % 100)))s]"
	echo "$1: $2$when" >> "$LW_ASSERT"
	if [[ $1 == FAIL ]]; then LW_FAILS=$((LW_FAILS + 1)); fi
}

# lw_q FILTER [jq args]: events matching a jq select() body, one compact JSON per line.
# With LW_AFTER=NS (CLOCK_MONOTONIC ns, see mono_ns) only events after that time count.
lw_q() {
	local f=$1
	shift
	if [[ -n ${LW_AFTER:-} ]]; then f="(.ts_ns|tonumber) > $LW_AFTER and ($f)"; fi
	jq -c -R "$@" "fromjson? | select($f)" "$LW_EVENTS" 2>/dev/null
}
# mono_ns: now, on the clock of the events' ts_ns (boot time, 10 ms resolution)
mono_ns() {
	local up _
	read -r up _ < /proc/uptime
	echo $((10#${up/./} * 10000000))
}

# Scenarios queue their expectations with lw_expect_*; they are checked by
# lw_assert_all after lunwatch has stopped (lab_finish calls it).
lw_expect() { LW_CHECKS+=("$(printf '%q ' "$@")"); }
# lw_expect_after NS CHECK ARGS...: the check only counts events after NS (mono_ns)
lw_expect_after() {
	local t=$1
	shift
	LW_CHECKS+=("LW_AFTER=$t $(printf '%q ' "$@")")
}

lw_assert_all() {
	[[ -f $LW_EVENTS ]] || return 0
	: > "$LW_ASSERT.tmp"
	[[ -f $LW_ASSERT ]] && cat "$LW_ASSERT" >> "$LW_ASSERT.tmp"
	mv "$LW_ASSERT.tmp" "$LW_ASSERT"
	# Each check runs in a subshell: one that dies (a bad expansion, an unbound
	# variable) must fail loudly, not silently take the remaining checks with it.
	local c n0 n1 rc
	for c in "${LW_CHECKS[@]}"; do
		n0=$(grep -cE '^(PASS|FAIL):' "$LW_ASSERT")
		(eval "$c")
		rc=$?
		n1=$(grep -cE '^(PASS|FAIL):' "$LW_ASSERT")
		((n1 > n0)) || lw_record FAIL "check recorded no verdict (exit $rc): $c"
	done
	LW_CHECKS=()
	LW_FAILS=$(grep -c '^FAIL:' "$LW_ASSERT")
	log "lunwatch assertions: $(grep -c '^PASS' "$LW_ASSERT") pass, $LW_FAILS fail (see lunwatch-assertions.txt)"
}

# ---- the checks (called through lw_expect so they run on the final event log)

# flow PID DEV_NAME [DESC]: a flow event for this process (pid = tgid) on this device
flow() {
	local pid=$1 dev=$2 desc=${3:-}
	local hits
	hits=$(lw_q '.flow and (.flow.pid|tostring) == $p and .flow.dev_name == $d' --arg p "$pid" --arg d "$dev" | head -1)
	if [[ -n $hits ]]; then
		lw_record PASS "flow pid=$pid dev=$dev $desc ($(jq -r '.flow | "comm=\(.comm) op=\(.op) cgroup=\(.cgroup // "-")"' <<< "$hits"))"
	else
		local seen
		seen=$(lw_q '.flow and .flow.dev_name == $d' --arg d "$dev" | jq -r '.flow | "\(.pid)/\(.comm)"' | sort -u | head -8 | tr '\n' ' ')
		local pseen
		pseen=$(lw_q '.flow and (.flow.pid|tostring) == $p' --arg p "$pid" | jq -r '.flow.dev_name' | sort -u | tr '\n' ' ')
		lw_record FAIL "flow pid=$pid dev=$dev $desc: no flow event (flows on $dev: [${seen:-none}]; devices with flows of pid $pid: [${pseen:-none}])"
	fi
}
# flow_cgroup PID CGROUP_SUBSTRING: the flow of PID carries the libvirt scope
flow_cgroup() {
	local pid=$1 want=$2
	local got
	got=$(lw_q '.flow and (.flow.pid|tostring) == $p' --arg p "$pid" | jq -r '.flow.cgroup // ""' | sort -u | head -3 | tr '\n' ' ')
	if grep -qF -- "$want" <<< "$got"; then
		lw_record PASS "flow of pid $pid in cgroup $want"
	else
		lw_record FAIL "flow of pid $pid in cgroup $want: cgroup field was [${got:-missing}]"
	fi
}
# edge UPPER LOWER: dm-N -> sdX
edge() {
	local up=$1 lo=$2
	if [[ -n $(lw_q '.edge and .edge.upper_name == $u and .edge.lower_name == $l' --arg u "$up" --arg l "$lo" | head -1) ]]; then
		lw_record PASS "edge $up -> $lo"
	else
		local seen
		seen=$(lw_q '.edge' | jq -r '.edge | "\(.upper_name // .upper)->\(.lower_name // .lower)"' | sort -u | head -10 | tr '\n' ' ')
		lw_record FAIL "edge $up -> $lo: no edge event (edges seen: [${seen:-none}])"
	fi
}
# bind DEV HCTL [MAJ:MIN]: sdX answering at H:C:T:L (matched on dev_name, or on dev
# when the event has no name; a missing name is reported as its own failure)
bind() {
	local dev=$1 hctl=$2 mm=${3:-}
	local f='.scsi_bind and (.scsi_bind.dev_name == $d or ($m != "" and .scsi_bind.dev == $m)) and ((.scsi_bind.addr.hctl // .scsi_bind.hctl) == $h)'
	local hit
	hit=$(lw_q "$f" --arg d "$dev" --arg h "$hctl" --arg m "$mm" | head -1)
	if [[ -n $hit ]]; then
		lw_record PASS "scsi_bind $dev${mm:+ ($mm)} at $hctl"
		if [[ $(jq -r '.scsi_bind.dev_name // ""' <<< "$hit") != "$dev" ]]; then
			lw_record FAIL "scsi_bind for $mm at $hctl has dev_name \"$(jq -r '.scsi_bind.dev_name // ""' <<< "$hit")\", want \"$dev\""
		fi
	else
		local seen
		seen=$(lw_q '.scsi_bind' | jq -r '.scsi_bind | "\(.dev_name // "")(\(.dev // ""))@\(.addr.hctl // .hctl // "?")"' | sort -u | head -10 | tr '\n' ' ')
		lw_record FAIL "scsi_bind $dev${mm:+ ($mm)} at $hctl: missing (binds seen: [${seen:-none}])"
	fi
}
# login IQN_SESSION: a login of iSCSI session N seen as LC_ISCSI_CONN_LOGIN, or as the
# session unblock that iscsi_tcp logins produce
login() {
	local sess=$1
	local hit
	hit=$(lw_q '.lifecycle and (.lifecycle.kind == "LC_ISCSI_CONN_LOGIN" or .lifecycle.kind == "LC_ISCSI_SESSION_UNBLOCK") and ((.lifecycle.session // -1)|tostring) == $s' --arg s "$sess" | jq -r '.lifecycle.kind' | sort -u | tr '\n' ' ')
	if [[ -n $hit ]]; then
		lw_record PASS "login of iSCSI session $sess seen as [$hit]"
	else
		lw_record FAIL "login of iSCSI session $sess: neither LC_ISCSI_CONN_LOGIN nor LC_ISCSI_SESSION_UNBLOCK with session=$sess"
	fi
}
# lifecycle KIND [JQ_EXTRA_CONDITION DESC]: at least one lifecycle event of KIND
lifecycle() {
	local kind=$1 cond=${2:-true} desc=${3:-}
	if [[ -n $(lw_q ".lifecycle and .lifecycle.kind == \$k and ($cond)" --arg k "$kind" | head -1) ]]; then
		lw_record PASS "lifecycle $kind $desc"
	else
		local n seen
		n=$(lw_q '.lifecycle and .lifecycle.kind == $k' --arg k "$kind" | wc -l)
		seen=$(lw_q '.lifecycle' | jq -r '.lifecycle.kind' | sort | uniq -c | awk '{printf "%s:%s ", $2, $1}')
		lw_record FAIL "lifecycle $kind $desc: missing ($n events of that kind without the condition [$cond]; lifecycle kinds seen: [${seen:-none}])"
	fi
}
# scsi_error DEV ASC [ASCQ]: an error with that additional sense code on DEV (any sd if DEV is -)
scsi_error() {
	local dev=$1 asc=$2 ascq=${3:-}
	local f='.scsi_error and ($d == "-" or .scsi_error.dev_name == $d) and ((.scsi_error.sense.asc // .scsi_error.asc // 0)|tostring) == $a'
	[[ -n $ascq ]] && f+=' and ((.scsi_error.sense.ascq // .scsi_error.ascq // 0)|tostring) == $q'
	local hit
	hit=$(lw_q "$f" --arg d "$dev" --arg a "$asc" --arg q "$ascq" | head -1)
	if [[ -n $hit ]]; then
		lw_record PASS "scsi_error on $dev asc=$asc${ascq:+ ascq=$ascq} ($(jq -r '.scsi_error | "\(.status // "") \(.sense.key_name // "") \(.sense.description // "") \(.opcode_name // "")"' <<< "$hit"))"
	else
		local seen
		seen=$(lw_q '.scsi_error' | jq -r '.scsi_error | "\(.dev_name):\(.status // "-")/\(.host_byte // "-")/asc=\(.sense.asc // "-")"' | sort | uniq -c | awk '{printf "%s(x%s) ", $2, $1}')
		lw_record FAIL "scsi_error on $dev asc=$asc${ascq:+ ascq=$ascq}: missing (scsi_errors seen: [${seen:-none}])"
	fi
}
# count_at_least WHAT FILTER N: at least N events (or distinct values) matching
count_distinct() {
	local desc=$1 filter=$2 key=$3 want=$4
	local n
	n=$(lw_q "$filter" | jq -r "$key" | sort -u | wc -l)
	if ((n >= want)); then
		lw_record PASS "$desc: $n (>= $want)"
	else
		lw_record FAIL "$desc: only $n distinct, want >= $want"
	fi
}

# ---- alerts (lunwatch.v1.Alert JSON lines in $LW_ALERTS)

# lw_alerts FILTER [jq args]: alerts matching a jq select() body, compact JSON lines
lw_alerts() {
	local f=$1
	shift
	jq -c -R "$@" "fromjson? | select($f)" "$LW_ALERTS" 2>/dev/null
}
# alert_brief: one alert as "RULE SEVERITY state denied=.. instance=.. vol=.. owner=.. dev=.. paths=..: summary"
alert_brief() {
	jq -r '"\(.rule) \(.severity) \(.state // "ALERT_FIRING") denied=\(.denied // false) instance=\(.instance.name // "-") vol=\(.volume_id // "-") owner=\(.owner.name // "-")/\(.owner_volume_id // "-") dev=\(.device_name // "-") paths=[\([.paths[]? | "\(.name)@\(.addr.hctl // "?") \(.target.iqn // "?") lun=\(.target.lun // "?")"] | join(", "))]: \(.summary // "")"'
}
alerts_seen() { lw_alerts 'true' | jq -r '"\(.rule)/\(.severity)/\(.instance.name // "-")"' | sort | uniq -c | awk '{printf "%s(x%s) ", $2, $1}'; }
# alert RULE JQ_CONDITION DESC: at least one alert of RULE matching the condition
alert() {
	local rule=$1 cond=${2:-true} desc=${3:-}
	local hit
	hit=$(lw_alerts ".rule == \$r and ($cond)" --arg r "$rule" | head -1)
	if [[ -n $hit ]]; then
		lw_record PASS "alert $rule $desc ($(alert_brief <<< "$hit" | cut -c1-400))"
	else
		local n
		n=$(lw_alerts '.rule == $r' --arg r "$rule" | wc -l)
		lw_record FAIL "alert $rule $desc: missing ($n $rule alerts without the condition [$cond]; first: $(lw_alerts '.rule == $r' --arg r "$rule" | head -1 | alert_brief | cut -c1-300); alerts seen: [$(alerts_seen)])"
	fi
}
# alert_any "RULE1 RULE2" JQ_CONDITION DESC: an alert of any of the rules
alert_any() {
	local rules=$1 cond=${2:-true} desc=${3:-} hit r
	for r in $rules; do
		hit=$(lw_alerts ".rule == \$r and ($cond)" --arg r "$r" | head -1)
		[[ -n $hit ]] && break
	done
	if [[ -n $hit ]]; then
		lw_record PASS "alert one of [$rules] $desc ($(alert_brief <<< "$hit" | cut -c1-400))"
	else
		lw_record FAIL "alert one of [$rules] $desc: missing (alerts seen: [$(alerts_seen)])"
	fi
}
# log_line REGEX [DESC]: lunwatch's stderr has a line matching REGEX (grep -E)
log_line() {
	local re=$1 desc=${2:-} hit
	hit=$(grep -m1 -E -- "$re" "$LAB_OUT/lunwatch.stderr")
	if [[ -n $hit ]]; then
		lw_record PASS "lunwatch logged ${hit:0:200} $desc"
	else
		lw_record FAIL "lunwatch logged no line matching /$re/ $desc (last: $(tail -2 "$LAB_OUT/lunwatch.stderr" | tr '\n' '|' | cut -c1-200))"
	fi
}
# no_alert_naming RULE INSTANCE_NAME [DESC]: no alert of RULE names this instance as
# the actor (the rightful owner must never be accused)
no_alert_naming() {
	local rule=$1 name=$2 desc=${3:-} bad
	bad=$(lw_alerts '.rule == $r and .instance.name == $n' --arg r "$rule" --arg n "$name" | head -3 | alert_brief)
	if [[ -z $bad ]]; then
		lw_record PASS "no $rule against $name $desc (alerts: $(alerts_seen))"
	else
		lw_record FAIL "$rule raised against $name $desc: $(tr '\n' '|' <<< "$bad" | cut -c1-400)"
	fi
}
# lw_has_event JQ_FILTER [JQ_ARGS...]: the event log has an event matching (a wait_for predicate)
lw_has_event() { [[ -n $(lw_q "$@" | head -1) ]]; }
# alert_after_ms RULE INSTANCE_NAME T_MS MAX_MS WHAT: the first alert of RULE naming the
# instance came at most MAX_MS after T_MS (wall clock, ms; WHAT names the moment)
alert_after_ms() {
	local rule=$1 name=$2 t=$3 max=$4 what=$5 al
	al=$(lw_alerts '.rule == $r and .instance.name == $n' --arg r "$rule" --arg n "$name" | jq -r '.unix_ms|tonumber' | sort -n | head -1)
	if [[ -z $al ]]; then
		lw_record FAIL "$rule naming $name within $max ms of $what: no such alert"
		return
	fi
	lw_note "LATENCY: $what (wall_ms=$t) -> $rule naming $name (unix_ms=$al): $((al - t)) ms"
	if ((al - t <= max)); then
		lw_record PASS "$rule naming $name $((al - t)) ms after $what (at most $max ms)"
	else
		lw_record FAIL "$rule naming $name $((al - t)) ms after $what (want at most $max ms)"
	fi
}
# stats_at_least JQ_PATH MIN DESC: the agent's stats file (written at stop) holds a
# number >= MIN at JQ_PATH
stats_at_least() {
	local path=$1 min=$2 desc=${3:-} v
	v=$(jq -r "$path // empty" "$LAB_OUT/lunwatch-stats.json" 2>/dev/null)
	if [[ $v =~ ^[0-9]+$ ]] && ((v >= min)); then
		lw_record PASS "stats $path = $v (at least $min) $desc"
	else
		lw_record FAIL "stats $path = ${v:-missing} (want at least $min) $desc"
	fi
}
# metric_at_least NAME MIN [FILE]: a scrape of lunwatch's /metrics saved in FILE
# (default metrics.txt in the output folder) has NAME >= MIN
metric_at_least() {
	local name=$1 min=$2 f=${3:-$LAB_OUT/metrics.txt} v
	v=$(awk -v n="$name" '$1 == n { print $2 }' "$f" 2>/dev/null | head -1)
	if [[ -n $v ]] && awk -v v="$v" -v m="$min" 'BEGIN { exit !(v >= m) }'; then
		lw_record PASS "metric $name = $v (at least $min)"
	else
		lw_record FAIL "metric $name = ${v:-missing} (want at least $min; $f)"
	fi
}
# no_alert_above_warning: no firing alert of severity HIGH or CRITICAL (each printed)
no_alert_above_warning() {
	local bad
	bad=$(lw_alerts '(.severity == "SEVERITY_HIGH" or .severity == "SEVERITY_CRITICAL") and (.state // "ALERT_FIRING") == "ALERT_FIRING"')
	if [[ -z $bad ]]; then
		lw_record PASS "no alert above SEVERITY_WARNING (alerts seen: [$(alerts_seen)])"
	else
		lw_record FAIL "$(wc -l <<< "$bad") alert(s) above SEVERITY_WARNING: $(alert_brief <<< "$bad" | head -5 | cut -c1-300 | tr '\n' '|')"
		alert_brief <<< "$bad" | while read -r l; do log "  high alert: $l"; done
	fi
}
# dump_of RULE...: the capture dump lunwatch wrote for the first of these rules
dump_of() {
	local r
	for r in "$@"; do ls "$LAB_OUT"/dumps/*-"$r".lwdump 2>/dev/null; done | head -1
}

# dump_checks RULE: a capture was written for RULE; `dump verify` passes;
# its timeline has A's I/O, the LUN-not-supported error, the remap seen (the
# host's scan or an earlier re-verification), the trigger and A's read after
# the remap; `replay` of the dump raises the trigger again.
dump_checks() {
	local rule="$*" f
	wait_for "a capture dump for $rule" 20 test -n "$(dump_of "$@")" || true
	f=$(dump_of "$@")
	if [[ -z $f ]]; then
		lw_record FAIL "capture dump for $rule: none in $LAB_OUT/dumps ($(ls "$LAB_OUT/dumps" 2>/dev/null | tr '\n' ' '))"
		return
	fi
	if "$LAB_LUNWATCH" dump verify "$f" > "$LAB_OUT/dump-verify.txt" 2>&1; then
		lw_record PASS "lunwatch dump verify $(basename "$f"): $(tail -1 "$LAB_OUT/dump-verify.txt")"
	else
		lw_record FAIL "lunwatch dump verify $(basename "$f"): $(tr '\n' ' ' < "$LAB_OUT/dump-verify.txt" | cut -c1-200)"
	fi
	"$LAB_LUNWATCH" dump show "$f" > "$LAB_OUT/dump-show.txt" 2>&1
	local io err scan trig
	io=$(grep -n 'I/O .*instance-0000000a' "$LAB_OUT/dump-show.txt" | head -1 | cut -d: -f1)
	err=$(grep -n 'LOGICAL UNIT NOT SUPPORTED' "$LAB_OUT/dump-show.txt" | head -1 | cut -d: -f1)
	trig=$(grep -n '^>>>' "$LAB_OUT/dump-show.txt" | head -1 | cut -d: -f1)
	# The remap is visible to lunwatch at the first of: the host's scan after the error
	# (logins scan too, so only one after it counts), or a verification that already
	# sees the new volume's serial. The second can come first: lunwatch re-verifies a
	# failed device's paths during error recovery and can see the new LUN before the
	# host scans for it, and on a busy machine the scan may come after the path
	# checker reinstated the paths. Which comes first is scheduling, not correctness,
	# so the check orders only what is causal: A's I/O, the error, the remap seen,
	# the trigger (no alert before the new identity is seen), and a read by A after
	# the remap was seen (the leak).
	scan=$(grep -n 'HOST_SCAN' "$LAB_OUT/dump-show.txt" | cut -d: -f1 | awk -v e="${err:-999999}" '$1 > e' | head -1)
	local seen="" remap leak
	if [[ -n ${SERIAL_B:-} ]]; then
		seen=$(grep -n "verify .* serial $SERIAL_B" "$LAB_OUT/dump-show.txt" | cut -d: -f1 | awk -v e="${err:-999999}" '$1 > e' | head -1)
	fi
	remap=$(printf '%s\n' $scan $seen | sort -n | head -1)
	leak=$(grep -n 'I/O .*instance-0000000a' "$LAB_OUT/dump-show.txt" | cut -d: -f1 | awk -v s="${remap:-999999}" '$1 > s' | head -1)
	if [[ -n $io && -n $err && -n $remap && -n $trig && -n $leak ]] && ((io < err && err < remap && remap <= trig && remap < leak)); then
		lw_record PASS "dump timeline in order: A's I/O (line $io), LUN not supported ($err), the remap seen ($remap: $([[ $remap == "$scan" ]] && echo "the host's scan" || echo "re-verification before the host's scan${scan:+ at $scan}")), the trigger ($trig), A's first read after the remap ($leak)"
	else
		lw_record FAIL "dump timeline order: A's I/O=${io:-missing} LUN-not-supported=${err:-missing} scan=${scan:-missing} new-serial-verified=${seen:-missing} trigger=${trig:-missing} A's read after the remap=${leak:-missing} (see dump-show.txt)"
	fi
	if "$LAB_LUNWATCH" replay "$f" > "$LAB_OUT/dump-replay.jsonl" 2> "$LAB_OUT/dump-replay.stderr"; then
		lw_record PASS "lunwatch replay of the dump raises its trigger again ($(tail -1 "$LAB_OUT/dump-replay.stderr" | cut -c1-160))"
	else
		lw_record FAIL "lunwatch replay of the dump: $(tail -1 "$LAB_OUT/dump-replay.stderr" | cut -c1-200)"
	fi
}

# replay_reproduces RULE: `lunwatch replay` of the recording raises RULE again
replay_reproduces() {
	local rule=$1 out
	if [[ ! -s $LW_RECORD ]]; then
		lw_record FAIL "lunwatch replay reproduces $rule: no recording at $LW_RECORD ($(ls -la "$LW_RECORD" 2>&1 | cut -c1-120))"
		return
	fi
	# with the live agent's config when it had one (replay_matches_live reuses this output)
	local conf=()
	[[ -n ${LW_CONFIG:-} ]] && conf=(--config "$LW_CONFIG")
	timeout -k 5 120 "$LAB_LUNWATCH" replay "${conf[@]}" "$LW_RECORD" > "$LAB_OUT/replay-alerts.jsonl" 2> "$LAB_OUT/replay.stderr"
	local rc=$?
	[[ -n ${LW_CONFIG:-} ]] && cp "$LAB_OUT/replay-alerts.jsonl" "$LAB_OUT/replay-config.jsonl"
	out=$(jq -c -R 'fromjson? | select(.rule == $r)' --arg r "$rule" "$LAB_OUT/replay-alerts.jsonl" 2>/dev/null | head -1)
	if [[ -n $out ]]; then
		lw_record PASS "lunwatch replay of the recording ($(du -k "$LW_RECORD" | cut -f1) KiB) reproduces $rule (rc=$rc: $(alert_brief <<< "$out" | cut -c1-250))"
	else
		lw_record FAIL "lunwatch replay of the recording reproduces $rule: not in its output (rc=$rc, $(wc -l < "$LAB_OUT/replay-alerts.jsonl") lines; stderr: $(tail -2 "$LAB_OUT/replay.stderr" | tr '\n' ' ' | cut -c1-200))"
	fi
}
# lw_disable_args ARRAY: the --disable-hook flags LAB_DISABLE_HOOKS=a,b and
# LAB_FORCE_KPROBE=1 (every fentry off: the kprobe twins) ask for, into ARRAY
lw_disable_args() {
	local -n _out=$1
	local h dh=${LAB_DISABLE_HOOKS:-}
	for h in ${dh//,/ }; do _out+=(--disable-hook "$h"); done
	[[ ${LAB_FORCE_KPROBE:-0} == 1 ]] && _out+=(--disable-hook fentry)
	return 0
}

# ran_kprobe_twins: the agent itself (not only `probes --json`) ran the kprobe twins
# of the fentry programs and no fentry program (LAB_FORCE_KPROBE=1): by the kernel's
# run counts in its stats file (written at stop)
ran_kprobe_twins() {
	local f=$LAB_OUT/lunwatch-stats.json kp fe
	kp=$(jq -r '[.programs[] | select((.program | endswith("_kp")) and .run_cnt > 0) | .program] | join(" ")' "$f" 2>/dev/null)
	fe=$(jq -r '[.programs[] | select(.program | endswith("_kp")) | .program | rtrimstr("_kp")] as $twins
		| [.programs[] | select(.run_cnt > 0 and (.program as $p | $twins | index([$p]) != null)) | .program] | join(" ")' "$f" 2>/dev/null)
	if [[ -n $kp && -z $fe ]]; then
		lw_record PASS "the agent ran kprobe twins ($kp), no fentry program"
	else
		lw_record FAIL "the agent did not run on kprobes alone: kprobe twins that ran [${kp:-none}], fentry programs that ran [${fe:-none}] ($f)"
	fi
}

# probes_after_modules: `lunwatch probes --json` once the agent has stopped and the
# storage modules are loaded, into probes.json, which scripts/lab compares with
# tests/lab/expected/probes-<series>.tsv (late-modules saved the table from before
# the modules loaded as probes-before-modules.json)
probes_after_modules() {
	local off=() rc
	lw_disable_args off
	timeout -k 5 120 "$LAB_LUNWATCH" probes --json "${off[@]}" > "$LAB_OUT/probes.json" 2> "$LAB_OUT/probes.stderr"
	rc=$?
	if ((rc == 0)) && jq -e '.hooks | length > 0' "$LAB_OUT/probes.json" > /dev/null 2>&1; then
		lw_record PASS "lunwatch probes --json after the modules loaded: $(jq -r '[.hooks[] | .status] | group_by(.) | map("\(.[0]):\(length)") | join(" ")' "$LAB_OUT/probes.json")"
	else
		lw_record FAIL "lunwatch probes --json after the modules loaded: rc=$rc, $(tail -1 "$LAB_OUT/probes.stderr" | cut -c1-200)"
	fi
}

# replay_matches_live CONFIG ALLOWED_COMM: `lunwatch replay --config CONFIG` of the
# recording reaches the live agent's verdicts: the same set of (rule, instance, device)
# among firing alerts. The live agent ran with CONFIG (LW_CONFIG), whose [agent]
# host_allowlist adds ALLOWED_COMM, a host process that read a volume device: a replay
# without the config must raise HOST_PROCESS_ACCESS for it (else the check proves
# nothing about the config reaching the replay).
replay_matches_live() {
	local conf=$1 comm=$2 live replay bare
	if [[ ! -s $LW_RECORD ]]; then
		lw_record FAIL "replay with the live config: no recording at $LW_RECORD"
		return
	fi
	local key='select((.state // "ALERT_FIRING") == "ALERT_FIRING") | [.rule, (.instance.name // "-"), (.device_name // "-")] | @tsv'
	live=$(jq -r -R "fromjson? | $key" "$LW_ALERTS" | sort -u)
	# replay_reproduces already replayed with this config (each replay costs seconds under TCG)
	if [[ $conf != "${LW_CONFIG:-}" || ! -s $LAB_OUT/replay-config.jsonl ]]; then
		timeout -k 5 120 "$LAB_LUNWATCH" replay --config "$conf" "$LW_RECORD" > "$LAB_OUT/replay-config.jsonl" 2> "$LAB_OUT/replay-config.stderr"
	fi
	replay=$(jq -r -R "fromjson? | $key" "$LAB_OUT/replay-config.jsonl" | sort -u)
	: > "$LAB_OUT/empty.conf"
	timeout -k 5 120 "$LAB_LUNWATCH" replay --config "$LAB_OUT/empty.conf" "$LW_RECORD" > "$LAB_OUT/replay-default.jsonl" 2> "$LAB_OUT/replay-default.stderr"
	bare=$(jq -r -R --arg c "$comm" 'fromjson? | select(.rule == "HOST_PROCESS_ACCESS" and ((.comm // "") | startswith($c))) | .comm' "$LAB_OUT/replay-default.jsonl" | head -1)
	if [[ -z $bare ]]; then
		lw_record FAIL "replay without the config raises HOST_PROCESS_ACCESS for $comm (the allowlist check needs it): $(wc -l < "$LAB_OUT/replay-default.jsonl") lines, none; stderr: $(tail -1 "$LAB_OUT/replay-default.stderr" | cut -c1-200)"
	else
		lw_record PASS "replay without the config raises HOST_PROCESS_ACCESS for $bare; the live agent's allowlist ($conf) did not"
	fi
	if grep -q "^HOST_PROCESS_ACCESS" <<< "$live" && jq -e -R --arg c "$comm" 'fromjson? | select(.rule == "HOST_PROCESS_ACCESS" and ((.comm // "") | startswith($c)))' "$LW_ALERTS" > /dev/null; then
		lw_record FAIL "the live agent raised HOST_PROCESS_ACCESS for $comm although its config allows it"
	fi
	if [[ -n $live && $live == "$replay" ]]; then
		lw_record PASS "replay --config $conf reaches the live verdicts: $(wc -l <<< "$live") (rule, instance, device) sets equal: $(tr '\t\n' ' ;' <<< "$live" | cut -c1-300)"
	else
		lw_record FAIL "replay --config $conf differs from the live alerts: live [$(tr '\t\n' ' ;' <<< "$live" | cut -c1-300)] replay [$(tr '\t\n' ' ;' <<< "$replay" | cut -c1-300)]"
	fi
}
# lw_note TEXT: a measurement (not an assertion) in the assertions file and the log
lw_note() { echo "NOTE: $*" >> "$LW_ASSERT"; log "lunwatch: $*"; }

# leak_alert_latency KEY INSTANCE_NAME MARKER MAX_MS: time from the instance's first read
# of MARKER (the helper's wall_ms) to the first CROSS_INSTANCE_ACCESS naming it
# (unix_ms); negative when the alert came first. PASS when <= MAX_MS.
leak_alert_latency() {
	local key=$1 name=$2 marker=$3 max=$4 line rd al
	line=$(grep -m1 "op=read ok marker=$marker\( \|$\)" "$LAB_OUT/instance-$key.log")
	rd=$(grep -oE 'wall_ms=[0-9]+' <<< "$line" | cut -d= -f2)
	al=$(lw_alerts '.rule == "CROSS_INSTANCE_ACCESS" and .instance.name == $n' --arg n "$name" | jq -r '.unix_ms|tonumber' | sort -n | head -1)
	if [[ -z $rd || -z $al ]]; then
		lw_record FAIL "latency $key's first read of $marker -> CROSS_INSTANCE_ACCESS: cannot measure (read wall_ms=${rd:-none}, alert unix_ms=${al:-none})"
		return
	fi
	local d=$((al - rd))
	lw_note "LATENCY: $key's first read of $marker (wall_ms=$rd) -> CROSS_INSTANCE_ACCESS (unix_ms=$al): $d ms"
	if ((d <= max)); then
		lw_record PASS "CROSS_INSTANCE_ACCESS within ${max} ms of $key's first read of $marker ($d ms)"
	else
		lw_record FAIL "CROSS_INSTANCE_ACCESS $d ms after $key's first read of $marker (want <= $max ms)"
	fi
}
# containment_times: every containment result lunwatch reported (alerts written
# again with .containment), each with its time from the alert; PASS when there are
# results and none failed or timed out.
containment_times() {
	local lines
	lines=$(lw_alerts '(.containment // []) | length > 0' | jq -r '.containment[] | "\(.kind) \(.target) \(.result) in \(.took_ms // 0) ms: \(.detail)"' | sort -u)
	if [[ -z $lines ]]; then
		lw_record FAIL "containment results: no alert carries any (containment lines in lunwatch.stderr: $(grep -m3 'containment' "$LAB_OUT/lunwatch.stderr" | tr '\n' '|' | cut -c1-300))"
		return
	fi
	while read -r l; do lw_note "CONTAINMENT: $l"; done <<< "$lines"
	if grep -qE 'CONTAIN_(FAILED|TIMEOUT)' <<< "$lines"; then
		lw_record FAIL "containment: an action failed or timed out ($(grep -E 'CONTAIN_(FAILED|TIMEOUT)' <<< "$lines" | head -2 | tr '\n' '|' | cut -c1-300))"
	else
		lw_record PASS "containment results reported, none failed ($(wc -l <<< "$lines") actions)"
	fi
}
# guard_reopen_time KEY DM T_NS: time from the kernel's reconnect (the first
# LC_SCSI_HOST_SCAN after T_NS, ts_ns CLOCK_MONOTONIC) to instance KEY being allowed
# (its open went through / its first good read, helper mono_ms); plus lunwatch's own
# "guard: DM re-opened N ms after the kernel closed it".
guard_reopen_time() {
	local key=$1 dm=$2 t=$3 scan allowed how
	scan=$(LW_AFTER=$t lw_q '.lifecycle and .lifecycle.kind == "LC_SCSI_HOST_SCAN"' | head -1 | jq -r '(.ts_ns|tonumber) / 1000000 | floor')
	allowed=$(grep -m1 '^open-allowed ' "$LAB_OUT/instance-$key.log" | grep -oE ' mono_ms=[0-9]+' | cut -d= -f2)
	how="open allowed after $(grep -m1 '^open-allowed ' "$LAB_OUT/instance-$key.log" | grep -oE 'denied_opens=[0-9]+') refusals"
	if [[ -z $allowed ]]; then
		allowed=$(grep -m1 'op=read ok' "$LAB_OUT/instance-$key.log" | grep -oE ' mono_ms=[0-9]+' | cut -d= -f2)
		how="first open allowed, first good read"
	fi
	local lwline
	lwline=$(grep -m1 "guard: $dm re-opened" "$LAB_OUT/lunwatch.stderr")
	if [[ -n $scan && -n $allowed ]]; then
		lw_note "GUARD RE-OPEN: kernel reconnect (LC_SCSI_HOST_SCAN at mono ${scan} ms) -> $key allowed on $dm (mono ${allowed} ms, $how): $((allowed - scan)) ms; lunwatch: ${lwline:-no 're-opened' line}"
	else
		lw_note "GUARD RE-OPEN: cannot measure (scan=${scan:-none} allowed=${allowed:-none}); lunwatch: ${lwline:-no 're-opened' line}"
	fi
	if [[ -n $lwline ]]; then
		lw_record PASS "lunwatch re-opened $dm after the reconnect (${lwline#*guard: })"
	else
		lw_record FAIL "lunwatch logged no 'guard: $dm re-opened N ms after the kernel closed it' (guard lines: $(grep -m3 'guard' "$LAB_OUT/lunwatch.stderr" | tr '\n' '|' | cut -c1-300))"
	fi
}
# guard_denials MAX_MS KEY...: under --guard enforce, no I/O of these instances is
# refused except transient refusals (EPERM runs in the instance log, refused opens)
# that end within MAX_MS; every refusal span is printed.
guard_denials() {
	local max=$1 key
	shift
	local bad=0 spans= n_alerts
	for key in "$@"; do
		local f=$LAB_OUT/instance-$key.log
		[[ -f $f ]] || continue
		# a denial span: from a refused read/open line to the next read the guard let
		# through (ok, or another error such as EIO on a dead path), timed by when that
		# read was submitted (it may then block for seconds on a path in recovery), or
		# to the next allowed open
		local s
		s=$(awk -v k="$key" '
			{ m = ""; sub_m = ""
			  for (i = 1; i <= NF; i++) {
				if ($i ~ /^mono_ms=/) m = substr($i, 9)
				if ($i ~ /^submit_mono_ms=/) sub_m = substr($i, 16)
			  } }
			m == "" { next }
			(/op=read err=1 / || /^open-denied /) { if (start == "") start = m; next }
			(/op=read / || /^open-allowed /) && start != "" { printf "%s:%dms ", k, (sub_m != "" ? sub_m : m) - start; start = "" }
			END { if (start != "") printf "%s:unresolved(since mono %s) ", k, start }' "$f")
		spans+=$s
		local tot
		tot=$(grep -E '^total ' "$f" | tail -1 | grep -oE 'read_denied=[0-9]+ write_denied=[0-9]+')
		[[ -n $tot && $tot != "read_denied=0 write_denied=0" ]] && spans+="($key $tot) "
	done
	n_alerts=$(lw_alerts '.denied == true' | wc -l)
	local sp
	for sp in $spans; do
		[[ $sp == *unresolved* ]] && bad=$((bad + 1))
		[[ $sp =~ :([0-9]+)ms ]] && ((BASH_REMATCH[1] > max)) && bad=$((bad + 1))
	done
	if [[ -z $spans ]]; then
		lw_record PASS "guard enforce: no I/O of [$*] refused ($n_alerts alerts with denied=true)"
	elif ((bad == 0)); then
		lw_note "GUARD TRANSIENT DENIALS: $spans"
		lw_record PASS "guard enforce: only transient refusals, each resolved within $max ms: $spans($n_alerts alerts with denied=true)"
	else
		lw_record FAIL "guard enforce refused instance I/O beyond $max ms: $spans(alerts with denied=true: $(lw_alerts '.denied == true' | head -3 | alert_brief | cut -c1-200 | tr '\n' '|'))"
	fi
}
