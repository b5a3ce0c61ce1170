# lunwatch lab, guest side: LIO target (configfs), open-iscsi initiator, dm-multipath
# without multipathd (dmsetup + a small path checker), and network faults (nft).

CFG=/sys/kernel/config/target
VOL_DIR=/run/lab/vols
IQN_INITIATOR=iqn.2004-10.com.ubuntu:01:lunwatchlab
mkdir -p "$VOL_DIR"

# load_modules: everything the storage stack needs, loaded before lunwatch starts
# (there is no udev and no module autoload for most of these paths).
STORAGE_MODULES=(scsi_mod sd_mod sg scsi_transport_iscsi libiscsi libiscsi_tcp iscsi_tcp
	dm_mod dm_multipath dm_service_time dm_round_robin dm_queue_length
	target_core_mod target_core_file target_core_iblock iscsi_target_mod loop
	nf_tables nft_reject nft_reject_inet)
load_modules() {
	local m
	for m in "${STORAGE_MODULES[@]}" "$@"; do
		modprobe "$m" 2>/dev/null || log "warning: modprobe $m failed"
	done
	[[ -d $CFG ]] || fatal "configfs target tree missing ($CFG)"
}

# ---------------------------------------------------------------- LIO target
# target_create IQN PORTAL_IP...: one iSCSI target, TPG 1, demo-mode ACLs, portals on :3260.
target_create() {
	local iqn=$1 tpg=$CFG/iscsi/$1/tpgt_1 ip
	shift
	mkdir -p "$tpg" || fatal "mkdir $tpg"
	for ip in "$@"; do
		mkdir "$tpg/np/$ip:3260" || fatal "portal $ip:3260"
	done
	echo 1 > "$tpg/attrib/generate_node_acls"
	echo 0 > "$tpg/attrib/authentication"
	echo 0 > "$tpg/attrib/demo_mode_write_protect"
	echo 1 > "$tpg/attrib/cache_dynamic_acls"
	echo 1 > "$tpg/enable" || fatal "enable $iqn"
}

# volume_create NAME SERIAL SIZE_MB MARKER: fileio backstore on a tmpfs file whose
# sector 0 holds MARKER; SERIAL (the Cinder volume id) is the unit serial (VPD 0x80,
# and LIO derives the NAA of VPD 0x83 from it).
declare -A VOL_SERIAL=() VOL_MARKER=() VOL_FILE=() VOL_BS=()
volume_create() {
	local name=$1 serial=$2 mb=$3 marker=$4 file=${5:-$VOL_DIR/$1.img}
	local bs=$CFG/core/fileio_0/$name
	if [[ $file == "$VOL_DIR"/* ]]; then
		truncate -s "${mb}M" "$file"
		printf '%s\nvolume=%s serial=%s\n' "$marker" "$name" "$serial" | dd of="$file" conv=notrunc status=none
	fi
	local bytes=$((mb * 1024 * 1024))
	mkdir -p "$bs" || fatal "mkdir $bs"
	echo "fd_dev_name=$file,fd_dev_size=$bytes" > "$bs/control" || fatal "control $name"
	echo "$serial" > "$bs/wwn/vpd_unit_serial" || fatal "serial $name"
	echo 1 > "$bs/enable" || fatal "enable backstore $name"
	VOL_SERIAL[$name]=$serial
	VOL_MARKER[$name]=$marker
	VOL_FILE[$name]=$file
	VOL_BS[$name]=$bs
}

# volume_create_iblock NAME SERIAL SIZE_MB MARKER: iblock backstore on a loop device
# over a tmpfs file (so the volume can be resized online: grow the file, losetup -c).
declare -A VOL_LOOP=()
volume_create_iblock() {
	local name=$1 serial=$2 mb=$3 marker=$4 file=$VOL_DIR/$1.img
	truncate -s "${mb}M" "$file"
	printf '%s\nvolume=%s serial=%s\n' "$marker" "$name" "$serial" | dd of="$file" conv=notrunc status=none
	local loop
	loop=$(losetup -f --show "$file") || fatal "losetup $file"
	local bs=$CFG/core/iblock_0/$name
	mkdir -p "$bs" || fatal "mkdir $bs"
	echo "udev_path=$loop" > "$bs/control" || fatal "control $name"
	echo "$serial" > "$bs/wwn/vpd_unit_serial" || fatal "serial $name"
	echo 1 > "$bs/enable" || fatal "enable backstore $name"
	VOL_SERIAL[$name]=$serial
	VOL_MARKER[$name]=$marker
	VOL_FILE[$name]=$file
	VOL_LOOP[$name]=$loop
	VOL_BS[$name]=$bs
}
# volume_grow NAME SIZE_MB: the array extends the volume
volume_grow() {
	truncate -s "${2}M" "${VOL_FILE[$1]}" && losetup -c "${VOL_LOOP[$1]}"
}

# lun_map IQN LUN VOLUME / lun_unmap IQN LUN: what the array does on
# initialize_connection / terminate_connection.
lun_map() {
	local lun=$CFG/iscsi/$1/tpgt_1/lun/lun_$2
	mkdir "$lun" || fatal "mkdir $lun"
	ln -s "${VOL_BS[$3]}" "$lun/$3" || fatal "map $3 at LUN $2"
}
lun_unmap() {
	local lun=$CFG/iscsi/$1/tpgt_1/lun/lun_$2
	rm -f "$lun"/* 2>/dev/null
	rmdir "$lun" || fatal "rmdir $lun"
}

# ---------------------------------------------------------------- initiator
iscsid_start() {
	mkdir -p /etc/iscsi /run/lock/iscsi /var/lib/iscsi
	echo "InitiatorName=$IQN_INITIATOR" > /etc/iscsi/initiatorname.iscsi
	rm -rf /etc/iscsi/nodes /etc/iscsi/send_targets
	# Defaults for every node record discovery creates (overlay copy of the host's file):
	# os-brick's manual scan and short recovery timeouts, so a dropped portal fails its
	# paths in seconds, not minutes.
	cat >> /etc/iscsi/iscsid.conf <<-'CONF'
	node.session.scan = manual
	node.session.timeo.replacement_timeout = 5
	node.conn[0].timeo.noop_out_interval = 2
	node.conn[0].timeo.noop_out_timeout = 3
	node.conn[0].timeo.login_timeout = 5
	node.conn[0].timeo.logout_timeout = 5
	node.session.initial_login_retry_max = 2
	node.startup = manual
	CONF
	# own session: iscsid signals its whole process group when it shuts down
	setsid iscsid -f > "$LAB_OUT/iscsid.log" 2>&1 &
	ISCSID_PID=$!
	on_exit "kill $ISCSID_PID"
	# iscsiadm exits 21 (no sessions) once iscsid answers; 20 while it cannot connect.
	wait_for "iscsid up" 30 bash -c 'iscsiadm -m session >/dev/null 2>&1; [[ $? == 0 || $? == 21 ]]' \
		|| fatal "iscsid did not start"
}

# iscsi_login IQN PORTAL_IP: discovery + login (node defaults from iscsid_start)
iscsi_login() {
	local iqn=$1 ip=$2
	iscsiadm -m discovery -t st -p "$ip:3260" > /dev/null || fatal "discovery on $ip"
	iscsiadm -m node -T "$iqn" -p "$ip:3260" --login > /dev/null || fatal "login $iqn $ip"
	wait_for "session to $ip" 20 iscsi_host "$iqn" "$ip" || fatal "no session for $iqn at $ip"
}
iscsi_logout() { iscsiadm -m node -T "$1" -p "$2:3260" --logout; }

# iscsi_session IQN IP -> sessionN ; iscsi_host IQN IP -> host number
iscsi_session() {
	local s tn addr n
	for s in /sys/class/iscsi_session/session*; do
		[[ -e $s ]] || continue
		tn=; addr=
		read -r tn < "$s/targetname" 2>/dev/null
		[[ $tn == "$1" ]] || continue
		n=${s##*session}
		read -r addr < "/sys/class/iscsi_connection/connection$n:0/persistent_address" 2>/dev/null
		[[ $addr == "$2" ]] || continue
		echo "session$n"
		return 0
	done
	return 1
}
iscsi_host() {
	local s p
	s=$(iscsi_session "$1" "$2") || return 1
	p=$(realpath "/sys/class/iscsi_session/$s/device")
	p=${p%/*}
	[[ ${p##*/} == host* ]] || return 1
	echo "${p##*/host}"
}
session_state() { cat "/sys/class/iscsi_session/$1/state" 2>/dev/null; }

# scan_lun HOST LUN: os-brick's scan (wildcard channel and target).
scan_lun() { echo "- - $2" > "/sys/class/scsi_host/host$1/scan"; }
# sd_of HOST LUN -> sdX (fails while absent)
sd_of() {
	local b
	b=$(ls -d /sys/class/scsi_device/"$1":*:*:"$2"/device/block/* 2>/dev/null | head -1) || return 1
	[[ -n $b ]] || return 1
	echo "${b##*/}"
}
hctl_of() { local d; d=$(realpath "/sys/block/$1/device"); echo "${d##*/}"; }
majmin() { local m; read -r m < "/sys/block/$1/dev" && echo "$m"; }
# initiator_up: iscsid, the nft table for network faults, the path checker
initiator_up() { iscsid_start; net_setup; mpathd_start; }
# attach_mpath IQN LUN P1 P2: os-brick's connect_volume of a multipath volume: log in
# to both portals, scan the LUN, build the map as multipathd names it. Sets H1 H2
# (SCSI hosts), S1 S2 (sessions), SD1 SD2, HCTL1 HCTL2, MM1 MM2, NAA, WWID (map
# name) and DM (dm-N).
attach_mpath() {
	local iqn=$1 lun=$2 p1=$3 p2=$4
	iscsi_login "$iqn" "$p1"
	iscsi_login "$iqn" "$p2"
	H1=$(iscsi_host "$iqn" "$p1") H2=$(iscsi_host "$iqn" "$p2")
	S1=$(iscsi_session "$iqn" "$p1") S2=$(iscsi_session "$iqn" "$p2")
	read -r SD1 SD2 <<< "$(attach_paths "$iqn" "$lun" "$p1" "$p2")"
	HCTL1=$(hctl_of "$SD1") HCTL2=$(hctl_of "$SD2")
	MM1=$(majmin "$SD1") MM2=$(majmin "$SD2")
	NAA=$(vpd_naa "$SD1")
	WWID=$(mpath_name "$NAA")
	DM=$(mpath_create "$WWID" "$SD1" "$SD2")
}
# attach_paths IQN LUN IP... -> prints sdX for each portal (scans, waits for the disks)
attach_paths() {
	local iqn=$1 lun=$2 ip h sd out=()
	shift 2
	for ip in "$@"; do
		h=$(iscsi_host "$iqn" "$ip") || fatal "no host for $iqn $ip"
		scan_lun "$h" "$lun"
		wait_for "sd for host$h LUN $lun" 30 sd_of "$h" "$lun" || fatal "LUN $lun never appeared on host$h"
		sd=$(sd_of "$h" "$lun")
		wait_for "$sd has a size" 20 bash -c "[[ \$(cat /sys/block/$sd/size) != 0 ]]" || true
		out+=("$sd")
	done
	echo "${out[@]}"
}
# sd_delete sdX: os-brick's remove_scsi_device (flush buffers, then delete)
sd_delete() { blockdev --flushbufs "/dev/$1" 2>/dev/null; echo 1 > "/sys/block/$1/device/delete"; }
# sd_rescan sdX: os-brick's extend_volume step (re-reads capacity)
sd_rescan() { echo 1 > "/sys/block/$1/device/rescan"; }
# mpath_resize NAME: multipathd's "resize map" (reload the table with the paths' new size)
mpath_resize() {
	local name=$1 table sd sectors
	table=$(dmsetup table "$name") || return 1
	sd=$(basename "$(realpath /sys/dev/block/$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/) {print $i; exit}}' <<< "$table"))")
	sectors=$(cat "/sys/block/$sd/size")
	dmsetup reload "$name" --table "$(awk -v s="$sectors" '{$2 = s; print}' <<< "$table")" && dmsetup resume "$name"
}

# ---------------------------------------------------------------- identity
# sysfs_wwid sdX: the cache filled at probe time (what os-brick/multipathd trust)
# lun_not_supported SD: the LUN behind SD answers TEST UNIT READY with ILLEGAL REQUEST,
# ASC 0x25 (LOGICAL UNIT NOT SUPPORTED), as a target does once the LUN is unmapped
lun_not_supported() {
	local out
	out=$(timeout -k 1 4 sg_turs -v "/dev/$1" 2>&1)  # sg_turs fails on the sense: no pipe (pipefail)
	[[ ${out,,} == *'logical unit not supported'* ]]
}
sysfs_wwid() { cat "/sys/block/$1/device/wwid" 2>/dev/null; }
# vpd_naa sdX: fresh INQUIRY VPD 0x83 through SG_IO, NAA designator as naa.<hex>
vpd_naa() {
	sg_vpd -p di "/dev/$1" 2>/dev/null | awk '/NAA/{getline; gsub(/^[ \t]+|\]$/,""); sub(/^0x/,""); sub(/^\[/, ""); print "naa." $1; exit}'
}
# vpd_serial sdX: fresh VPD 0x80 (unit serial) through SG_IO
vpd_serial() { sg_vpd -p sn "/dev/$1" 2>/dev/null | sed -n 's/^ *Unit serial number: *//p'; }
sysfs_serial() { tail -c +5 "/sys/block/$1/device/vpd_pg80" 2>/dev/null | tr -d '\0 '; }
# mpath_wwid_of_naa naa.X -> 3X (scsi_id style, what multipathd uses as map name/uuid)
mpath_name() { echo "3${1#naa.}"; }

# ---------------------------------------------------------------- dm-multipath
# mpath_create NAME sdX... -> prints dm-N. Table as multipathd builds it for LIO
# (service-time, one priority group, no queue_if_no_path: failed I/O is retried on the
# other paths and only reaches the process when all are gone).
mpath_create() {
	local name=$1 sd sectors table nr=0 paths=""
	shift
	sectors=$(cat "/sys/block/$1/size")
	for sd in "$@"; do
		paths+=" $(majmin "$sd") 1"
		nr=$((nr + 1))
	done
	table="0 $sectors multipath ${MPATH_FEATURES:-0} 0 1 1 service-time 0 $nr 1$paths"
	dmsetup create "$name" --uuid "mpath-$name" --table "$table" || fatal "dmsetup create $name"
	dm_of "$name"
}
dm_of() {
	local d
	for d in /sys/block/dm-*; do
		[[ $(cat "$d/dm/name" 2>/dev/null) == "$1" ]] && { echo "${d##*/}"; return 0; }
	done
	return 1
}
# mpath_flush NAME: os-brick's `multipath -f` (fails while the map is open)
mpath_flush() { dmsetup remove "$1"; }
# mpath_paths NAME: "maj:min A|F" per path, from the kernel's status line
mpath_paths() {
	dmsetup status "$1" 2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/ && ($(i+1) == "A" || $(i+1) == "F")) print $i, $(i+1)}'
}
mpath_active_count() { mpath_paths "$1" | awk '$2 == "A"' | wc -l; }
# mpath_active_is MAP N: exactly N active paths (a predicate for wait_for)
mpath_active_is() { [[ $(mpath_active_count "$1") == "$2" ]]; }
mpath_any_active() { (($(mpath_active_count "$1") > 0)); }
mpath_path_state() { mpath_paths "$1" | awk -v p="$(majmin "$2")" '$1 == p {print $2}'; }
# os-brick's holder lookup: the dm map holding sdX
holder_of() { ls "/sys/block/$1/holders" 2>/dev/null | head -1; }

# mpathd_start: a tiny stand-in for multipathd's path checker (tur), run every second:
# a failed path whose TEST UNIT READY succeeds is reinstated; an active path whose TUR
# fails is failed. Like multipathd with recheck_wwid=no (the default), it never
# re-reads the LUN's identity. Actions go to $LAB_OUT/mpathd.log.
mpathd_start() {
	(
		exec > "$LAB_OUT/mpathd.log" 2>&1
		while :; do
			for map in $(dmsetup ls --target multipath 2>/dev/null | awk '{print $1}'); do
				mpath_paths "$map" | while read -r mm st; do
					dev=$(realpath "/sys/dev/block/$mm")
					dev=${dev##*/}
					[[ -b /dev/$dev ]] || continue
					if timeout -k 1 4 sg_turs "/dev/$dev" >/dev/null 2>&1; then
						if [[ $st == F ]]; then
							dmsetup message "$map" 0 reinstate_path "$mm" \
								&& echo "$(date +%T.%N | cut -c1-12) $map: reinstated $dev ($mm): tur ok"
						fi
					elif [[ $st == A ]]; then
						dmsetup message "$map" 0 fail_path "$mm" \
							&& echo "$(date +%T.%N | cut -c1-12) $map: failed $dev ($mm): tur failed"
					fi
				done
			done
			sleep 1
		done
	) &
	MPATHD_PID=$!
	on_exit "kill $MPATHD_PID"
}

# ---------------------------------------------------------------- network faults
net_setup() {
	nft add table inet lab && nft add chain inet lab out '{ type filter hook output priority 0; policy accept; }' \
		|| fatal "nft setup"
}
# net_drop IP: drop iSCSI traffic to/from portal IP:3260 (both directions)
net_drop() {
	nft add rule inet lab out ip daddr "$1" tcp dport 3260 drop comment "\"drop-$1\""
	nft add rule inet lab out ip saddr "$1" tcp sport 3260 drop comment "\"drop-$1\""
}
net_restore() {
	local h
	for h in $(nft -a list chain inet lab out | awk -v c="\"drop-$1\"" '$0 ~ c {print $NF}'); do
		nft delete rule inet lab out handle "$h"
	done
}

# shared_target_volA_attached: the opening most leak scenarios share: the shared
# target on portals $P1/$P2 of $IQN, volA ($SERIAL_A) and volB ($SERIAL_B) with their
# markers, the initiator up, volA mapped at LUN 1 and attached over both paths with
# dm-multipath; NAA_A and WWID_A name volA's identity.
shared_target_volA_attached() {
	target_create "$IQN" "$P1" "$P2"
	volume_create volA "$SERIAL_A" 64 VOLUME-A-MARKER
	volume_create volB "$SERIAL_B" 64 VOLUME-B-MARKER
	initiator_up
	lun_map "$IQN" 1 volA
	attach_mpath "$IQN" 1 "$P1" "$P2"
	NAA_A=$NAA WWID_A=$WWID
}
