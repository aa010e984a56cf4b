# SPDX-License-Identifier: MIT
"""src/prom against a REAL Prometheus (Debian's /usr/bin/prometheus on
127.0.0.1) scraping tests/prom/exporter.py, through tests/prom_probe (the
client on sd-event + the curl-multi client, printing one JSON verdict per
evaluation). The rule machinery is not involved: this is about what a query
reads and why an answer is inconclusive."""

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import SLOWDOWN, _SECRETS, assert_no_secrets, assert_tool_clean, wait_for
from prom_server import Exporter, PromServer, prometheus_available

pytestmark = pytest.mark.skipif(not prometheus_available(), reason="needs /usr/bin/prometheus")


def _probe_path():
    p = os.environ.get("ROLLGUARD_PROM_PROBE")
    if p:
        return Path(p)
    return Path(os.environ.get("ROLLGUARD_BIN", "build/rollguard")).resolve().parent / "tests" / "prom_probe"


PROBE = _probe_path()

ERROR_RATE = ('sum(rate(http_requests_total{app="{{app}}",code=~"5.."}[5s]))'
              ' / sum(rate(http_requests_total{app="{{app}}"}[5s]))')
THRESHOLD = "0.05"

TOKEN = "s3cr3t-prom-token-8d1f"
_SECRETS.add(TOKEN)


def probe(url, query, *args, timeout=30):
    """Runs prom_probe; returns (exit code, [verdict dicts])."""
    if not PROBE.exists():
        pytest.skip(f"{PROBE} not built")
    argv = [str(PROBE), "--url", url, "--query", query, "--timeout", "5s", *args]
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=timeout * SLOWDOWN)
    out = p.stdout + p.stderr
    assert_tool_clean(p.returncode, out, "prom_probe")
    assert_no_secrets(out, "prom_probe output")
    verdicts = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return p.returncode, verdicts, p.stderr


def probe_once(url, query, *args):
    rc, verdicts, err = probe(url, query, *args)
    assert rc == 0 and len(verdicts) == 1, f"prom_probe rc {rc}: {err}"
    return verdicts[0]


def read_until(url, query, pred, what, timeout=30.0, args=()):
    """Evaluates until pred(verdict) holds; returns that verdict."""
    last = {}

    def attempt():
        v = probe_once(url, query, *args)
        last["v"] = v
        return v if pred(v) else None
    try:
        return wait_for(attempt, timeout=timeout, interval=0.3, what=what)
    except AssertionError as e:
        raise AssertionError(f"{e}; last verdict: {last.get('v')}") from None


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """One exporter and one Prometheus for the module (prometheus takes a
    few seconds to start); each test uses its own app names."""
    base = tmp_path_factory.mktemp("prom")
    exporter = Exporter(base / "exporter")
    for app in ("steady", "rising", "quiet", "idle"):
        exporter.set_app(app, rps=40, error_ratio=0.0)
    exporter.set_app("idle", rps=0, error_ratio=0.0)
    prom = PromServer(base / "prom", targets=[exporter.address])
    try:
        prom.wait_target_up()
        prom.wait_for_samples('http_requests_total{app="steady"}', n=3)
        yield exporter, prom
    finally:
        prom.stop()
        exporter.stop()


def test_raised_error_rate_reads_above_the_threshold(stack):
    exporter, prom = stack
    args = ("--app", "rising", "--above", THRESHOLD)
    v = read_until(prom.url, ERROR_RATE, lambda v: v["reason"] == "ok", "a first value", args=args)
    assert v["value"] < 0.05 and v["holds"] is False, v

    exporter.set_app("rising", rps=40, error_ratio=0.5)
    v = read_until(prom.url, ERROR_RATE, lambda v: v.get("holds"), "the raised error rate to read above 0.05",
                   args=args)
    assert v["reason"] == "ok" and v["value"] > 0.05 and v["text"] == ""
    assert v["http_status"] == 200 and v["n_series"] == 1

    # and it stays there: the probe's own repeat loop, three reads
    rc, verdicts, err = probe(prom.url, ERROR_RATE, *args, "--count", "3", "--interval", "200ms")
    assert rc == 0 and len(verdicts) == 3, err
    assert all(v["holds"] and 0.05 < v["value"] <= 1.0 for v in verdicts), verdicts


def test_low_error_rate_reads_below(stack):
    exporter, prom = stack
    exporter.set_app("quiet", rps=40, error_ratio=0.01)
    v = read_until(prom.url, ERROR_RATE, lambda v: v["reason"] == "ok" and v["value"] > 0,
                   "the quiet app's 1% to show", args=("--app", "quiet", "--above", THRESHOLD))
    assert v["value"] < 0.05 and v["holds"] is False

    rc, verdicts, _ = probe(prom.url, ERROR_RATE, "--app", "quiet", "--above", THRESHOLD,
                            "--count", "3", "--interval", "200ms")
    assert rc == 0 and [v["holds"] for v in verdicts] == [False] * 3, verdicts
    # the same number as a "below" condition holds
    v = probe_once(prom.url, ERROR_RATE, "--app", "quiet", "--below", THRESHOLD)
    assert v["reason"] == "ok" and v["holds"] is True
    # an app without any error at all reads 0, not "no data"
    v = probe_once(prom.url, ERROR_RATE, "--app", "steady", "--above", THRESHOLD)
    assert v["reason"] == "ok" and v["value"] == 0 and v["holds"] is False


def test_empty_result_is_inconclusive(stack):
    _, prom = stack
    v = probe_once(prom.url, ERROR_RATE, "--app", "no-such-app", "--above", "-1")
    assert v["reason"] == "empty" and v["holds"] is False and v["value"] is None
    assert "no series" in v["text"]
    assert v["shown"].startswith("inconclusive (empty): ")


def test_query_syntax_error_shows_the_servers_text(stack):
    _, prom = stack
    broken = 'sum(rate(http_requests_total{app="{{app}}"}[5s])'
    v = probe_once(prom.url, broken, "--app", "steady", "--above", "-1")
    assert v["reason"] == "query_error" and v["holds"] is False
    assert v["http_status"] == 400
    # exactly what Prometheus itself says about the expanded query
    status, doc = prom.query('sum(rate(http_requests_total{app="steady"}[5s])')
    assert status == 400 and doc["errorType"] == "bad_data"
    assert v["text"] == f"query error (bad_data, HTTP 400): {doc['error']}"
    assert "parse error" in v["text"]


def test_several_series_are_inconclusive(stack):
    _, prom = stack
    v = probe_once(prom.url, 'rate(http_requests_total{app="{{app}}"}[5s])', "--app", "steady",
                   "--above", "-1")
    assert v["reason"] == "many_series" and v["n_series"] == 2 and v["holds"] is False
    assert "2 series" in v["text"] and 'app="steady"' in v["text"]


def test_nan_and_range_vectors_are_inconclusive(stack):
    _, prom = stack
    # no requests at all: 0/0
    v = read_until(prom.url, ERROR_RATE, lambda v: v["reason"] != "empty", "the idle app's series",
                   args=("--app", "idle", "--below", "1"))
    assert v["reason"] == "not_finite" and "NaN" in v["text"] and v["holds"] is False
    v = probe_once(prom.url, 'http_requests_total{app="{{app}}",code="500"}[5s]', "--app", "steady")
    assert v["reason"] == "wrong_type" and "range vector" in v["text"]
    # a scalar is a number like a one-sample vector
    v = probe_once(prom.url, "scalar(sum(up)) * 2", "--above", "1")
    assert v["reason"] == "ok" and v["value"] == 2 and v["holds"] is True


def test_stopped_prometheus_is_inconclusive(tmp_path, stack):
    exporter, _ = stack
    prom = PromServer(tmp_path / "prom", targets=[exporter.address])
    try:
        prom.wait_target_up()
        v = probe_once(prom.url, "scalar(sum(up))", "--above", "0")
        assert v["reason"] == "ok" and v["holds"] is True
    finally:
        prom.stop()
    rc, verdicts, err = probe(prom.url, "scalar(sum(up))", "--above", "0", "--count", "2",
                              "--interval", "100ms")
    assert rc == 0 and len(verdicts) == 2, err
    for v in verdicts:
        assert v["reason"] == "unreachable" and v["holds"] is False and v["http_status"] == 0
        assert v["text"].startswith(f"no answer from {prom.url}: ")
    # the same cause reads the same, so it is logged once, not at every look
    assert verdicts[0]["text"] == verdicts[1]["text"]


def test_template_refusal_names_the_place(stack):
    _, prom = stack
    rc, verdicts, err = probe(prom.url, 'up{app="{{application}}"}', "--app", "steady")
    assert rc == 2 and verdicts == []
    assert "at byte 9: unknown placeholder {{application}}" in err
    # an app name outside quotes that would change the query is refused
    rc, _, err = probe(prom.url, "up or {{app}}", "--app", "x-y")
    assert rc == 2 and "stands outside a quoted string" in err


@pytest.mark.parametrize("auth, header", [
    (None, f"Bearer {TOKEN}"),
    ("bearer", f"Bearer {TOKEN}"),
    ("token", TOKEN),
])
def test_token_goes_only_into_the_authorization_header(tmp_path, stack, auth, header):
    exporter, _ = stack
    token_file = tmp_path / "prom-token"
    token_file.write_text(TOKEN + "\n")
    exporter.set_fake_answer({"status": "success", "data": {"resultType": "scalar", "result": [1, "0.5"]}})
    before = len(exporter.state()["requests"])
    args = ["--token-file", str(token_file), "--above", "0.1"] + (["--auth", auth] if auth else [])
    v = probe_once(exporter.url, "up", *args)  # probe() checks its output for the token
    assert v["reason"] == "ok" and v["value"] == 0.5
    reqs = exporter.state()["requests"][before:]
    assert len(reqs) == 1
    assert reqs[0]["authorization"] == header
    assert TOKEN not in reqs[0]["path"]
    assert reqs[0]["path"].startswith("/api/v1/query?query=up&time=")

    # a server that echoes the token back does not get it into the verdict
    exporter.set_fake_answer(f"denied for {TOKEN}", status=401)
    v = probe_once(exporter.url, "up", *args)
    assert v["reason"] == "http_status" and TOKEN not in v["text"]
