#!/bin/bash
# lunwatch lab: PID 1 of the guest after switch_root (host / over 9p + tmpfs overlay).
# Sets up the minimal system, runs the scenario named on the kernel command line
# with a deadline, copies logs to the writable 9p share of the host's output folder,
# prints "LAB-RESULT scenario=NAME rc=N" on the console and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C LC_ALL=C TERM=dumb

console() { echo "[lab] $*" > /dev/console; }
poweroff_now() {
	sync
	echo 1 > /proc/sys/kernel/sysrq 2>/dev/null
	echo o > /proc/sysrq-trigger 2>/dev/null
	busybox poweroff -f
	# PID 1 must not exit (that panics the kernel): wait for the power to go
	while :; do sleep 5; done
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
ln -sf /proc/self/fd /dev/fd; ln -sf fd/0 /dev/stdin; ln -sf fd/1 /dev/stdout; ln -sf fd/2 /dev/stderr
mount -t devpts devpts /dev/pts
# The guest gets fresh tmpfs on /tmp, /run and /dev/shm: a checkout living
# there on the host (CI may clone anywhere) would vanish, so keep it visible
# at /lab-repo first.
HOST_REPO=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^lab\.repo=//p')
REPO_ALIAS=
case "$HOST_REPO" in
/tmp/* | /run/* | /dev/shm/*)
	mkdir -p /lab-repo && mount --bind "$HOST_REPO" /lab-repo && REPO_ALIAS=/lab-repo ;;
esac
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=0755 tmpfs /run
# A kernel fetched by scripts/lab (not the host's): its modules, unpacked in the lab
# cache, are bound where modprobe looks for this kernel's version.
MODROOT=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^lab\.modroot=//p')
if [[ -n $MODROOT ]]; then
	mkdir -p "/lib/modules/$(uname -r)" \
		&& mount --bind "$MODROOT/lib/modules/$(uname -r)" "/lib/modules/$(uname -r)" \
		|| console "WARNING: cannot bind $MODROOT/lib/modules/$(uname -r): no modules for this kernel"
fi
mkdir -p /run/lock /run/lock/iscsi /var/lock /run/lab
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t bpf bpf /sys/fs/bpf
mount -t securityfs securityfs /sys/kernel/security 2>/dev/null
modprobe configfs 2>/dev/null
mount -t configfs configfs /sys/kernel/config 2>/dev/null
hostname lab-guest 2>/dev/null
ip link set lo up
ulimit -n 65536 2>/dev/null
echo 1 > /proc/sys/kernel/sysrq

declare -A KARG=()
for kv in $(cat /proc/cmdline); do
	case "$kv" in lab.*=*) k=${kv%%=*}; KARG[${k#lab.}]=${kv#*=} ;; esac
done
export LAB_SCENARIO=${KARG[scenario]:-}
export LAB_REPO=${KARG[repo]:-/work/main}
export LAB_CACHE=${KARG[cache]:-/var/tmp/lunwatch-lab}
export LAB_TIMEOUT=${KARG[timeout]:-300}
export LAB_REQUIRE_LUNWATCH=${KARG[require_lunwatch]:-auto}
export LAB_LUNWATCH=${KARG[lunwatch]:-$LAB_REPO/build/lunwatch}
if [[ -n $REPO_ALIAS ]]; then
	LAB_LUNWATCH=$REPO_ALIAS${LAB_LUNWATCH#"$LAB_REPO"}
	LAB_REPO=$REPO_ALIAS
fi
export LAB_VERBOSE=${KARG[verbose]:-0}
export LAB_PROBES_JSON=${KARG[probes_json]:-0}
export LAB_KVER=$(uname -r)
# Why this kernel cannot run the guard (scripts/lab read its config), and the
# hooks lunwatch must leave out (LAB_DISABLE_HOOKS, LAB_FORCE_KPROBE).
[[ -n ${KARG[no_guard]:-} ]] && export LAB_NO_GUARD=${KARG[no_guard]//_/ }
[[ -n ${KARG[disable_hooks]:-} ]] && export LAB_DISABLE_HOOKS=${KARG[disable_hooks]}
[[ -n ${KARG[force_kprobe]:-} ]] && export LAB_FORCE_KPROBE=${KARG[force_kprobe]}
[[ -n ${KARG[guard]:-} ]] && export LAB_GUARD=${KARG[guard]}
[[ -n ${KARG[perf]:-} ]] && export LAB_PERF=${KARG[perf]}
[[ -n ${KARG[bench_rounds]:-} ]] && export BENCH_ROUNDS=${KARG[bench_rounds]}
[[ -n ${KARG[bench_runtime]:-} ]] && export BENCH_RUNTIME=${KARG[bench_runtime]}

mkdir -p /lab-out
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,rw labout /lab-out; then
	console "WARNING: cannot mount the output share (tag labout); logs only on the console"
fi
export LAB_OUT=/lab-out/$LAB_SCENARIO
mkdir -p "$LAB_OUT"

script=$LAB_REPO/tests/lab/scenarios/$LAB_SCENARIO.sh
rc=0
if [[ -z $LAB_SCENARIO || ! -f $script ]]; then
	console "no such scenario '$LAB_SCENARIO' ($script)"
	rc=98
else
	console "guest up: kernel $LAB_KVER, uptime $(cut -d' ' -f1 /proc/uptime)s; scenario $LAB_SCENARIO (deadline ${LAB_TIMEOUT}s)"
	# The scenario runs in its own session so the deadline can kill all it started.
	setsid bash "$script" > >(tee "$LAB_OUT/scenario.log" > /dev/console) 2>&1 &
	spid=$!
	deadline=$((SECONDS + LAB_TIMEOUT))
	while kill -0 "$spid" 2>/dev/null && ((SECONDS < deadline)); do
		sleep 1
	done
	if kill -0 "$spid" 2>/dev/null; then
		console "TIMEOUT: scenario $LAB_SCENARIO still running after ${LAB_TIMEOUT}s; killing it"
		console "processes at timeout:"
		ps -eo pid,stat,wchan:30,args 2>/dev/null | grep -v '\[' > "$LAB_OUT/ps-at-timeout.txt"
		cat "$LAB_OUT/ps-at-timeout.txt" > /dev/console
		# TERM lets the scenario stop lunwatch and record what it has; KILL after 12 s
		kill -TERM -- -"$spid" 2>/dev/null
		n=0
		while kill -0 "$spid" 2>/dev/null && ((n < 48)); do sleep 0.25; n=$((n + 1)); done
		kill -KILL -- -"$spid" 2>/dev/null
		rc=124
	else
		wait "$spid"
		rc=$?
	fi
	sleep 0.5
fi
dmesg > "$LAB_OUT/dmesg.txt" 2>/dev/null
echo "$rc" > "$LAB_OUT/rc"
# how busy the vCPUs were (user+nice+system+irq+softirq of all ticks): tells whether
# scenarios could share the host's cores
read -r _ u n sy id io irq sirq _ < /proc/stat
busy=$(( (u + n + sy + irq + sirq) * 100 / (u + n + sy + id + io + irq + sirq) ))
console "scenario $LAB_SCENARIO finished rc=$rc after $(cut -d' ' -f1 /proc/uptime)s of guest uptime (vCPUs busy ${busy}% of $(nproc))"
echo "LAB-RESULT scenario=$LAB_SCENARIO rc=$rc" > /dev/console
sync
umount /lab-out 2>/dev/null
poweroff_now
