#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The comparison for `./tools/dev bench`: the smallest honest Python script
that does rollguard's polling. For each app, every INTERVAL: a V3-signed
DescribeApplicationStatus, and when a release is in flight a V3-signed
DescribeChangeOrder, JSON parsed, the stuck condition checked. Stdlib only
(http.client with one kept-alive connection per worker thread, as urllib
would use, hmac, hashlib).

  poll_baseline.py --url http://127.0.0.1:PORT --apps FILE --interval 1 --seconds 30

FILE holds one app id per line. Runs until --seconds passed, then prints a
JSON line {"requests", "errors", "seconds"} and exits. The benchmark measures
this process's CPU from /proc, the same way it measures rollguard's.
"""

import argparse
import hashlib
import heapq
import hmac
import http.client
import json
import os
import random
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote, urlsplit

VERSION = "2019-05-06"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def enc(s):
    return quote(s, safe="-_.~")


def signed_headers(key_id, secret, host, method, path, query, action):
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": VERSION,
        "x-acs-date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "x-acs-signature-nonce": uuid.uuid4().hex,
        "x-acs-content-sha256": EMPTY_SHA256,
    }
    names = sorted(headers)
    canonical = "\n".join([
        method, path, "&".join(f"{enc(k)}={enc(v)}" for k, v in sorted(query.items())),
        "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names), EMPTY_SHA256])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"ACS3-HMAC-SHA256 Credential={key_id},SignedHeaders={';'.join(names)},Signature={sig}"
    headers["accept"] = "application/json"
    return headers


class Poller:
    def __init__(self, url, key_id, secret):
        u = urlsplit(url)
        self.host_header = u.netloc
        self.hostname, self.port = u.hostname, u.port
        self.key_id, self.secret = key_id, secret
        self.local = threading.local()
        self.lock = threading.Lock()
        self.requests = 0
        self.errors = 0

    def call(self, path, action, query):
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = http.client.HTTPConnection(self.hostname, self.port, timeout=10)
        headers = signed_headers(self.key_id, self.secret, self.host_header, "GET", path, query, action)
        target = path + "?" + "&".join(f"{enc(k)}={enc(v)}" for k, v in query.items())
        try:
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
            doc = json.loads(resp.read())
        except (OSError, http.client.HTTPException, ValueError):
            conn.close()
            self.local.conn = None
            with self.lock:
                self.errors += 1
            return None
        with self.lock:
            self.requests += 1
        return doc if resp.status == 200 else None

    def poll(self, app_id):
        doc = self.call("/pop/v1/sam/app/describeApplicationStatus", "DescribeApplicationStatus",
                        {"AppId": app_id})
        data = (doc or {}).get("Data") or {}
        if not data.get("LastChangeOrderRunning") or not data.get("LastChangeOrderId"):
            return
        doc = self.call("/pop/v1/sam/changeorder/DescribeChangeOrder", "DescribeChangeOrder",
                        {"ChangeOrderId": data["LastChangeOrderId"]})
        co = (doc or {}).get("Data") or {}
        # The rule rollguard would evaluate: executing with an error.
        if co.get("Status") == 1 and co.get("SubStatus") == 1:
            print(f"stuck: {co.get('ChangeOrderId')}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", required=True)
    ap.add_argument("--apps", required=True)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()
    apps = [line.strip() for line in open(args.apps) if line.strip()]
    poller = Poller(args.url, os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "testid"),
                    os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "testsecret"))
    start = time.monotonic()
    end = start + args.seconds
    # (due time, app): spread over the first interval, then every interval
    # with the same 10% jitter rollguard uses. A poll of an app is never
    # started while its previous one is still running.
    due = [(start + args.interval * i / len(apps), app) for i, app in enumerate(apps)]
    heapq.heapify(due)
    done = []
    done_lock = threading.Condition()

    def run(app):
        poller.poll(app)
        with done_lock:
            done.append(app)
            done_lock.notify()

    with ThreadPoolExecutor(args.workers) as pool:
        while True:
            now = time.monotonic()
            if now >= end:
                break
            with done_lock:
                for app in done:
                    heapq.heappush(due, (now + args.interval * random.uniform(0.9, 1.1), app))
                done.clear()
            while due and due[0][0] <= now:
                _, app = heapq.heappop(due)
                pool.submit(run, app)
            wait = (due[0][0] - now) if due else 0.05
            with done_lock:
                if not done:
                    done_lock.wait(min(max(wait, 0.001), end - now))
    print(json.dumps({"requests": poller.requests, "errors": poller.errors,
                      "seconds": round(time.monotonic() - start, 3)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
