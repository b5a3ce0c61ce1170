#!/bin/bash
# Scenario "openstack-intentional": CVE-2023-2088 through real OpenStack parts.
# Real: Keystone, cinder-api/scheduler/volume (Debian 12's Zed, fixed) on the host with
# the lab's shared-target driver (tests/lab/openstack/lunwatch_lab), the guest's LIO
# target driven by that driver, os-brick 6.1.0 (imported once, kept running), iscsid,
# systemd-udevd, multipathd. Simulated: Nova (fake-nova.py on the host answers what
# Cinder asks; this script does Nova's calls) and the instances (tests/lab/helper).
#   1. tenant A's volA and tenant B's volB, created through Cinder (user-a, user-b).
#   2. Nova's attach of volA to instance A: attachment create (connector from os-brick),
#      os-brick connect_volume with the connection_info Cinder returned, complete.
#   3. GROUND TRUTH: user-a's attachment delete -> 409 ConflictNovaUsingAttachment.
#   4. the same delete with Nova's service token -> 200 while A still holds the map:
#      the driver unmaps the LUN; nobody disconnects the host side.
#   5. Nova's attach of volB to instance B: the driver hands out the lowest free LUN
#      (A's); real os-brick returns A's stale dm map for it.
#   6. GROUND TRUTH: A reads VOLUME-B-MARKER (the leak).
#   lunwatch ([cinder]: Keystone auth, catalog endpoint, microversion 3.27, all_tenants):
#   IDENTITY_CHANGED and CROSS_INSTANCE_ACCESS naming both instances and volumes.
#   CHAP auth_password of the real admin listing reaches no file lunwatch wrote.
. "$(dirname "$0")/../lib/common.sh"
. "$LAB_LIB/openstack.sh"

NUM_A=10 NUM_B=11
printf -v UUID_A '%08x-0000-4000-8000-%012x' $NUM_A $NUM_A
printf -v UUID_B '%08x-0000-4000-8000-%012x' $NUM_B $NUM_B

step "network to the host's control plane; the array + os-brick agent (os-brick imports in the background)"
load_modules virtio_net
os_net_up
os_agent_start
os_udev_multipathd
iscsid_start

step "lunwatch with a real [cinder] section (Keystone at 10.0.2.2, catalog endpoint)"
mkdir -p /run/lab/lw
cat > /run/lab/lw/lunwatch.conf <<-EOF
[cinder]
auth_url = $OS_AUTH_URL_GUEST
username = lunwatch
password = $OS_PASSWORD_LUNWATCH
user_domain_name = Default
project_name = service
project_domain_name = Default
interface = public
region_name = RegionOne
timeout = 30
EOF
chmod 600 /run/lab/lw/lunwatch.conf
LW_CINDER_API=1 LW_CONFIG=/run/lab/lw/lunwatch.conf lw_start

step "tenants create their volumes through Cinder (lab driver -> the guest's array)"
VOL_A=$(os_volume_create user-a tenant-a "$OS_PASSWORD_USER_A" volA) || fatal "volA"
VOL_B=$(os_volume_create user-b tenant-b "$OS_PASSWORD_USER_B" volB) || fatal "volB"
array_state() { curl -s http://127.0.0.1:18700/array/state; }
FILE_A=$(array_state | jq -r --arg v "$VOL_A" '.volumes[$v].file')
FILE_B=$(array_state | jq -r --arg v "$VOL_B" '.volumes[$v].file')
SER_A=$(array_state | jq -r --arg v "$VOL_A" '.volumes[$v].serial')
SER_B=$(array_state | jq -r --arg v "$VOL_B" '.volumes[$v].serial')
[[ -f $FILE_A && -f $FILE_B ]] || fatal "the array has no backing files for $VOL_A $VOL_B"
printf 'VOLUME-A-MARKER\n' | dd of="$FILE_A" conv=notrunc status=none
printf 'VOLUME-B-MARKER\n' | dd of="$FILE_B" conv=notrunc status=none
log "volA $VOL_A (serial $SER_A), volB $VOL_B (serial $SER_B)"
gt_check "the array's unit serials are not the Cinder volume ids" test "$SER_A" != "$VOL_A" -a "$SER_B" != "$VOL_B"

os_brick_wait 240
CONNECTOR=$(curl -s http://127.0.0.1:18700/brick/properties)
jq -e .initiator <<< "$CONNECTOR" > /dev/null || fatal "no connector properties: $CONNECTOR"

# nova_attach KEY USER PROJECT PW VOLUME SERVER_UUID: Nova's attach flow; sets ATT_<KEY>,
# LUN_<KEY>, DEV_<KEY> (dm-N), WWN_<KEY> (os-brick's multipath_id); the connection_info
# stays in /run/lab (it holds the CHAP password)
nova_attach() {
	local key=$1 user=$2 project=$3 pw=$4 vol=$5 server=$6 body att ci info
	os_login "$user" "$project" "$pw" || fatal "login $user"
	body=$(jq -nc --arg v "$vol" --arg s "$server" --argjson c "$CONNECTOR" \
		'{attachment: {volume_uuid: $v, instance_uuid: $s, connector: $c, mode: "rw"}}')
	os_cinder POST /attachments "$body" 3.54 > "/run/lab/att-$key.json"
	[[ $OS_CODE == 200 ]] || fatal "attachment create for $key: HTTP $OS_CODE $(jq -c '.[]?.message? // .' "/run/lab/att-$key.json" | cut -c1-200)"
	att=$(jq -r .attachment.id "/run/lab/att-$key.json")
	ci=$(jq -c .attachment.connection_info "/run/lab/att-$key.json")
	printf -v "ATT_$key" %s "$att"
	printf -v "LUN_$key" %s "$(jq -r .target_lun <<< "$ci")"
	brick connect "$(jq -nc --argjson c "$ci" '{connection_info: $c}')" > "/run/lab/brick-connect-$key.json"
	info=$(cat "/run/lab/brick-connect-$key.json")
	[[ $BRICK_CODE == 200 ]] || fatal "os-brick connect_volume for $key: HTTP $BRICK_CODE $(cut -c1-300 <<< "$info")"
	echo "$info" > "$LAB_OUT/device_info-$key.json"
	printf -v "DEV_$key" %s "$(basename "$(realpath "$(jq -r .path <<< "$info")")")"
	printf -v "WWN_$key" %s "$(jq -r '.multipath_id // .scsi_wwn' <<< "$info")"
	os_cinder POST "/attachments/$att/action" '{"os-complete": null}' 3.44 > /dev/null
	[[ $OS_CODE == 204 || $OS_CODE == 200 ]] || fatal "attachment complete for $key: HTTP $OS_CODE"
	curl -sf -X PUT -H 'Content-Type: application/json' --data-binary "{\"attachment_id\": \"$att\"}" \
		"http://10.0.2.2:$OS_NOVA_PORT/lab/servers/$server/volumes/$vol" > /dev/null || fatal "fake Nova"
	local dv=DEV_$key ln=LUN_$key wn=WWN_$key
	log "Nova attached $vol to $server: attachment $att, LUN ${!ln}, os-brick gave /dev/${!dv} (multipath_id ${!wn}, $(jq -r .took_s <<< "$info") s)"
}

step "Nova attaches volA to instance A (real os-brick connect_volume)"
nova_attach A user-a tenant-a "$OS_PASSWORD_USER_A" "$VOL_A" "$UUID_A"
INST_SERIALS=$VOL_A instance_start A $NUM_A "$DEV_A"
instance_wait_marker A VOLUME-A-MARKER 60 && gt_pass "A reads its own volume (VOLUME-A-MARKER) through $DEV_A" \
	|| gt_fail "A never read VOLUME-A-MARKER through $DEV_A"
multipath -ll > "$LAB_OUT/multipath-ll-attached.txt" 2>&1
grep -q "queue_if_no_path" "$LAB_OUT/multipath-ll-attached.txt" && log "multipathd's map for LIO: queue_if_no_path"
collect_state attached

step "GROUND TRUTH: user-a deletes the in-use attachment: the fixed Cinder refuses (409)"
os_login user-a tenant-a "$OS_PASSWORD_USER_A"
OS_USER_A_TOKEN=$OS_TOKEN
os_cinder DELETE "/attachments/$ATT_A" "" 3.54 > /run/lab/user-delete.json
if [[ $OS_CODE == 409 ]] && grep -q ConflictNovaUsingAttachment /run/lab/user-delete.json; then
	gt_pass "user-a's attachment delete: HTTP 409 ConflictNovaUsingAttachment (Cinder asked the fake Nova)"
else
	gt_fail "user-a's attachment delete: HTTP $OS_CODE $(cut -c1-200 /run/lab/user-delete.json), wanted 409"
fi
gt_check "the fake Nova was asked about volA on A (GET os-volume_attachments)" \
	bash -c "curl -s http://10.0.2.2:$OS_NOVA_PORT/lab/requests | grep -q 'servers/$UUID_A/os-volume_attachments/$VOL_A'"

step "Nova's service token deletes the attachment while instance A still holds $DEV_A"
os_login nova service "$OS_PASSWORD_NOVA"
NOVA_TOKEN=$OS_TOKEN
OS_TOKEN=$OS_USER_A_TOKEN
os_login user-a tenant-a "$OS_PASSWORD_USER_A"
OS_EXTRA_HEADERS=(-H "X-Service-Token: $NOVA_TOKEN")
instance_mark A
os_cinder DELETE "/attachments/$ATT_A" "" 3.54 > /dev/null
OS_EXTRA_HEADERS=()
[[ $OS_CODE == 200 ]] && gt_pass "the delete with Nova's service token: HTTP 200" \
	|| gt_fail "the delete with Nova's service token: HTTP $OS_CODE"
lun_gone() { ! array_state | jq -e --arg l "$LUN_A" '.luns[$l]' > /dev/null; }
wait_for "the driver unmapped LUN $LUN_A" 60 lun_gone \
	&& gt_pass "terminate_connection unmapped LUN $LUN_A on the shared target" \
	|| gt_fail "LUN $LUN_A still mapped: $(array_state | jq -c .luns)"
collect_state unmapped

step "Nova attaches volB to instance B: the array hands out the lowest free LUN"
nova_attach B user-b tenant-b "$OS_PASSWORD_USER_B" "$VOL_B" "$UUID_B"
gt_check "volB got LUN $LUN_A, the LUN volA had" test "$LUN_B" == "$LUN_A"
gt_check "real os-brick handed B A's stale map ($DEV_B == $DEV_A)" test "$DEV_B" == "$DEV_A"
gt_check "os-brick reports A's WWN as B's multipath_id ($WWN_B)" test "$WWN_B" == "$WWN_A"
multipath -ll > "$LAB_OUT/multipath-ll-leaked.txt" 2>&1
INST_SERIALS=$VOL_B instance_start B $NUM_B "$DEV_B"
instance_wait_marker B VOLUME-B-MARKER 60 && gt_pass "B reads volB (VOLUME-B-MARKER)" || gt_fail "B never read VOLUME-B-MARKER"

step "THE LEAK: A's reads"
a_read_volB() { grep -qE 'op=read ok marker=VOLUME-B-MARKER( |$)|VOLUME-B-MARKER@' "$LAB_OUT/instance-A.log"; }
if wait_for "instance A reads VOLUME-B-MARKER" 90 a_read_volB; then
	gt_pass "LEAK through real Cinder + os-brick + multipathd: instance A reads VOLUME-B-MARKER (tenant B's volume) through $DEV_A"
else
	gt_fail "A did not read volB's marker; last A lines: $(tail -2 "$LAB_OUT/instance-A.log" | tr '\n' ' ')"
fi
collect_state leaked

# The real admin listing (what lunwatch reads): its CHAP password must reach no file
# lunwatch wrote (checked after lunwatch stops, over the whole output folder).
os_login lunwatch service "$OS_PASSWORD_LUNWATCH"
os_cinder GET "/attachments/detail?all_tenants=1" "" 3.27 > /run/lab/admin-listing.json
CHAP_PW=$(jq -r '[.attachments[].connection_info.auth_password // empty][0] // empty' /run/lab/admin-listing.json)
gt_check "the real admin listing (3.27, all_tenants) shows B's attachment with CHAP auth_password in clear" test -n "$CHAP_PW"
# (in this shell: os_cinder sets OS_CODE, which a pipeline or bash -c would lose)
os_login user-b tenant-b "$OS_PASSWORD_USER_B" || fatal "login user-b"
os_cinder GET "/attachments/detail?all_tenants=1" "" 3.27 > /run/lab/user-b-listing.json
gt_check "the user's view is partial: user-b's all_tenants listing has no tenant A attachment (HTTP $OS_CODE)" \
	bash -c "[[ $OS_CODE == 200 ]] && jq -e --arg a '$UUID_A' '[.attachments[].instance] | index(\$a) == null' /run/lab/user-b-listing.json"

lw_expect alert IDENTITY_CHANGED "true" "(the LU behind A's map changed)"
lw_expect alert CROSS_INSTANCE_ACCESS "(.instance.uuid == \"$UUID_A\" or .instance.name == \"instance-0000000a\") and ((.owner.uuid // \"\") == \"$UUID_B\" or (.owner.name // \"\") == \"instance-0000000b\")" "(A reads B's device)"
lw_expect alert CROSS_INSTANCE_ACCESS "(.volume_id // \"\") == \"$VOL_A\" or (.owner_volume_id // \"\") == \"$VOL_B\"" "(names volA or volB from the real Cinder API)"
chap_absent() {
	if grep -rqaF -- "$CHAP_PW" "$LAB_OUT" /run/lunwatch 2>/dev/null; then
		lw_record FAIL "CHAP auth_password of the real listing found in: $(grep -rlaF -- "$CHAP_PW" "$LAB_OUT" /run/lunwatch | tr '\n' ' ')"
	else
		lw_record PASS "CHAP auth_password of the real admin listing is in no log, event, alert, dump or recording"
	fi
}
[[ -n $CHAP_PW ]] && lw_expect chap_absent
lab_finish
