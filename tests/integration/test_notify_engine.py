# SPDX-License-Identifier: MIT
"""The notification engine (src/tell/notify.c, issue 14) on the real event
loop and curl client (tests/notify_probe), against receivers that verify
each platform's signature and shape (tests/sim/receivers.py)."""
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import SLOWDOWN, SRCDIR, UNDER_VALGRIND, wait_for

RECEIVERS_PY = SRCDIR / "tests" / "sim" / "receivers.py"
PYTHON = sys.executable or "/usr/bin/python3"


def probe_path():
    if os.environ.get("NOTIFY_PROBE"):
        return Path(os.environ["NOTIFY_PROBE"])
    b = os.environ.get("ROLLGUARD_BIN")
    return Path(b).parent / "tests" / "notify_probe" if b else None


PROBE = probe_path()
pytestmark = pytest.mark.skipif(not PROBE or not PROBE.exists(), reason="tests/notify_probe not built")

TOKEN = "TOKEN-d1ngt0k"
DING_SECRET = "SECding-secret-42"
FEISHU_SECRET = "feishu-secret-43"
SECRETS = [TOKEN, DING_SECRET, FEISHU_SECRET, "wecom-key-44", "slackhook-45", "hook-46"]


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
        import urllib.request
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


@pytest.fixture
def rx(tmp_path):
    r = Receivers(tmp_path)
    yield r
    r.stop()


class Probe:
    def __init__(self, channels, *args):
        cmd = [str(PROBE), *args]
        for c in channels:
            cmd += ["--channel", ",".join(f"{k}={v}" for k, v in c.items())]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.out = []
        self.err = []
        threading.Thread(target=self._read, args=(self.proc.stdout, True), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, False), daemon=True).start()

    def _read(self, f, is_out):
        for line in f:
            if is_out:
                self.out.append(json.loads(line))
            else:
                self.err.append(line)

    def cmd(self, obj):
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()

    def send(self, **ev):
        self.cmd({"send": ev})

    def results(self, channel=None, result=None):
        return [o for o in list(self.out) if "result" in o
                and (channel is None or o["channel"] == channel) and (result is None or o["result"] == result)]

    def wait_idle(self, timeout=20):
        n = sum(1 for o in list(self.out) if o.get("idle"))
        self.cmd({"wait": True})
        wait_for(lambda: sum(1 for o in list(self.out) if o.get("idle")) > n, timeout=timeout, what="probe idle")

    def stats(self):
        n = sum(1 for o in list(self.out) if "stats" in o)
        self.cmd({"stats": True})
        wait_for(lambda: sum(1 for o in list(self.out) if "stats" in o) > n, what="stats")
        s = [o for o in list(self.out) if "stats" in o][-1]["stats"]
        return {(r["channel"], r["result"]): r["count"] for r in s}

    def close(self, timeout=20):
        self.proc.stdin.close()
        rc = self.proc.wait(timeout * SLOWDOWN)
        time.sleep(0)  # let the reader threads drain (they end at EOF)
        text = "".join(self.err) + json.dumps(self.out)
        for s in SECRETS:
            assert s not in text, f"a secret or URL token leaked into the probe's output"
        return rc


def event(co="co-1", kind="action", app="shop-api", **kw):
    return dict(kind=kind, app=app, platform="sae", region="cn-hangzhou", app_id="app-7171",
                change_order=co, rule="error-rate", action="rollback", result="accepted",
                reason="5xx ratio 7.2% over 5% for 1m", rollback_change_order=f"rb-{co}",
                value=7.2, threshold=5) | kw


def all_channels(rx):
    rx.script("/dingtalk/a", secret=DING_SECRET)
    rx.script("/feishu/b", secret=FEISHU_SECRET)
    return [
        dict(name="ding", type="dingtalk", url=f"{rx.base}/dingtalk/a?access_token={TOKEN}", secret=DING_SECRET),
        dict(name="fs", type="feishu", url=f"{rx.base}/feishu/b", secret=FEISHU_SECRET),
        dict(name="wc", type="wecom", url=f"{rx.base}/wecom/c?key=wecom-key-44"),
        dict(name="sl", type="slack", url=f"{rx.base}/slack/slackhook-45"),
        dict(name="wh", type="webhook", url=f"{rx.base}/webhook/hook-46"),
    ]


CONSOLE = "https://sae.console.aliyun.com/#/AppList/AppDetail?appId=app-7171&regionId=cn-hangzhou"


def message_text(rec):
    b = rec["body"]
    return {"dingtalk": lambda: b["markdown"]["text"],
            "wecom": lambda: b["markdown"]["content"],
            "feishu": lambda: json.dumps(b["card"], ensure_ascii=False),
            "slack": lambda: json.dumps(b["blocks"], ensure_ascii=False),
            "webhook": lambda: json.dumps(b)}[rec["platform"]]()


def test_each_platform_gets_exactly_one_signed_well_shaped_message(rx):
    p = Probe(all_channels(rx))
    p.send(**event())
    p.send(**event())  # the same event again: deduplicated on every channel
    p.wait_idle()
    reqs = rx.log()
    assert sorted(r["platform"] for r in reqs) == ["dingtalk", "feishu", "slack", "webhook", "wecom"]
    for r in reqs:
        assert r["errors"] == [], (r["platform"], r["errors"])
        assert r["outcome"] == "accepted", r["platform"]
        text = message_text(r)
        for fact in ("shop-api", "co-1", "error-rate", "accepted", "rb-co-1"):
            assert fact in text, (r["platform"], fact)
        assert CONSOLE in text or CONSOLE.replace("&", "\\u0026") in text, r["platform"]
    by = {r["platform"]: r for r in reqs}
    assert by["dingtalk"]["sign_ok"] is True and by["feishu"]["sign_ok"] is True
    assert by["dingtalk"]["query"]["access_token"] == TOKEN
    hook = by["webhook"]["body"]
    assert hook["event"] == "action" and hook["console_url"] == CONSOLE and hook["rollback_change_order"] == "rb-co-1"
    assert len(p.results(result="sent")) == 5
    st = p.stats()
    assert all(st[(c, "deduped")] == 1 and st[(c, "sent")] == 1 for c in ("ding", "fs", "wc", "sl", "wh"))
    assert p.close() == 0


def test_500_twice_then_200_delivers_once(rx):
    rx.script("/webhook/f", fail=2, fail_status=500)
    p = Probe([dict(name="wh", type="webhook", url=f"{rx.base}/webhook/f")], "--backoff", "100ms")
    p.send(**event())
    p.wait_idle()
    assert [r["outcome"] for r in rx.log()] == ["scripted", "scripted", "accepted"]
    assert [o["result"] for o in p.results()] == ["retried", "retried", "sent"]
    # backoff grows: the second gap is longer than the first (100ms, 200ms +-20%)
    t = [r["t"] for r in rx.log()]
    if not UNDER_VALGRIND:
        assert 0.07 <= t[1] - t[0] and t[2] - t[1] > t[1] - t[0]
    assert p.close() == 0


def test_refused_for_good_is_not_retried(rx):
    rx.script("/dingtalk/x", secret="SECright")
    p = Probe([dict(name="ding", type="dingtalk", url=f"{rx.base}/dingtalk/x?access_token={TOKEN}",
                    secret=DING_SECRET)], "--backoff", "50ms")
    p.send(**event())
    p.wait_idle()
    assert len(rx.log()) == 1 and rx.log()[0]["sign_ok"] is False
    [r] = p.results()
    assert r["result"] == "failed" and "310000" in r["detail"]
    assert p.close() == 0
    assert any("channel ding" in line and "not delivered" in line for line in p.err)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hanging_or_refusing_channel_does_not_delay_another(rx):
    def latency(channels):
        p = Probe(channels, "--timeout", "2s", "--backoff", "200ms", "--retry-for", "3s")
        p.stats()  # started and reading: time the send, not the start-up
        t0 = time.monotonic()
        p.send(**event())
        wait_for(lambda: rx.log("/webhook/good"), what="the good channel's message")
        dt = rx.log("/webhook/good")[0]["t"] - t0
        return p, dt

    good = dict(name="good", type="webhook", url=f"{rx.base}/webhook/good")
    p, alone = latency([good])
    p.wait_idle()
    assert p.close() == 0
    rx._req("POST", "/_receiver/reset", {})

    rx.script("/slack/hang", hang=30)
    bad = [dict(name="hang", type="slack", url=f"{rx.base}/slack/hang"),
           dict(name="refused", type="webhook", url=f"http://127.0.0.1:{free_port()}/x")]
    p, with_bad = latency(bad + [good])
    print(f"good channel latency: alone {alone * 1000:.1f} ms, next to a hanging and a refusing one "
          f"{with_bad * 1000:.1f} ms")
    assert with_bad < 0.5 * SLOWDOWN and with_bad < alone + 0.25 * SLOWDOWN, (alone, with_bad)
    # the bad ones are retried, then given up on, each with one log line
    p.wait_idle(timeout=20)
    assert {o["channel"] for o in p.results(result="failed")} == {"hang", "refused"}
    assert len(p.results("good", "sent")) == 1
    assert p.close() == 0
    assert sum("not delivered" in line for line in p.err) == 2


def test_merges_under_the_rate_limit_instead_of_dropping(rx):
    # the receiver enforces 2 messages per 3 s like DingTalk's 20/min
    rx.script("/dingtalk/m", limit=[2, 3])
    p = Probe([dict(name="ding", type="dingtalk", url=f"{rx.base}/dingtalk/m", rate="2/3s")])
    cos = [f"co-m{i}" for i in range(6)]
    for co in cos:
        p.send(**event(co))
    p.wait_idle()
    p.send(**event("co-late"))  # the window is full: waits for a slot, then goes
    p.wait_idle(timeout=10)
    reqs = rx.log()
    # Under valgrind the first request arrives late, squeezing the gap the
    # receiver sees below what the probe kept; then the platform's "too
    # fast" answer must lead to a retry, not a loss.
    if not UNDER_VALGRIND:
        assert all(r["outcome"] == "accepted" for r in reqs), [r["outcome"] for r in reqs]
    reqs = [r for r in reqs if r["outcome"] == "accepted"]
    assert len(reqs) == 3
    text = "".join(message_text(r) for r in reqs)
    for co in cos + ["co-late"]:
        assert co in text, co
    assert "rollguard: 5 events" in reqs[1]["body"]["markdown"]["title"]
    assert reqs[2]["t"] - reqs[0]["t"] >= 3 * 0.98
    assert p.stats()[("ding", "merged")] == 4
    assert p.close() == 0


def test_dedupe_one_message_per_kind_per_change_order(rx):
    p = Probe([dict(name="wh", type="webhook", url=f"{rx.base}/webhook/d")])
    for ev in (event("co-1"), event("co-1"), event("co-1", kind="unconfirmed"), event("co-2"),
               event(None, kind="degraded"), event(None, kind="degraded")):
        p.send(**ev)
    p.wait_idle()
    got = [(r["body"]["event"], r["body"]["change_order"]) for r in rx.log()]
    assert sorted(got, key=str) == sorted([("action", "co-1"), ("unconfirmed", "co-1"), ("action", "co-2"),
                                           ("degraded", None)], key=str)
    assert p.stats()[("wh", "deduped")] == 2
    assert p.close() == 0


def test_events_and_apps_filters(rx):
    p = Probe([dict(name="wh", type="webhook", url=f"{rx.base}/webhook/e", events="action_failed",
                    apps="shop-api+cart")])
    p.send(**event("co-1"))                                 # wrong kind
    p.send(**event("co-2", kind="action_failed", app="x"))  # wrong app
    p.send(**event("co-3", kind="action_failed"))
    p.wait_idle()
    assert [r["body"]["change_order"] for r in rx.log()] == ["co-3"]
    assert p.close() == 0


def test_notify_test_reports_each_channels_answer(rx):
    chans = all_channels(rx)
    chans[0]["secret"] = "SECwrong"  # the operator pasted the wrong secret
    p = Probe(chans)
    p.cmd({"test": None})
    wait_for(lambda: len([o for o in p.out if "test" in o]) == 5, what="five test answers")
    answers = {o["test"]: o for o in p.out if "test" in o}
    assert answers["ding"]["ok"] is False and "310000" in answers["ding"]["detail"]
    assert all(answers[c]["ok"] for c in ("fs", "wc", "sl", "wh")), answers
    p.cmd({"test": "nope"})
    wait_for(lambda: any("test_error" in o for o in p.out), what="unknown channel error")
    assert p.close() == 0
