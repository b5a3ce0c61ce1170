#!/usr/bin/python3
"""Creates the lab's Keystone content over the real Keystone API (once, at init).

Projects: service, tenant-a, tenant-b. Users: cinder and nova (admin + service in
service: keystonemiddleware and Nova's service token), lunwatch (admin in service:
all_tenants listing), lunwatch-reader (member in service: the silent partial list),
user-a / user-b (member in their tenant). Catalog: volumev3 (public for the guest at
10.0.2.2, internal for the host), compute (the fake Nova on the host).

Usage: keystone-setup.py ENVFILE   (the control plane's env file: ports, passwords)
"""
import json
import sys
import urllib.error
import urllib.request


def load_env(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v.strip("'\"")
    return env


ENV = load_env(sys.argv[1])
KS = "http://127.0.0.1:%s/v3" % ENV["OS_KEYSTONE_PORT"]


def call(method, path, body=None, token=None, expect=(200, 201, 204)):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(KS + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else {}), r.headers
    except urllib.error.HTTPError as e:
        if e.code in expect:
            return e.code, {}, e.headers
        raise SystemExit("keystone-setup: %s %s -> %d %s" % (method, path, e.code, e.read()[:300]))


def admin_token():
    _, _, h = call("POST", "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ENV["OS_ADMIN_PASSWORD"]}}},
        "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}})
    return h["X-Subject-Token"]


def find(tok, kind, name):
    _, body, _ = call("GET", "/%s?name=%s" % (kind, name), token=tok)
    items = body.get(kind, [])
    return items[0]["id"] if items else None


def ensure(tok, kind, single, name, extra):
    i = find(tok, kind, name)
    if i:
        return i
    _, body, _ = call("POST", "/" + kind, {single: dict({"name": name}, **extra)}, token=tok)
    return body[single]["id"]


def main():
    tok = admin_token()
    roles = {r: ensure(tok, "roles", "role", r, {}) for r in ("admin", "member", "reader", "service")}
    projects = {p: ensure(tok, "projects", "project", p, {"domain_id": "default"})
                for p in ("service", "tenant-a", "tenant-b")}
    grants = {
        "cinder": ("service", ["admin", "service"]),
        "nova": ("service", ["admin", "service"]),
        "lunwatch": ("service", ["admin"]),
        "lunwatch-reader": ("service", ["member"]),
        "user-a": ("tenant-a", ["member"]),
        "user-b": ("tenant-b", ["member"]),
    }
    for user, (project, rs) in grants.items():
        key = "OS_PASSWORD_" + user.upper().replace("-", "_")
        uid = ensure(tok, "users", "user", user, {"domain_id": "default", "password": ENV[key]})
        for r in rs:
            call("PUT", "/projects/%s/users/%s/roles/%s" % (projects[project], uid, roles[r]), token=tok)
    cinder_port, nova_port = ENV["OS_CINDER_PORT"], ENV["OS_NOVA_PORT"]
    services = {
        "cinderv3": ("volumev3", {
            "public": "http://10.0.2.2:%s/v3/%%(project_id)s" % cinder_port,
            "internal": "http://127.0.0.1:%s/v3/%%(project_id)s" % cinder_port,
            "admin": "http://127.0.0.1:%s/v3/%%(project_id)s" % cinder_port}),
        "nova": ("compute", {
            "public": "http://127.0.0.1:%s/v2.1" % nova_port,
            "internal": "http://127.0.0.1:%s/v2.1" % nova_port,
            "admin": "http://127.0.0.1:%s/v2.1" % nova_port}),
    }
    for name, (stype, urls) in services.items():
        sid = find(tok, "services", name)
        if not sid:
            _, body, _ = call("POST", "/services", {"service": {"name": name, "type": stype}}, token=tok)
            sid = body["service"]["id"]
        for iface, url in urls.items():
            call("POST", "/endpoints", {"endpoint": {"service_id": sid, "interface": iface,
                                                     "url": url, "region_id": "RegionOne"}}, token=tok)
    print("keystone-setup: %d roles, %d projects, %d users, %d services" %
          (len(roles), len(projects), len(grants), len(services)))


main()
