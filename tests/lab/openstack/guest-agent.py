#!/usr/bin/python3
"""The lab guest's long-running agent: the storage array and the compute host's os-brick.

One Python process (its start and os-brick's import cost minutes under TCG), two roles
kept apart:

/array/...  the shared-target array the lab cinder-volume driver drives (reached from
            the host through QEMU's hostfwd): a real LIO iSCSI target over configfs,
            one IQN, two portals, CHAP, each export at the lowest free LUN, unit serials
            of the array's own (not the volume ids).
  POST   /array/volumes        {"id", "size_gb"}      -> {"serial"}
  DELETE /array/volumes/ID
  POST   /array/exports        {"volume_id", "initiator"} -> {"lun", "auth_username", "auth_password"}
  DELETE /array/exports/ID     unmaps the volume's LUN (terminate_connection)
  GET    /array/state          {"luns": {lun: volume}, "volumes": {id: {"serial", "file"}}}

/brick/...  the compute host (Nova's side): real os-brick 6.1.0, imported once in a
            background thread, privsep in-process, called with the connection_info
            Cinder's attachment API returned.
  GET    /brick/ready          200 once os-brick is imported (503 before)
  GET    /brick/properties     get_connector_properties(multipath=True)
  POST   /brick/connect        {"connection_info"} -> device_info
  POST   /brick/disconnect     {"connection_info", "device_info", "force", "ignore_errors"}
                               -> {"ok": true} or 500 {"error": type, "message"}

Requests are served one at a time (os-brick holds its own locks; the array's LUN table
needs no more). Passwords never reach the agent's log.

Usage: guest-agent.py PORT STATE_DIR
"""
import json
import os
import secrets
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer

# LAB_TARGET_ROOT: a plain folder standing in for configfs (host-check: the host kernel
# has no LIO; the control plane and the driver are checked against the same code)
CFG = os.environ.get("LAB_TARGET_ROOT", "/sys/kernel/config/target")
FAKE_CFG = CFG != "/sys/kernel/config/target"
IQN = "iqn.2010-10.org.openstack:volumes-shared"
PORTALS = ["127.0.0.1", "127.0.0.2"]

STATE = {"volumes": {}, "luns": {}}
CHAP = {}
BRICK = {"connector": None, "error": None, "import_s": None}


def log(msg):
    sys.stderr.write("[agent %s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def wr(path, value):
    if FAKE_CFG:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(value)


# ---------------------------------------------------------------- the array
def tpg():
    return "%s/iscsi/%s/tpgt_1" % (CFG, IQN)


def array_setup(state_dir):
    os.makedirs(tpg(), exist_ok=True)
    for ip in PORTALS:
        np = "%s/np/%s:3260" % (tpg(), ip)
        if not os.path.isdir(np):
            os.makedirs(np)
    wr(tpg() + "/attrib/generate_node_acls", "1")
    wr(tpg() + "/attrib/cache_dynamic_acls", "1")
    wr(tpg() + "/attrib/demo_mode_write_protect", "0")
    # CHAP for every initiator (demo-mode ACLs take the TPG's credentials)
    CHAP["auth_username"] = "lab" + secrets.token_hex(6)
    CHAP["auth_password"] = secrets.token_urlsafe(12)
    wr(tpg() + "/auth/userid", CHAP["auth_username"])
    wr(tpg() + "/auth/password", CHAP["auth_password"])
    wr(tpg() + "/attrib/authentication", "1")
    wr(tpg() + "/enable", "1")
    os.makedirs(state_dir + "/vols", exist_ok=True)
    log("array: target %s on %s, CHAP on" % (IQN, ",".join(PORTALS)))


def save_state(state_dir):
    tmp = state_dir + "/array.json.tmp"
    with open(tmp, "w") as f:
        json.dump(STATE, f, indent=1)
    os.rename(tmp, state_dir + "/array.json")


def volume_create(state_dir, vid, size_gb):
    if vid in STATE["volumes"]:
        return STATE["volumes"][vid]
    n = len(STATE["volumes"]) + 1
    name = "osvol%d" % n
    serial = "lab%s" % secrets.token_hex(8)
    path = "%s/vols/%s.img" % (state_dir, vid)
    size = int(size_gb) * 1024 * 1024 * 1024
    with open(path, "wb") as f:
        f.truncate(size)
    bs = "%s/core/fileio_%d/%s" % (CFG, n, name)
    os.makedirs(bs)
    if FAKE_CFG:
        os.makedirs(bs + "/wwn")
    wr(bs + "/control", "fd_dev_name=%s,fd_dev_size=%d" % (path, size))
    wr(bs + "/wwn/vpd_unit_serial", serial)
    wr(bs + "/enable", "1")
    STATE["volumes"][vid] = {"serial": serial, "file": path, "backstore": bs, "name": name}
    log("array: volume %s -> %s serial %s" % (vid, name, serial))
    return STATE["volumes"][vid]


def lun_of(vid):
    for lun, v in STATE["luns"].items():
        if v == vid:
            return int(lun)
    return None


def export(vid):
    v = STATE["volumes"][vid]
    lun = lun_of(vid)
    if lun is None:
        lun = 0
        while str(lun) in STATE["luns"]:
            lun += 1
        d = "%s/lun/lun_%d" % (tpg(), lun)
        os.makedirs(d)
        os.symlink(v["backstore"], "%s/%s" % (d, v["name"]))
        STATE["luns"][str(lun)] = vid
        log("array: volume %s exported at LUN %d" % (vid, lun))
    return dict(lun=lun, **CHAP)


def unexport(vid):
    lun = lun_of(vid)
    if lun is None:
        return
    d = "%s/lun/lun_%d" % (tpg(), lun)
    for e in os.listdir(d):
        if os.path.islink("%s/%s" % (d, e)):
            os.unlink("%s/%s" % (d, e))
    os.rmdir(d)
    del STATE["luns"][str(lun)]
    log("array: LUN %d (volume %s) unmapped" % (lun, vid))


def volume_delete(vid):
    unexport(vid)
    v = STATE["volumes"].pop(vid, None)
    if v:
        os.rmdir(v["backstore"])
        os.unlink(v["file"])


# ---------------------------------------------------------------- os-brick
def brick_import():
    t0 = time.monotonic()
    try:
        from oslo_concurrency import lockutils
        lockutils.set_defaults("/run/lab/brick-locks")
        from os_brick import privileged
        privileged.default.set_client_mode(False)
        from os_brick.initiator import connector
        BRICK["module"] = connector
        BRICK["connector"] = connector.InitiatorConnector.factory(
            "ISCSI", root_helper=None, use_multipath=True, device_scan_attempts=5)
        BRICK["import_s"] = round(time.monotonic() - t0, 1)
        log("os-brick imported in %.1f s" % BRICK["import_s"])
    except Exception as e:  # noqa: BLE001 - reported on /brick/ready
        BRICK["error"] = "%s: %s" % (type(e).__name__, e)
        log("os-brick import failed: " + BRICK["error"])


def redact(obj):
    """connection_info without its CHAP secrets (for the agent's own log)."""
    if isinstance(obj, dict):
        return {k: ("***" if "password" in k else redact(v)) for k, v in obj.items()}
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state_dir = "/run/lab/os"

    def log_message(self, fmt, *args):
        log(fmt % args)

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n)) if n > 0 else {}

    def _route(self, method):
        p = [x for x in self.path.split("?")[0].split("/") if x]
        try:
            if p[:1] == ["array"]:
                return self._array(method, p[1:])
            if p[:1] == ["brick"]:
                return self._brick(method, p[1:])
            return self._send(404, {"error": "unknown path"})
        except Exception as e:  # noqa: BLE001 - one request fails, the agent stays
            log("%s %s failed: %s" % (method, self.path, traceback.format_exc(limit=3)))
            return self._send(500, {"error": type(e).__name__, "message": str(e)[:500]})

    def _array(self, method, p):
        sd = self.state_dir
        if method == "POST" and p == ["volumes"]:
            b = self._body()
            v = volume_create(sd, b["id"], b.get("size_gb", 1))
            save_state(sd)
            return self._send(200, {"serial": v["serial"]})
        if method == "DELETE" and len(p) == 2 and p[0] == "volumes":
            volume_delete(p[1])
            save_state(sd)
            return self._send(200, {})
        if method == "POST" and p == ["exports"]:
            r = export(self._body()["volume_id"])
            save_state(sd)
            return self._send(200, r)
        if method == "DELETE" and len(p) == 2 and p[0] == "exports":
            unexport(p[1])
            save_state(sd)
            return self._send(200, {})
        if method == "GET" and p == ["state"]:
            return self._send(200, {"luns": STATE["luns"], "volumes": {
                k: {"serial": v["serial"], "file": v["file"]} for k, v in STATE["volumes"].items()}})
        return self._send(404, {"error": "unknown array call"})

    def _brick(self, method, p):
        if method == "GET" and p == ["ready"]:
            if BRICK["connector"] is not None:
                return self._send(200, {"ready": True, "import_s": BRICK["import_s"]})
            return self._send(503, {"ready": False, "error": BRICK["error"]})
        c = BRICK["connector"]
        if c is None:
            return self._send(503, {"error": "os-brick not imported yet"})
        if method == "GET" and p == ["properties"]:
            return self._send(200, BRICK["module"].get_connector_properties(
                None, "127.0.0.1", True, True, host="lab-guest"))
        b = self._body()
        ci = b.get("connection_info") or {}
        data = ci.get("data", ci)
        if method == "POST" and p == ["connect"]:
            log("connect %s" % json.dumps(redact(data), sort_keys=True))
            t0 = time.monotonic()
            info = c.connect_volume(data)
            info = dict(info, took_s=round(time.monotonic() - t0, 1))
            return self._send(200, info)
        if method == "POST" and p == ["disconnect"]:
            t0 = time.monotonic()
            c.disconnect_volume(data, b.get("device_info") or {},
                                force=bool(b.get("force")), ignore_errors=bool(b.get("ignore_errors")))
            return self._send(200, {"ok": True, "took_s": round(time.monotonic() - t0, 1)})
        return self._send(404, {"error": "unknown brick call"})

    def do_GET(self):
        self._route("GET")

    def do_POST(self):
        self._route("POST")

    def do_DELETE(self):
        self._route("DELETE")


if __name__ == "__main__":
    port, Handler.state_dir = int(sys.argv[1]), sys.argv[2]
    os.makedirs(Handler.state_dir, exist_ok=True)
    os.makedirs("/run/lab/brick-locks", exist_ok=True)
    array_setup(Handler.state_dir)
    if os.environ.get("LAB_NO_BRICK") != "1":
        threading.Thread(target=brick_import, daemon=True).start()
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()
