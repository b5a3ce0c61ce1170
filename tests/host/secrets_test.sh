#!/usr/bin/env bash
# Host test (root, BPF): secrets planted where lunwatch reads them never reach
# any of its outputs. Planted: a Cinder password and an application credential
# secret in lunwatch.conf (the agent talks to a fake Keystone + Cinder on
# 127.0.0.1 that serves the real Zed admin attachment listing, whose
# connection_info carries a CHAP auth_password), and the same password, the
# application credential secret and a password continuation line in nova.conf
# for the audit. Then every output is searched for each secret (grep -a, so
# binary files too): agent stderr/stdout, alerts, events, metrics, the
# recording, a capture dump (file, `dump show`, `dump show --json`), `replay`,
# the audit report (text and JSON), and a config error.
# Usage: sudo tests/host/secrets_test.sh   (LUNWATCH_BIN, DEADLINE, KEEP_TMP=1)
# Prints PASS/FAIL per check and "N passed, N failed".
set -u -o pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LUNWATCH=${LUNWATCH_BIN:-$ROOT/build/lunwatch}
DEADLINE=${DEADLINE:-30}
PW='Planted-Cinder-Pa55w0rd-4c1e'
AC='Planted-AppCred-Secret-77d0'
CHAP='Planted-CHAP-auth-pw-a3b9'
CHAP_REAL='XjP99HNjvn5QP2Tf'  # the CHAP password in the real sample, replaced by $CHAP

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}
TMP=""
LW_PID=""
SRV_PID=""
cleanup() {
  local rc=$?
  for pid in $LW_PID $SRV_PID; do
    if kill -TERM "$pid" 2>/dev/null; then
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  if [ -n "$TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if [ "$(id -u)" -ne 0 ]; then fail "must run as root (BPF)"; finish; fi
[ -x "$LUNWATCH" ] || { fail "$LUNWATCH not built"; finish; }
TMP=$(mktemp -d /tmp/lunwatch-secrets-test.XXXXXX)
wait_for() {
  local what=$1
  shift
  local end=$((SECONDS + DEADLINE))
  while [ "$SECONDS" -lt "$end" ]; do
    "$@" && return 0
    sleep 0.2
  done
  echo "  timed out after ${DEADLINE}s waiting for $what"
  return 1
}

# --- fake Keystone + Cinder serving the real admin attachment listing
python3 -c '
import sys
text = open(sys.argv[1]).read()
assert sys.argv[3] in text, "the sample lost its CHAP password"
sys.stdout.write(text.replace(sys.argv[3], sys.argv[2]))
' "$ROOT/tests/fixtures/inventory/cinder/real-zed-attachments-detail-3.44-chap.json" "$CHAP" "$CHAP_REAL" \
  >"$TMP/attachments.json" || { fail "cannot prepare the Cinder body"; finish; }
printf '%s\n' \
  'import http.server, json, sys' \
  'body = open(sys.argv[1], "rb").read()' \
  'class H(http.server.BaseHTTPRequestHandler):' \
  '    def log_message(self, *a): pass' \
  '    def do_POST(self):' \
  '        self.rfile.read(int(self.headers.get("Content-Length", 0)))' \
  '        base = "http://127.0.0.1:%d" % self.server.server_port' \
  '        tok = {"token": {"expires_at": "2300-01-01T00:00:00.000000Z", "project": {"id": "p"},' \
  '               "catalog": [{"type": "block-storage", "endpoints": [' \
  '                   {"interface": "internal", "region_id": "RegionOne", "url": base + "/v3/p"}]}]}}' \
  '        out = json.dumps(tok).encode()' \
  '        self.send_response(201); self.send_header("X-Subject-Token", "tok-1")' \
  '        self.send_header("Content-Type", "application/json"); self.send_header("Content-Length", str(len(out)))' \
  '        self.end_headers(); self.wfile.write(out)' \
  '    def do_GET(self):' \
  '        self.send_response(200); self.send_header("Content-Type", "application/json")' \
  '        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)' \
  's = http.server.HTTPServer(("127.0.0.1", 0), H)' \
  'open(sys.argv[2] + ".tmp", "w").write(str(s.server_port))' \
  'import os; os.rename(sys.argv[2] + ".tmp", sys.argv[2])' \
  's.serve_forever()' >"$TMP/server.py"
python3 "$TMP/server.py" "$TMP/attachments.json" "$TMP/port" 2>"$TMP/server.log" &
SRV_PID=$!
wait_for "fake Keystone/Cinder" test -s "$TMP/port" || { fail "fake server did not start"; finish; }
PORT=$(cat "$TMP/port")
LW_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

printf '%s\n' '[agent]' "metrics_listen = 127.0.0.1:$LW_PORT" 'inventory_interval = 1' 'dump_severity = off' \
  '[cinder]' "auth_url = http://127.0.0.1:$PORT/v3" 'username = lunwatch' "password = $PW" \
  'application_credential_id = ac-1' "application_credential_secret = $AC" 'interface = internal' \
  'region_name = RegionOne' >"$TMP/lunwatch.conf"

"$LUNWATCH" run --config "$TMP/lunwatch.conf" --no-libvirt --events-file "$TMP/events.jsonl" \
  --alerts-file "$TMP/alerts.jsonl" --record "$TMP/rec.lwrec" --state-file "$TMP/bindings.json" \
  --pid-file "$TMP/lunwatch.pid" --dump-dir "$TMP/dumps" --ready-file "$TMP/ready" --duration 120 \
  >"$TMP/agent.stdout" 2>"$TMP/agent.stderr" &
LW_PID=$!
if wait_for "agent ready" test -e "$TMP/ready"; then
  pass "agent running with the planted config"
else
  fail "agent not ready: $(tail -3 "$TMP/agent.stderr" | tr '\n' ' ')"
  finish
fi
metrics() { curl -fsS "http://127.0.0.1:$LW_PORT/metrics" >"$TMP/metrics.txt" 2>/dev/null; }
cinder_loaded() { metrics && grep -qE '^lunwatch_attachment_records\{source="cinder"\} [1-9]' "$TMP/metrics.txt"; }
if wait_for "Cinder records in the agent" cinder_loaded; then
  pass "the agent loaded Cinder's attachments (CHAP password in connection_info) through Keystone"
else
  fail "no Cinder records: $(grep -E 'attachment_records|source_errors' "$TMP/metrics.txt" | tr '\n' ' ')"
  tail -5 "$TMP/agent.stderr"
fi
if "$LUNWATCH" dump now --pid-file "$TMP/lunwatch.pid" --dump-dir "$TMP/dumps" --timeout 20 >"$TMP/dump-now.txt" 2>&1; then
  pass "dump now wrote a capture"
else
  fail "dump now: $(tail -2 "$TMP/dump-now.txt" | tr '\n' ' ')"
fi
metrics || true
kill -TERM "$LW_PID"
wait "$LW_PID"
LW_PID=""
: >"$TMP/dump-show.txt"
: >"$TMP/dump-show.json"
for f in "$TMP"/dumps/*.lwdump; do
  [ -e "$f" ] || continue
  "$LUNWATCH" dump show "$f" >>"$TMP/dump-show.txt" 2>&1
  "$LUNWATCH" dump show --json "$f" >>"$TMP/dump-show.json" 2>&1
done
"$LUNWATCH" replay --events "$TMP/rec.lwrec" >"$TMP/replay.txt" 2>&1
ATT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["attachments"][0]["id"])' "$TMP/attachments.json")
if grep -aqF "$ATT" "$TMP/rec.lwrec" && grep -aqF "$ATT" "$TMP/dump-show.json"; then
  pass "the recording and the dump hold Cinder attachment $ATT (the data did flow through)"
else
  fail "the recording or the dump lacks Cinder attachment $ATT: the checks below would prove little"
fi

# --- the audit over a host tree with the secrets in nova.conf
mkdir -p "$TMP/host/etc/nova"
printf '%s\n' '[keystone_authtoken]' "password = $PW" '[service_user]' 'send_service_user_token = true' \
  "application_credential_secret = $AC" '[cinder]' 'password =' '' "    $PW-continued" >"$TMP/host/etc/nova/nova.conf"
"$LUNWATCH" audit --root "$TMP/host" >"$TMP/audit.txt" 2>&1
"$LUNWATCH" audit --root "$TMP/host" --json >"$TMP/audit.json" 2>&1
[ -s "$TMP/audit.json" ] && pass "audit ran over the planted nova.conf" || fail "audit produced nothing"
# --- a config error on a line after a password
printf '%s\n' '[cinder]' 'auth_url = http://x/v3' "password = $PW" '' "    $PW-continued" >"$TMP/bad.conf"
"$LUNWATCH" run --check-config --config "$TMP/bad.conf" >"$TMP/config-error.txt" 2>&1
[ -s "$TMP/config-error.txt" ] && pass "the bad config was refused with a message" || fail "no config error message"

outputs=(agent.stdout agent.stderr events.jsonl alerts.jsonl metrics.txt rec.lwrec dump-now.txt dump-show.txt
  dump-show.json replay.txt audit.txt audit.json config-error.txt)
# bound identities exist only once a device was verified: searched when written
[ -e "$TMP/bindings.json" ] && outputs+=(bindings.json)
for f in "$TMP"/dumps/*; do [ -e "$f" ] && outputs+=("dumps/$(basename "$f")"); done
for o in "${outputs[@]}"; do
  if [ ! -e "$TMP/$o" ]; then
    fail "$o was not produced"
    continue
  fi
  leaked=""
  for s in "$PW" "$AC" "$CHAP" "$CHAP_REAL"; do
    if grep -aqF -- "$s" "$TMP/$o"; then leaked+=" ${s:0:14}..."; fi
  done
  if [ -z "$leaked" ]; then pass "$o ($(wc -c <"$TMP/$o") bytes) holds no planted secret"; else fail "$o leaks:$leaked"; fi
done
finish
