# SPDX-License-Identifier: MIT
"""Metric rules end to end (issue 16): the real daemon against the simulator,
asking a REAL Prometheus (Debian's /usr/bin/prometheus, tests/integration/
prom_server.py) that scrapes tests/prom/exporter.py, whose error rate per app
the test sets.

The daemon is pointed at a small counting proxy in front of Prometheus, so
the test can count queries per app (Prometheus keeps no per-query log) and,
for the re-check test only, decide what the next answers say."""

import json
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import (config_app_from, healthy_order, rule, sae_app, wait_for, write_config)
from prom_server import Exporter, PromServer, prometheus_available

pytestmark = pytest.mark.skipif(not prometheus_available(), reason="needs /usr/bin/prometheus")

# A short window: the rate follows the exporter within a few scrapes.
ERROR_RATE = ('sum(rate(http_requests_total{app="{{app}}",code=~"5.."}[4s]))'
              ' / sum(rate(http_requests_total{app="{{app}}"}[4s]))')
FOR = "3s"


class PromProxy:
    """Forwards GET /api/v1/query to Prometheus and records each query.
    fake(value) makes it answer a one-sample vector itself instead."""

    def __init__(self, upstream):
        self.upstream = upstream
        self.lock = threading.Lock()
        self.seen = []          # (monotonic time, promql)
        self.fake_value = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def do_GET(self):
                u = urllib.parse.urlsplit(self.path)
                q = urllib.parse.parse_qs(u.query).get("query", [""])[0]
                with proxy.lock:
                    proxy.seen.append((time.monotonic(), q))
                    fake = proxy.fake_value
                if fake is not None:
                    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                        {"metric": {}, "value": [time.time(), str(fake)]}]}}).encode()
                    status = 200
                else:
                    try:
                        with urllib.request.urlopen(proxy.upstream + self.path, timeout=5) as r:
                            status, body = r.status, r.read()
                    except urllib.error.HTTPError as e:
                        status, body = e.code, e.read()
                    except OSError:
                        # upstream gone: the daemon sees no answer at all
                        self.close_connection = True
                        self.connection.shutdown(2)
                        return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}"
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def queries(self, app=None, since=0.0):
        with self.lock:
            return [q for t, q in self.seen if t >= since and (app is None or f'app="{app}"' in q)]

    def fake(self, value):
        with self.lock:
            self.fake_value = value

    def stop(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    base = tmp_path_factory.mktemp("metric")
    exporter = Exporter(base / "exporter")
    prom = None
    try:
        prom = PromServer(base / "prom", targets=[exporter.address])
        prom.wait_target_up()
        yield exporter, prom
    finally:
        if prom:
            prom.stop()
        exporter.stop()


@pytest.fixture
def proxy(stack):
    _, prom = stack
    p = PromProxy(prom.url)
    yield p
    p.stop()


def metric_rule(query=ERROR_RATE, above=0.05, for_=FOR, **kw):
    return rule("error-rate", for_=for_, status=["executing"], query=query, above=above, **kw)


def long_release():
    # progresses on every describe and stays in flight for the whole test
    return healthy_order(steps=100000, step_seconds=1)


def config(tmp_path, sim, apps, prom_url, extra=None):
    doc = {"prometheus": {"url": prom_url, "timeout": "2s"}}
    doc.update(extra or {})
    return write_config(tmp_path, sim, apps, extra=doc)


def calls_for(sim, app):
    """The cloud calls the simulator recorded about one app."""
    orders = {co["id"] for co in app["change_orders"]}
    for co in sim.apps():
        if co["app_id"] == app["app_id"]:
            orders |= {o["id"] for o in co.get("change_orders", [])}
    return [r for r in sim.requests()
            if r.get("app_id") == app["app_id"] or r.get("change_order_id") in orders]


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics_text(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def settle(exporter, prom, app, ratio, above=None, below=None):
    """Set an app's error ratio and wait until Prometheus reads it."""
    exporter.set_app(app, rps=50, error_ratio=ratio)
    q = ERROR_RATE.replace("{{app}}", app)

    def reads():
        status, doc = prom.query(q)
        if status != 200 or not doc["data"]["result"]:
            return False
        v = float(doc["data"]["result"][0]["value"][1])
        return (above is None or v > above) and (below is None or v < below)
    wait_for(reads, timeout=30, interval=0.2, what=f"prometheus to read {app}'s error rate {ratio}")


def test_high_error_rate_rolls_back_once_after_for_low_one_does_not(stack, proxy, sim, tmp_path,
                                                                     start_daemon):
    exporter, prom = stack
    settle(exporter, prom, "mr-high", 0.0, below=0.01)
    settle(exporter, prom, "mr-low", 0.0, below=0.01)
    hi = sim.add_app(sae_app(name="mr-high", orders=[long_release()]))
    lo = sim.add_app(sae_app(name="mr-low", orders=[long_release()]))
    hi_co, lo_co = hi["change_orders"][-1]["id"], lo["change_orders"][-1]["id"]
    apps = [config_app_from(a, name=a["name"], rules=[metric_rule()]) for a in (hi, lo)]
    port = free_port()
    token = tmp_path / "alert-token"
    token.write_text("mr-alert-token-1\n")
    d = start_daemon(config(tmp_path, sim, apps, proxy.url,
                            extra={"alerts": {"listen": f"127.0.0.1:{port}", "token_file": str(token)}}))

    # both are asked while their releases are in flight; neither holds yet
    wait_for(lambda: len(proxy.queries("mr-high")) >= 3 and len(proxy.queries("mr-low")) >= 3,
             timeout=20, what="queries for both apps")
    assert not sim.rollbacks(hi_co) and not sim.rollbacks(lo_co)

    exporter.set_app("mr-high", rps=50, error_ratio=0.3)
    held = d.wait_for_log(re.compile(r"rule error-rate matches .*query value [0-9.]+ above 0\.05"),
                          timeout=30)
    t_hold = time.monotonic()
    assert "holding" in held or "acting if it still holds" in held
    rb = sim.wait_for_rollback(hi_co, timeout=30)
    assert time.monotonic() - t_hold >= 2.5, "fired before `for` (3s) had passed"
    assert rb["action"] in ("AbortAndRollbackChangeOrder", "rollback", "abort_and_rollback") or rb

    decision = d.wait_for_log(re.compile(r"rule error-rate fired on " + re.escape(hi_co)))
    assert re.search(r"query value 0\.[0-9]+ above 0\.05", decision), decision
    assert re.search(r" value=0\.[0-9]+ threshold=0\.05", decision), decision
    # the action's record carries what the re-check before it read
    done = d.wait_for_log(re.compile(r"rollguard-action-done .*co=" + re.escape(hi_co)))
    assert re.search(r" value=0\.[0-9]+ threshold=0\.05", done), done

    # the low app keeps being asked and is never rolled back; the high one
    # is rolled back exactly once
    n = len(proxy.queries("mr-low"))
    wait_for(lambda: len(proxy.queries("mr-low")) >= n + 4, timeout=20, what="more looks at mr-low")
    assert len(sim.rollbacks(hi_co)) == 1
    assert sim.rollbacks(lo_co) == []
    assert d.running

    text = metrics_text(port)
    low = re.search(r'^rollguard_metric_value\{app="mr-low",rule="error-rate"\} (\S+)$', text, re.M)
    assert low and float(low.group(1)) < 0.05, text
    ok = re.search(r'^rollguard_metric_queries_total\{result="ok"\} (\d+)$', text, re.M)
    assert ok and int(ok.group(1)) >= 6, text


def test_broken_query_never_rolls_back_and_logs_once(stack, proxy, sim, tmp_path, start_daemon):
    exporter, prom = stack
    settle(exporter, prom, "mr-broken", 0.5, above=0.05)
    a = sim.add_app(sae_app(name="mr-broken", orders=[long_release()]))
    co = a["change_orders"][-1]["id"]
    broken = 'sum(rate(http_requests_total{app="{{app}}"}[4s]) /'  # a PromQL syntax error
    d = start_daemon(config(tmp_path, sim, [config_app_from(a, name=a["name"],
                                                            rules=[metric_rule(query=broken, for_="1s")])],
                            proxy.url))
    d.wait_for_log(re.compile(r"rule error-rate: query inconclusive \(query_error\): .*parse"), timeout=20)
    n = len(proxy.queries("mr-broken"))
    wait_for(lambda: len(proxy.queries("mr-broken")) >= n + 5, timeout=20, what="five more looks")
    assert sim.rollbacks(co) == []
    assert len(d.find_logs("query inconclusive")) == 1, "logged once per change, not per look"
    assert d.running


def test_stopped_prometheus_never_rolls_back_and_daemon_keeps_watching(stack, sim, tmp_path, start_daemon):
    exporter, _ = stack
    exporter.set_app("mr-down", rps=50, error_ratio=0.0)
    own = PromServer(tmp_path / "prom-own", targets=[exporter.address])
    try:
        own.wait_target_up()
        own.wait_for_samples('http_requests_total{app="mr-down"}', n=3)
        a = sim.add_app(sae_app(name="mr-down", orders=[long_release()]))
        co = a["change_orders"][-1]["id"]
        d = start_daemon(config(tmp_path, sim, [config_app_from(a, name=a["name"],
                                                                rules=[metric_rule(for_="1s")])], own.url))
        wait_for(lambda: len(sim.requests(action="DescribeChangeOrder")) >= 2, timeout=20,
                 what="the release to be looked at")
        own.stop()
        # the error rate rises while nobody can read it
        exporter.set_app("mr-down", rps=50, error_ratio=0.9)
        d.wait_for_log(re.compile(r"rule error-rate: query inconclusive \(unreachable\)"), timeout=20)
        n = len(sim.requests(action="DescribeChangeOrder"))
        wait_for(lambda: len(sim.requests(action="DescribeChangeOrder")) >= n + 5, timeout=20,
                 what="the daemon to keep watching")
        assert sim.rollbacks(co) == []
        assert len(d.find_logs("query inconclusive (unreachable)")) == 1, "logged once per change"
        assert d.running
    finally:
        own.stop()


def test_idle_app_sends_no_query(stack, proxy, sim, tmp_path, start_daemon):
    exporter, prom = stack
    exporter.set_app("mr-idle", rps=50, error_ratio=0.5)
    a = sim.add_app(sae_app(name="mr-idle"))
    d = start_daemon(config(tmp_path, sim, [config_app_from(a, name=a["name"], rules=[metric_rule()])],
                            proxy.url))
    wait_for(lambda: len(calls_for(sim, a)) >= 5, timeout=20, what="five idle polls")
    assert proxy.queries("mr-idle") == [], "an idle app must not be queried"
    # a release starts: now it is asked
    sim.add_change_order(a["app_id"], long_release())
    wait_for(lambda: proxy.queries("mr-idle"), timeout=20, what="a query once a release is in flight")
    assert d.running


def test_recheck_before_rollback_drops_when_the_value_falls(proxy, sim, tmp_path, start_daemon):
    proxy.fake(0.4)  # the proxy answers; the test decides when the value falls
    a = sim.add_app(sae_app(name="mr-recheck", orders=[long_release()]))
    co = a["change_orders"][-1]["id"]
    # the re-read before acting takes 1.5 s: time for the value to fall
    sim.add_fault(kind="slow", seconds=1.5, count=-1, match={"action": "DescribeChangeOrder"})
    d = start_daemon(config(tmp_path, sim, [config_app_from(a, name=a["name"],
                                                            rules=[metric_rule(for_="2s")])], proxy.url))
    d.wait_for_log(re.compile(r"rule error-rate fired on .*re-reading the order first"), timeout=30)
    proxy.fake(0.01)
    line = d.wait_for_log("no longer holds", timeout=20)
    assert "nothing done" in line and "0.01" in line, line
    assert sim.rollbacks(co) == []
    assert d.running


def test_cloud_calls_unchanged_by_metric_rules(stack, proxy, sim, tmp_path, start_daemon):
    """Two apps with releases in flight over the same period, one with a
    metric rule, one with a plain rule: the same cloud calls per look."""
    exporter, prom = stack
    exporter.set_app("mr-budget-m", rps=50, error_ratio=0.0)
    m = sim.add_app(sae_app(name="mr-budget-m", orders=[long_release()]))
    p = sim.add_app(sae_app(name="mr-budget-p", orders=[long_release()]))
    plain = rule("failed", status=["executing"], pipeline_failed=True)
    d = start_daemon(config(tmp_path, sim, [config_app_from(m, name=m["name"], rules=[metric_rule()]),
                                            config_app_from(p, name=p["name"], rules=[plain])], proxy.url))
    wait_for(lambda: len(proxy.queries("mr-budget-m")) >= 8, timeout=30, what="eight looks with queries")

    cm, cp = len(calls_for(sim, m)), len(calls_for(sim, p))
    # one call per look while in flight (issue 11): eight looks, ~nine calls
    assert cm >= 8 and cp >= 8
    # the same schedule: at most two looks apart
    assert abs(cm - cp) <= 2, (cm, cp)
    assert d.running


def test_check_shows_query_rules_and_runs_them(stack, sim, tmp_path, run_cli):
    exporter, prom = stack
    settle(exporter, prom, "mr-check", 0.2, above=0.1)
    a = sae_app(name="mr-check")
    path = config(tmp_path, sim, [config_app_from(a, name="mr-check", rules=[metric_rule()])], prom.url)
    r = run_cli("--config", path, "check")
    assert r.returncode == 0, r.stderr
    assert f"prometheus: {prom.url}" in r.stdout
    assert re.search(r"error-rate .*query above 0\.05: sum\(rate\(http_requests_total\{app=\"\{\{app\}\}\"", r.stdout), r.stdout
    assert "queries" not in r.stdout.split("prometheus:")[1], "plain check never asks"

    r = run_cli("--config", path, "check", "--query")
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"mr-check/error-rate: value ([0-9.e+-]+)", r.stdout)
    assert m and 0.1 < float(m.group(1)) <= 0.3, r.stdout
    assert "above 0.05: holds now" in r.stdout

    # an inconclusive answer is reported with the server's text, exit 3
    broken = config(tmp_path, sim, [config_app_from(a, name="mr-check",
                                                    rules=[metric_rule(query="sum(rate(x[1m]) /")])], prom.url)
    r = run_cli("--config", broken, "check", "--query")
    assert r.returncode == 3, r.stdout
    assert re.search(r"mr-check/error-rate: inconclusive \(query_error\): .*parse", r.stdout), r.stdout


def test_check_query_rule_needs_prometheus(sim, tmp_path, run_cli):
    a = sae_app(name="mr-noprom")
    path = write_config(tmp_path, sim, [config_app_from(a, name="mr-noprom", rules=[metric_rule()])])
    r = run_cli("--config", path, "check")
    assert r.returncode == 1
    assert re.match(r".*rollguard\.yaml:\d+:\d+: apps\[0\]\.rules\[0\]\.when\.query: a query rule needs the "
                    r"prometheus section", r.stderr), r.stderr
