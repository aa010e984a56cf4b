# SPDX-License-Identifier: MIT
"""Self-tests of tests/sim/receivers.py: the receivers accept what each
platform documents and refuse what it refuses, so engine tests built on
them mean something.  /usr/bin/python3 -m pytest tests/sim/test_receivers.py"""
import json
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import receivers  # noqa: E402


@pytest.fixture
def rx():
    srv = receivers.Server(0)
    t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    yield base
    srv.shutdown()
    srv.server_close()


def post(url, body, raw=False, timeout=5):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def script(base, **kw):
    assert post(base + "/_receiver/script", kw)[0] == 200


def log(base, path=None):
    q = f"?path={path}" if path else ""
    with urllib.request.urlopen(base + "/_receiver/log" + q) as r:
        return json.loads(r.read())["requests"]


DING = {"msgtype": "markdown", "markdown": {"title": "t", "text": "x"}}
WECOM = {"msgtype": "markdown", "markdown": {"content": "x"}}
SLACK = {"text": "x", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h"}},
                                 {"type": "section", "text": {"type": "mrkdwn", "text": "*x*"}}]}
HOOK = {k: None for k in receivers.WEBHOOK_KEYS} | {"event": "action", "time": "2026-12-01T21:00:00Z"}


def feishu_card(**extra):
    return {"msg_type": "interactive",
            "card": {"header": {"title": {"tag": "plain_text", "content": "t"}},
                     "elements": [{"tag": "div", "text": {"tag": "lark_md", "content": "x"}}]}} | extra


def test_known_signatures_match_independent_values():
    # the same vectors the C unit test pins
    assert receivers.dingtalk_sign("SECtest0123", 1764623400000) == \
        "RaP1JDdCLn%2BNrjUtc757tfS9KcJyS%2FK3nsY9x14tj6o%3D"
    assert receivers.feishu_sign("feishu-secret", 1764623400) == "5KbvuYN0w8mN7dYi6ya4bnMQtaJPE7ADySVl+IVH/YU="


@pytest.mark.parametrize("how,want", [("good", 0), ("bad", 310000), ("stale", 310000), ("missing", 310000)])
def test_dingtalk_signature(rx, how, want):
    script(rx, path="/dingtalk/a", secret="SECx")
    ts = int(time.time() * 1000) - (2 * 3600 * 1000 if how == "stale" else 0)
    sign = receivers.dingtalk_sign("SECx" if how != "bad" else "other", ts)
    q = "" if how == "missing" else f"&timestamp={ts}&sign={sign}"
    status, body = post(f"{rx}/dingtalk/a?access_token=tok{q}", DING)
    assert status == 200 and json.loads(body)["errcode"] == want
    rec = log(rx)[-1]
    assert rec["sign_ok"] is (how == "good")
    assert rec["outcome"] == ("accepted" if how == "good" else "rejected")


def test_dingtalk_shape(rx):
    status, body = post(f"{rx}/dingtalk/a", {"msgtype": "markdown", "markdown": {"title": "t"}})
    assert json.loads(body)["errcode"] == 40035
    assert "markdown.title and markdown.text required" in log(rx)[-1]["errors"]


@pytest.mark.parametrize("how,want", [("good", 0), ("bad", 19021), ("stale", 19021), ("missing", 19021)])
def test_feishu_signature(rx, how, want):
    script(rx, path="/feishu/b", secret="fs")
    ts = int(time.time()) - (7200 if how == "stale" else 0)
    extra = {} if how == "missing" else \
        {"timestamp": str(ts), "sign": receivers.feishu_sign("fs" if how != "bad" else "no", ts)}
    status, body = post(f"{rx}/feishu/b", feishu_card(**extra))
    assert status == 200 and json.loads(body)["code"] == want


def test_feishu_unsigned_robot_and_post_message(rx):
    post_msg = {"msg_type": "post", "content": {"post": {"zh_cn": {"title": "t", "content": [[]]}}}}
    assert json.loads(post(f"{rx}/feishu/c", post_msg)[1])["code"] == 0
    assert json.loads(post(f"{rx}/feishu/c", {"msg_type": "text"})[1])["code"] == 9499


def test_wecom(rx):
    assert json.loads(post(f"{rx}/wecom/k", WECOM)[1])["errcode"] == 0
    long = {"msgtype": "markdown", "markdown": {"content": "x" * 4097}}
    assert json.loads(post(f"{rx}/wecom/k", long)[1])["errcode"] == 40058
    assert json.loads(post(f"{rx}/wecom/k", {"msgtype": "text"})[1])["errcode"] == 40008


def test_slack(rx):
    assert post(f"{rx}/slack/s", SLACK) == (200, "ok")
    assert post(f"{rx}/slack/s", {"blocks": []}) == (400, "no_text")
    bad = dict(SLACK, blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}])
    assert post(f"{rx}/slack/s", bad)[0] == 400


def test_webhook_exact_keys(rx):
    assert post(f"{rx}/webhook/w", HOOK)[0] == 200
    assert post(f"{rx}/webhook/w", HOOK | {"extra": 1})[0] == 400
    assert post(f"{rx}/webhook/w", HOOK | {"time": "yesterday"})[0] == 400
    assert [r["outcome"] for r in log(rx, "/webhook/w")] == ["accepted", "rejected", "rejected"]


def test_fail_n_times_then_ok(rx):
    script(rx, path="/webhook/f", fail=2, fail_status=503)
    assert [post(f"{rx}/webhook/f", HOOK)[0] for _ in range(3)] == [503, 503, 200]
    assert [r["outcome"] for r in log(rx)] == ["scripted", "scripted", "accepted"]


def test_hang_and_drop(rx):
    script(rx, path="/slack/h", hang=5)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        post(f"{rx}/slack/h", SLACK, timeout=0.5)
    assert time.monotonic() - t0 < 2
    assert log(rx)[-1]["outcome"] == "hung"
    script(rx, path="/slack/d", drop=True)
    with pytest.raises(Exception):
        post(f"{rx}/slack/d", SLACK)
    assert log(rx)[-1]["outcome"] == "dropped"
    # reset releases the hanging handler and forgets everything
    post(rx + "/_receiver/reset", {})
    assert log(rx) == []


def test_rate_limit_answers_too_fast(rx):
    script(rx, path="/dingtalk/r", limit=[2, 60])
    codes = [json.loads(post(f"{rx}/dingtalk/r", DING)[1])["errcode"] for _ in range(3)]
    assert codes == [0, 0, 130101]
    assert log(rx)[-1]["outcome"] == "limited"


def test_unknown_path(rx):
    assert post(f"{rx}/teams/x", {})[0] == 404


def test_command_line_writes_port_file(tmp_path):
    import subprocess
    pf = tmp_path / "port"
    p = subprocess.Popen([sys.executable, receivers.__file__, "--port-file", str(pf)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while not pf.exists():
            assert time.monotonic() < deadline and p.poll() is None
            time.sleep(0.02)
        port = int(pf.read_text())
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_receiver/health") as r:
            assert json.loads(r.read()) == {"ok": True}
    finally:
        p.terminate()
        p.wait(5)
