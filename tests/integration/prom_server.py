# SPDX-License-Identifier: MIT
"""A real Prometheus (Debian's /usr/bin/prometheus) and the test exporter
(tests/prom/exporter.py) for metric-rule tests, both on 127.0.0.1.

    exporter = Exporter(tmp_path / "exporter")
    exporter.set_app("shop-api", rps=50, error_ratio=0.0)
    prom = PromServer(tmp_path / "prom", targets=[exporter.address])
    prom.wait_target_up()
    prom.query('up')          # the raw API answer, for comparisons
    prom.stop()

Prometheus scrapes every second and evaluates every second; its storage is
a temporary directory. Every wait has a deadline (conftest.wait_for)."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from conftest import PYTHON, SRCDIR, wait_for

PROMETHEUS = os.environ.get("ROLLGUARD_PROMETHEUS") or shutil.which("prometheus") or "/usr/bin/prometheus"
EXPORTER_PY = SRCDIR / "tests" / "prom" / "exporter.py"


def prometheus_available():
    return os.access(PROMETHEUS, os.X_OK)


def _free_port():
    # Prometheus cannot be told "port 0 and write it down": take one the
    # kernel just handed out; PromServer retries if someone else got it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method, url, body=None, timeout=5.0):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Exporter:
    """tests/prom/exporter.py as a process; control wrappers."""

    def __init__(self, workdir, start_timeout=20.0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "exporter.port"
        self.log_path = self.workdir / "exporter.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([PYTHON, str(EXPORTER_PY), "--port", "0", "--port-file", str(port_file)],
                                     stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: port_file.exists() or self.proc.poll() is not None,
                     timeout=start_timeout, what="the exporter's port file")
            if self.proc.poll() is not None:
                raise AssertionError(f"exporter exited with {self.proc.returncode}: {self.log()}")
        except BaseException:
            self.stop()
            raise
        self.port = int(port_file.read_text().strip())
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def control(self, method, path, body=None):
        status, raw = _http(method, self.url + "/control" + path, body)
        doc = json.loads(raw) if raw else None
        if status != 200:
            raise AssertionError(f"exporter {method} /control{path} -> {status}: {doc}")
        return doc

    def set_app(self, app, rps=50.0, error_ratio=0.0):
        return self.control("POST", "/app", {"app": app, "rps": rps, "error_ratio": error_ratio})

    def drop_app(self, app):
        return self.control("DELETE", "/app/" + app)

    def set_fake_answer(self, body, status=200):
        return self.control("POST", "/fake", {"status": status, "body": body})

    def state(self):
        return self.control("GET", "")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class PromServer:
    """A running /usr/bin/prometheus scraping `targets` every second."""

    def __init__(self, workdir, targets, scrape_interval="1s", start_timeout=60.0, attempts=3):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.targets = list(targets)
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(self._config(scrape_interval))
        self.log_path = self.workdir / "prometheus.log"
        self.proc = None
        last = None
        for _ in range(attempts):
            try:
                self._start(start_timeout)
                return
            except _PortTaken as e:
                last = e
        raise AssertionError(f"prometheus could not get a port after {attempts} tries: {last}")

    def _config(self, interval):
        targets = ", ".join(f'"{t}"' for t in self.targets)
        return (
            "global:\n"
            f"  scrape_interval: {interval}\n"
            f"  scrape_timeout: {interval}\n"
            f"  evaluation_interval: {interval}\n"
            "scrape_configs:\n"
            "  - job_name: exporter\n"
            "    static_configs:\n"
            f"      - targets: [{targets}]\n"
        )

    def _start(self, timeout):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = self.workdir / f"data-{self.port}"
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PROMETHEUS,
             f"--config.file={self.config_path}",
             f"--storage.tsdb.path={data}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h",
             "--log.level=warn"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.workdir)

        def ready():
            if self.proc.poll() is not None:
                return "exited"
            try:
                status, _ = _http("GET", self.url + "/-/ready", timeout=2)
                return "ready" if status == 200 else None
            except OSError:
                return None

        try:
            state = wait_for(ready, timeout=timeout, interval=0.1, what=f"prometheus at {self.url} to be ready")
        except BaseException:
            self.stop()
            raise
        if state == "exited":
            self._log.close()
            log = self.log()
            if "address already in use" in log:
                raise _PortTaken(log[-300:])
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{log[-2000:]}")

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def api(self, path, params=None, timeout=5.0):
        url = self.url + path + ("?" + urllib.parse.urlencode(params) if params else "")
        status, raw = _http("GET", url, timeout=timeout)
        return status, json.loads(raw) if raw else None

    def query(self, promql):
        return self.api("/api/v1/query", {"query": promql})

    def targets_up(self):
        status, doc = self.api("/api/v1/targets")
        if status != 200:
            return False
        active = doc["data"]["activeTargets"]
        return len(active) == len(self.targets) and all(t["health"] == "up" for t in active)

    def wait_target_up(self, timeout=30.0):
        return wait_for(self.targets_up, timeout=timeout, interval=0.2, what="every scrape target to be up")

    def wait_for_samples(self, selector, n=2, timeout=30.0):
        """Until every series of the plain `selector` (metric{labels}) has n
        scraped samples in the last minute, so rate() has something to work
        with."""
        def enough():
            status, doc = self.query(f"count_over_time({selector}[1m])")
            return status == 200 and doc["data"]["result"] and \
                all(float(s["value"][1]) >= n for s in doc["data"]["result"])
        return wait_for(enough, timeout=timeout, interval=0.2, what=f"{n} samples of {selector}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and not self._log.closed:
            self._log.close()


class _PortTaken(Exception):
    pass
