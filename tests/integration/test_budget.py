# SPDX-License-Identifier: MIT
"""The API budget (issue 11): pacing, the action reserve, fairness among
releases in flight, the idle round robin, one call per look in flight,
throttling, transient errors on releases in flight, unobserved releases,
the `check` budget line and the share left to the deploy pipeline.

Time is compressed where the budget's window matters: 30/6s plays SAE's
30/min share, 60/6s the account's 60/min."""

import re
import time

import pytest

from conftest import (UNDER_VALGRIND, healthy_order, max_calls_in_window, sae_app, stuck_order, wait_for,
                      write_config)
from test_alerts import parse_prometheus, start_with_alerts

pytestmark = pytest.mark.skipif(UNDER_VALGRIND, reason="wire timing is not meaningful under valgrind")


_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def metric(listener, name, **labels):
    """The value of the first series of `name` whose labels include these."""
    for (n, lab), v in parse_prometheus(listener.metrics_text()).items():
        have = dict(_LABEL.findall(lab))
        if n == name and all(have.get(k) == val for k, val in labels.items()):
            return v
    return None


def looks_at(sim, co_id):
    return [r for r in sim.requests(action="DescribeChangeOrder") if r.get("change_order_id") == co_id]


def gaps(times):
    return [b - a for a, b in zip(times, times[1:])]


def test_check_prints_the_budget_line_for_300_apps_at_defaults(tmp_path, sim, run_cli):
    apps = [sae_app(name=f"app{i:03d}") for i in range(300)]
    cfg = write_config(tmp_path, sim, apps, defaults={
        "poll_interval": None, "active_poll_interval": None, "rate_limit": None, "timeout": None})
    p = run_cli("--config", str(cfg), "check")
    assert p.returncode == 0, p.stdout + p.stderr
    assert ("budget: 30 calls/min (rate_limit); 300 apps need 600 calls/min at poll_interval 30s: "
            "idle apps will be polled about every 10m") in p.stdout


def test_check_budget_line_is_always_there(tmp_path, sim, run_cli):
    cfg = write_config(tmp_path, sim, [sae_app(name="one")], defaults={"rate_limit": None})
    p = run_cli("--config", str(cfg), "check")
    assert p.returncode == 0
    assert re.search(r"^  budget: 30 calls/min \(rate_limit\); 1 app needs? ", p.stdout, re.M), p.stdout


def test_pacing_spreads_calls_and_never_exceeds_the_window(tmp_path, sim, start_daemon):
    """20 releases in flight want 20 calls/s; the share is 10 per 2 s. No 2 s
    window the server sees holds more than 10, and they are spread out, not
    spent in a burst followed by silence."""
    apps = [sae_app(orders=[healthy_order(steps=1000)], name=f"app{i:02d}") for i in range(20)]
    sim.set_apps(apps)
    sim.set_rate_limit(10, 2)
    d = start_daemon(write_config(tmp_path, sim, apps, defaults={"rate_limit": "10/2s"}))
    wait_for(lambda: len(sim.requests()) >= 50, timeout=40, what="50 requests")
    reqs = sim.requests()
    assert sim.max_calls_in_window(window=2.0) <= 10
    assert not [r for r in reqs if (r["error_code"] or "").startswith("Throttling")]
    # GCRA: a burst of 3, then one call every ~0.28 s; a bare window would
    # put all 10 within a few milliseconds.
    assert max_calls_in_window(reqs, 0.5) <= 6, "calls came in a burst"
    times = [r["t"] for r in reqs]
    assert max(gaps(times[5:])) < 1.5, "the budget went silent"
    assert d.running


def test_stuck_release_in_a_60_app_fleet_is_rolled_back_promptly(tmp_path, sim, start_daemon):
    """60 apps on a 30/6s share (30/min compressed 10x) that the account
    enforces: a stuck release that appears later is found by the idle round
    robin within its sweep and rolled back at once; the action waits well
    under a second for budget."""
    co = stuck_order(appear_after_seconds=8)
    apps = [sae_app(name=f"idle{i:02d}") for i in range(59)] + [sae_app(orders=[co], name="busy")]
    sim.set_apps(apps)
    sim.set_rate_limit(30, 6)
    d, lst = start_with_alerts(tmp_path, sim, start_daemon, apps,
                               defaults={"rate_limit": "30/6s", "poll_interval": "1s"})
    t_appear = time.time() + 8  # roughly: the sim counts from its reset
    sweep = wait_for(lambda: metric(lst, "rollguard_idle_sweep_seconds"), timeout=10, what="the idle sweep gauge")
    rb = sim.wait_for_rollback(co["id"], timeout=8 + 1.5 * sweep + 10)
    assert rb["t"] - t_appear <= 1.5 * sweep + 4, f"rolled back {rb['t'] - t_appear:.1f}s after it appeared (sweep {sweep:.1f}s)"
    # the re-read and the rollback waited for budget less than a second each
    n = metric(lst, "rollguard_call_queue_wait_seconds_count", **{"class": "action"})
    fast = metric(lst, "rollguard_call_queue_wait_seconds_bucket", **{"class": "action", "le": "1"})
    assert n and n >= 2 and fast == n, f"{fast} of {n} action calls went within 1 s"
    assert not [r for r in sim.requests() if (r["error_code"] or "").startswith("Throttling")]
    assert len(sim.rollbacks(co["id"])) == 1
    assert d.running


def test_releases_in_flight_share_a_stretched_interval_fairly(tmp_path, sim, start_daemon):
    """6 releases in flight at active_poll_interval 1s want 6 calls/s; the
    share gives about 2: every one gets the same stretched interval, the
    journal says so once, /status shows it."""
    orders = [healthy_order(steps=10000) for _ in range(6)]
    apps = [sae_app(orders=[o], name=f"app{i}") for i, o in enumerate(orders)]
    sim.set_apps(apps)
    d, lst = start_with_alerts(tmp_path, sim, start_daemon, apps, defaults={"rate_limit": "6/2s"})
    d.wait_for_log(re.compile(r"warning rollguard-budget-stretched: .*cannot look at \d releases in flight"),
                   timeout=15)
    st = wait_for(lambda: (lambda s: s if s["budget"]["stretched"] and s["in_flight"] == 6 else None)(lst.status()),
                  timeout=60, what="/status saying stretched for 6")
    assert st["budget"]["in_flight_interval_seconds"] > 1.5
    mark = len(sim.requests())
    wait_for(lambda: len(sim.requests()) >= mark + 36, timeout=40, what="36 more looks")
    recent = sim.requests()[mark:mark + 36]
    per = [sum(1 for r in recent if r.get("change_order_id") == o["id"]) for o in orders]
    assert max(per) - min(per) <= 2, f"unfair looks: {per}"
    assert len(d.find_logs("rollguard-budget-stretched")) == 1
    assert d.running


def test_idle_apps_are_polled_round_robin_without_starvation(tmp_path, sim, start_daemon):
    """30 idle apps polled every second want 30 calls/s; the share is 10 per
    2 s. Every app gets its turn, oldest poll first: over two sweeps no app
    is polled twice before another once, none is left out."""
    apps = [sae_app(name=f"idle{i:02d}") for i in range(30)]
    sim.set_apps(apps)
    start_daemon(write_config(tmp_path, sim, apps, defaults={"rate_limit": "10/2s"}))
    wait_for(lambda: len(sim.requests(action="DescribeApplicationStatus")) >= 75, timeout=60,
             what="two and a half sweeps")
    reqs = sim.requests(action="DescribeApplicationStatus")[:75]
    first = reqs[:30]
    assert {r["app_id"] for r in first} == {a["app_id"] for a in apps}, "a sweep left apps out"
    per = {}
    for r in reqs[:60]:
        per[r["app_id"]] = per.get(r["app_id"], 0) + 1
    assert set(per.values()) <= {1, 2, 3} and min(per.values()) >= 1
    assert max(per.values()) - min(per.values()) <= 1, per


def test_one_call_per_look_while_in_flight(tmp_path, sim, start_daemon):
    """Once an order is known to be in flight, each look is the order call
    alone; when it ends the app call comes back at once (a follow-up order
    would be found) and then at poll_interval."""
    co = healthy_order(steps=6, step_seconds=1)
    app = sae_app(orders=[co], name="web")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app], defaults={"poll_interval": "30s"}))
    d.wait_for_log(re.compile(r"rollguard-release-ended app=web"), timeout=30)
    status_calls = sim.requests(action="DescribeApplicationStatus")
    order_calls = looks_at(sim, co["id"])
    assert len(order_calls) >= 6
    # one app call found the order, one came right after it ended
    wait_for(lambda: len(sim.requests(action="DescribeApplicationStatus")) >= 2, timeout=5,
             what="the app call after the order ended")
    status_calls = sim.requests(action="DescribeApplicationStatus")
    assert len(status_calls) == 2, [r["t"] for r in status_calls]
    assert status_calls[1]["t"] - order_calls[-1]["t"] < 1.0
    # in between: looks by the order call alone, about one a second
    between = [r for r in sim.requests() if status_calls[0]["seq"] < r["seq"] < status_calls[1]["seq"]]
    assert all(r["action"] == "DescribeChangeOrder" for r in between)


def test_throttling_slows_the_whole_client_and_warns_once(tmp_path, sim, start_daemon):
    """Throttling answers are about the account: the pace halves for every
    call, the warning is said once, no app is marked failing, and the pace
    recovers step by step."""
    apps = [sae_app(orders=[healthy_order(steps=10000)], name=f"app{i}") for i in range(4)]
    sim.set_apps(apps)
    d, lst = start_with_alerts(tmp_path, sim, start_daemon, apps, defaults={"rate_limit": "16/2s"})
    wait_for(lambda: len(sim.requests()) >= 8, timeout=10, what="the first looks")
    assert metric(lst, "rollguard_budget_calls_per_minute") == pytest.approx(480)
    sim.add_fault(kind="throttle", count=6)
    d.wait_for_log(re.compile(r"warning rollguard-api-throttled"), timeout=10)
    wait_for(lambda: metric(lst, "rollguard_budget_calls_per_minute") < 480, timeout=5, what="a slower pace")
    assert lst.status()["budget"]["throttled"] is True
    d.wait_for_log(re.compile(r"notice rollguard-api-throttled: API budget back"), timeout=30)
    assert metric(lst, "rollguard_budget_calls_per_minute") == pytest.approx(480)
    assert len(d.find_logs(re.compile(r"warning rollguard-api-throttled"))) == 1
    assert not d.find_logs("rollguard-api-error")
    assert not d.find_logs("rollguard-app-degraded")
    assert d.running


def test_errors_never_leave_a_release_in_flight_unseen_long(tmp_path, sim, start_daemon):
    """Six HTTP 500s in a row on a release in flight: no gap between two
    looks exceeds 4 x active_poll_interval (+ jitter), and the stuck state
    that appears meanwhile is rolled back."""
    co = healthy_order(steps=100000)
    app = sae_app(orders=[co], name="web")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app]))
    wait_for(lambda: len(looks_at(sim, co["id"])) >= 2, timeout=10, what="looks at the order")
    sim.add_fault(kind="http_status", status=500, count=6, match={"action": "DescribeChangeOrder"})
    stuck = stuck_order(id=co["id"])
    sim.patch_change_order(co["id"], {k: stuck[k] for k in ("status", "sub_status", "pipelines")},
                           behaviour="static")
    rb = sim.wait_for_rollback(co["id"], timeout=30)
    times = [r["t"] for r in looks_at(sim, co["id"]) if r["t"] <= rb["t"]]
    assert max(gaps(times)) <= 4 * 1.0 * 1.1 + 0.5, gaps(times)
    assert len(sim.rollbacks(co["id"])) == 1
    assert d.running


def test_a_good_answer_resets_the_error_count(tmp_path, sim, start_daemon):
    """Bad, good, bad, good...: each bad answer is the first of its run, so
    the look after it comes after the first backoff step, not a longer one."""
    co = healthy_order(steps=100000)
    app = sae_app(orders=[co], name="web")
    sim.set_apps([app])
    start_daemon(write_config(tmp_path, sim, [app]))
    wait_for(lambda: len(looks_at(sim, co["id"])) >= 2, timeout=10, what="looks at the order")
    for _ in range(4):
        n = len(looks_at(sim, co["id"]))
        sim.add_fault(kind="http_status", status=500, count=1, match={"action": "DescribeChangeOrder"})
        looks = wait_for(lambda: (lambda ls: ls if len(ls) >= n + 2 and ls[-1]["status"] == 200 else None)(
            looks_at(sim, co["id"])), timeout=10, what="a failed look and a good one")
        failed = [r for r in looks[n:] if r["status"] == 500][0]
        after = [r for r in looks if r["seq"] > failed["seq"]][0]
        assert after["t"] - failed["t"] <= 2 * 1.1 + 0.4, "the error count kept counting up"


def test_unobserved_release_warns_once_and_has_a_gauge(tmp_path, sim, start_daemon):
    co = healthy_order(steps=100000)
    app = sae_app(orders=[co], name="web")
    sim.set_apps([app])
    d, lst = start_with_alerts(tmp_path, sim, start_daemon, [app], defaults={"unobserved_after": "3s"})
    wait_for(lambda: len(looks_at(sim, co["id"])) >= 2, timeout=10, what="looks at the order")
    sim.add_fault(kind="http_status", status=500, count=-1, match={"action": "DescribeChangeOrder"})
    d.wait_for_log(re.compile(rf"warning rollguard-release-unobserved app=web co={co['id']}"), timeout=15)
    assert metric(lst, "rollguard_release_unobserved_seconds", app="web") > 3
    mark = d.mark()
    wait_for(lambda: metric(lst, "rollguard_release_unobserved_seconds", app="web") > 6, timeout=10,
             what="more time unobserved")
    assert not d.find_logs("rollguard-release-unobserved", since=mark), "warned twice in one episode"
    sim.clear_faults()
    d.wait_for_log(re.compile(r"notice rollguard-release-unobserved app=web .*seen again"), timeout=10)
    assert metric(lst, "rollguard_release_unobserved_seconds", app="web") < 2


def test_default_share_leaves_the_pipeline_unthrottled(tmp_path, make_sim, start_daemon):
    """The account allows 60 per 6 s (60/min compressed 10x) for every key;
    a deploy pipeline spends 20 per 6 s; rollguard at its default share
    (30/min, here 30/6s) with 40 apps wanting far more: not one pipeline
    call is throttled, nor one of rollguard's."""
    sim = make_sim()
    apps = [sae_app(orders=[healthy_order(steps=100000)] if i < 5 else [], name=f"app{i:02d}") for i in range(40)]
    sim.set_apps(apps)
    sim.set_rate_limit(60, 6)
    sim.control("POST", "pipeline", {"rate": "20/6s"})
    start_daemon(write_config(tmp_path, sim, apps, defaults={"rate_limit": "30/6s"}))
    t0 = time.time()
    wait_for(lambda: time.time() > t0 + 15, timeout=20, what="15 s (2.5 windows)")
    pipe = sim.control("GET", "pipeline")
    acct = sim.control("GET", "account")
    sim.control("DELETE", "pipeline")
    assert pipe["calls"] >= 40, pipe
    assert pipe["throttled"] == 0, pipe
    assert acct["by_key"]["testid"]["throttled"] == 0, acct
    assert acct["by_key"]["testid"]["calls"] >= 60, acct
