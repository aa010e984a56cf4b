#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Chat-platform receivers for rollguard's notification tests (issue 14).

Standard library only. Listens on 127.0.0.1 and nothing else. Plays, each
at its own path (ROBOT is any name; one robot = one rate window):

  POST /dingtalk/ROBOT   DingTalk custom robot. With a secret configured the
                         query must carry timestamp (ms, within 1 h) and
                         sign = urlencode(b64(hmac(secret, ts "\\n" secret))).
                         Body: {"msgtype": "markdown", "markdown":
                         {"title", "text"}}. Answers {"errcode": 0, ...};
                         310000 bad sign, 40035 bad body, 130101 too fast.
  POST /feishu/ROBOT     Feishu/Lark custom bot. With a secret the body must
                         carry "timestamp" (s, within 1 h) and "sign" =
                         b64(hmac(ts "\\n" secret, "")). msg_type
                         "interactive" (card.elements) or "post". Answers
                         {"code": 0, "msg": "success"}; 19021 bad sign,
                         9499 bad body, 11232 too fast.
  POST /wecom/ROBOT      WeCom group robot: {"msgtype": "markdown",
                         "markdown": {"content" <= 4096 bytes}}. Answers
                         {"errcode": 0}; 40008 bad body, 40058 too long,
                         45009 too fast.
  POST /slack/ROBOT      Slack incoming webhook: "text" and a list of
                         "blocks" (header/section, mrkdwn). Answers "ok";
                         400 invalid_blocks / no_text, 429 rate_limited.
  POST /webhook/ROBOT    Generic: exactly the documented top-level keys,
                         "time" RFC 3339 UTC. Answers 200 {} or 400.

CONTROL API (JSON):
  GET  /_receiver/health
  GET  /_receiver/log[?path=/dingtalk/a]  -> {"requests": [...]} in arrival order
  POST /_receiver/reset                   forget requests and scripts, release hangs
  POST /_receiver/script {"path": "/dingtalk/a", ...}  sets, for that path:
         "secret": S         verify signatures with S (null: unsigned robot)
         "fail": N           answer the next N requests with "fail_status"
         "fail_status": 500  (default 500)
         "hang": SECONDS     hold every request this long without answering
                             (0 = stop hanging)
         "drop": true        close the connection without an answer
         "limit": [MAX, PERIOD_S]  the platform's rate limit: over it, the
                             platform's "too fast" answer
  A refused channel needs no script: point it at a port nothing listens on.

Each log record: {"seq", "t" (CLOCK_MONOTONIC s, comparable with the
probe's), "wall", "path", "platform", "robot", "query", "content_type",
"body" (parsed JSON or null), "raw", "sign_ok" (null when unsigned),
"errors" [...], "outcome": accepted | rejected | scripted | hung |
dropped | limited, "status"}.

  python3 tests/sim/receivers.py [--port 0] [--port-file PATH]
"""
import argparse
import base64
import hashlib
import hmac
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PLATFORMS = ("dingtalk", "feishu", "wecom", "slack", "webhook")
FRESH_SECONDS = 3600  # both DingTalk and Feishu accept one hour
WEBHOOK_KEYS = {"event", "app", "platform", "region", "app_id", "change_order", "rule", "action",
                "result", "reason", "rollback_change_order", "time", "console_url"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
MAX_BODY = 1 << 20


def dingtalk_sign(secret, timestamp_ms):
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote(base64.b64encode(mac).decode(), safe="")


def feishu_sign(secret, timestamp_s):
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _str(v):
    return isinstance(v, str) and v != ""


def check_dingtalk(query, body, secret, now):
    errors, sign_ok = [], None
    if secret is not None:
        ts, sign = query.get("timestamp"), query.get("sign")
        sign_ok = False
        if not ts or not sign:
            errors.append("sign: timestamp and sign query parameters required")
        elif not ts.isdigit() or abs(int(ts) / 1000 - now) > FRESH_SECONDS:
            errors.append("sign: timestamp not within one hour")
        # the query arrives decoded; the sign was URL-encoded once on the wire
        elif urllib.parse.quote(sign, safe="") != dingtalk_sign(secret, ts):
            errors.append("sign: does not match")
        else:
            sign_ok = True
    shape = []
    if not isinstance(body, dict) or body.get("msgtype") != "markdown":
        shape.append("msgtype must be markdown")
    else:
        md = body.get("markdown")
        if not isinstance(md, dict) or not _str(md.get("title")) or not _str(md.get("text")):
            shape.append("markdown.title and markdown.text required")
    return errors, shape, sign_ok


def check_feishu(query, body, secret, now):
    errors, sign_ok, shape = [], None, []
    if not isinstance(body, dict):
        return errors, ["body must be a JSON object"], sign_ok
    if secret is not None:
        ts, sign = body.get("timestamp"), body.get("sign")
        sign_ok = False
        if ts is None or sign is None:
            errors.append("sign: timestamp and sign required in the body")
        elif not str(ts).isdigit() or abs(int(ts) - now) > FRESH_SECONDS:
            errors.append("sign: timestamp not within one hour")
        elif sign != feishu_sign(secret, ts):
            errors.append("sign: does not match")
        else:
            sign_ok = True
    mt = body.get("msg_type")
    if mt == "interactive":
        card = body.get("card")
        if not isinstance(card, dict) or not isinstance(card.get("elements"), list) or not card["elements"]:
            shape.append("card.elements required")
        else:
            title = ((card.get("header") or {}).get("title") or {})
            if title.get("tag") != "plain_text" or not _str(title.get("content")):
                shape.append("card.header.title plain_text required")
            for el in card["elements"]:
                if not isinstance(el, dict) or not _str(el.get("tag")):
                    shape.append("every card element needs a tag")
    elif mt == "post":
        post = (body.get("content") or {}).get("post")
        if not isinstance(post, dict) or not post:
            shape.append("content.post required")
    else:
        shape.append("msg_type must be interactive or post")
    return errors, shape, sign_ok


def check_wecom(query, body, secret, now):
    shape = []
    if not isinstance(body, dict) or body.get("msgtype") != "markdown":
        shape.append("msgtype must be markdown")
    else:
        content = (body.get("markdown") or {}).get("content")
        if not _str(content):
            shape.append("markdown.content required")
        elif len(content.encode()) > 4096:
            shape.append("too long: markdown.content over 4096 bytes")
    return [], shape, None


def check_slack(query, body, secret, now):
    shape = []
    if not isinstance(body, dict) or not _str(body.get("text")):
        shape.append("no_text")
    else:
        blocks = body.get("blocks")
        if not isinstance(blocks, list) or not blocks or len(blocks) > 50:
            shape.append("invalid_blocks: 1..50 blocks")
        else:
            for b in blocks:
                t = (b or {}).get("type") if isinstance(b, dict) else None
                text = b.get("text") if isinstance(b, dict) else None
                if t == "header":
                    if not isinstance(text, dict) or text.get("type") != "plain_text" \
                            or not _str(text.get("text")) or len(text["text"]) > 150:
                        shape.append("invalid_blocks: header needs plain_text <= 150")
                elif t == "section":
                    if not isinstance(text, dict) or text.get("type") not in ("mrkdwn", "plain_text") \
                            or not _str(text.get("text")) or len(text["text"]) > 3000:
                        shape.append("invalid_blocks: section needs text <= 3000")
                elif t not in ("divider", "context", "actions"):
                    shape.append(f"invalid_blocks: unknown block type {t!r}")
    return [], shape, None


def check_webhook(query, body, secret, now):
    shape = []
    if not isinstance(body, dict):
        return [], ["body must be a JSON object"], None
    keys = set(body)
    if keys != WEBHOOK_KEYS:
        shape.append(f"keys: missing {sorted(WEBHOOK_KEYS - keys)} extra {sorted(keys - WEBHOOK_KEYS)}")
    for k in WEBHOOK_KEYS & keys:
        if body[k] is not None and not isinstance(body[k], str):
            shape.append(f"{k}: must be a string or null")
    if not _str(body.get("event")):
        shape.append("event required")
    if not isinstance(body.get("time"), str) or not RFC3339.match(body["time"]):
        shape.append("time must be RFC 3339")
    return [], shape, None


CHECKS = {"dingtalk": check_dingtalk, "feishu": check_feishu, "wecom": check_wecom,
          "slack": check_slack, "webhook": check_webhook}


def answer_for(platform, what, detail=""):
    """(status, content_type, body) each platform sends for ok / sign / shape / limit."""
    js = "application/json"
    if platform == "dingtalk":
        code = {"ok": 0, "sign": 310000, "shape": 40035, "limit": 130101}[what]
        msg = {"ok": "ok", "sign": "sign not match", "limit": "send too fast"}.get(what, detail)
        return 200, js, json.dumps({"errcode": code, "errmsg": msg})
    if platform == "feishu":
        code = {"ok": 0, "sign": 19021, "shape": 9499, "limit": 11232}[what]
        msg = {"ok": "success", "sign": "sign match fail or timestamp is not within one hour from current time",
               "limit": "frequency limited"}.get(what, detail)
        return 200, js, json.dumps({"code": code, "msg": msg, "data": {}})
    if platform == "wecom":
        code = {"ok": 0, "shape": 40058 if detail.startswith("too long") else 40008, "limit": 45009}[what]
        return 200, js, json.dumps({"errcode": code, "errmsg": "ok" if what == "ok" else detail or "limited"})
    if platform == "slack":
        if what == "ok":
            return 200, "text/plain", "ok"
        if what == "limit":
            return 429, "text/plain", "rate_limited"
        return 400, "text/plain", detail.split(":")[0] or "invalid_payload"
    if what == "ok":
        return 200, js, "{}"
    return (429, js, "{}") if what == "limit" else (400, js, json.dumps({"error": detail}))


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.scripts = {}
        self.accepted_times = {}
        self.release = threading.Event()

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.scripts.clear()
            self.accepted_times.clear()
            self.release.set()
            self.release = threading.Event()


class Handler(BaseHTTPRequestHandler):
    server_version = "receivers/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    @property
    def state(self):
        return self.server.state

    def _send(self, status, ctype, body):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status, obj):
        self._send(status, "application/json", json.dumps(obj))

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(min(n, MAX_BODY)) if n > 0 else b""

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/_receiver/health":
            return self._json(200, {"ok": True})
        if url.path == "/_receiver/log":
            q = dict(urllib.parse.parse_qsl(url.query))
            with self.state.lock:
                reqs = [r for r in self.state.requests if "path" not in q or r["path"] == q["path"]]
            return self._json(200, {"requests": reqs})
        self._json(404, {"error": "not found"})

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        raw = self._read_body()
        if url.path.startswith("/_receiver/"):
            return self._control(url.path, raw)
        parts = url.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] not in PLATFORMS:
            return self._json(404, {"error": "no such receiver"})
        self._platform(url, parts[0], parts[1], raw)

    def _control(self, path, raw):
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return self._json(400, {"error": "not JSON"})
        if path == "/_receiver/reset":
            self.state.reset()
            return self._json(200, {"ok": True})
        if path == "/_receiver/script":
            p = body.pop("path", None)
            if not p:
                return self._json(400, {"error": "path required"})
            with self.state.lock:
                self.state.scripts.setdefault(p, {}).update(body)
            return self._json(200, {"ok": True})
        self._json(404, {"error": "not found"})

    def _platform(self, url, platform, robot, raw):
        st = self.state
        now = time.time()
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        with st.lock:
            script = st.scripts.setdefault(url.path, {})
            rec = {"seq": len(st.requests) + 1, "t": time.monotonic(), "wall": now, "path": url.path,
                   "platform": platform, "robot": robot, "query": query,
                   "content_type": self.headers.get("Content-Type"), "body": body,
                   "raw": raw.decode("utf-8", "replace"), "sign_ok": None, "errors": [],
                   "outcome": None, "status": None}
            st.requests.append(rec)
            secret = script.get("secret")
            hang = script.get("hang") or 0
            drop = bool(script.get("drop"))
            scripted = None
            if not hang and not drop and script.get("fail", 0) > 0:
                script["fail"] -= 1
                scripted = int(script.get("fail_status", 500))
            release = st.release

        sign_errors, shape, sign_ok = CHECKS[platform](query, body, secret, now)
        rec["sign_ok"] = sign_ok
        rec["errors"] = sign_errors + shape
        if hang:
            rec["outcome"] = "hung"
            release.wait(hang)
            self.close_connection = True
            return
        if drop:
            rec["outcome"] = "dropped"
            self.close_connection = True
            return
        if scripted is not None:
            rec["outcome"], rec["status"] = "scripted", scripted
            return self._send(scripted, "text/plain", "scripted failure")
        if sign_errors:
            what, detail = "sign", sign_errors[0]
        elif shape:
            what, detail = "shape", shape[0]
        else:
            what, detail = "ok", ""
            limit = script.get("limit")
            with st.lock:
                times = st.accepted_times.setdefault(url.path, [])
                if limit:
                    times[:] = [t for t in times if rec["t"] - t < float(limit[1])]
                    if len(times) >= int(limit[0]):
                        what = "limit"
                if what == "ok":
                    times.append(rec["t"])
        status, ctype, answer = answer_for(platform, what, detail)
        rec["outcome"] = {"ok": "accepted", "limit": "limited"}.get(what, "rejected")
        rec["status"] = status
        self._send(status, ctype, answer)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port=0):
        super().__init__(("127.0.0.1", port), Handler)
        self.state = State()

    def shutdown(self):
        self.state.release.set()
        super().shutdown()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args(argv)
    srv = Server(args.port)
    port = srv.server_address[1]
    if args.port_file:
        with open(args.port_file + ".tmp", "w") as f:
            f.write(f"{port}\n")
        import os
        os.replace(args.port_file + ".tmp", args.port_file)
    print(f"receivers listening on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
