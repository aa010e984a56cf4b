# SPDX-License-Identifier: MIT
"""The walking skeleton, end to end: the real binary against the simulator.
Every assertion is on what the simulator recorded or what the daemon said."""
import re
import signal
import time

import pytest

from conftest import (config_app_from, failed_pipeline_order, healthy_order, non_rollbackable_order,
                      rollback_order, rule, sae_app, stalled_order, stuck_order, wait_for,
                      write_config)

ROLLBACK = "AbortAndRollbackChangeOrder"


def describes_of(sim, co_id):
    return [r for r in sim.requests(action="DescribeChangeOrder") if r.get("change_order_id") == co_id]


def wait_more_describes(sim, co_id, n=3, timeout=15):
    """Let the daemon look at the order n more times: enough polls for a
    second (wrong) decision to have happened if it were going to."""
    base = len(describes_of(sim, co_id))
    wait_for(lambda: len(describes_of(sim, co_id)) >= base + n, timeout=timeout,
             what=f"{n} more DescribeChangeOrder of {co_id}")


def test_stuck_release_is_rolled_back_exactly_once(sim, tmp_path, start_daemon):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    rb = sim.wait_for_rollback(co["id"], timeout=20)
    assert rb["action"] == ROLLBACK
    d.wait_for_log(re.compile(r"rollguard-action-done app=payments co=%s .*result=done" % co["id"]))
    # the rollback order the API created is watched like any other, and the
    # stuck order is never touched again
    wait_more_describes(sim, co["id"], n=0)
    wait_for(lambda: len(sim.requests(action="DescribeApplicationStatus")) >= 6, timeout=15,
             what="a few more polls after the rollback")
    assert len(sim.rollbacks()) == 1
    assert sim.rollback_calls(co["id"]) == 1
    assert all(r["signature_ok"] for r in sim.requests()), "every request must carry a valid V3 signature"
    assert d.stop() == 0


def test_healthy_release_is_left_alone(sim, tmp_path, start_daemon):
    co = healthy_order(steps=4, step_seconds=0.5)
    app = sae_app(orders=[co], name="shop-api")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    d.wait_for_log(re.compile(r"rollguard-release-ended app=shop-api co=%s result=succeeded" % co["id"]),
                   timeout=30)
    assert sim.rollbacks() == []
    assert sim.change_order(co["id"])["status"] == 2
    assert d.stop() == 0


@pytest.mark.parametrize("order,why", [
    (non_rollbackable_order(), "SupportRollback is false"),
    (rollback_order(), "rollback"),
    (rollback_order(co_type="CoDeployHistroy"), "rollback"),
], ids=["support-rollback-false", "CoRollback", "CoDeployHistroy"])
def test_orders_that_must_never_be_rolled_back(sim, tmp_path, start_daemon, order, why):
    app = sae_app(orders=[order], name="guarded")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    wait_more_describes(sim, order["id"], n=4)
    assert sim.rollbacks() == []
    if "SupportRollback" in why:
        d.wait_for_log(re.compile(r"rollguard-action-skipped app=guarded .*SupportRollback is false"))
        # said once, not on every poll
        assert len(d.find_logs("SupportRollback is false")) == 1
    assert d.stop() == 0


def test_failed_batch_is_rolled_back(sim, tmp_path, start_daemon):
    co = failed_pipeline_order()
    app = sae_app(orders=[co], name="orders")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-decision app=orders .*rule=failed-batch"))
    assert sim.rollback_calls(co["id"]) == 1


def test_stalled_release_is_rolled_back_by_the_stalled_rule(sim, tmp_path, start_daemon):
    co = stalled_order(idle_for=1200)
    app = sae_app(orders=[co], name="search")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-decision app=search .*rule=stalled"))


def test_for_holds_before_acting(sim, tmp_path, start_daemon):
    co = stuck_order()
    app = sae_app(orders=[co], name="held")
    sim.set_apps([app])
    rules = [rule("batch-error", for_="3s", status=["executing"], sub_status="error")]
    d = start_daemon(write_config(tmp_path, sim, [config_app_from(app, rules=rules)]))
    d.wait_for_log(re.compile(r"rollguard-rule-holding app=held .*rule=batch-error"))
    rb = sim.wait_for_rollback(co["id"], timeout=20)
    first_seen = describes_of(sim, co["id"])[0]["t"]
    assert rb["t"] - first_seen >= 3.0, "acted before `for: 3s` had elapsed"
    assert rb["t"] - first_seen < 8.0, "took far longer than for + one poll"


def test_dry_run_decides_and_logs_but_calls_nothing(sim, tmp_path, start_daemon):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]), "--dry-run")
    d.wait_for_log(re.compile(r"rollguard-decision app=payments .*dry-run: would rollback"))
    wait_more_describes(sim, co["id"], n=3)
    assert sim.rollbacks() == []
    assert [r for r in sim.requests() if r["method"] == "PUT"] == []
    assert len(d.find_logs("dry-run: would rollback")) == 1


def test_per_app_dry_run_in_config(sim, tmp_path, start_daemon):
    a_co, b_co = stuck_order(), stuck_order()
    a = sae_app(orders=[a_co], name="careful")
    b = sae_app(orders=[b_co], name="bold")
    sim.set_apps([a, b])
    d = start_daemon(write_config(tmp_path, sim, [config_app_from(a, dry_run=True), config_app_from(b)]))
    sim.wait_for_rollback(b_co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-decision app=careful .*dry-run"))
    wait_more_describes(sim, a_co["id"], n=2)
    assert sim.rollbacks(a_co["id"]) == []


def test_once_acts_and_exits(sim, tmp_path, run_cli):
    stuck, healthy = stuck_order(), healthy_order()
    a = sae_app(orders=[stuck], name="payments")
    b = sae_app(orders=[healthy], name="shop-api")
    sim.set_apps([a, b])
    cfg = write_config(tmp_path, sim, [a, b])
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0, r.stderr
    assert sim.rollback_calls(stuck["id"]) == 1
    assert sim.rollbacks(healthy["id"]) == []
    assert "rollguard-action-done app=payments" in r.stderr
    # a second `once` finds the rollback order in flight and leaves it alone
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0, r.stderr
    assert sim.rollback_calls(stuck["id"]) == 1
    assert len(sim.rollbacks()) == 1


def test_once_dry_run_shows_what_would_happen(sim, tmp_path, run_cli):
    stuck = stuck_order()
    a = sae_app(orders=[stuck], name="payments")
    sim.set_apps([a])
    r = run_cli("--config", write_config(tmp_path, sim, [a]), "--dry-run", "once")
    assert r.returncode == 0, r.stderr
    assert "dry-run: would rollback" in r.stderr
    assert sim.rollbacks() == []
    assert not list((tmp_path / "state").glob("*.json")), "--dry-run once must not write state"


def test_once_exits_3_when_the_api_fails(sim, tmp_path, run_cli):
    a = sae_app(orders=[stuck_order()], name="payments")
    sim.set_apps([a])
    sim.add_fault(kind="http_status", status=403, code="Resouce.no.permission", count=-1)
    r = run_cli("--config", write_config(tmp_path, sim, [a]), "once")
    assert r.returncode == 3, r.stderr
    assert "Resouce.no.permission" in r.stderr
    assert "403" in r.stderr


BAD_CONFIGS = [
    ("defaults:\n  poll_interval: 30\napps: []\n", r":2:18: .*no unit"),
    ("defaults:\n  pol_interval: 30s\n", r":2:3: .*did you mean 'poll_interval'"),
    ("apps:\n  - name: a\n    platform: gcp\n    region: cn-hangzhou\n    app_id: x\n", r":3:15: .*platform"),
    ("apps:\n  - name: a\n    platform: sae\n    region: cn-hangzhou\n    app_id: x\n"
     "    rules:\n      - name: r\n        when: { status: [exploding] }\n        action: rollback\n",
     r":8:26: .*exploding"),
    ("apps: [\n", r":\d+:\d+: YAML syntax error"),
]


@pytest.mark.parametrize("text,pattern", BAD_CONFIGS, ids=["no-unit", "typo", "platform", "status", "syntax"])
def test_bad_config_exits_1_with_file_line_col(tmp_path, run_cli, text, pattern):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(text)
    for cmd in ("check", "run", "once"):
        r = run_cli("--config", cfg, cmd, timeout=10)
        assert r.returncode == 1, (cmd, r.stdout, r.stderr)
        assert re.search(re.escape(str(cfg)) + pattern, r.stderr), (cmd, r.stderr)


def test_check_prints_a_summary_without_secrets(sim, tmp_path, run_cli):
    a = sae_app(orders=[], name="shop-api")
    r = run_cli("--config", write_config(tmp_path, sim, [a]), "check")
    assert r.returncode == 0, r.stderr
    assert "OK" in r.stdout
    assert "shop-api: sae" in r.stdout
    assert "batch-error" in r.stdout and "stalled" in r.stdout and "failed-batch" in r.stdout
    assert "credentials: environment" in r.stdout
    assert "testsecret" not in r.stdout + r.stderr


@pytest.mark.parametrize("args,code,text", [
    (["--version"], 0, "rollguard "),
    (["--help"], 0, "Usage: rollguard"),
    (["frobnicate"], 2, "unknown command"),
    (["--no-such-flag"], 2, "rollguard --help"),
    (["check", "extra"], 2, "unexpected argument"),
])
def test_cli_usage(run_cli, args, code, text):
    r = run_cli(*args)
    assert r.returncode == code
    assert text in r.stdout + r.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signals_exit_0_promptly(sim, tmp_path, start_daemon, sig):
    app = sae_app(orders=[healthy_order(steps=50)])
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    d.wait_for_log("rollguard-started")
    sim.wait_for_requests(action="DescribeChangeOrder")
    t0 = time.monotonic()
    d.send_signal(sig)
    assert d.wait_exit(timeout=5) == 0
    assert time.monotonic() - t0 < 2.0


def test_a_second_daemon_on_the_same_state_is_refused(sim, tmp_path, start_daemon, run_cli):
    app = sae_app(orders=[])
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [app])
    d = start_daemon(cfg)
    d.wait_for_log("rollguard-started")
    r = run_cli("--config", cfg, "once", timeout=10)
    assert r.returncode == 3
    assert "another rollguard is running" in r.stderr
    r = run_cli("--config", cfg, "--dry-run", "once", timeout=10)
    assert r.returncode == 0, r.stderr


def test_once_exits_3_when_the_rollback_is_refused(sim, tmp_path, run_cli):
    stuck = stuck_order()
    a = sae_app(orders=[stuck], name="payments")
    sim.set_apps([a])
    sim.add_fault(kind="http_status", status=403, code="Forbidden.RAM", count=-1,
                  match={"action": ROLLBACK})
    r = run_cli("--config", write_config(tmp_path, sim, [a]), "once")
    assert r.returncode == 3, r.stderr
    assert "rollguard-action-failed app=payments" in r.stderr
    assert "act by hand" in r.stderr
