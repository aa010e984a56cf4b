#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A fast, canned SAE endpoint for `./tools/dev bench` (stdlib only).

tests/sim/sim.py is the faithful simulator, but it recomputes every V3
signature, keeps every request and runs one thread per connection: at
1000 apps polled every second (about 2000 calls/s) it, not rollguard, would
be what is measured. This server answers the two calls an in-flight SAE app
costs (DescribeApplicationStatus, DescribeChangeOrder) from one asyncio loop,
with the same JSON shapes the simulator sends: every app has a release that
is executing, healthy and progressing, so no rule fires.

It verifies the ACS3-HMAC-SHA256 signature of 1 request in SIG_SAMPLE with the
simulator's own code (a wrong signature is counted, answered 400, and fails
the benchmark), not of every one: that would cost more CPU than rollguard.

  bench_server.py --port-file PATH [--secret testsecret]
  GET /_bench/stats -> {"requests", "by_action", "sig_checked", "sig_failed", "errors", "connections"}
"""

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import unquote

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sim"))
import sim  # noqa: E402  (canonical_request, string_to_sign, compute_signature)

SIG_SAMPLE = 50
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


class Stats:
    def __init__(self):
        self.requests = 0
        self.by_action = {}
        self.sig_checked = 0
        self.sig_failed = 0
        self.errors = 0
        self.connections = 0  # accepted TCP connections: new connections per poll

    def to_dict(self):
        return dict(self.__dict__)


def app_status(app_id):
    return {
        "RequestId": str(uuid.uuid4()).upper(), "Code": "200", "Message": "success", "Success": True,
        "Data": {"AppId": app_id, "CurrentStatus": "RUNNING", "RunningInstances": 2,
                 "LastChangeOrderId": "co-" + app_id, "LastChangeOrderRunning": True,
                 "LastChangeOrderStatus": "RUNNING", "SubStatus": None, "EnableAgent": False},
    }


def change_order(co_id, now_ms):
    app_id = co_id[3:]
    start = now_ms - 120_000
    return {
        "RequestId": str(uuid.uuid4()).upper(), "Code": "200", "Message": "success", "Success": True,
        "Data": {
            "ChangeOrderId": co_id, "AppId": app_id, "AppName": "bench", "Status": 1, "SubStatus": 0,
            "CoType": "Deploy application", "CoTypeCode": "CoDeploy", "SupportRollback": True,
            "BatchCount": 3, "BatchType": "auto", "BatchWaitTime": 0,
            "CurrentPipelineId": co_id + "-p2", "CreateTime": start - 60_000, "Description": None,
            "Pipelines": [
                {"PipelineId": co_id + "-p1", "PipelineName": "Batch 1 Change", "Status": 2,
                 "StartTime": start, "UpdateTime": start + 50_000, "ParallelCount": 0, "BatchType": 0},
                # The batch in progress moved a moment ago: nothing is stalled.
                {"PipelineId": co_id + "-p2", "PipelineName": "Batch 2 Change", "Status": 1,
                 "StartTime": start + 60_000, "UpdateTime": now_ms - 1000, "ParallelCount": 0, "BatchType": 0},
                {"PipelineId": co_id + "-p3", "PipelineName": "Batch 3 Change", "Status": 0,
                 "StartTime": None, "UpdateTime": None, "ParallelCount": 0, "BatchType": 0},
            ],
        },
    }


class Handler(asyncio.Protocol):
    def __init__(self, server):
        self.server = server
        self.buf = b""
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.server.stats.connections += 1

    def data_received(self, data):
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].decode("latin-1")
            lines = head.split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buf) < end + 4 + length:
                return
            body = self.buf[end + 4:end + 4 + length]
            self.buf = self.buf[end + 4 + length:]
            try:
                method, target, _ = lines[0].split(" ", 2)
            except ValueError:
                self.transport.close()
                return
            status, payload = self.server.answer(method, target, headers, body)
            out = json.dumps(payload).encode()
            self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                                 b"Content-Length: %d\r\n\r\n" % (status, b"OK" if status == 200 else b"Error",
                                                                 len(out)) + out)


class BenchServer:
    def __init__(self, secret):
        self.secret = secret
        self.stats = Stats()

    def verify(self, method, path, query, headers, body):
        parsed = sim.parse_authorization(headers.get("authorization"))
        if parsed is None:
            return False
        _key_id, signed, sig = parsed
        if headers.get("x-acs-content-sha256") != hashlib.sha256(body).hexdigest():
            return False
        canonical = sim.canonical_request(method, path, sim.parse_query(query), headers, signed,
                                          hashlib.sha256(body).hexdigest())
        return sim.compute_signature(self.secret, sim.string_to_sign(canonical)) == sig.lower()

    def answer(self, method, target, headers, body):
        path, _, query = target.partition("?")
        if path == "/_bench/stats":
            return 200, self.stats.to_dict()
        st = self.stats
        st.requests += 1
        action = headers.get("x-acs-action", "?")
        st.by_action[action] = st.by_action.get(action, 0) + 1
        if st.requests % SIG_SAMPLE == 0:
            st.sig_checked += 1
            if not self.verify(method, path, query, headers, body):
                st.sig_failed += 1
                return 400, {"Code": "SignatureDoesNotMatch", "Message": "bench: bad signature"}
        param = query.partition("=")[2]
        if path.endswith("/describeApplicationStatus"):
            return 200, app_status(unquote(param))
        if path.endswith("/DescribeChangeOrder"):
            return 200, change_order(unquote(param), int(time.time() * 1000))
        st.errors += 1
        return 404, {"Code": "InvalidAction.NotFound", "Message": f"bench: {method} {path} is not served"}


async def serve(args):
    server = BenchServer(args.secret)
    loop = asyncio.get_running_loop()
    srv = await loop.create_server(lambda: Handler(server), "127.0.0.1", args.port, backlog=1024)
    port = srv.sockets[0].getsockname()[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        Path(tmp).write_text(f"{port}\n")
        os.replace(tmp, args.port_file)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    await stop.wait()
    srv.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--secret", default="testsecret")
    asyncio.run(serve(ap.parse_args()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
