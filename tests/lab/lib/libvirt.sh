# lunwatch lab, guest side: a real libvirtd and real qemu domains (scenario
# containment). The other scenarios use the lightweight instance helper
# (instance.sh); here the offending instance is a real libvirt domain so that
# lunwatch's "pause the domain" action goes through real virsh -> libvirtd ->
# QMP "stop", and its I/O is real qemu's block layer (HMP qemu-io).
#
# libvirtd runs privileged with no systemd, no udev, no virtlogd: qemu.conf says
# user root, no security driver, no namespaces, no cgroup controllers, stdio to a
# file. Debian's libvirt looks up the user libvirt-qemu before reading qemu.conf,
# so the guest's (tmpfs overlay) /etc/passwd gets one.

LV_URI=qemu:///system
virsh_() { timeout -k 2 60 virsh -q -c "$LV_URI" "$@"; }

# libvirtd_start: starts libvirtd in the background; libvirtd_wait waits for its
# QEMU driver (capability probing runs qemu once: slow under TCG).
libvirtd_start() {
	grep -q '^libvirt-qemu:' /etc/passwd || echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >> /etc/passwd
	grep -q '^libvirt-qemu:' /etc/group || echo 'libvirt-qemu:x:64055:' >> /etc/group
	grep -q '^kvm:' /etc/group || echo 'kvm:x:64056:' >> /etc/group
	mkdir -p /etc/libvirt /var/log/libvirt/qemu /var/lib/libvirt/qemu /var/cache/libvirt/qemu /run/libvirt
	cat > /etc/libvirt/qemu.conf <<-'CONF'
	user = "root"
	group = "root"
	dynamic_ownership = 0
	remember_owner = 0
	security_driver = "none"
	namespaces = [ ]
	cgroup_controllers = [ ]
	stdio_handler = "file"
	CONF
	cat > /etc/libvirt/libvirtd.conf <<-'CONF'
	unix_sock_group = "root"
	auth_unix_rw = "none"
	log_outputs = "3:stderr"
	CONF
	libvirtd > "$LAB_OUT/libvirtd.log" 2>&1 &
	LV_PID=$!
	on_exit "kill $LV_PID 2>/dev/null"
	log "libvirtd started (pid $LV_PID)"
}
libvirtd_wait() {
	wait_for "libvirtd's QEMU driver" "${1:-120}" virsh_ domcapabilities --virttype qemu \
		|| fatal "libvirtd not ready: $(tail -3 "$LAB_OUT/libvirtd.log" | tr '\n' ' ')"
}

# vm_start KEY NOVA_NUM DEV SERIAL: a real qemu domain (TCG, no guest OS) with one
# virtio disk /dev/DEV whose <serial> is the Cinder volume id, as Nova defines it.
declare -A VM_LOG=()
vm_start() {
	local key=$1 num=$2 dev=$3 serial=$4 name uuid
	printf -v name 'instance-%08x' "$num"
	printf -v uuid '%08x-0000-4000-8000-%012x' "$num" "$num"
	cat > "$LAB_OUT/domain-$key.xml" <<-XML
	<domain type='qemu'>
	  <name>$name</name>
	  <uuid>$uuid</uuid>
	$(nova_metadata "$name" "$num")
	  <memory unit='MiB'>32</memory>
	  <vcpu>1</vcpu>
	  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
	  <devices>
	    <emulator>/usr/bin/qemu-system-x86_64</emulator>
	    <disk type='block' device='disk'>
	      <driver name='qemu' type='raw' cache='none' io='native'/>
	      <source dev='/dev/$dev'/>
	      <target dev='vda' bus='virtio'/>
	      <serial>$serial</serial>
	    </disk>
	  </devices>
	</domain>
	XML
	virsh_ create "$LAB_OUT/domain-$key.xml" > "$LAB_OUT/virsh-create-$key.log" 2>&1 \
		|| fatal "virsh create $name: $(tr '\n' ' ' < "$LAB_OUT/virsh-create-$key.log") $(tail -2 "/var/log/libvirt/qemu/$name.log" 2>/dev/null)"
	local pid
	read -r pid < "/run/libvirt/qemu/$name.pid"
	INST_PID[$key]=$pid
	INST_NAME[$key]=$name
	INST_UUID[$key]=$uuid
	INST_DEVS[$key]=$dev
	VM_LOG[$key]=/var/log/libvirt/qemu/$name.log
	on_exit "virsh_ destroy $name >/dev/null 2>&1; cp ${VM_LOG[$key]} $LAB_OUT/qemu-$name.log 2>/dev/null"
	echo "$key pid=$pid name=$name uuid=$uuid libvirt-domain devs=$dev" >> "$LAB_OUT/instances.txt"
	cp "/run/libvirt/qemu/$name.xml" "$LAB_OUT/libvirt-$name.xml" 2>/dev/null
	log "instance $key: real libvirt domain $name, qemu pid $pid, on $dev"
}

vm_state() { virsh_ domstate "${INST_NAME[$1]}" 2>/dev/null | head -1; }
vm_state_is() { [[ $(vm_state "$1") == "$2" ]]; }

# vm_read KEY: qemu itself reads the first 512 bytes of the domain's disk (HMP
# qemu-io on the disk's block node, the same block layer the guest's I/O uses);
# prints the marker it read, or "ERROR: ..." (qemu-io writes to qemu's stdout: the
# domain log).
vm_read() {
	local key=$1 node lines n
	node=$(virsh_ qemu-monitor-command "${INST_NAME[$key]}" --hmp 'info block' 2>/dev/null | sed -n 's/^\([^ :]*\): .*/\1/p' | head -1)
	[[ -n $node ]] || { echo "ERROR: no block node"; return 1; }
	n=$(wc -l < "${VM_LOG[$key]}")
	virsh_ qemu-monitor-command "${INST_NAME[$key]}" --hmp "qemu-io $node \"read -v 0 512\"" > /dev/null 2>&1
	local deadline=$((SECONDS + 10))
	while ((SECONDS < deadline)); do
		lines=$(tail -n +"$((n + 1))" "${VM_LOG[$key]}")
		if [[ $lines == *'read failed'* || $lines == *'error'* ]]; then
			echo "ERROR: $(grep -m1 -iE 'read failed|error' <<< "$lines")"
			return 1
		fi
		if [[ $lines == *'bytes at offset 0'* ]]; then
			# hex dump: "00000000:  56 4f 4c ...  VOLUME.A.MARKER." ('-' shows as '.')
			grep -m1 '^00000000:' <<< "$lines" | grep -oE 'VOLUME.[A-Z].MARKER' | tr . -
			return 0
		fi
		sleep 0.2
	done
	echo "ERROR: qemu-io printed nothing in 10 s"
	return 1
}
