#!/bin/bash
# Scenario 5 "scale": 256 LUNs (4 LIO targets x 64 LUNs, fileio volumes with their own
# marker and unit serial), one portal, 4 iSCSI sessions, a wildcard host scan each;
# 32 instances (fake qemu processes, own libvirt-like cgroups) with 8 volumes each,
# reading them with psync, libaio and io_uring.
#   GROUND TRUTH: all 256 sd devices appear with the identity of their volume (sysfs
#   wwid == SG_IO for a sample), every instance reads exactly its 8 volumes' markers.
#   LUNWATCH: a scsi_bind for each of the 256 sd devices at the right H:C:T:L, a flow
#   for each of the 256 (instance pid, sd) pairs, LC_SCSI_DEVICE_ADD for each, no drops.
. "$(dirname "$0")/../lib/common.sh"

NT=${LAB_SCALE_TARGETS:-4} NL=${LAB_SCALE_LUNS:-64} PER=${LAB_SCALE_PER_INSTANCE:-8}
NV=$((NT * NL))
NI=$((NV / PER))
P1=127.0.0.1
iqn_of() { echo "iqn.2010-10.org.openstack:scale-t$1"; }

step "load modules, start lunwatch"
load_modules
lw_start

step "$NT targets x $NL LUNs = $NV volumes"
t0=$SECONDS
files=()
for ((v = 0; v < NV; v++)); do
	f=$VOL_DIR/s$v.img
	printf 'VOLUME-S%03d-MARKER\nvolume=s%d\n' "$v" "$v" > "$f"
	files+=("$f")
done
truncate -s 4M "${files[@]}"
log "backing files in $((SECONDS - t0))s"
dirs=()
for ((v = 0; v < NV; v++)); do dirs+=("$CFG/core/fileio_0/s$v"); done
mkdir -p "${dirs[@]}" || fatal "mkdir backstores"
for ((v = 0; v < NV; v++)); do
	bs=$CFG/core/fileio_0/s$v
	echo "fd_dev_name=$VOL_DIR/s$v.img,fd_dev_size=4194304" > "$bs/control"
	printf '%08x-0000-4000-8000-%012d\n' $((0xe5000000 + v)) "$v" > "$bs/wwn/vpd_unit_serial"
	echo 1 > "$bs/enable" || fatal "enable s$v"
	VOL_BS[s$v]=$bs
done
log "backstores enabled in $((SECONDS - t0))s"
for ((t = 0; t < NT; t++)); do
	target_create "$(iqn_of $t)" "$P1"
	luns=()
	for ((l = 0; l < NL; l++)); do luns+=("$CFG/iscsi/$(iqn_of $t)/tpgt_1/lun/lun_$l"); done
	mkdir "${luns[@]}" || fatal "mkdir luns of target $t"
	for ((l = 0; l < NL; l++)); do
		v=$((t * NL + l))
		ln -s "${VOL_BS[s$v]}" "${luns[$l]}/s$v" || fatal "map s$v"
	done
done
log "target side ready in $((SECONDS - t0))s"

step "login to $NT targets, wildcard scan, wait for $NV disks"
iscsid_start
t0=$SECONDS
for ((t = 0; t < NT; t++)); do
	iscsi_login "$(iqn_of $t)" "$P1"
	HOST[$t]=$(iscsi_host "$(iqn_of $t)" "$P1")
	SESS[$t]=$(iscsi_session "$(iqn_of $t)" "$P1")
done
scans=()
for ((t = 0; t < NT; t++)); do
	echo "- - -" > "/sys/class/scsi_host/host${HOST[$t]}/scan" &
	scans+=($!)
done
wait "${scans[@]}"
count_disks() { ls -d /sys/class/scsi_device/*/device/block/sd* 2>/dev/null | wc -l; }
if wait_for "$NV sd devices" 300 bash -c "(( \$(ls -d /sys/class/scsi_device/*/device/block/sd* 2>/dev/null | wc -l) >= $NV ))"; then
	gt_pass "$NV sd devices present after $((SECONDS - t0))s"
else
	gt_fail "only $(count_disks) of $NV sd devices after $((SECONDS - t0))s"
fi
# volume v -> sd, hctl, maj:min (builtins only: 256 forks would cost ~20 s under TCG)
declare -A VSD=() VHCTL=() VMM=() HOST_T=()
for ((t = 0; t < NT; t++)); do HOST_T[${HOST[$t]}]=$t; done
for p in /sys/class/scsi_device/*/device/block/*; do
	[[ -e $p ]] || continue
	rest=${p#/sys/class/scsi_device/}
	hctl=${rest%%/*} sd=${p##*/}
	t=${HOST_T[${hctl%%:*}]:-}
	[[ -n $t ]] || continue
	v=$((t * NL + ${hctl##*:}))
	read -r mm < "/sys/block/$sd/dev"
	VSD[$v]=$sd VHCTL[$v]=$hctl VMM[$v]=$mm
done
: > "$LAB_OUT/volumes.txt"
missing=0
for ((v = 0; v < NV; v++)); do
	if [[ -z ${VSD[$v]:-} ]]; then missing=$((missing + 1)); continue; fi
	echo "s$v ${VSD[$v]} ${VHCTL[$v]} ${VMM[$v]}" >> "$LAB_OUT/volumes.txt"
done
((missing == 0)) && gt_pass "every volume has its sd device" || gt_fail "$missing volumes without an sd device"
bad=0
for v in 0 $((NL - 1)) $((NL + 7)) $((NV / 2 + 3)) $((NV - 1)); do
	sd=${VSD[$v]:-}
	[[ -n $sd ]] || continue
	want=$(printf '%08x-0000-4000-8000-%012d' $((0xe5000000 + v)) "$v")
	[[ $(vpd_serial "$sd") == "$want" && $(sysfs_wwid "$sd") == "$(vpd_naa "$sd")" ]] || { bad=$((bad + 1)); log "identity mismatch on $sd (s$v)"; }
done
((bad == 0)) && gt_pass "sampled identities (SG_IO serial, sysfs wwid == SG_IO) match their volume" || gt_fail "$bad sampled identities wrong"

step "$NI instances x $PER volumes, I/O with psync, libaio, io_uring"
t0=$SECONDS
# Cinder's view: one attachment per volume, to the instance that gets it (libvirt XML
# for each instance is written by instance_start with every disk's serial)
CINDER_BATCH=1
for ((v = 0; v < NI * PER; v++)); do
	printf -v ser '%08x-0000-4000-8000-%012d' $((0xe5000000 + v)) "$v"
	cinder_attach "s$v" $((0x100 + v / PER)) "$ser" "$(iqn_of $((v / NL)))" $((v % NL)) "$P1"
done
CINDER_BATCH=
cinder_write
log "Cinder: $((NI * PER)) attachments written in $((SECONDS - t0))s"
: > "$LAB_OUT/expected-flows.txt"
: > "$LAB_OUT/expected-markers.txt"
for ((i = 0; i < NI; i++)); do
	devs=() serials=()
	for ((k = 0; k < PER; k++)); do
		v=$((i * PER + k))
		[[ -n ${VSD[$v]:-} ]] || continue
		devs+=("${VSD[$v]}")
		printf -v ser '%08x-0000-4000-8000-%012d' $((0xe5000000 + v)) "$v"
		serials+=("$ser")
	done
	((${#devs[@]})) || continue
	INST_SERIALS="${serials[*]}" INST_NOWAIT=1 instance_start "i$i" $((0x100 + i)) "${devs[@]}" -- -lab-interval-ms 1000 -lab-write 0 -lab-heartbeat-s 10 > /dev/null
	for ((k = 0; k < PER; k++)); do
		v=$((i * PER + k))
		[[ -n ${VSD[$v]:-} ]] || continue
		echo "${INST_PID[i$i]} ${VSD[$v]}" >> "$LAB_OUT/expected-flows.txt"
		printf 'i%d %s VOLUME-S%03d-MARKER\n' "$i" "${VSD[$v]}" "$v" >> "$LAB_OUT/expected-markers.txt"
	done
done
log "$NI instances started in $((SECONDS - t0))s"
all_read() { # every instance log shows one ok line per drive (one grep for all logs)
	local line n=0
	while read -r line; do
		((${line##*:} >= PER)) && n=$((n + 1))
	done < <(grep -c 'op=read ok' "$LAB_OUT"/instance-i*.log)
	((n >= NI))
}
wait_for "every instance read all its volumes" 240 all_read \
	&& gt_pass "all $NI instances read all their volumes (in $((SECONDS - t0))s)" || gt_fail "some instances did not read all volumes"
sleep 3 # one more round so each drive sees the other engines too
for ((i = 0; i < NI; i++)); do kill -TERM "${INST_PID[i$i]}" 2>/dev/null; INST_STOPPED[i$i]=1; done
for ((i = 0; i < NI; i++)); do wait "${INST_PID[i$i]}" 2>/dev/null; done
# what each instance read from each drive: "iN sdX MARKER", one awk for all logs
awk 'match($0, /drive=\/dev\/[^ ]+ engine=[a-z_]+ op=read ok marker=[^ ]+/) {
	split(substr($0, RSTART, RLENGTH), f, " ")
	inst = FILENAME; sub(/.*instance-/, "", inst); sub(/\.log$/, "", inst)
	d = f[1]; sub("drive=/dev/", "", d); m = f[5]; sub("marker=", "", m)
	print inst, d, m
}' "$LAB_OUT"/instance-i*.log | sort -u > "$LAB_OUT/read-markers.txt"
sort -u "$LAB_OUT/expected-markers.txt" > "$LAB_OUT/expected-markers.sorted"
wrong=$(comm -3 "$LAB_OUT/read-markers.txt" "$LAB_OUT/expected-markers.sorted" | wc -l)
if ((wrong == 0)); then
	gt_pass "every instance read exactly its own volumes' markers ($(wc -l < "$LAB_OUT/read-markers.txt") (instance, volume) pairs)"
else
	gt_fail "$wrong (instance, drive, marker) differences, e.g. $(comm -3 "$LAB_OUT/read-markers.txt" "$LAB_OUT/expected-markers.sorted" | head -3 | tr '\n\t' '; ')"
fi
errs=$(grep -h '^total' "$LAB_OUT"/instance-i*.log | grep -vc ' read_errors=0 ')
((errs == 0)) && gt_pass "no read errors in any instance" || gt_fail "$errs drives with read errors"
collect_state scale

# lunwatch: all bindings, all flows (one jq pass each)
scale_binds() {
	local got missing
	got=$(lw_q '.scsi_bind' | jq -r '.scsi_bind | "\(.dev) \(.addr.hctl // .hctl)"' | sort -u)
	missing=$(awk '{print $4, $3}' "$LAB_OUT/volumes.txt" | sort | comm -23 - <(echo "$got" | sort))
	if [[ -z $missing ]]; then
		lw_record PASS "scsi_bind for all $(wc -l < "$LAB_OUT/volumes.txt") sd devices at their H:C:T:L"
	else
		lw_record FAIL "scsi_bind missing for $(echo "$missing" | wc -l) of $(wc -l < "$LAB_OUT/volumes.txt") sd devices (first: $(echo "$missing" | head -5 | tr '\n' ','))"
	fi
}
scale_flows() {
	local got missing
	got=$(lw_q '.flow' | jq -r '.flow | "\(.pid) \(.dev_name)"' | sort -u)
	missing=$(sort -u "$LAB_OUT/expected-flows.txt" | comm -23 - <(echo "$got"))
	if [[ -z $missing ]]; then
		lw_record PASS "flow for all $(wc -l < "$LAB_OUT/expected-flows.txt") (instance pid, sd) pairs"
	else
		lw_record FAIL "flow missing for $(echo "$missing" | wc -l) of $(wc -l < "$LAB_OUT/expected-flows.txt") (pid, sd) pairs (first: $(echo "$missing" | head -5 | tr '\n' ','))"
	fi
	local foreign
	foreign=$(echo "$got" | awk 'NR==FNR {own[$1]=1; exp[$1" "$2]=1; next} ($1 in own) && !(($1" "$2) in exp)' "$LAB_OUT/expected-flows.txt" - | head -5)
	[[ -z $foreign ]] && lw_record PASS "no instance flow on a device it does not own" \
		|| lw_record FAIL "instance flows on devices they do not own: $foreign"
}
scale_drops() {
	local f=$LAB_OUT/lunwatch-stats.json
	if [[ ! -s $f ]]; then lw_record FAIL "no --stats-file output to check drops"; return; fi
	local d
	d=$(jq -c '.drops // .dropped // empty' "$f" 2>/dev/null)
	log "lunwatch drops: ${d:-?}"
	if jq -e '[(.drops // {}) | to_entries[] | select(.key != "error_ratelimited") | .value] | add // 0 | . == 0' "$f" > /dev/null 2>&1; then
		lw_record PASS "no events dropped ($d)"
	else
		lw_record FAIL "events dropped: $d"
	fi
}
lw_expect scale_binds
lw_expect scale_flows
lw_expect count_distinct "LC_SCSI_DEVICE_ADD for distinct H:C:T:L" '.lifecycle and .lifecycle.kind == "LC_SCSI_DEVICE_ADD"' '.lifecycle.addr.hctl' "$NV"
lw_expect count_distinct "LC_SCSI_HOST_SCAN on distinct hosts" '.lifecycle and .lifecycle.kind == "LC_SCSI_HOST_SCAN"' '.lifecycle.addr.host' "$NT"
lw_expect scale_drops
lw_expect no_alert_above_warning
lab_finish
