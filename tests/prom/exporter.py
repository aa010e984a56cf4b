#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A tiny Prometheus exporter for the metric-rule tests (stdlib only).

It serves, on 127.0.0.1, per app
    http_requests_total{app="APP",code="200"}
    http_requests_total{app="APP",code="500"}
counters that grow at `rps` requests per second, a fraction `error_ratio`
of them with code 500, so that
    sum(rate(http_requests_total{app="APP",code=~"5.."}[W]))
      / sum(rate(http_requests_total{app="APP"}[W]))
reads error_ratio once W has seen it. Both series always exist (a 500 series
at 0 too): an app without errors reads 0, not "no data".

Control (JSON):
    GET  /control                     state: apps, scrapes, requests seen
    POST /control/app   {"app": "shop-api", "rps": 50, "error_ratio": 0.2}
    DELETE /control/app/APP
    POST /control/fake  {"status": 200, "body": {...}}  what /api/v1/query answers
It also plays a Prometheus HTTP API for client tests: GET /api/v1/query
answers the configured fake body and records the request's path and
Authorization header (GET /control shows the last ones).

    exporter.py --port 0 --port-file FILE [--app NAME:RPS:RATIO ...]
"""

import argparse
import json
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _label(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.apps = {}
        self.scrapes = 0
        self.requests = []  # fake API requests: {"path", "authorization"}
        self.fake = {"status": 200, "body": {"status": "success",
                                             "data": {"resultType": "scalar", "result": [0, "1"]}}}

    def _advance(self, now):
        # Counters are integrated lazily, so a scrape sees exactly rps*dt more.
        for a in self.apps.values():
            dt = max(0.0, now - a["t"])
            a["ok"] += a["rps"] * dt * (1.0 - a["error_ratio"])
            a["err"] += a["rps"] * dt * a["error_ratio"]
            a["t"] = now

    def set_app(self, name, rps, error_ratio):
        if not (0.0 <= error_ratio <= 1.0) or rps < 0:
            raise ValueError("error_ratio must be in [0, 1] and rps >= 0")
        with self.lock:
            now = time.monotonic()
            self._advance(now)
            a = self.apps.setdefault(name, {"ok": 0.0, "err": 0.0, "t": now})
            a["rps"] = float(rps)
            a["error_ratio"] = float(error_ratio)

    def drop_app(self, name):
        with self.lock:
            return self.apps.pop(name, None) is not None

    def metrics(self):
        with self.lock:
            self._advance(time.monotonic())
            self.scrapes += 1
            lines = ["# HELP http_requests_total Requests served, by app and status code.",
                     "# TYPE http_requests_total counter"]
            for name in sorted(self.apps):
                a = self.apps[name]
                lines.append(f'http_requests_total{{app="{_label(name)}",code="200"}} {a["ok"]:.6f}')
                lines.append(f'http_requests_total{{app="{_label(name)}",code="500"}} {a["err"]:.6f}')
            lines += ["# HELP exporter_scrapes_total Scrapes served.",
                      "# TYPE exporter_scrapes_total counter",
                      f"exporter_scrapes_total {self.scrapes}"]
            return "\n".join(lines) + "\n"

    def snapshot(self):
        with self.lock:
            return {"apps": {n: {"rps": a["rps"], "error_ratio": a["error_ratio"]}
                             for n, a in self.apps.items()},
                    "scrapes": self.scrapes,
                    "requests": list(self.requests)}


STATE = State()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status, doc):
        self._send(status, json.dumps(doc))

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        return json.loads(raw) if raw else {}

    def do_GET(self):
        if self.path == "/metrics":
            self._send(200, STATE.metrics(), "text/plain; version=0.0.4")
        elif self.path == "/control":
            self._json(200, STATE.snapshot())
        elif self.path.startswith("/api/v1/query"):
            with STATE.lock:
                STATE.requests.append({"path": self.path,
                                       "authorization": self.headers.get("Authorization")})
                fake = dict(STATE.fake)
            body = fake["body"]
            self._send(int(fake["status"]), body if isinstance(body, str) else json.dumps(body))
        else:
            self._json(404, {"error": "no such path"})

    def do_POST(self):
        try:
            doc = self._body()
            if self.path == "/control/app":
                STATE.set_app(doc["app"], float(doc.get("rps", 50)), float(doc.get("error_ratio", 0)))
                self._json(200, STATE.snapshot())
            elif self.path == "/control/fake":
                with STATE.lock:
                    STATE.fake = {"status": int(doc.get("status", 200)), "body": doc["body"]}
                self._json(200, {"ok": True})
            else:
                self._json(404, {"error": "no such path"})
        except (KeyError, ValueError, TypeError) as e:
            self._json(400, {"error": str(e)})

    def do_DELETE(self):
        prefix = "/control/app/"
        if self.path.startswith(prefix) and STATE.drop_app(self.path[len(prefix):]):
            self._json(200, STATE.snapshot())
        else:
            self._json(404, {"error": "no such app"})


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--app", action="append", default=[], metavar="NAME:RPS:RATIO")
    args = ap.parse_args()
    for spec in args.app:
        name, rps, ratio = spec.split(":")
        STATE.set_app(name, float(rps), float(ratio))

    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.port_file)  # the reader never sees half a number
    else:
        print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
