# SPDX-License-Identifier: MIT
"""The integration harness (tests/integration/conftest.py) on its own: the
Sim wrapper, the model builders against the real simulator, the YAML writer
and the Daemon wrapper (with a stand-in binary)."""

import importlib.util
import os
import re
import signal
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("rollguard_harness", HERE.parent / "integration" / "conftest.py")
h = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(h)

from test_sim import Client  # noqa: E402  (the independent signer's client)


@pytest.fixture
def hsim(tmp_path):
    s = h.Sim(tmp_path / "sim")
    yield s
    assert s.stop() == 0


def test_sim_wrapper_roundtrip(hsim):
    assert hsim.url == f"http://127.0.0.1:{hsim.port}"
    app = h.sae_app(orders=[h.succeeded_order(), h.stuck_order()])
    assert hsim.set_apps([app]) == [app["app_id"]]
    c = Client(hsim.port)
    status, _, _, doc = c.app_status(app["app_id"])
    assert status == 200 and doc["Data"]["LastChangeOrderId"] == app["change_orders"][1]["id"]
    (rec,) = hsim.requests(action="DescribeApplicationStatus")
    assert rec["signature_ok"] is True
    assert hsim.requests(kind="metadata") == []

    co = hsim.add_change_order(app["app_id"], h.healthy_order(step_seconds=0, steps=2))
    assert c.describe(co["id"])[3]["Data"]["Status"] == 1
    assert c.describe(co["id"])[3]["Data"]["Status"] == 2
    assert hsim.patch_change_order(co["id"], status=1, behaviour="static")["status"] == 1
    assert hsim.change_order(co["id"])["steps_done"] == 2

    hsim.add_fault(kind="throttle", match={"action": "DescribeChangeOrder"})
    assert c.describe(co["id"])[0] == 400
    assert hsim.faults()[0]["applied"] == 1
    hsim.clear_faults()
    assert hsim.faults() == []

    stuck = app["change_orders"][1]["id"]
    assert c.rollback(stuck)[0] == 200
    rb = hsim.wait_for_rollback(stuck, timeout=2)
    assert rb["action"] == "AbortAndRollbackChangeOrder"
    assert hsim.rollback_calls(stuck) == 1
    assert hsim.rollbacks(result="rejected") == []

    assert hsim.max_calls_in_window() == len(hsim.requests())

    assert hsim.metadata(expiry_seconds=5)["expiry_seconds"] == 5
    assert hsim.metadata()["issued"] == []
    hsim.add_key("k9", "s9-secret", security_token="tok9")
    assert "s9-secret" in h.known_secrets() and "tok9" in h.known_secrets()
    hsim.expire_key("k9")
    assert {k["access_key_id"]: k["expired"] for k in hsim.keys()}["k9"] is True
    assert hsim.settings(rollback_lag_seconds=2)["rollback_lag_seconds"] == 2
    hsim.reset()
    assert hsim.apps() == [] and hsim.requests() == []
    hsim.set_apps([app])
    hsim.set_rate_limit(1)  # calls admitted before the limit was set count too
    assert [c.app_status(app["app_id"])[0] for _ in range(2)] == [200, 400]
    hsim.set_rate_limit(None)
    assert c.app_status(app["app_id"])[0] == 200
    with pytest.raises(AssertionError, match="404"):
        hsim.change_order("nope")
    with pytest.raises(AssertionError, match="waiting for nothing"):
        hsim.wait_for(lambda: False, timeout=0.2, what="nothing")


BUILDERS = [
    # builder, kwargs, expected (Status, SubStatus, SupportRollback, CoTypeCode, pipeline statuses)
    (h.stuck_order, {}, (1, 1, True, "CoDeploy", [2, 3, 0])),
    (h.stalled_order, {}, (1, 0, True, "CoDeploy", [1, 0, 0])),
    (h.failed_pipeline_order, {}, (1, 0, True, "CoDeploy", [3, 0, 0])),
    (h.non_rollbackable_order, {}, (1, 1, False, "CoDeploy", [2, 3, 0])),
    (h.rollback_order, {}, (1, 1, True, "CoRollback", [2, 3, 0])),
    (h.rollback_order, {"co_type": "CoDeployHistroy"}, (1, 1, True, "CoDeployHistroy", [2, 3, 0])),
    (h.succeeded_order, {}, (2, 0, True, "CoDeploy", [2, 2])),
    (h.waiting_manual_order, {}, (8, 0, True, "CoDeploy", [2, 8, 0])),
    (h.healthy_order, {"step_seconds": 3600}, (1, 0, True, "CoDeploy", [1, 0, 0])),
    (h.stuck_order, {"batch_count": 4, "failed_batch": 3}, (1, 1, True, "CoDeploy", [2, 2, 3, 0])),
]


@pytest.mark.parametrize("builder,kw,want", BUILDERS, ids=[f"{b[0].__name__}-{i}" for i, b in enumerate(BUILDERS)])
def test_builders_mean_what_they_say(hsim, builder, kw, want):
    co = builder(**kw)
    app = h.sae_app(orders=[co])
    hsim.set_apps([app])
    d = Client(hsim.port).describe(co["id"])[3]["Data"]
    got = (d["Status"], d["SubStatus"], d["SupportRollback"], d["CoTypeCode"], [p["Status"] for p in d["Pipelines"]])
    assert got == want, builder.__name__


def test_stuck_order_times(hsim):
    co = h.stuck_order(stuck_for=1200)
    hsim.set_apps([h.sae_app(orders=[co])])
    d = Client(hsim.port).describe(co["id"])[3]["Data"]
    latest = max(max(p["StartTime"] or 0, p["UpdateTime"] or 0) for p in d["Pipelines"])
    assert 1195 < time.time() - latest / 1000 < 1210
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", co["id"])


def test_stall_after_builder(hsim):
    co = h.stall_after_order(after=1, step_seconds=0)
    hsim.set_apps([h.sae_app(orders=[co])])
    c = Client(hsim.port)
    c.describe(co["id"])
    d = c.describe(co["id"])[3]["Data"]
    assert (d["Status"], d["SubStatus"]) == (1, 1) and 3 in [p["Status"] for p in d["Pipelines"]]


def test_edas_app_builder(hsim):
    co = h.stuck_order()
    app = h.edas_app(orders=[co], kind="k8s")
    hsim.set_apps([app])
    c = Client(hsim.port)
    status, _, _, doc = c.edas("/pop/v5/changeorder/change_order_abort_and_rollback", "ChangeOrderId", co["id"])
    assert status == 200 and doc["Data"]["ChangeOrderId"]
    assert h.config_app_from(app)["edas_kind"] == "k8s"
    assert "edas_kind" not in h.config_app_from(h.edas_app(kind="ecs"))


# --------------------------------------------------------------------------
# YAML


def test_yaml_scalars():
    table = [
        ("1s", "1s"), ("60/min", "60/min"), ("1h30m", "1h30m"), ("cn-hangzhou", "cn-hangzhou"),
        ("/tmp/a b", '"/tmp/a b"'), ("http://127.0.0.1:80", '"http://127.0.0.1:80"'),
        ("yes", '"yes"'), ("null", '"null"'), ("", '""'), ("123", '"123"'), ("1e3", '"1e3"'),
        ("0x1f", '"0x1f"'), ("-x", '"-x"'), ("a: b", '"a: b"'), ("#c", '"#c"'), ("é", '"\\u00e9"'),
        (True, "true"), (False, "false"), (None, "null"), (5, "5"), (1.5, "1.5"),
        ("7171a6ca-d1cd-4928-8642-7d5cfe690001", "7171a6ca-d1cd-4928-8642-7d5cfe690001"),
    ]
    for value, want in table:
        assert h._yaml_scalar(value) == want, value


def test_yaml_document_shape():
    doc = {"a": {"b": [1, {"c": "x", "d": ["p", "q"]}, []], "e": {}}, "f": [{"g": {"h": 1}}]}
    assert h.to_yaml(doc) == textwrap.dedent("""\
        a:
          b:
            - 1
            - c: x
              d:
                - p
                - q
            - []
          e: {}
        f:
          - g:
              h: 1
        """)


def test_write_config(tmp_path, hsim):
    yaml = pytest.importorskip("yaml")  # only to check the output; the harness needs no PyYAML
    app = h.sae_app(orders=[h.stuck_order()], name="shop-api")
    path = h.write_config(tmp_path, hsim, apps=[
        app,
        h.config_app("pay", "7171a6ca-d1cd-4928-8642-7d5cfe690002", dry_run=True,
                     rules=[h.rule("stalled", status=["executing"], no_progress_for="15m"),
                            h.rule("batch-error", for_="60s", status=["executing"], sub_status="error")]),
    ], defaults={"cooldown": "1m", "timeout": None}, extra={"alerts": {"listen": "127.0.0.1:0"}})
    doc = yaml.safe_load(path.read_text())
    assert doc["endpoints"] == {"sae": hsim.url, "edas": hsim.url}
    assert doc["defaults"] == {"poll_interval": "1s", "active_poll_interval": "1s",
                               "rate_limit": "600/min", "cooldown": "1m"}
    assert doc["state_directory"] == str(tmp_path / "state") and (tmp_path / "state").is_dir()
    assert doc["alerts"] == {"listen": "127.0.0.1:0"}
    assert doc["apps"][0] == {"name": "shop-api", "platform": "sae", "region": "cn-hangzhou",
                              "app_id": app["app_id"]}
    assert doc["apps"][1]["dry_run"] is True
    assert doc["apps"][1]["rules"][1] == {"name": "batch-error", "when": {"status": ["executing"],
                                                                         "sub_status": "error"},
                                          "for": "60s", "action": "rollback"}
    no_sim = h.write_config(tmp_path, None, name="other.yaml")
    assert yaml.safe_load(no_sim.read_text())["endpoints"]["sae"] == "http://127.0.0.1:9"


def test_max_calls_in_window():
    table = [([], 0), ([0], 1), ([0, 59.9, 60], 2), ([0, 1, 2, 100, 101], 3),
             ([5, 0, 30, 61, 62], 4), ([0, 30, 61, 62], 3)]
    for ts, want in table:
        assert h.max_calls_in_window(ts) == want, ts
    assert h.max_calls_in_window([{"t": 0}, {"t": 10}], window=5) == 1


# --------------------------------------------------------------------------
# The daemon wrapper, with a stand-in for the binary

FAKE = """\
#!{python}
import signal, sys, time, os
args = sys.argv[1:]
def term(*_):
    print("notice rollguard-stopping: bye", file=sys.stderr, flush=True)
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("info rollguard-started: args=" + " ".join(args), file=sys.stderr, flush=True)
print("info env HOME=" + os.environ["HOME"] + " id=" + os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", "-"),
      file=sys.stderr, flush=True)
if "--leak" in args:
    print("debug oops secret=" + os.environ["ALIBABA_CLOUD_ACCESS_KEY_SECRET"], file=sys.stderr, flush=True)
if "--exit" in args:
    sys.exit(3)
if "--ignore-term" in args:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
n = 0
while True:
    n += 1
    print(f"debug rollguard-poll n={{n}}", file=sys.stderr, flush=True)
    time.sleep(0.05)
"""


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    path = tmp_path / "fake-rollguard"
    path.write_text(FAKE.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("ROLLGUARD_BIN", str(path))
    return path


def start(tmp_path, *args, env=None):
    return h.Daemon([h.rollguard_bin(), "--config", "x.yaml", *args, "run"], h.daemon_env(tmp_path, env), tmp_path)


def test_daemon_wrapper_logs_and_stop(tmp_path, fake_bin):
    d = start(tmp_path, "--dry-run")
    line = d.wait_for_log("rollguard-started", timeout=10)
    assert line.endswith("args=--config x.yaml --dry-run run")
    assert f"HOME={tmp_path / 'home'} id=testid" in d.wait_for_log("HOME=")
    mark = d.mark()
    assert re.search(r"n=\d+", d.wait_for_log(re.compile(r"rollguard-poll n=[3-9]"), since=mark))
    with pytest.raises(AssertionError, match="timed out after 0.2s waiting for log 'never'"):
        d.wait_for_log("never", timeout=0.2)
    assert d.stop() == 0
    assert d.lines[-1] == "notice rollguard-stopping: bye"
    assert len(d.find_logs("rollguard-poll")) >= 3
    d.assert_no_secrets()


def test_daemon_wrapper_early_exit_fails_fast(tmp_path, fake_bin):
    d = start(tmp_path, "--exit")
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match=r"exited \(3\) without logging"):
        d.wait_for_log("never", timeout=30)
    assert time.monotonic() - t0 < 10
    assert d.stop() == 3


def test_daemon_wrapper_kill9_and_stubborn(tmp_path, fake_bin):
    d = start(tmp_path)
    d.wait_for_log("rollguard-poll")
    assert d.kill9() == -signal.SIGKILL
    d = start(tmp_path, "--ignore-term")
    d.wait_for_log("rollguard-poll")
    with pytest.raises(AssertionError, match="did not exit within 0.5s"):
        d.stop(timeout=0.5)
    assert not d.running


def test_daemon_wrapper_catches_leaked_secret(tmp_path, fake_bin):
    d = start(tmp_path, "--leak")
    d.wait_for_log("oops")
    d.stop()
    with pytest.raises(AssertionError) as e:
        d.assert_no_secrets()
    assert "secret=<SECRET>" in str(e.value) and "testsecret" not in str(e.value)


def test_daemon_env_is_clean(tmp_path, monkeypatch):
    for k, v in {"ALIBABA_CLOUD_SECURITY_TOKEN": "x", "http_proxy": "http://proxy:3128",
                 "STATE_DIRECTORY": "/var/lib/x", "JOURNAL_STREAM": "8:9", "NOTIFY_SOCKET": "/run/x"}.items():
        monkeypatch.setenv(k, v)
    env = h.daemon_env(tmp_path, {"ALIBABA_CLOUD_ACCESS_KEY_ID": None, "ALIBABA_CLOUD_ECS_METADATA": "role"})
    for gone in ("ALIBABA_CLOUD_SECURITY_TOKEN", "http_proxy", "STATE_DIRECTORY", "JOURNAL_STREAM",
                 "NOTIFY_SOCKET", "ALIBABA_CLOUD_ACCESS_KEY_ID"):
        assert gone not in env, gone
    assert env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] == "testsecret"
    assert env["ALIBABA_CLOUD_ECS_METADATA"] == "role"
    assert env["HOME"] == str(tmp_path / "home") and os.path.isdir(env["HOME"])
    assert env["NO_PROXY"] == "*"
