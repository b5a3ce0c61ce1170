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

lw_enabled() { [[ -n $LW_PID || -s $LW_EVENTS ]]; }

# lw_start: probes --json, then `run --events` in the background, waiting for its
# ready file (every probe attached). Call after load_modules, before any storage action.
lw_start() {
	if [[ ! -x $LAB_LUNWATCH ]]; then
		LW_SKIP_REASON="no lunwatch binary at $LAB_LUNWATCH"
		log "lunwatch: skipped ($LW_SKIP_REASON)"
		return 0
	fi
	# `probes --json` loads and verifies every program too: run it beside `run` (the
	# verifier is slow under TCG) and wait for both.
	# Only where asked (scenario intentional, or LAB_PROBES_JSON=1): it costs ~15 s.
	# Run before `run`, never beside it: two agents share /sys/fs/bpf/lunwatch pins.
	if [[ ${LW_PROBES_JSON:-0} == 1 || ${LAB_PROBES_JSON:-0} == 1 ]]; then
		timeout -k 5 120 "$LAB_LUNWATCH" probes --json > "$LAB_OUT/probes.json" 2> "$LAB_OUT/probes.stderr"
		local prc=$?
		log "lunwatch probes --json: rc=$prc, $(jq -r '[.hooks[] | .status] | group_by(.) | map("\(.[0]):\(length)") | join(" ")' "$LAB_OUT/probes.json" 2>/dev/null)"
		jq -r '.hooks[] | select(.status != "HOOK_ATTACHED") | "      hook \(.name): \(.status) \(.reason // "")"' "$LAB_OUT/probes.json" 2>/dev/null
	fi
	local ready=$LAB_OUT/lunwatch.ready
	rm -f "$ready"
	local extra=()
	if "$LAB_LUNWATCH" run --help 2>&1 | grep -q -- --ready-file; then
		extra=(--ready-file "$ready" --stats-file "$LAB_OUT/lunwatch-stats.json")
	fi
	"$LAB_LUNWATCH" run --events "${extra[@]}" > "$LW_EVENTS" 2> "$LAB_OUT/lunwatch.stderr" &
	LW_PID=$!
	local t0=$SECONDS
	if ((${#extra[@]})); then
		wait_for "lunwatch ready file" 90 test -e "$ready" || true
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

lw_stop() {
	[[ -n $LW_PID ]] || return 0
	# let the ring buffer drain what the last actions produced
	sleep 1
	kill -INT "$LW_PID" 2>/dev/null
	local n=0
	while kill -0 "$LW_PID" 2>/dev/null && ((n < 60)); do sleep 0.25; n=$((n + 1)); done
	if kill -0 "$LW_PID" 2>/dev/null; then
		log "lunwatch did not stop on SIGINT within 15s; killing"
		kill -KILL "$LW_PID" 2>/dev/null
	fi
	wait "$LW_PID" 2>/dev/null
	log "lunwatch stopped (rc=$?): $(wc -l < "$LW_EVENTS") event lines; $(tail -1 "$LAB_OUT/lunwatch.stderr")"
	LW_PID=
}

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
	local c
	for c in "${LW_CHECKS[@]}"; do eval "$c"; done
	LW_CHECKS=()
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
