#!/usr/bin/env bash
# Host integration test (root): a real Prometheus server (Debian's /usr/bin/prometheus)
# scrapes a real `lunwatch run` every second; a host process (dd, not allowlisted) reads a
# loop device an attachment record names, lunwatch raises HOST_PROCESS_ACCESS, and the
# Prometheus HTTP API must return lunwatch_alerts_total{rule="HOST_PROCESS_ACCESS"} >= 1.
# Prometheus also loads dashboards/lunwatch.rules.yml, so the test checks that the
# LunwatchHostProcessAccess alerting rule fires on real scraped data.
#
# Usage: sudo tests/host/prometheus_test.sh
# Env:   LUNWATCH_BIN (default build/lunwatch), PROMETHEUS (default /usr/bin/prometheus),
#        DEADLINE (seconds per wait, default 30), KEEP_TMP=1 to keep the temp dir.
# Prints PASS/FAIL per check and "N passed, N failed"; exits 1 on any failure.
set -u -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
LUNWATCH=${LUNWATCH_BIN:-$ROOT/build/lunwatch}
PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
RULES=$ROOT/dashboards/lunwatch.rules.yml
DEADLINE=${DEADLINE:-30}

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
IMG=""
LOOP=""
PROM_PID=""
LW_PID=""
cleanup() {
  local rc=$?
  for pid in $LW_PID $PROM_PID; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
  [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
  [ -n "$IMG" ] && rm -f "$IMG"
  if [ -n "$TMP" ]; then
    if [ "${KEEP_TMP:-0}" = 1 ]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" -ne 0 ]; then fail "must run as root (BPF, losetup)"; finish; fi
for bin in "$LUNWATCH" "$PROMETHEUS"; do
  if [ ! -x "$bin" ]; then fail "$bin not found (scripts/build; scripts/install-deps installs prometheus)"; finish; fi
done
for tool in curl python3 losetup dd; do
  command -v "$tool" >/dev/null || { fail "$tool not installed"; finish; }
done

TMP=$(mktemp -d /tmp/lunwatch-prom-test.XXXXXX)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
LW_PORT=$(free_port)
PROM_PORT=$(free_port)
while [ "$PROM_PORT" = "$LW_PORT" ]; do PROM_PORT=$(free_port); done
PROM=http://127.0.0.1:$PROM_PORT

# --- Prometheus: scrape lunwatch every second, evaluate our alert rules every second.
cat >"$TMP/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $RULES
scrape_configs:
  - job_name: lunwatch
    static_configs:
      - targets: ["127.0.0.1:$LW_PORT"]
EOF
"$PROMETHEUS" --config.file="$TMP/prometheus.yml" --storage.tsdb.path="$TMP/tsdb" \
  --web.listen-address="127.0.0.1:$PROM_PORT" --log.level=warn >"$TMP/prometheus.log" 2>&1 &
PROM_PID=$!

# wait_for DESCRIPTION COMMAND...: poll COMMAND until it succeeds or DEADLINE passes.
wait_for() {
  local what=$1
  shift
  local end=$((SECONDS + DEADLINE))
  while [ "$SECONDS" -lt "$end" ]; do
    if "$@"; then return 0; fi
    sleep 0.2
  done
  echo "  timed out after ${DEADLINE}s waiting for $what"
  return 1
}
alive() { kill -0 "$1" 2>/dev/null; }

prom_ready() { alive "$PROM_PID" && curl -fsS "$PROM/-/ready" >/dev/null 2>&1; }
if wait_for "Prometheus ready" prom_ready; then
  pass "prometheus $("$PROMETHEUS" --version 2>&1 | head -1 | awk '{print $3}') serves on 127.0.0.1:$PROM_PORT"
else
  fail "prometheus did not become ready"; sed 's/^/  prometheus: /' "$TMP/prometheus.log" | tail -20; finish
fi

# query_value PROMQL: print the first sample's value of an instant query; fail (no
# output, status 1) on an API error or an empty result.
query_value() {
  curl -fsS -G "$PROM/api/v1/query" --data-urlencode "query=$1" 2>/dev/null | python3 -c '
import json, sys
try:
    r = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
res = r.get("data", {}).get("result", []) if r.get("status") == "success" else []
if not res:
    sys.exit(1)
print(res[0]["value"][1])'
}
# value_at_least PROMQL MIN
value_at_least() {
  local v
  v=$(query_value "$1") || return 1
  python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) >= float(sys.argv[2]) else 1)' "$v" "$2"
}
alert_firing() {
  curl -fsS "$PROM/api/v1/alerts" 2>/dev/null | python3 -c '
import json, sys
name = sys.argv[1]
a = json.load(sys.stdin).get("data", {}).get("alerts", [])
sys.exit(0 if any(x["labels"].get("alertname") == name and x["state"] == "firing" for x in a) else 1)' "$1"
}

# The helper must report an empty result as a failure, or every check below is moot.
if query_value 'lunwatch_alerts_total{rule="NO_SUCH_RULE"}' >/dev/null; then
  fail "query helper: an empty result must not count as a value"
else
  pass "query helper reports an empty result as no value"
fi

# --- a loop device over /dev/shm that an attachment record names
IMG=$(mktemp /dev/shm/lunwatch-prom-test.XXXXXX)
truncate -s 16M "$IMG"
if ! LOOP=$(losetup --find --show "$IMG"); then LOOP=""; fail "losetup"; finish; fi
cat >"$TMP/attachments.json" <<EOF
{"attachments":[{"instance_uuid":"5b3c2f8e-0a4e-4d8e-9a57-2f0c6f1d7a10","instance_name":"instance-0000000a",
 "volume_id":"c0ffee00-1111-4222-8333-444455556666","status":"ATTACHMENT_ATTACHED","device_path":"$LOOP"}]}
EOF

# --- lunwatch
"$LUNWATCH" run --no-libvirt --attachments "$TMP/attachments.json" --inventory-interval 1 \
  --state-file "$TMP/bindings.json" --alerts-file "$TMP/alerts.jsonl" --ready-file "$TMP/ready" \
  --metrics-listen "127.0.0.1:$LW_PORT" --duration 600 >"$TMP/lunwatch.out" 2>"$TMP/lunwatch.log" &
LW_PID=$!
lw_ready() { alive "$LW_PID" && [ -e "$TMP/ready" ]; }
if wait_for "lunwatch ready file" lw_ready; then
  pass "lunwatch attached its probes (ready file) and serves 127.0.0.1:$LW_PORT/metrics"
else
  fail "lunwatch did not become ready"; sed 's/^/  lunwatch: /' "$TMP/lunwatch.log" | tail -20; finish
fi

if wait_for 'up{job="lunwatch"} == 1' value_at_least 'up{job="lunwatch"}' 1; then
  pass 'Prometheus scrapes lunwatch: up{job="lunwatch"} == 1'
else
  fail "up{job=\"lunwatch\"} is not 1: $(query_value 'up{job="lunwatch"}' || echo empty)"
  curl -fsS "$PROM/api/v1/targets" | head -c 1000; echo
fi

if wait_for "block_bio_queue attached" value_at_least 'lunwatch_probe_state{job="lunwatch",hook="block_bio_queue",state="attached"}' 1; then
  pass 'lunwatch_probe_state{hook="block_bio_queue",state="attached"} == 1'
else
  fail "lunwatch_probe_state{hook=\"block_bio_queue\",state=\"attached\"}: $(query_value 'lunwatch_probe_state{hook="block_bio_queue",state="attached"}' || echo empty)"
fi

if wait_for "file source records" value_at_least 'lunwatch_attachment_records{job="lunwatch",source="file"}' 1; then
  pass 'lunwatch_attachment_records{source="file"} >= 1 (the attachment naming '"$LOOP"' is loaded)'
else
  fail "lunwatch_attachment_records{source=\"file\"}: $(query_value 'lunwatch_attachment_records{source="file"}' || echo empty)"
fi

# Before the trigger there must be no HOST_PROCESS_ACCESS.
if v=$(query_value 'lunwatch_alerts_total{job="lunwatch",rule="HOST_PROCESS_ACCESS"}') && [ "$v" != 0 ]; then
  fail "HOST_PROCESS_ACCESS counted ($v) before any host process touched $LOOP"
else
  pass "no HOST_PROCESS_ACCESS before the trigger"
fi

# --- trigger: a host process (dd is not allowlisted) reads the volume device
if dd if="$LOOP" of=/dev/null bs=4k count=8 iflag=direct status=none; then
  pass "dd read 32 KiB from $LOOP (O_DIRECT)"
else
  fail "dd on $LOOP"
fi

local_alert() { grep -q '"rule":"HOST_PROCESS_ACCESS"' "$TMP/alerts.jsonl" 2>/dev/null; }
if wait_for "alert line in --alerts-file" local_alert; then
  pass "lunwatch wrote a HOST_PROCESS_ACCESS alert to its alerts file"
else
  fail "no HOST_PROCESS_ACCESS in $TMP/alerts.jsonl"; sed 's/^/  lunwatch: /' "$TMP/lunwatch.log" | tail -20
fi

Q='lunwatch_alerts_total{rule="HOST_PROCESS_ACCESS"}'
if wait_for "$Q >= 1 in Prometheus" value_at_least "$Q" 1; then
  pass "Prometheus API: $Q = $(query_value "$Q")"
else
  fail "Prometheus API: $Q is $(query_value "$Q" || echo empty), want >= 1"
fi

if wait_for "alert rule LunwatchHostProcessAccess firing" alert_firing LunwatchHostProcessAccess; then
  pass "Prometheus evaluates dashboards/lunwatch.rules.yml: LunwatchHostProcessAccess is firing"
else
  fail "LunwatchHostProcessAccess not firing in $PROM/api/v1/alerts"
  curl -fsS "$PROM/api/v1/alerts" | head -c 1500; echo
fi

# No detection other than HOST_PROCESS_ACCESS may have fired on this host.
if v=$(query_value 'sum(lunwatch_alerts_total{job="lunwatch",rule!="HOST_PROCESS_ACCESS",severity=~"critical|high"})') && [ "$v" != 0 ]; then
  fail "unexpected critical/high alerts counted: $v"
else
  pass "no critical or high alerts raised by the scenario"
fi

alive "$LW_PID" && pass "lunwatch still running" || fail "lunwatch exited early: $(tail -5 "$TMP/lunwatch.log")"
finish
