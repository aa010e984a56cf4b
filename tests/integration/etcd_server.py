# SPDX-License-Identifier: MIT
"""A real etcd (/usr/bin/etcd, Debian etcd-server) for tests: one member on
127.0.0.1 with free ports and a temporary data dir, plus a tiny client for
its v3 HTTP/JSON gateway so tests can look at and change keys directly.

    from etcd_server import EtcdServer, etcd   # etcd: the pytest fixture

    with EtcdServer(tmp_path) as e:
        e.url                  # "http://127.0.0.1:PORT"
        e.get("/p/leader")     # {"key","value","create_revision","lease",..} or None
        e.put("/p/k", "v")
        e.stop(); e.start()    # same data dir and ports: a restart
"""

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ETCD_BIN = os.environ.get("ROLLGUARD_ETCD") or shutil.which("etcd") or "/usr/bin/etcd"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64(s):
    return base64.b64encode(s.encode()).decode()


def _unb64(s):
    return base64.b64decode(s or "").decode()


class EtcdServer:
    def __init__(self, workdir, extra_args=()):
        self.extra_args = list(extra_args)
        self.dir = Path(workdir) / f"etcd-{os.getpid()}-{_free_port()}"
        self.dir.mkdir(parents=True)
        self.client_port = _free_port()
        self.peer_port = _free_port()
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.proc = None
        self.log_path = self.dir / "etcd.log"

    # -- life cycle --------------------------------------------------------

    def start(self, timeout=20.0):
        assert self.proc is None
        peer = f"http://127.0.0.1:{self.peer_port}"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [ETCD_BIN, "--name", "t", "--data-dir", str(self.dir / "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", f"t={peer}", "--log-level", "warn", *self.extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd exited with {self.proc.returncode}: "
                                     + self.log_path.read_text(errors="replace")[-2000:])
            try:
                if self.call("/v3/kv/range", {"key": _b64("health")}, timeout=1) is not None:
                    return self
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise AssertionError(f"etcd did not answer within {timeout:g}s")
            time.sleep(0.05)

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._log.close()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    # -- the gateway -------------------------------------------------------

    def call(self, path, body, timeout=5, token=None):
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = token
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return json.loads(e.read() or b"{}")

    @staticmethod
    def _kv(kv):
        out = dict(kv)
        out["key"] = _unb64(kv.get("key"))
        out["value"] = _unb64(kv.get("value"))
        for f in ("create_revision", "mod_revision", "version", "lease"):
            out[f] = int(kv.get(f, 0))
        return out

    def get(self, key):
        kvs = self.call("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        return self._kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix):
        end = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        kvs = self.call("/v3/kv/range", {"key": _b64(prefix), "range_end": _b64(end)}).get("kvs") or []
        return [self._kv(kv) for kv in kvs]

    def put(self, key, value, lease=0):
        body = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        return self.call("/v3/kv/put", body)

    def delete(self, key):
        return self.call("/v3/kv/deleterange", {"key": _b64(key)})

    def grant(self, ttl):
        return int(self.call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def txn(self, body):
        return self.call("/v3/kv/txn", body)

    def enable_auth(self, user, password):
        """A root user (etcd requires one) and authentication on; from then
        on the helpers above are refused: use call(..., token=)."""
        for path, body in (("/v3/auth/user/add", {"name": user, "password": password}),
                           ("/v3/auth/role/add", {"name": "root"}),
                           ("/v3/auth/user/grant", {"user": user, "role": "root"}),
                           ("/v3/auth/enable", {})):
            r = self.call(path, body)
            assert "error" not in r, (path, r)


@pytest.fixture
def etcd(tmp_path):
    """A fresh single-member etcd for the test; stopped and removed after."""
    e = EtcdServer(tmp_path)
    e.start()
    try:
        yield e
    finally:
        e.cleanup()
