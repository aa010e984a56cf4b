#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A competing client that plays the user's deploy pipeline: it calls the
simulated SAE API with its own AccessKey at an even rate and counts how
many of its calls were throttled (the account limit is shared by every
caller of the account, rollguard included). Standard library only.

  python3 tests/sim/pipeline.py --port PORT [--key ID:SECRET] --rate 20/min
                                [--app APP_ID ...] [--duration SECONDS]
                                [--json-out FILE]

sim.py also runs it as a thread (--pipeline-rate, POST /_sim/pipeline).
Rates are N/min, N/s, N/h or N/<seconds>s (compressed time: 20/6s).
"""

import argparse
import hashlib
import http.client
import json
import re
import signal
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sim as simmod  # noqa: E402  (the V3 canonical request and signature)

DEFAULT_KEY = "pipeline:pipelinesecret"
STATUS_PATH = "/pop/v1/sam/app/describeApplicationStatus"


def parse_rate(text):
    """'20/min' -> (20, 60.0); '20/6s' -> (20, 6.0). Raises ValueError."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(min|s|h|(\d+(?:\.\d+)?)s)\s*", str(text))
    if not m or int(m.group(1)) < 1:
        raise ValueError(f"rate {text!r}: expected N/min, N/s, N/h or N/<seconds>s")
    unit = m.group(2)
    window = {"min": 60.0, "s": 1.0, "h": 3600.0}.get(unit)
    if window is None:
        window = float(m.group(3))
    if window <= 0:
        raise ValueError(f"rate {text!r}: the window must be positive")
    return int(m.group(1)), window


def signed_headers(method, host, path, query, action, key_id, secret):
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": simmod.SAE_VERSION,
        "x-acs-date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    signed = sorted(headers)
    canonical = simmod.canonical_request(method, path, query, headers, signed, headers["x-acs-content-sha256"])
    sig = simmod.compute_signature(secret, simmod.string_to_sign(canonical))
    headers["authorization"] = (f"{simmod.ALGORITHM} Credential={key_id},"
                                f"SignedHeaders={';'.join(signed)},Signature={sig}")
    headers["accept"] = "application/json"
    return headers


class Pipeline(threading.Thread):
    """Calls DescribeApplicationStatus round robin over the apps (a callable
    or a list), `rate` calls per `window` seconds, evenly spaced."""

    def __init__(self, port, key_id, secret, rate, window, apps, host="127.0.0.1"):
        super().__init__(daemon=True, name="pipeline")
        self.port, self.host = port, host
        self.key_id, self.secret = key_id, secret
        self.rate, self.window = rate, window
        self.apps = apps
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.reset_counts()

    def reset_counts(self):
        with self.lock:
            self.calls = 0
            self.ok = 0
            self.throttled = 0
            self.errors = 0
            self.throttled_at = []

    def stats(self):
        with self.lock:
            return {"running": not self.halt.is_set(), "access_key_id": self.key_id,
                    "rate": self.rate, "window_seconds": self.window,
                    "rate_per_minute": self.rate * 60.0 / self.window, "calls": self.calls,
                    "ok": self.ok, "throttled": self.throttled, "errors": self.errors,
                    "throttled_at": list(self.throttled_at)}

    def stop(self, timeout=5):
        self.halt.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)

    def _app_ids(self):
        ids = self.apps() if callable(self.apps) else self.apps
        return list(ids) or ["pipeline-has-no-app"]

    def call_once(self, conn, app_id):
        query = [("AppId", app_id)]
        headers = signed_headers("GET", f"{self.host}:{self.port}", STATUS_PATH, query,
                                 "DescribeApplicationStatus", self.key_id, self.secret)
        conn.request("GET", STATUS_PATH + "?AppId=" + simmod.rfc3986(app_id), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        try:
            code = json.loads(body).get("Code")
        except (ValueError, AttributeError):
            code = None
        return resp.status, code

    def run(self):
        gap = self.window / self.rate
        start = time.monotonic()
        conn = None
        i = 0
        while not self.halt.is_set():
            ids = self._app_ids()
            app_id = ids[i % len(ids)]
            try:
                conn = conn or http.client.HTTPConnection(self.host, self.port, timeout=10)
                status, code = self.call_once(conn, app_id)
            except (OSError, http.client.HTTPException):
                if conn is not None:
                    conn.close()
                conn, status, code = None, None, None
            with self.lock:
                self.calls += 1
                if code is not None and str(code).startswith("Throttling"):
                    self.throttled += 1
                    self.throttled_at.append(time.time())
                elif status == 200:
                    self.ok += 1
                else:
                    self.errors += 1
            i += 1
            # even spacing from the start: a slow answer does not shift the plan
            self.halt.wait(max(0.0, start + i * gap - time.monotonic()))
        if conn is not None:
            conn.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="a deploy pipeline competing for the account's API limit")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--key", default=DEFAULT_KEY, help="ID:SECRET (default pipeline:pipelinesecret)")
    ap.add_argument("--rate", default="20/min")
    ap.add_argument("--app", action="append", default=[])
    ap.add_argument("--duration", type=float, default=None, help="seconds; default until SIGTERM")
    ap.add_argument("--json-out")
    args = ap.parse_args(argv)
    try:
        rate, window = parse_rate(args.rate)
    except ValueError as e:
        ap.error(str(e))
    key_id, _, secret = args.key.partition(":")
    if not key_id or not secret:
        ap.error("--key: expected ID:SECRET")
    p = Pipeline(args.port, key_id, secret, rate, window, args.app)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    p.start()
    done.wait(args.duration)
    p.stop()
    out = json.dumps(p.stats())
    if args.json_out:
        Path(args.json_out).write_text(out + "\n")
    print(out, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
