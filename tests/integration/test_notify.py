# SPDX-License-Identifier: MIT
"""Notifications from the real daemon (issue 14): rollguard against the
simulator (tests/sim/sim.py), its channels against receivers that verify
each platform's signature and shape (tests/sim/receivers.py)."""
import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import conftest
from conftest import (SLOWDOWN, SRCDIR, UNDER_VALGRIND, healthy_order, sae_app, stuck_order, wait_for,
                      write_config)

RECEIVERS_PY = SRCDIR / "tests" / "sim" / "receivers.py"
PYTHON = sys.executable or "/usr/bin/python3"

DING_TOKEN = "dtok-5d1e8a"
DING_SECRET = "SECd1ng-7f3b9c"
FEISHU_HOOK = "fshook-29c1"
FEISHU_SECRET = "fssec-8e4d21"
WECOM_KEY = "wckey-61aa"
SLACK_HOOK = "slhook-T00-B00"
HOOK_TOKEN = "whtok-0f9e"
# The daemon, check, notify-test, /status and /metrics must never show these.
conftest._SECRETS.update({DING_TOKEN, DING_SECRET, FEISHU_HOOK, FEISHU_SECRET, WECOM_KEY, SLACK_HOOK,
                          HOOK_TOKEN})


class Receivers:
    def __init__(self, tmp_path):
        pf = tmp_path / "rx.port"
        self.proc = subprocess.Popen([PYTHON, str(RECEIVERS_PY), "--port-file", str(pf)],
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: pf.exists() or self.proc.poll() is not None, what="receivers port file")
        assert self.proc.poll() is None, "receivers.py died"
        self.port = int(pf.read_text())
        self.base = f"http://127.0.0.1:{self.port}"

    def _req(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read())

    def script(self, path, **kw):
        self._req("POST", "/_receiver/script", dict(kw, path=path))

    def log(self, path=None):
        return self._req("GET", "/_receiver/log" + (f"?path={path}" if path else ""))["requests"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(5)


import pytest  # noqa: E402


@pytest.fixture
def rx(tmp_path):
    r = Receivers(tmp_path)
    yield r
    r.stop()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def secret_file(path, text):
    path.write_text(text + "\n")
    return path


def every_platform(rx, tmp_path):
    """Five channels, one per platform, the way an operator sets them up:
    URLs and secrets in files; DingTalk's from $CREDENTIALS_DIRECTORY by a
    relative name, the rest by absolute paths."""
    creds = tmp_path / "creds"
    creds.mkdir(exist_ok=True)
    secret_file(creds / "dingtalk-url", f"{rx.base}/dingtalk/a?access_token={DING_TOKEN}")
    secret_file(creds / "dingtalk-secret", DING_SECRET)
    rx.script("/dingtalk/a", secret=DING_SECRET)
    rx.script(f"/feishu/{FEISHU_HOOK}", secret=FEISHU_SECRET)
    chans = [
        {"name": "ding", "type": "dingtalk", "url_file": "dingtalk-url", "secret_file": "dingtalk-secret"},
        {"name": "fs", "type": "feishu", "url_file": str(secret_file(tmp_path / "fs-url", f"{rx.base}/feishu/{FEISHU_HOOK}")),
         "secret_file": str(secret_file(tmp_path / "fs-secret", FEISHU_SECRET))},
        {"name": "wc", "type": "wecom", "url_file": str(secret_file(tmp_path / "wc-url", f"{rx.base}/wecom/c?key={WECOM_KEY}"))},
        {"name": "sl", "type": "slack", "url_file": str(secret_file(tmp_path / "sl-url", f"{rx.base}/slack/{SLACK_HOOK}"))},
        {"name": "wh", "type": "webhook", "url_file": str(secret_file(tmp_path / "wh-url", f"{rx.base}/webhook/{HOOK_TOKEN}")),
         "events": ["action", "action_failed", "unconfirmed"]},
    ]
    return chans, {"CREDENTIALS_DIRECTORY": str(creds)}


def message_text(rec):
    b = rec["body"]
    return {"dingtalk": lambda: b["markdown"]["text"],
            "wecom": lambda: b["markdown"]["content"],
            "feishu": lambda: json.dumps(b["card"], ensure_ascii=False),
            "slack": lambda: json.dumps(b["blocks"], ensure_ascii=False),
            "webhook": lambda: json.dumps(b)}[rec["platform"]]()


def platform_requests(rx):
    return [r for r in rx.log() if not r["path"].startswith("/_receiver")]


def get(port, path, token):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def test_a_rollback_tells_every_matching_channel_once(sim, rx, tmp_path, start_daemon, run_cli):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    other = sae_app(orders=[healthy_order(steps=50)], name="catalog")
    sim.set_apps([app, other])
    chans, env = every_platform(rx, tmp_path)
    # two channels that must stay silent: another app only, another event only
    chans += [{"name": "catalog-only", "type": "webhook", "url": f"{rx.base}/webhook/catalog", "apps": ["catalog"]},
              {"name": "degraded-only", "type": "slack", "url": f"{rx.base}/slack/degraded", "events": "degraded"}]
    port = free_port()
    token = secret_file(tmp_path / "alert-token", "alert-tok-1234")
    conftest._SECRETS.add("alert-tok-1234")
    cfg = write_config(tmp_path, sim, [app, other], extra={
        "notify": chans, "alerts": {"listen": f"127.0.0.1:{port}", "token_file": str(token)}})

    r = run_cli("--config", cfg, "check", env=env)
    assert r.returncode == 0, r.stderr
    print(r.stdout)
    assert re.search(r"ding: dingtalk to 127\.0\.0\.1:\d+ \(url from .*/creds/dingtalk-url\), signed "
                     r"\(secret from .*/creds/dingtalk-secret\); all events for every app", r.stdout), r.stdout
    assert "wh: webhook to 127.0.0.1" in r.stdout and "action, action_failed, unconfirmed for every app" in r.stdout
    assert "catalog-only: webhook" in r.stdout and "all events for catalog" in r.stdout
    assert "warning: channel catalog-only: the url is written in the config" in r.stdout

    d = start_daemon(cfg, env=env)
    rb = sim.wait_for_rollback(co["id"], timeout=20)
    want = {"dingtalk", "feishu", "wecom", "slack", "webhook"}
    wait_for(lambda: {r["platform"] for r in platform_requests(rx)} >= want, timeout=15,
             what="a message on every platform")
    # a few more polls: a second message would have gone by now
    base = len(sim.requests(action="DescribeApplicationStatus"))
    wait_for(lambda: len(sim.requests(action="DescribeApplicationStatus")) >= base + 4, timeout=15,
             what="more polls")
    d.wait_for_log("notified channel wh: 1 event(s) delivered")
    reqs = platform_requests(rx)
    assert sorted(r["platform"] for r in reqs) == sorted(want), [r["path"] for r in reqs]
    by_rule = [r for r in reqs if r["platform"] == "webhook"][0]["body"]["rule"]
    console = f"https://sae.console.aliyun.com/#/AppList/AppDetail?appId={app['app_id']}&regionId=cn-hangzhou"
    for r in reqs:
        assert r["errors"] == [] and r["outcome"] == "accepted", (r["platform"], r["errors"])
        text = message_text(r)
        for fact in ("payments", co["id"], rb["new_change_order_id"], by_rule):
            assert fact in text, (r["platform"], fact)
        assert console in text or console.replace("&", "\\u0026") in text, r["platform"]
    by = {r["platform"]: r for r in reqs}
    assert by["dingtalk"]["sign_ok"] is True and by["feishu"]["sign_ok"] is True
    assert by["dingtalk"]["query"]["access_token"] == DING_TOKEN
    hook = by["webhook"]["body"]
    assert hook["event"] == "action" and hook["app"] == "payments" and hook["platform"] == "sae"
    assert hook["region"] == "cn-hangzhou" and hook["app_id"] == app["app_id"]
    assert hook["change_order"] == co["id"] and hook["action"] == "rollback" and hook["result"] == "done"
    assert hook["rollback_change_order"] == rb["new_change_order_id"] and hook["console_url"] == console
    assert hook["rule"] and hook["reason"]

    status, metrics = get(port, "/metrics", "alert-tok-1234")
    assert status == 200
    assert 'rollguard_notifications_total{channel="ding",result="sent"} 1' in metrics
    assert 'rollguard_notifications_total{channel="catalog-only",result="sent"} 0' in metrics
    status, st = get(port, "/status", "alert-tok-1234")
    assert status == 200
    conftest.assert_no_secrets(metrics, "/metrics")
    conftest.assert_no_secrets(st, "/status")
    assert d.stop() == 0


def test_500_twice_then_200_delivers_once(sim, rx, tmp_path, start_daemon):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    rx.script(f"/webhook/{HOOK_TOKEN}", fail=2, fail_status=500)
    cfg = write_config(tmp_path, sim, [app], extra={"notify": [
        {"name": "wh", "type": "webhook", "url_file": str(secret_file(tmp_path / "u", f"{rx.base}/webhook/{HOOK_TOKEN}"))}]})
    d = start_daemon(cfg)
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log("notified channel wh: 1 event(s) delivered", timeout=20)
    assert [r["outcome"] for r in rx.log()] == ["scripted", "scripted", "accepted"]
    assert len(d.find_logs("did not take the message")) == 2
    assert d.stop() == 0


def first_look_to_rollback(sim, co_id):
    """Seconds from the daemon's first look at the stuck order to the
    rollback call, as the simulator saw them."""
    first = min(r["t"] for r in sim.requests(action="DescribeChangeOrder") if r.get("change_order_id") == co_id)
    return sim.rollbacks(co_id)[0]["t"] - first


def rollbacks_with(sim, tmp_path, start_daemon, name, notify, *args):
    """Two apps; the first is stuck at start, the second gets stuck after
    the first was rolled back (so its notification is already queued, hung
    or refused). Returns both delays."""
    sim.reset()
    a = sae_app(orders=[stuck_order()], name="first")
    b = sae_app(orders=[healthy_order(steps=1000)], name="second")
    sim.set_apps([a, b])
    d = start_daemon(write_config(tmp_path / name, sim, [a, b], extra={"notify": notify}), *args)
    sim.wait_for_rollback(a["change_orders"][0]["id"], timeout=20)
    if notify:
        d.wait_for_log("rollguard-action-done app=first")
    late = stuck_order()
    sim.add_change_order(b["app_id"], late)
    sim.wait_for_rollback(late["id"], timeout=20)
    out = first_look_to_rollback(sim, a["change_orders"][0]["id"]), first_look_to_rollback(sim, late["id"])
    return d, out


def test_a_hanging_or_refusing_channel_does_not_delay_rollbacks(sim, rx, tmp_path, start_daemon):
    (tmp_path / "plain").mkdir()
    (tmp_path / "bad").mkdir()
    d, plain = rollbacks_with(sim, tmp_path, start_daemon, "plain", None)
    assert d.stop() == 0

    rx.script("/slack/hang", hang=60)
    bad = [{"name": "hang", "type": "slack", "url": f"{rx.base}/slack/hang"},
           {"name": "refused", "type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x", "retry_for": "2s"}]
    d, slow = rollbacks_with(sim, tmp_path, start_daemon, "bad", bad, "--verbose")
    print(f"first look to rollback call: without notifications {plain[0] * 1000:.0f} ms / "
          f"{plain[1] * 1000:.0f} ms (first / second app); with a hanging and a refusing channel "
          f"{slow[0] * 1000:.0f} ms / {slow[1] * 1000:.0f} ms")
    assert rx.log("/slack/hang"), "the hanging channel was asked"
    limit = 0.5 * SLOWDOWN * (5 if UNDER_VALGRIND else 1)
    assert slow[0] - plain[0] < limit and slow[1] - plain[1] < limit, (plain, slow)
    # the refusing channel gives up after its retry_for, recorded once
    line = d.wait_for_log("rollguard-notify-failed", timeout=15)
    assert "channel refused" in line and "not delivered" in line
    # its second message (the second app's) fails too, and is not recorded again
    d.wait_for_log("notify: channel refused: another message not delivered", timeout=15)
    assert len(d.find_logs("rollguard-notify-failed")) == 1
    # and the daemon keeps watching
    base = len(sim.requests(action="DescribeApplicationStatus"))
    wait_for(lambda: len(sim.requests(action="DescribeApplicationStatus")) >= base + 2, timeout=10,
             what="more polls")
    assert d.running
    assert d.stop(timeout=15) == 0


def test_reload_keeps_a_channel_s_pending_message(sim, rx, tmp_path, start_daemon):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    # wh refuses a few times (retried with backoff), so the message is still
    # pending when the config is reloaded
    rx.script("/webhook/keep", fail=3, fail_status=503)
    keep = {"name": "wh", "type": "webhook", "url": f"{rx.base}/webhook/keep"}
    gone = {"name": "gone", "type": "webhook", "url": f"{rx.base}/webhook/gone", "events": "degraded"}
    cfg = write_config(tmp_path, sim, [app], extra={"notify": [keep, gone]})
    d = start_daemon(cfg)
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log("notify: channel wh did not take the message")
    m = d.mark()
    fresh = {"name": "fresh", "type": "slack", "url": f"{rx.base}/slack/fresh"}
    write_config(tmp_path, sim, [app], extra={"notify": [fresh, keep]})
    d.reload()
    d.wait_for_log("rollguard-reloaded", since=m)
    d.wait_for_log("notified channel wh: 1 event(s) delivered", timeout=20)
    assert [r["outcome"] for r in rx.log("/webhook/keep")] == ["scripted"] * 3 + ["accepted"]
    assert rx.log("/slack/fresh") == [] and rx.log("/webhook/gone") == []
    assert d.stop() == 0


def test_notify_test_reports_each_channel(rx, tmp_path, run_cli, sim):
    creds = tmp_path / "creds"
    creds.mkdir()
    secret_file(creds / "ding-url", f"{rx.base}/dingtalk/t?access_token={DING_TOKEN}")
    secret_file(creds / "ding-secret", DING_SECRET)
    rx.script("/dingtalk/t", secret=DING_SECRET)
    rx.script(f"/feishu/{FEISHU_HOOK}", secret="the-right-one")
    secret_file(tmp_path / "fs-secret", FEISHU_SECRET)
    chans = [{"name": "ding", "type": "dingtalk", "url_file": "/etc/rollguard/ding-url", "secret_file": "ding-secret"},
             {"name": "fs", "type": "feishu", "url": f"{rx.base}/feishu/{FEISHU_HOOK}",
              "secret_file": str(tmp_path / "fs-secret")},
             {"name": "down", "type": "webhook", "url": f"http://127.0.0.1:{free_port()}/x"},
             {"name": "nofile", "type": "wecom", "url_file": str(tmp_path / "missing")}]
    cfg = write_config(tmp_path, sim, [sae_app(name="a")], extra={"notify": chans})
    env = {"CREDENTIALS_DIRECTORY": str(creds)}
    t0 = time.monotonic()
    r = run_cli("--config", cfg, "notify-test", env=env)
    print(r.stdout)
    assert r.returncode == 3, r.stderr
    out = r.stdout
    # an absolute url_file that does not exist is found in $CREDENTIALS_DIRECTORY by its name
    assert "ding: OK (HTTP 200" in out
    assert re.search(r"fs: FAILED \(HTTP 200, code 19021", out), out
    assert re.search(r"down: FAILED \(no answer", out), out
    assert re.search(r"nofile: FAILED \(channel nofile: cannot read url_file .*missing", out), out
    assert time.monotonic() - t0 < 15 * SLOWDOWN
    test_msgs = [x for x in rx.log() if x["path"].startswith("/dingtalk")]
    assert len(test_msgs) == 1 and test_msgs[0]["sign_ok"] is True
    assert "test message" in message_text(test_msgs[0])

    r = run_cli("--config", cfg, "notify-test", "ding", env=env)
    assert r.returncode == 0 and r.stdout.startswith("ding: OK"), (r.stdout, r.stderr)
    r = run_cli("--config", cfg, "notify-test", "nope", env=env)
    assert r.returncode == 2 and "no channel named 'nope'" in r.stderr and "ding, fs, down, nofile" in r.stderr
    # check says which channel cannot be used, and fails
    r = run_cli("--config", cfg, "check", env=env)
    assert r.returncode == 1 and "nofile: wecom, CANNOT BE USED: channel nofile: cannot read url_file" in r.stdout


def test_a_channel_for_an_unknown_app_is_a_config_error(sim, tmp_path, run_cli):
    cfg = write_config(tmp_path, sim, [sae_app(name="payments")], extra={"notify": [
        {"name": "x", "type": "slack", "url_file": "/u", "apps": ["payment"]}]})
    r = run_cli("--config", cfg, "check")
    assert r.returncode == 1
    assert re.match(r".*rollguard\.yaml:\d+:\d+: notify\[0\]\.apps: no app named 'payment' in apps "
                    r"\(did you mean 'payments'\?\)", r.stderr), r.stderr


def test_circuit_open_and_degraded_are_told(sim, rx, tmp_path, start_daemon):
    # max_actions_per_hour 1 and two stuck apps: the second decision finds
    # the breaker open
    co, co2 = stuck_order(), stuck_order()
    app = sae_app(orders=[co], name="payments")
    app2 = sae_app(orders=[co2], name="orders")
    sim.set_apps([app, app2])
    ghost = {"name": "ghost", "platform": "sae", "region": "cn-hangzhou",
             "app_id": "00000000-0000-0000-0000-000000000000"}
    chans = [{"name": "all", "type": "webhook", "url": f"{rx.base}/webhook/all"},
             # the breaker concerns every app: it passes an apps filter; ghost's degraded does not
             {"name": "pay", "type": "webhook", "url": f"{rx.base}/webhook/pay", "apps": ["payments"],
              "events": ["circuit_open", "degraded"]}]
    cfg = write_config(tmp_path, sim, [app, app2, ghost], defaults={"max_actions_per_hour": 1},
                       extra={"notify": chans})
    d = start_daemon(cfg)
    d.wait_for_log("rollguard-circuit-open", timeout=20)
    assert len(sim.rollbacks()) == 1
    wait_for(lambda: {r["body"]["event"] for r in rx.log("/webhook/all")} >= {"action", "circuit_open", "degraded"},
             timeout=15, what="action, circuit_open and degraded on the unfiltered channel")
    wait_for(lambda: rx.log("/webhook/pay"), timeout=10, what="circuit_open on the filtered channel")
    d.wait_for_log("notified channel pay")
    evs = {r["body"]["event"]: r["body"] for r in rx.log("/webhook/all")}
    assert evs["degraded"]["app"] == "ghost" and "InvalidAppId.NotFound" in evs["degraded"]["reason"]
    assert evs["circuit_open"]["app"] is None and "max_actions_per_hour" in evs["circuit_open"]["reason"]
    assert [r["body"]["event"] for r in rx.log("/webhook/pay")] == ["circuit_open"]
    assert all(r["errors"] == [] for r in rx.log())
    assert d.stop() == 0


def test_once_delivers_before_it_exits(sim, rx, tmp_path, run_cli):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [app], extra={"notify": [
        {"name": "wh", "type": "webhook", "url_file": str(secret_file(tmp_path / "u", f"{rx.base}/webhook/{HOOK_TOKEN}"))}]})
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0, r.stderr
    assert sim.rollback_calls(co["id"]) == 1
    [msg] = rx.log()
    assert msg["body"]["event"] == "action" and msg["body"]["change_order"] == co["id"]
    assert "notified channel wh" in r.stderr
