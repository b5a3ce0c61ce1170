#!/usr/bin/python3
"""The lab's fake Nova API: what fixed Cinder asks on attachment delete, nothing more.

A fixed Cinder (CVE-2023-2088, Zed 21.3.1) refuses a user's attachment delete with 409
ConflictNovaUsingAttachment while Nova still has the volume attached to the instance:
it asks GET /v2.1/servers/{server}/os-volume_attachments/{volume} (microversion 2.89)
and treats 404 as "Nova no longer uses it". This server answers that from a table the
lab sets over its own loopback-only control API:

  PUT    /lab/servers/{server}/volumes/{volume}   body {"attachment_id": "..."} (optional)
  DELETE /lab/servers/{server}/volumes/{volume}
  GET    /lab/requests                            every request Cinder made, one per line

Usage: fake-nova.py PORT LOGFILE
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ATTACHED = {}  # (server, volume) -> attachment id or ""
LOCK = threading.Lock()
REQUESTS = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _send(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("OpenStack-API-Version", "compute 2.89")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        with open(LOGFILE, "a") as f:
            f.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    def _parts(self):
        return [p for p in self.path.split("?")[0].split("/") if p]

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n <= 0 or n > 65536:
            return {}
        try:
            return json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return {}

    def do_GET(self):
        p = self._parts()
        if p == ["lab", "requests"]:
            with LOCK:
                self._send(200, {"requests": REQUESTS})
            return
        with LOCK:
            REQUESTS.append("GET " + self.path)
        if p in ([], ["v2.1"]):
            self._send(200, {"version": {"id": "v2.1", "status": "CURRENT",
                                         "version": "2.89", "min_version": "2.1",
                                         "links": []}})
            return
        if len(p) == 5 and p[0] == "v2.1" and p[1] == "servers" and p[3] == "os-volume_attachments":
            server, volume = p[2], p[4]
            with LOCK:
                att = ATTACHED.get((server, volume))
            if att is None:
                self._send(404, {"itemNotFound": {"code": 404, "message":
                                 "volume %s is not attached to %s" % (volume, server)}})
            else:
                self._send(200, {"volumeAttachment": {
                    "id": volume, "serverId": server, "volumeId": volume,
                    "device": "/dev/vdb", "tag": None, "delete_on_termination": False,
                    "attachment_id": att, "bdm_uuid": None}})
            return
        self._send(404, {"itemNotFound": {"code": 404, "message": "not in the fake Nova"}})

    def do_PUT(self):
        p = self._parts()
        if len(p) == 5 and p[:2] == ["lab", "servers"] and p[3] == "volumes":
            att = str(self._body().get("attachment_id", ""))
            with LOCK:
                ATTACHED[(p[2], p[4])] = att
            self._send(200, {"attached": True})
            return
        self._send(404, {"error": "unknown"})

    def do_DELETE(self):
        p = self._parts()
        if len(p) == 5 and p[:2] == ["lab", "servers"] and p[3] == "volumes":
            with LOCK:
                ATTACHED.pop((p[2], p[4]), None)
            self._send(200, {"attached": False})
            return
        self._send(404, {"error": "unknown"})


if __name__ == "__main__":
    port, LOGFILE = int(sys.argv[1]), sys.argv[2]
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
