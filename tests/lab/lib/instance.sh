# lunwatch lab, guest side: instance processes that look like Nova's qemu.
# Each runs $LAB_CACHE/bin/<hash of its source>/qemu-system-x86_64 (tests/lab/helper/labqemu.c) in a
# libvirt-like cgroup2 scope and logs what it reads to $LAB_OUT/instance-KEY.log.

LAB_QEMU=$LAB_CACHE/bin/$(sha256sum < "$LAB_REPO/tests/lab/helper/labqemu.c" | cut -c1-16)/qemu-system-x86_64
declare -A INST_PID=() INST_NAME=() INST_UUID=() INST_CG=() INST_DEVS=()
INST_SEQ=0

# instance_start KEY NOVA_NUM DEV... [-- HELPER_OPTS...]
#   KEY: short name (A, B, ...); NOVA_NUM: instance number (10 -> instance-0000000a)
instance_start() {
	local key=$1 num=$2
	shift 2
	local devs=() opts=()
	while (($#)); do
		if [[ $1 == -- ]]; then shift; opts=("$@"); break; fi
		devs+=("$1")
		shift
	done
	[[ -x $LAB_QEMU ]] || fatal "instance helper $LAB_QEMU missing (scripts/lab builds it)"
	INST_SEQ=$((INST_SEQ + 1))
	local name uuid cg
	printf -v name 'instance-%08x' "$num"
	printf -v uuid '%08x-0000-4000-8000-%012x' "$num" "$num"
	cg="/sys/fs/cgroup/machine.slice/machine-qemu\\x2d${INST_SEQ}\\x2d${name//-/\\x2d}.scope"
	mkdir -p "$cg" || fatal "mkdir cgroup $cg"
	local args=(-name "guest=$name,debug-threads=on" -uuid "$uuid" -machine pc-q35-7.2,accel=tcg -m 512)
	local i=1 d
	for d in "${devs[@]}"; do
		args+=(-drive "file=/dev/$d,format=raw,if=none,id=drive-virtio-disk$i,cache=none,aio=native")
		i=$((i + 1))
	done
	# under lunwatch's guard an open may be refused for a moment (re-verification):
	# the helper retries it (reporting open-denied/open-allowed) instead of exiting
	[[ ${LAB_GUARD:-monitor} == enforce ]] && opts+=(-lab-open-retry-s 30)
	CG="$cg" "${IN_CGROUP[@]}" "$LAB_QEMU" "${args[@]}" "${opts[@]}" > "$LAB_OUT/instance-$key.log" 2>&1 &
	local pid=$!
	INST_PID[$key]=$pid
	INST_NAME[$key]=$name
	INST_UUID[$key]=$uuid
	INST_CG[$key]=$cg
	INST_DEVS[$key]="${devs[*]}"
	on_exit "instance_stop $key"
	echo "$key pid=$pid name=$name uuid=$uuid cgroup=${cg#/sys/fs/cgroup} devs=${devs[*]}" >> "$LAB_OUT/instances.txt"
	libvirt_domain "$name" "$uuid" "$pid" "${devs[@]}"
	[[ -n ${INST_NOWAIT:-} ]] && return 0
	wait_for "instance $key started" 40 grep -q '^start ' "$LAB_OUT/instance-$key.log" \
		|| fatal "instance $key did not start: $(tail -3 "$LAB_OUT/instance-$key.log")"
	log "instance $key: pid $pid $name (${cg#/sys/fs/cgroup}) on ${devs[*]}"
}

# nova_metadata NAME TENANT: the <metadata> Nova writes into a domain (display name,
# owner user and project), shared by the status XML here and libvirt.sh's domains
nova_metadata() {
	cat <<-XML
	<metadata>
	  <nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1">
	    <nova:name>lab-$1</nova:name>
	    <nova:owner>
	      <nova:user uuid="00000000-0000-4000-8000-0000000000aa">lab</nova:user>
	      <nova:project uuid="00000000-0000-4000-8000-$(printf '%012x' "$2")">tenant-$2</nova:project>
	    </nova:owner>
	  </nova:instance>
	</metadata>
	XML
}
# CG=CGROUP_DIR "${IN_CGROUP[@]}" CMD...: runs CMD as a process of that cgroup (the
# shell joins it, then execs CMD, so a background job's $! is CMD's pid)
IN_CGROUP=(bash -c 'echo $$ > "$CG/cgroup.procs" && exec "$0" "$@"')

declare -A INST_STOPPED=()
# libvirt_domain NAME UUID PID DEV...: libvirt's live status XML and pid file, as Nova's
# libvirt driver leaves them (/run/libvirt/qemu/NAME.xml), with one <disk> per volume;
# INST_SERIALS (space separated, in DEV order) gives each disk's <serial> (the Cinder
# volume id), so an agent can tell which volume each instance should see.
libvirt_domain() {
	local name=$1 uuid=$2 pid=$3
	shift 3
	local serials=(${INST_SERIALS:-}) i=0 d letters=bcdefghijklmnopqrstuvwxyz disks=
	for d in "$@"; do
		disks+="      <disk type='block' device='disk'>
        <driver name='qemu' type='raw' cache='none' io='native'/>
        <source dev='/dev/$d'/>
        <target dev='vd${letters:$i:1}' bus='virtio'/>
        ${serials[$i]:+<serial>${serials[$i]}</serial>
        }<alias name='virtio-disk$((i + 1))'/>
      </disk>
"
		i=$((i + 1))
	done
	mkdir -p /run/libvirt/qemu
	cat > "/run/libvirt/qemu/$name.xml" <<-XML
	<domstatus state='running' reason='booted' pid='$pid'>
	  <domain type='kvm' id='$INST_SEQ'>
	    <name>$name</name>
	    <uuid>$uuid</uuid>
	$(nova_metadata "$name" "$INST_SEQ")
	    <devices>
	      <emulator>/usr/bin/qemu-system-x86_64</emulator>
	$disks    </devices>
	  </domain>
	</domstatus>
	XML
	echo "$pid" > "/run/libvirt/qemu/$name.pid"
	cp "/run/libvirt/qemu/$name.xml" "$LAB_OUT/libvirt-$name.xml" 2>/dev/null
}

instance_stop() {
	local key=$1 pid=${INST_PID[$1]:-}
	[[ -n $pid && -z ${INST_STOPPED[$1]:-} ]] || return 0
	INST_STOPPED[$1]=1
	kill -TERM "$pid" 2>/dev/null
	rm -f "/run/libvirt/qemu/${INST_NAME[$1]}.xml" "/run/libvirt/qemu/${INST_NAME[$1]}.pid"
	local n=0
	while kill -0 "$pid" 2>/dev/null && ((n < 40)); do sleep 0.25; n=$((n + 1)); done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# instance_mark KEY: remember how far the log is, so later waits see only new reads
declare -A INST_MARK=()
instance_mark() { INST_MARK[$1]=$(wc -l < "$LAB_OUT/instance-$1.log"); }
# instance_saw KEY REGEX: a log line after the mark matches
# (grep reads a process substitution: "tail | grep -q" under pipefail is false
# whenever grep stops early and tail meets a closed pipe)
instance_saw() { grep -qE "$2" < <(tail -n +"$((${INST_MARK[$1]:-0} + 1))" "$LAB_OUT/instance-$1.log"); }
# instance_reads_fail KEY: its reads fail now: an error line after the mark, or
# (the helper prints only changes) its latest read line is an error
instance_reads_fail() {
	instance_saw "$1" 'op=read err=' || grep 'op=read' "$LAB_OUT/instance-$1.log" | tail -1 | grep -q 'op=read err='
}
# instance_wait_marker KEY MARKER TIMEOUT: the instance read MARKER (after the mark)
instance_wait_marker() {
	wait_for "instance $1 reads $2" "$3" instance_saw "$1" "op=read ok marker=$2( |$)"
}
# instance_markers KEY: every marker the instance ever read (sorted, unique)
instance_markers() { grep -oE 'op=read ok marker=[^ ]+' "$LAB_OUT/instance-$1.log" | sed 's/.*marker=//' | sort -u; }
# instance_reads KEY: number of reads done so far (last heartbeat/total/event line)
instance_reads() {
	grep -oE '( n=| reads=)[0-9]+' "$LAB_OUT/instance-$1.log" | tail -1 | grep -oE '[0-9]+'
}
# instance_ok KEY [DRIVE]: successful reads so far (from the last heartbeat)
instance_ok() {
	grep -E "^(heartbeat|total) .*drive=/dev/${2:-}" "$LAB_OUT/instance-$1.log" | tail -1 | grep -oE ' ok=[0-9]+' | grep -oE '[0-9]+' || echo 0
}
# instance_ok_more KEY N: more than N successful reads (a predicate for wait_for)
instance_ok_more() { (($(instance_ok "$1") > $2)); }
# instance_engine_read KEY MARKER ENGINE: the last heartbeat counts MARKER read with ENGINE
instance_engine_read() { grep -E '^(heartbeat|total) ' "$LAB_OUT/instance-$1.log" | tail -1 | grep -qE "[=,]$2@$3:[0-9]+"; }
instance_alive() { kill -0 "${INST_PID[$1]}" 2>/dev/null; }

# guard_refuses_leak STALE OWNER MARKER: ground truth under lunwatch's guard (enforce)
# once OWNER's volume sits where STALE's used to be: STALE's reads since its mark are
# refused with EPERM (none ok, the last one EPERM, and it kept reading), STALE never
# read MARKER, OWNER reads and writes without an error.
guard_refuses_leak() {
	local stale=$1 owner=$2 marker=$3 n_mark ok0 log_s=$LAB_OUT/instance-$1.log log_o=$LAB_OUT/instance-$2.log
	ok0=$(instance_ok "$owner")
	wait_for "$owner reads and writes" 30 instance_ok_more "$owner" "$((ok0 + 5))" || true
	# the helper prints a read line only when the result changes
	n_mark=$(instance_reads "$stale")
	_stale_refused() {
		! instance_saw "$stale" 'op=read ok' && grep 'op=read' "$log_s" | tail -1 | grep -q 'op=read err=1 ' \
			&& (($(instance_reads "$stale") > n_mark + 3))
	}
	wait_for "$stale's reads refused (EPERM)" 40 _stale_refused \
		&& gt_pass "GUARD: $stale's reads fail with EPERM (reads $n_mark -> $(instance_reads "$stale"), none ok; first refusal: $(grep -m1 'op=read err=1 ' "$log_s" | cut -c1-130))" \
		|| gt_fail "$stale's reads were not refused with EPERM; its read lines: $(grep 'op=read' "$log_s" | tail -3 | tr '\n' ' ')"
	# more of its reads (each engine in turn) against the guard before the verdict
	n_mark=$(instance_reads "$stale")
	_stale_read_more() { (($(instance_reads "$stale") > n_mark + 6)); }
	wait_for "$stale keeps reading against the guard" 20 _stale_read_more || true
	if grep -q "marker=$marker" "$log_s"; then
		gt_fail "GUARD: $stale read $marker ($(grep -m1 "marker=$marker" "$log_s"))"
	else
		gt_pass "GUARD: $stale never read $marker: zero bytes leaked (its markers: $(instance_markers "$stale" | tr '\n' ' '); reads now $(instance_reads "$stale"))"
	fi
	_owner_normal() { # the owner read its marker, no read error, no write error, last read ok
		local hb
		hb=$(grep -E '^heartbeat ' "$log_o" | tail -1)
		[[ $hb == *"$marker"* && $hb == *' read_errors=0 '* && $hb == *' write_errors=0 '* && $hb == *'last=ok'* ]]
	}
	wait_for "a heartbeat of $owner" 10 grep -q '^heartbeat ' "$log_o" || true
	gt_check "$owner reads and writes its volume normally under the guard ($(grep -E '^heartbeat ' "$log_o" | tail -1 | cut -c1-170))" _owner_normal
	# Processes lunwatch has never seen, started inside each instance's cgroup scope
	# (a qemu helper, or qemu restarted under a new pid): the guard keys on the scope.
	local dev=${INST_DEVS[$owner]%% *} out
	_dd_in_scope() { CG="$1" "${IN_CGROUP[@]}" dd if="/dev/$dev" bs=512 count=1 iflag=direct status=none 2>&1 | tr -d '\0'; }
	out=$(_dd_in_scope "${INST_CG[$stale]}")
	if [[ $out == *'Operation not permitted'* ]]; then
		gt_pass "GUARD: a new process in $stale's scope is refused $dev too ($(head -1 <<< "$out" | cut -c1-90))"
	else
		gt_fail "GUARD: a new process in $stale's scope read $dev: $(head -c 80 <<< "$out")"
	fi
	out=$(_dd_in_scope "${INST_CG[$owner]}")
	if [[ $out == *"$marker"* ]]; then
		gt_pass "GUARD: a new process in $owner's scope reads $marker (owner by scope)"
	else
		gt_fail "GUARD: a new process in $owner's scope could not read $marker: $(head -c 80 <<< "$out")"
	fi
}
