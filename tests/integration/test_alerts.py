# SPDX-License-Identifier: MIT
"""The alert listener (SPEC 7): Alertmanager webhooks into the running
daemon, /metrics as Prometheus text, /status as JSON."""

import http.client
import json
import math
import re
import socket

import pytest

from conftest import (_SECRETS, config_app_from, rule, sae_app, stuck_order, wait_for,
                      write_config)

TOKEN = "rg-alert-token-5f1c9a2e7d"
_SECRETS.add(TOKEN)  # the daemon's output must never contain it

ALERT_RULE = rule("error-rate-alert", status=["executing"], alert={"alertname": "HighErrorRate"})
ZERO_TIME = "0001-01-01T00:00:00Z"


# --------------------------------------------------------------------------
# Helpers


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_token(path, text=TOKEN + "\n"):
    path.write_text(text)
    return path


class Listener:
    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            if isinstance(body, (dict, list)):
                body = json.dumps(body)
            if isinstance(body, str):
                body = body.encode()
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            raw = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw
        finally:
            conn.close()

    def post_alerts(self, payload, token=TOKEN, headers=None):
        h = {"Content-Type": "application/json"}
        if token is not None:
            h["Authorization"] = f"Bearer {token}"
        h.update(headers or {})
        status, hdrs, raw = self.request("POST", "/api/v1/alerts", payload, h)
        doc = json.loads(raw) if raw else None
        return status, hdrs, doc

    def status(self):
        status, hdrs, raw = self.request("GET", "/status")
        assert status == 200, raw
        assert hdrs["content-type"].startswith("application/json")
        return json.loads(raw)

    def firing(self, app_name):
        for a in self.status()["apps"]:
            if a["name"] == app_name:
                return a["alerts_firing"]
        raise AssertionError(f"{app_name} not in /status")

    def metrics_text(self):
        status, hdrs, raw = self.request("GET", "/metrics")
        assert status == 200, raw
        assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
        return raw.decode("utf-8")


def alert(status="firing", fingerprint=None, ends_at=ZERO_TIME, starts_at="2026-11-23T08:00:00Z", **labels):
    a = {"status": status, "labels": labels, "annotations": {"summary": "test"},
         "startsAt": starts_at, "endsAt": ends_at, "generatorURL": "http://prometheus:9090/graph"}
    if fingerprint:
        a["fingerprint"] = fingerprint
    return a


def payload(*alerts, status=None):
    """What Alertmanager's webhook_config posts (version 4)."""
    alerts = list(alerts)
    if status is None:
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    common = dict(alerts[0]["labels"]) if alerts else {}
    for a in alerts[1:]:
        common = {k: v for k, v in common.items() if a["labels"].get(k) == v}
    return {"receiver": "rollguard", "status": status, "alerts": alerts,
            "groupLabels": {}, "commonLabels": common, "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093", "version": "4",
            "groupKey": "{}:{}", "truncatedAlerts": 0}


def start_with_alerts(tmp_path, sim, start_daemon, apps, defaults=None, token_file=None, port=None,
                      env=None):
    """Daemon with the listener on a free loopback port; returns (daemon, Listener)."""
    port = port or free_port()
    token_file = token_file or write_token(tmp_path / "alert-token")
    cfg = write_config(tmp_path, sim, apps, defaults=defaults,
                       extra={"alerts": {"listen": f"127.0.0.1:{port}", "token_file": str(token_file)}})
    d = start_daemon(cfg, env=env)
    d.wait_for_log(f"listening on 127.0.0.1:{port} for alerts")
    return d, Listener(port)


# A Prometheus text-format (0.0.4) reader strict enough to catch what a
# scraper would reject.
_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
_SAMPLE = re.compile(rf"^({_NAME})(\{{(?:{_LABEL}(?:,{_LABEL})*,?)?\}})? (\S+)(?: (-?\d+))?$")
_HELP = re.compile(rf"^# HELP ({_NAME}) (.*)$")
_TYPE = re.compile(rf"^# TYPE ({_NAME}) (counter|gauge|histogram|summary|untyped)$")


def _family_of(name, types):
    if name in types:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


def parse_prometheus(text):
    """{(name, labels-string): value}; raises AssertionError naming the bad line."""
    assert text.endswith("\n"), "exposition must end with a newline"
    helps, types, samples, seen_families, current = {}, {}, {}, [], None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        if not line:
            continue
        if line.startswith("#"):
            m = _HELP.match(line)
            if m:
                assert m.group(1) not in helps, f"line {n}: second HELP for {m.group(1)}"
                helps[m.group(1)] = m.group(2)
                continue
            m = _TYPE.match(line)
            if m:
                name = m.group(1)
                assert name not in types, f"line {n}: second TYPE for {name}"
                assert name not in {_family_of(s[0], types) for s in samples}, \
                    f"line {n}: TYPE for {name} after its samples"
                types[name] = m.group(2)
                continue
            continue  # other comments are allowed
        m = _SAMPLE.match(line)
        assert m, f"line {n} is not a valid sample: {line!r}"
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        try:
            v = float(value)
        except ValueError:
            raise AssertionError(f"line {n}: value {value!r} is not a number") from None
        assert not math.isnan(v) or value == "NaN", f"line {n}: bad NaN spelling"
        fam = _family_of(name, types)
        if fam != current:
            assert fam not in seen_families, f"line {n}: samples of {fam} are not contiguous"
            seen_families.append(fam)
            current = fam
        key = (name, labels)
        assert key not in samples, f"line {n}: duplicate series {name}{labels}"
        samples[key] = v
    for fam in seen_families:
        assert fam in helps, f"metric family {fam} has no # HELP"
        assert fam in types, f"metric family {fam} has no # TYPE"
        if types[fam] == "counter":
            assert all(v >= 0 for (nm, _), v in samples.items() if _family_of(nm, types) == fam), \
                f"counter {fam} is negative"
    return samples


def test_prometheus_parser_rejects_what_scrapers_reject():
    good = '# HELP x_total X.\n# TYPE x_total counter\nx_total{a="b\\"c"} 1\n'
    assert parse_prometheus(good) == {("x_total", '{a="b\\"c"}'): 1.0}
    bad = [
        "x 1\n",                                                    # no HELP/TYPE
        "# HELP x X.\nx 1\n",                                       # no TYPE
        "# HELP x X.\n# TYPE x gauge\nx{a=b} 1\n",                  # unquoted label value
        "# HELP x X.\n# TYPE x gauge\nx one\n",                     # not a number
        "# HELP x X.\n# TYPE x gauge\nx 1\nx 2\n",                  # duplicate series
        "# HELP x X.\n# TYPE x gauge\n# HELP y Y.\n# TYPE y gauge\nx 1\ny 1\nx{a=\"1\"} 1\n",
        "# HELP x X.\n# TYPE x gauge\nx 1",                         # no final newline
    ]
    for text in bad:
        with pytest.raises(AssertionError):
            parse_prometheus(text)


def requests_after(sim, seq, action):
    return [r for r in sim.requests(action=action) if r["seq"] > seq]


def last_seq(sim):
    rs = sim.requests(kind=None)
    return rs[-1]["seq"] if rs else 0


# --------------------------------------------------------------------------
# Alert-driven rollback


def test_firing_alert_polls_at_once_and_rolls_back_exactly_once(tmp_path, sim, start_daemon):
    """Polling is slowed to an hour, so only the alert can cause the poll
    that rolls the stuck release back; more alerts afterwards add nothing."""
    co = stuck_order()
    app = sim.add_app(sae_app(orders=[co], name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon,
                               [config_app_from(app, rules=[ALERT_RULE])],
                               defaults={"poll_interval": "1h", "active_poll_interval": "1h"})
    d.wait_for_log("rollguard-release-seen", timeout=15)
    assert sim.rollbacks(co["id"]) == []

    mark = last_seq(sim)
    status, _, doc = lis.post_alerts(payload(alert(fingerprint="fp-1", alertname="HighErrorRate",
                                                   app="shop-api", severity="critical")))
    assert status == 200 and doc == {"status": "ok", "matched": 1, "unmatched": 0}
    rb = sim.wait_for_rollback(co["id"], timeout=10)
    assert rb["action"] in ("AbortAndRollbackChangeOrder",), rb
    assert requests_after(sim, mark, "DescribeChangeOrder"), "the alert did not cause a poll"
    d.wait_for_log("rollguard-action-done", timeout=10)
    d.wait_for_log(re.compile(r"rollguard-alert app=shop-api .*HighErrorRate firing"))

    # Two more deliveries, each a new alert that makes the app poll again;
    # the third poll can only start after the second one was evaluated.
    for i, fp in enumerate(("fp-2", "fp-3")):
        mark = last_seq(sim)
        status, _, doc = lis.post_alerts(payload(alert(fingerprint=fp, alertname="HighErrorRate",
                                                       app="shop-api", replica=str(i))))
        assert status == 200 and doc["matched"] == 1
        # a look at the app: the app call, or the order call alone while
        # the rollback order is in flight
        wait_for(lambda: requests_after(sim, mark, "DescribeApplicationStatus")
                 or requests_after(sim, mark, "DescribeChangeOrder"), timeout=10,
                 what="a poll caused by the alert")
    assert len(sim.rollbacks(co["id"])) == 1
    assert lis.firing("shop-api") == 3


def test_resolved_alert_does_not_roll_back(tmp_path, sim, start_daemon):
    co = stuck_order()
    app = sim.add_app(sae_app(orders=[co], name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[ALERT_RULE])])
    d.wait_for_log("rollguard-release-seen", timeout=15)

    mark = last_seq(sim)
    status, _, doc = lis.post_alerts(payload(alert("resolved", fingerprint="fp-r", alertname="HighErrorRate",
                                                   app="shop-api", ends_at="2026-11-23T08:05:00Z")))
    assert status == 200 and doc == {"status": "ok", "matched": 1, "unmatched": 0}
    # three full poll cycles after the delivery
    wait_for(lambda: len(requests_after(sim, mark, "DescribeChangeOrder")) >= 3, timeout=15,
             what="three polls after the resolved alert")
    assert sim.rollbacks(co["id"]) == []
    assert lis.firing("shop-api") == 0


def test_alert_resolved_before_for_elapses_rolls_back_nothing(tmp_path, sim, start_daemon):
    co = stuck_order()
    app = sim.add_app(sae_app(orders=[co], name="shop-api"))
    held = rule("error-rate-alert", for_="3s", status=["executing"], alert={"alertname": "HighErrorRate"})
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[held])])
    d.wait_for_log("rollguard-release-seen", timeout=15)

    firing = alert(fingerprint="fp-h", alertname="HighErrorRate", app="shop-api")
    assert lis.post_alerts(payload(firing))[0] == 200
    held_line = d.wait_for_log("rollguard-rule-holding", timeout=10)
    assert "error-rate-alert" in held_line
    resolved = dict(firing, status="resolved", endsAt="2026-11-23T08:05:00Z")
    assert lis.post_alerts(payload(resolved))[0] == 200
    assert lis.firing("shop-api") == 0

    # polls well past the moment the rule would have fired
    t_resolved = sim.requests(kind=None)[-1]["t"]
    wait_for(lambda: any(r["t"] > t_resolved + 5 for r in sim.requests(action="DescribeChangeOrder")),
             timeout=20, what="polls past the rule's `for`")
    assert sim.rollbacks(co["id"]) == []


def test_firing_alert_with_past_ends_at_is_not_stored(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[ALERT_RULE])])
    status, _, doc = lis.post_alerts(payload(alert(fingerprint="old", ends_at="2020-01-01T00:00:00Z",
                                                   alertname="HighErrorRate", app="shop-api")))
    assert status == 200 and doc["matched"] == 1
    assert lis.firing("shop-api") == 0


# --------------------------------------------------------------------------
# Routing


def test_grouped_payload_routes_each_alert(tmp_path, sim, start_daemon):
    shop = sim.add_app(sae_app(name="shop-api"))
    cart = sim.add_app(sae_app(name="cart"))
    cart_rule = rule("latency", status=["executing"], alert={"alertname": "HighLatency", "service": "cart-svc"})
    d, lis = start_with_alerts(tmp_path, sim, start_daemon,
                               [config_app_from(shop, rules=[ALERT_RULE]), config_app_from(cart, rules=[cart_rule])])

    group = payload(
        alert(fingerprint="g1", alertname="HighErrorRate", app="shop-api"),            # by app label
        alert(fingerprint="g2", alertname="HighLatency", service="cart-svc", pod="c-1"),  # by cart's matchers
        alert(fingerprint="g3", alertname="DiskFull", app="billing"),                   # nobody's
        alert("resolved", fingerprint="g4", alertname="HighLatency", app="shop-api",
              ends_at="2026-11-23T08:05:00Z"),                                          # by app label
        alert(fingerprint="g5", alertname="HighLatency", service="other"),              # matcher differs
        # satisfies shop-api's matchers but names another app: never shop-api's
        alert(fingerprint="g6", alertname="HighErrorRate", app="billing"),
    )
    status, _, doc = lis.post_alerts(group)
    assert status == 200
    assert doc == {"status": "ok", "matched": 3, "unmatched": 3}
    assert lis.firing("shop-api") == 1
    assert lis.firing("cart") == 1

    # Alertmanager re-sends the whole group on every group_interval: the
    # store replaces by fingerprint instead of adding.
    assert lis.post_alerts(group)[2]["matched"] == 3
    assert lis.firing("shop-api") == 1
    assert lis.firing("cart") == 1

    samples = parse_prometheus(lis.metrics_text())
    assert samples[("rollguard_alerts_firing", '{app="shop-api"}')] == 1
    assert samples[("rollguard_alerts_firing", '{app="cart"}')] == 1
    assert samples[("rollguard_alerts_received_total", '{result="ok"}')] == 2

    d.wait_for_log(re.compile(r"rollguard-alert app=cart .*HighLatency firing"))
    d.wait_for_log(re.compile(r"rollguard-alert app=shop-api .*HighErrorRate firing.*HighLatency resolved"))
    d.wait_for_log(re.compile(r"concern no configured app: DiskFull firing, HighLatency firing"))

    # Resolution removes by fingerprint, also when the labels changed since.
    status, _, doc = lis.post_alerts(payload(alert("resolved", fingerprint="g2", alertname="HighLatency",
                                                   ends_at="2026-11-23T08:10:00Z")))
    assert status == 200 and doc == {"status": "ok", "matched": 0, "unmatched": 1}
    assert lis.firing("cart") == 0
    assert lis.firing("shop-api") == 1


def test_alert_without_fingerprint_is_keyed_by_its_labels(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[ALERT_RULE])])
    a = alert(alertname="HighErrorRate", app="shop-api", pod="p1")
    b = alert(alertname="HighErrorRate", pod="p1", app="shop-api")  # same set, other order
    assert lis.post_alerts(payload(a))[0] == 200
    assert lis.post_alerts(payload(b))[0] == 200
    assert lis.firing("shop-api") == 1
    assert lis.post_alerts(payload(alert(alertname="HighErrorRate", app="shop-api", pod="p2")))[0] == 200
    assert lis.firing("shop-api") == 2
    assert lis.post_alerts(payload(dict(a, status="resolved")))[0] == 200
    assert lis.firing("shop-api") == 1


def test_unknown_app_is_accepted_and_counted_unmatched(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[ALERT_RULE])])
    status, _, doc = lis.post_alerts(payload(alert(fingerprint="u1", alertname="Whatever", app="nope")))
    assert status == 200
    assert doc == {"status": "ok", "matched": 0, "unmatched": 1}
    assert lis.firing("shop-api") == 0
    d.wait_for_log("1 alert(s) concern no configured app: Whatever firing")


def test_reload_keeps_alerts_of_kept_apps_and_drops_removed_ones(tmp_path, sim, start_daemon):
    shop = sim.add_app(sae_app(name="shop-api"))
    cart = sim.add_app(sae_app(name="cart"))
    port = free_port()
    token_file = write_token(tmp_path / "alert-token")
    alerts_cfg = {"alerts": {"listen": f"127.0.0.1:{port}", "token_file": str(token_file)}}
    cfg = write_config(tmp_path, sim, [config_app_from(shop, rules=[ALERT_RULE]), config_app_from(cart)],
                       extra=alerts_cfg)
    d = start_daemon(cfg)
    d.wait_for_log(f"listening on 127.0.0.1:{port}")
    lis = Listener(port)
    lis.post_alerts(payload(alert(fingerprint="s", alertname="HighErrorRate", app="shop-api"),
                            alert(fingerprint="c", alertname="X", app="cart")))
    assert (lis.firing("shop-api"), lis.firing("cart")) == (1, 1)

    # cart goes away, the token changes, the listener moves to a new port
    new_port = free_port()
    write_token(token_file, "rotated-" + TOKEN + "\r\n")
    _SECRETS.add("rotated-" + TOKEN)
    write_config(tmp_path, sim, [config_app_from(shop, rules=[ALERT_RULE])],
                 extra={"alerts": {"listen": f"127.0.0.1:{new_port}", "token_file": str(token_file)}})
    mark = d.mark()
    d.reload()
    d.wait_for_log("rollguard-reloaded", since=mark, timeout=10)
    d.wait_for_log(f"listening on 127.0.0.1:{new_port}", since=mark)

    new = Listener(new_port)
    with pytest.raises(ConnectionRefusedError):
        lis.status()
    assert [a["name"] for a in new.status()["apps"]] == ["shop-api"]
    assert new.firing("shop-api") == 1
    assert new.post_alerts(payload(alert(alertname="Y", app="shop-api")))[0] == 401
    assert new.post_alerts(payload(alert(alertname="Y", app="shop-api")), token="rotated-" + TOKEN)[0] == 200


def test_reload_with_unreadable_token_keeps_everything(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    token_file = write_token(tmp_path / "alert-token")
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[ALERT_RULE])],
                               token_file=token_file)
    token_file.write_text("\n")
    mark = d.mark()
    d.reload()
    line = d.wait_for_log("rollguard-reload-failed", since=mark, timeout=10)
    assert f"alert token file {token_file} is empty" in line
    assert lis.post_alerts(payload(alert(alertname="Z", app="shop-api")))[0] == 200


# --------------------------------------------------------------------------
# Refusals


@pytest.fixture
def idle_listener(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(app, rules=[ALERT_RULE])])
    lis.daemon = d
    return lis


@pytest.mark.parametrize("headers", [
    {},                                                   # no Authorization at all
    {"Authorization": "Bearer wrong-token"},
    {"Authorization": f"Bearer {TOKEN[:-1]}"},            # a prefix of the token
    {"Authorization": f"Bearer {TOKEN}x"},                # the token and more
    {"Authorization": f"Basic {TOKEN}"},                  # right secret, wrong scheme
    {"Authorization": "Bearer "},
    {"Authorization": TOKEN},
], ids=["missing", "wrong", "prefix", "longer", "basic", "empty", "no-scheme"])
def test_bad_or_missing_token_is_401(idle_listener, headers):
    body = payload(alert(fingerprint="x", alertname="HighErrorRate", app="shop-api"))
    status, hdrs, doc = idle_listener.post_alerts(body, token=None, headers=headers)
    assert status == 401
    assert doc == {"error": "missing or invalid bearer token"}
    assert hdrs.get("www-authenticate") == "Bearer"
    assert idle_listener.firing("shop-api") == 0
    idle_listener.daemon.wait_for_log("missing or invalid bearer token")


def test_token_scheme_is_case_insensitive(idle_listener):
    body = payload(alert(fingerprint="x", alertname="HighErrorRate", app="shop-api"))
    status, _, _ = idle_listener.post_alerts(body, token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert status == 200


MALFORMED = [
    ("{", "malformed JSON near byte 0"),
    ('{"alerts": []} trailing', "malformed JSON near byte 15"),
    ("[]", "expected a JSON object at the top level"),
    ('{"version": "3", "alerts": []}', 'version: expected "4", got "3"'),
    ('{"version": "4"}', "alerts: missing"),
    ('{"alerts": [{"status": "firing", "labels": {"app": 1}}]}', "alerts[0].labels.app: expected a string"),
    ('{"alerts": [{"status": "firing", "labels": {}}, {"status": "pending", "labels": {}}]}',
     'alerts[1].status: expected "firing" or "resolved"'),
    ('{"alerts": [{"status": "firing", "labels": {}, "endsAt": "tomorrow"}]}',
     "alerts[0].endsAt: not an RFC 3339 time"),
    ("", "empty body"),
]


@pytest.mark.parametrize("body,reason", MALFORMED, ids=[r for _, r in MALFORMED])
def test_malformed_payload_is_400_with_reason(idle_listener, body, reason):
    status, hdrs, doc = idle_listener.post_alerts(body)
    assert status == 400
    assert hdrs["content-type"] == "application/json"
    assert doc == {"error": reason}


def _padded(n):
    """A valid payload of exactly n bytes (JSON whitespace as padding)."""
    base = json.dumps(payload(alert(fingerprint="big", alertname="HighErrorRate", app="shop-api")))
    assert len(base) < n
    return base + " " * (n - len(base))


def test_body_over_one_mib_is_413(idle_listener):
    status, _, doc = idle_listener.post_alerts(_padded(1024 * 1024 + 1))
    assert status == 413
    assert doc == {"error": "body larger than 1 MiB"}
    assert idle_listener.firing("shop-api") == 0


def test_body_of_exactly_one_mib_is_accepted(idle_listener):
    status, _, doc = idle_listener.post_alerts(_padded(1024 * 1024))
    assert status == 200 and doc["matched"] == 1


def test_body_over_one_mib_without_content_length_is_413(idle_listener):
    body = _padded(1024 * 1024 + 10).encode()
    conn = http.client.HTTPConnection("127.0.0.1", idle_listener.port, timeout=10)
    try:
        conn.putrequest("POST", "/api/v1/alerts")
        conn.putheader("Authorization", f"Bearer {TOKEN}")
        conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        for i in range(0, len(body), 64 * 1024):
            chunk = body[i:i + 64 * 1024]
            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        assert resp.status == 413
        assert json.loads(resp.read()) == {"error": "body larger than 1 MiB"}
    finally:
        conn.close()


def test_huge_declared_length_is_refused_before_the_body(idle_listener):
    with socket.create_connection(("127.0.0.1", idle_listener.port), timeout=10) as s:
        s.sendall(b"POST /api/v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
                  b"\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n")
        reply = b""
        while b"\r\n\r\n" not in reply:
            chunk = s.recv(4096)
            assert chunk, f"connection closed without a reply: {reply!r}"
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 413 ")


def test_unauthorized_and_oversized_is_401(idle_listener):
    status, _, _ = idle_listener.post_alerts(_padded(1024 * 1024 + 1), token="wrong")
    assert status == 401


def test_wrong_paths_and_methods(idle_listener):
    status, _, raw = idle_listener.request("GET", "/nope")
    assert status == 404 and json.loads(raw) == {"error": "not found"}
    status, hdrs, raw = idle_listener.request("GET", "/api/v1/alerts")
    assert status == 405 and hdrs["allow"] == "POST"
    status, hdrs, raw = idle_listener.request("POST", "/metrics", b"{}")
    assert status == 405 and hdrs["allow"] == "GET, HEAD"
    status, hdrs, raw = idle_listener.request("DELETE", "/status")
    assert status == 405
    status, hdrs, raw = idle_listener.request("HEAD", "/status")
    assert status == 200 and raw == b""


def test_refusals_are_counted(idle_listener):
    idle_listener.post_alerts("{", token=TOKEN)
    idle_listener.post_alerts("{}", token="wrong")
    idle_listener.post_alerts(_padded(1024 * 1024 + 1))
    idle_listener.post_alerts(payload())
    s = parse_prometheus(idle_listener.metrics_text())
    for result in ("ok", "unauthorized", "malformed", "too_large"):
        assert s[("rollguard_alerts_received_total", f'{{result="{result}"}}')] == 1, result


# --------------------------------------------------------------------------
# Start-up


def test_no_token_configured_refuses_to_start(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    cfg = write_config(tmp_path, sim, [config_app_from(app)],
                       extra={"alerts": {"listen": f"127.0.0.1:{free_port()}"}})
    d = start_daemon(cfg)
    rc = d.wait_exit(timeout=10)
    assert rc != 0
    assert "alerts.token_file" in d.output
    assert "alert-token" in d.output  # the systemd credential name


def test_empty_token_file_refuses_to_start(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    token_file = write_token(tmp_path / "alert-token", "\n")
    cfg = write_config(tmp_path, sim, [config_app_from(app)],
                       extra={"alerts": {"listen": f"127.0.0.1:{free_port()}", "token_file": str(token_file)}})
    d = start_daemon(cfg)
    assert d.wait_exit(timeout=10) != 0
    assert f"alert token file {token_file} is empty" in d.output


def test_token_from_systemd_credential(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    creds = tmp_path / "creds"
    creds.mkdir()
    write_token(creds / "alert-token")
    port = free_port()
    cfg = write_config(tmp_path, sim, [config_app_from(app)],
                       extra={"alerts": {"listen": f"127.0.0.1:{port}"}})
    d = start_daemon(cfg, env={"CREDENTIALS_DIRECTORY": str(creds)})
    d.wait_for_log(f"listening on 127.0.0.1:{port}")
    lis = Listener(port)
    assert lis.post_alerts(payload(alert(alertname="A", app="shop-api")))[0] == 200
    assert lis.post_alerts(payload(alert(alertname="A", app="shop-api")), token="x")[0] == 401


def test_port_in_use_is_a_clear_error(tmp_path, sim, start_daemon):
    app = sim.add_app(sae_app(name="shop-api"))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        token_file = write_token(tmp_path / "alert-token")
        cfg = write_config(tmp_path, sim, [config_app_from(app)],
                           extra={"alerts": {"listen": f"127.0.0.1:{port}", "token_file": str(token_file)}})
        d = start_daemon(cfg)
        assert d.wait_exit(timeout=10) != 0
    assert f"cannot listen on 127.0.0.1:{port} for alerts: Failed to bind to port {port}: Address already in use" in d.output


# --------------------------------------------------------------------------
# /metrics and /status


def test_metrics_is_valid_prometheus_text(tmp_path, sim, start_daemon):
    co = stuck_order()
    shop = sim.add_app(sae_app(orders=[co], name="shop-api"))
    cart = sim.add_app(sae_app(name="cart"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon,
                               [config_app_from(shop, rules=[ALERT_RULE]), config_app_from(cart)])
    d.wait_for_log("rollguard-release-seen", timeout=15)
    lis.post_alerts(payload(alert(fingerprint="m1", alertname="Other", app="cart")))
    lis.post_alerts("{")

    samples = wait_for(lambda: (lambda s: s if ("rollguard_polls_total", '{result="ok"}') in s else None)(
        parse_prometheus(lis.metrics_text())), timeout=10, what="a counted poll in /metrics")
    names = {n for n, _ in samples}
    for expected in ("rollguard_alerts_received_total", "rollguard_alerts_firing", "rollguard_apps",
                     "rollguard_polls_total"):
        assert expected in names, f"{expected} missing from /metrics"
    assert samples[("rollguard_alerts_firing", '{app="cart"}')] == 1
    assert samples[("rollguard_alerts_firing", '{app="shop-api"}')] == 0
    assert samples[("rollguard_alerts_received_total", '{result="malformed"}')] == 1

    # no authentication needed, and HEAD works for probes
    status, _, raw = lis.request("HEAD", "/metrics")
    assert status == 200 and raw == b""


def test_status_lists_every_app_with_its_alerts(tmp_path, sim, start_daemon):
    shop = sim.add_app(sae_app(name="shop-api"))
    cart = sim.add_app(sae_app(name="cart"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(shop), config_app_from(cart)])
    lis.post_alerts(payload(alert(fingerprint="s1", alertname="A", app="shop-api"),
                            alert(fingerprint="s2", alertname="B", app="shop-api")))
    doc = lis.status()
    apps = {a["name"]: a for a in doc["apps"]}
    assert set(apps) == {"shop-api", "cart"}
    assert apps["shop-api"]["alerts_firing"] == 2
    assert apps["cart"]["alerts_firing"] == 0
    assert apps["shop-api"]["app_id"] == shop["app_id"]
    assert TOKEN not in json.dumps(doc)


def test_reload_starts_and_stops_the_listener(tmp_path, sim, start_daemon):
    """Adding alerts.listen on reload starts the listener; removing it stops it."""
    app = sae_app(orders=[], name="shop-api")
    sim.set_apps([app])
    port = free_port()
    token = write_token(tmp_path / "token")
    plain = write_config(tmp_path, sim, [app])
    d = start_daemon(plain)
    d.wait_for_log("rollguard-started")
    listener = Listener(port)

    write_config(tmp_path, sim, [app],
                 extra={"alerts": {"listen": f"127.0.0.1:{port}", "token_file": str(token)}})
    mark = d.mark()
    d.reload()
    d.wait_for_log("rollguard-reloaded", since=mark)
    assert [a["name"] for a in listener.status()["apps"]] == ["shop-api"]

    write_config(tmp_path, sim, [app])
    mark = d.mark()
    d.reload()
    d.wait_for_log("rollguard-reloaded", since=mark)
    with pytest.raises(OSError):
        listener.status()
    assert d.running


def test_metrics_pass_promtool_with_label_values_that_need_escaping(tmp_path, sim, start_daemon):
    """promtool, the reference parser, accepts the whole /metrics page, and an
    error code the cloud chose (quote, backslash) comes out escaped. (The
    client turns control characters into spaces before this; newlines are
    covered by test_metrics.c.)"""
    import shutil
    import subprocess
    promtool = shutil.which("promtool")
    if not promtool:
        pytest.skip("promtool is not installed")
    code = 'Odd"Code\\x'
    sim.add_fault(kind="http_status", status=500, code=code, count=1)
    shop = sim.add_app(sae_app(orders=[stuck_order()], name="shop-api"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(shop, rules=[ALERT_RULE])])
    lis.post_alerts(payload(alert(fingerprint="p1", alertname="HighErrorRate", app="shop-api")))
    lis.post_alerts("{")

    def page():
        text = lis.metrics_text()
        s = parse_prometheus(text)
        names = {n for n, _ in s}
        return text if {"rollguard_api_errors_total", "rollguard_decisions_total"} <= names else None
    text = wait_for(page, timeout=15, what="an API error and a decision in /metrics")
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"promtool check metrics:\n{r.stdout}{r.stderr}\n---\n{text}"
    assert ("rollguard_api_errors_total", '{code="Odd\\"Code\\\\x"}') in parse_prometheus(text), text
