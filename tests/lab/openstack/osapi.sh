# shellcheck shell=bash
# Calls the lab's real Keystone and Cinder APIs with curl and jq (Python CLIs cost
# 4-10 s a call; in the TCG guest far more). Sourced by control-plane (host) and by
# the openstack-* scenarios (guest). Needs $RUN/env's variables (OS_*) in the
# environment and OS_HOST_ADDR: 127.0.0.1 on the host, 10.0.2.2 in the guest.

OS_HOST_ADDR=${OS_HOST_ADDR:-127.0.0.1}
OS_TMP=${OS_TMP:-$(mktemp -d)}

# os_login USER PROJECT PASSWORD: sets OS_TOKEN and OS_PROJECT_ID (project-scoped token)
os_login() {
	local user=$1 project=$2 pw=$3 code
	code=$(jq -n --arg u "$user" --arg p "$project" --arg pw "$pw" '{auth: {identity: {methods: ["password"],
		password: {user: {name: $u, domain: {id: "default"}, password: $pw}}},
		scope: {project: {name: $p, domain: {id: "default"}}}}}' \
		| curl -s -o "$OS_TMP/login.json" -D "$OS_TMP/login.hdr" -w '%{http_code}' --max-time 60 \
			-H 'Content-Type: application/json' --data-binary @- \
			"http://$OS_HOST_ADDR:$OS_KEYSTONE_PORT/v3/auth/tokens")
	[[ $code == 201 ]] || { echo "os_login $user: HTTP $code" >&2; return 1; }
	OS_TOKEN=$(sed -n 's/^[Xx]-[Ss]ubject-[Tt]oken: *\([^[:space:]]*\).*/\1/p' "$OS_TMP/login.hdr")
	OS_PROJECT_ID=$(jq -r .token.project.id "$OS_TMP/login.json")
	[[ -n $OS_TOKEN && -n $OS_PROJECT_ID ]]
}

# os_cinder METHOD PATH [BODY] [MICROVERSION]: PATH below /v3/{project}; prints the body
# to stdout (and keeps it in $OS_TMP/cinder.json) and sets OS_CODE: call it outside $(...)
# when OS_CODE matters. Extra headers in OS_EXTRA_HEADERS (array), e.g. a service
# token: OS_EXTRA_HEADERS=(-H "X-Service-Token: $t").
os_cinder() {
	local method=$1 path=$2 body=${3:-} mv=${4:-3.54}
	local args=(-s -o "$OS_TMP/cinder.json" -w '%{http_code}' --max-time 120 -X "$method"
		-H "X-Auth-Token: $OS_TOKEN" -H "OpenStack-API-Version: volume $mv"
		-H 'Content-Type: application/json' "${OS_EXTRA_HEADERS[@]}")
	[[ -n $body ]] && args+=(--data-binary "$body")
	OS_CODE=$(curl "${args[@]}" "http://$OS_HOST_ADDR:$OS_CINDER_PORT/v3/$OS_PROJECT_ID$path")
	cat "$OS_TMP/cinder.json"
}
OS_EXTRA_HEADERS=()

# os_wait_volume ID STATUS DEADLINE_S: polls the volume until it has STATUS
os_wait_volume() {
	local id=$1 want=$2 deadline=$((SECONDS + $3)) st=
	while ((SECONDS < deadline)); do
		st=$(os_cinder GET "/volumes/$id" | jq -r '.volume.status // empty')
		[[ $st == "$want" ]] && return 0
		[[ $st == error* ]] && break
		sleep 1
	done
	echo "volume $id: status '$st', wanted '$want'" >&2
	return 1
}

# os_volume_type_setup: the volume type lab-shared bound to the lab backend (admin)
os_volume_type_setup() {
	os_login lunwatch service "$OS_PASSWORD_LUNWATCH" || return 1
	local id
	os_cinder POST /types '{"volume_type": {"name": "lab-shared", "os-volume-type-access:is_public": true}}' > /dev/null
	id=$(jq -r '.volume_type.id // empty' "$OS_TMP/cinder.json")
	[[ $OS_CODE == 200 && -n $id ]] || { echo "volume type: HTTP $OS_CODE" >&2; return 1; }
	os_cinder POST "/types/$id/extra_specs" '{"extra_specs": {"volume_backend_name": "lab"}}' > /dev/null
	[[ $OS_CODE == 200 ]] || { echo "extra specs: HTTP $OS_CODE" >&2; return 1; }
	echo "volume type lab-shared $id"
}
