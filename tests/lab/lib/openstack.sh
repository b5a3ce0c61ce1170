# shellcheck shell=bash
# lunwatch lab, guest side of the real-OpenStack scenarios (openstack-*): the NIC to
# the host's control plane (QEMU user networking: the host's 127.0.0.1 is 10.0.2.2),
# the array + os-brick agent (tests/lab/openstack/guest-agent.py), real systemd-udevd
# and multipathd, and the Cinder API calls of Nova's part (curl, osapi.sh).

OS_DIR=$LAB_REPO/tests/lab/openstack
OS_RUN=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^lab\.os_run=//p')
export OS_HOST_ADDR=10.0.2.2 OS_TMP=/run/lab/osapi
mkdir -p "$OS_TMP"

# os_net_up: virtio-net, 10.0.2.15/24, default route via QEMU's 10.0.2.2; waits for Keystone
os_net_up() {
	modprobe virtio_net || fatal "modprobe virtio_net"
	local dev
	wait_for "a NIC" 20 bash -c 'ls /sys/class/net | grep -qv "^lo$"' || fatal "no NIC (qemu -netdev user?)"
	dev=$(ls /sys/class/net | grep -v '^lo$' | head -1)
	ip link set "$dev" up && ip addr add 10.0.2.15/24 dev "$dev" && ip route add default via 10.0.2.2 \
		|| fatal "cannot configure $dev"
	[[ -r $OS_RUN/env ]] || fatal "no control-plane env at '$OS_RUN/env' (lab.os_run)"
	set -a
	# shellcheck source=/dev/null
	. "$OS_RUN/env"
	set +a
	. "$OS_DIR/osapi.sh"
	wait_for "Keystone at 10.0.2.2:$OS_KEYSTONE_PORT" 60 curl -sf "http://10.0.2.2:$OS_KEYSTONE_PORT/v3" \
		|| fatal "the host's Keystone is not reachable from the guest"
	log "NIC $dev 10.0.2.15/24; Keystone and Cinder of the host at 10.0.2.2"
}

# os_agent_start: the array + os-brick agent; the array answers at once, os-brick later
os_agent_start() {
	setsid /usr/bin/python3 "$OS_DIR/guest-agent.py" 18700 /run/lab/os > "$LAB_OUT/guest-agent.log" 2>&1 &
	OS_AGENT_PID=$!
	on_exit "kill $OS_AGENT_PID"
	wait_for "the array agent" 90 curl -sf http://127.0.0.1:18700/array/state \
		|| fatal "guest-agent did not start: $(tail -3 "$LAB_OUT/guest-agent.log")"
}
# os_brick_wait DEADLINE_S: os-brick imported (56-126 s under TCG)
os_brick_wait() {
	wait_for "os-brick imported" "$1" curl -sf http://127.0.0.1:18700/brick/ready \
		|| fatal "os-brick not imported after $1 s: $(curl -s http://127.0.0.1:18700/brick/ready)"
	log "os-brick ready: $(curl -s http://127.0.0.1:18700/brick/ready)"
}

# os_udev_multipathd: real systemd-udevd and multipathd (find_multipaths no: every
# path is multipathed, as os-brick's deployments configure it)
os_udev_multipathd() {
	/lib/systemd/systemd-udevd --daemon > /dev/null 2>&1 || fatal "systemd-udevd"
	udevadm trigger --action=add > /dev/null 2>&1
	udevadm settle -t 30 || true
	cat > /etc/multipath.conf <<-'EOF'
	defaults {
		user_friendly_names no
		find_multipaths no
	}
	EOF
	multipathd -d -s > "$LAB_OUT/multipathd.log" 2>&1 &
	OS_MPATHD_PID=$!
	on_exit "kill $OS_MPATHD_PID"
	wait_for "multipathd" 30 multipathd show config > /dev/null || fatal "multipathd did not start"
}

# brick CALL JSON: POST to the agent's os-brick; prints the answer, sets BRICK_CODE
# (call it in this shell, not in $(...): the code would stay in the subshell)
brick() {
	BRICK_CODE=$(curl -s -o "$OS_TMP/brick.json" -w '%{http_code}' --max-time 400 \
		-H 'Content-Type: application/json' --data-binary "$2" "http://127.0.0.1:18700/brick/$1")
	cat "$OS_TMP/brick.json"
}

# os_volume_create USER PROJECT PASSWORD NAME -> volume id (waits for available)
os_volume_create() {
	os_login "$1" "$2" "$3" || fatal "login $1"
	local id
	os_cinder POST /volumes "{\"volume\": {\"size\": 1, \"name\": \"$4\"}}" > /dev/null
	id=$(jq -r '.volume.id // empty' "$OS_TMP/cinder.json")
	[[ $OS_CODE == 202 && -n $id ]] || fatal "volume create $4: HTTP $OS_CODE $(cat "$OS_TMP/cinder.json")"
	os_wait_volume "$id" available 120 || fatal "volume $4 never available"
	echo "$id"
}
