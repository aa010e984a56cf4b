# SPDX-License-Identifier: MIT
"""Decisions that stay safe under faults, restarts and load (issue 4):
never twice, never missed, never over the rate limit, never dead."""
import json
import re
import signal
import time

import pytest

from conftest import (UNDER_VALGRIND, config_app_from, healthy_order, rule, sae_app, stuck_order, wait_for,
                      write_config)

ROLLBACK = "AbortAndRollbackChangeOrder"


def describes_of(sim, co_id):
    return [r for r in sim.requests(action="DescribeChangeOrder") if r.get("change_order_id") == co_id]


def wait_more_describes(sim, co_id, n=3, timeout=20):
    base = len(describes_of(sim, co_id))
    wait_for(lambda: len(describes_of(sim, co_id)) >= base + n, timeout=timeout,
             what=f"{n} more DescribeChangeOrder of {co_id}")


def read_state(tmp_path, app):
    """The record of the app named `app` (files are named by app id; the
    record carries the name for humans)."""
    for p in (tmp_path / "state").glob("*.json"):
        st = json.loads(p.read_text())
        if st.get("name") == app:
            return st
    raise FileNotFoundError(f"no state record for {app} in {tmp_path / 'state'}")


def test_kill9_during_inflight_rollback_never_calls_twice(sim, tmp_path, start_daemon):
    """The rollback reaches the cloud, the answer never comes back, the daemon
    dies (kill -9), and the API keeps showing the order as stuck for a while.
    The restarted daemon must not call AbortAndRollback again."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    sim.settings(rollback_lag_seconds=60, rollback_visible_after_lag=True)
    sim.add_fault(kind="timeout", seconds=30, process=True, match={"action": ROLLBACK})
    cfg = write_config(tmp_path, sim, [app], defaults={"timeout": "20s"})
    d = start_daemon(cfg)
    # the call arrived and took effect; its answer is being held back
    wait_for(lambda: sim.rollbacks(co["id"]), timeout=20, what="the rollback to reach the sim")
    st = read_state(tmp_path, "payments")
    assert [a["result"] for a in st["acts"]] == ["intent"], "the intent must be on disk before the call"
    d.kill9()

    d2 = start_daemon(cfg)
    d2.wait_for_log(re.compile(r"rollguard-action-unconfirmed app=payments co=%s" % co["id"]))
    # the order still looks stuck and the daemon keeps looking at it...
    wait_more_describes(sim, co["id"], n=4)
    assert sim.change_order(co["id"])["status"] == 1
    # ...but never calls again
    assert sim.rollback_calls(co["id"]) == 1
    d2.wait_for_log(re.compile(r"rollguard-action-skipped app=payments .*already acted"))
    assert d2.stop() == 0
    assert read_state(tmp_path, "payments")["acts"][0]["result"] == "unconfirmed"


@pytest.mark.parametrize("fault", [
    {"kind": "timeout", "seconds": 10, "process": True},
    {"kind": "reset", "process": False},
    {"kind": "http_status", "status": 502, "code": "BadGateway", "process": True},
], ids=["timeout-after-send", "reset", "502"])
def test_ambiguous_failure_is_not_retried(sim, tmp_path, start_daemon, fault):
    """No answer, a reset or a gateway error: the call may have reached the
    cloud. Sending it again could roll back twice, so it is recorded as
    unconfirmed and never repeated (even when, as with the reset here, the
    server in fact did nothing: the client cannot know)."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    sim.settings(rollback_lag_seconds=60, rollback_visible_after_lag=True)
    sim.add_fault(match={"action": ROLLBACK}, **fault)
    d = start_daemon(write_config(tmp_path, sim, [app], defaults={"timeout": "2s"}))
    d.wait_for_log(re.compile(r"rollguard-action-unconfirmed app=payments .*may or may not"), timeout=20)
    wait_more_describes(sim, co["id"], n=3)
    # exactly one request left the daemon (libcurl must not re-send it on
    # a new connection either: the regression this test was written for)
    assert len(sim.requests(action=ROLLBACK)) == 1


@pytest.mark.parametrize("fault", [
    {"kind": "throttle"},
    {"kind": "throttle", "status": 429, "code": "Throttling"},
    {"kind": "upgrading"},
])
def test_refused_rollback_is_retried_and_lands_once(sim, tmp_path, start_daemon, fault):
    """Answers that prove the server did not act are retried with backoff;
    a throttled one is sent again by the API client at the slowed pace
    (issue 11), without the action seeing it."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    sim.add_fault(match={"action": ROLLBACK}, count=2, **fault)
    d = start_daemon(write_config(tmp_path, sim, [app]))
    sim.wait_for_rollback(co["id"], timeout=30)
    d.wait_for_log(re.compile(r"rollguard-action-done app=payments"), timeout=10)
    accepted = sim.rollbacks(co["id"], result="accepted")
    assert len(accepted) == 1
    assert len(sim.requests(action=ROLLBACK)) == 3
    if fault["kind"] == "throttle":
        assert len(d.find_logs(re.compile(r"warning rollguard-api-throttled"))) == 1
        assert len(d.find_logs("retrying in")) == 0
    else:
        assert len(d.find_logs("retrying in")) == 2


API_FAULTS = [
    {"kind": "timeout", "seconds": 3},
    {"kind": "reset"},
    {"kind": "http_status", "status": 500},
    {"kind": "http_status", "status": 502, "code": "BadGateway"},
    {"kind": "malformed"},
    {"kind": "html"},
    {"kind": "empty"},
    {"kind": "garbage"},
    {"kind": "throttle"},
    {"kind": "throttle", "status": 429},
    {"kind": "upgrading"},
    {"kind": "slow", "seconds": 1},
]


@pytest.mark.parametrize("fault", API_FAULTS, ids=lambda f: f["kind"] + str(f.get("status", "")))
def test_faults_on_reads_still_one_rollback_and_none_for_healthy(sim, tmp_path, start_daemon, fault):
    stuck, healthy = stuck_order(), healthy_order(steps=6, step_seconds=0.5)
    a = sae_app(orders=[stuck], name="payments")
    b = sae_app(orders=[healthy], name="shop-api")
    sim.set_apps([a, b])
    # the next 2 reads of each kind fail; the daemon must ride it out
    for action in ("DescribeApplicationStatus", "DescribeChangeOrder"):
        sim.add_fault(match={"action": action}, count=2, process=False, **fault)
    d = start_daemon(write_config(tmp_path, sim, [a, b], defaults={"timeout": "2s"}))
    sim.wait_for_rollback(stuck["id"], timeout=60)
    d.wait_for_log(re.compile(r"rollguard-release-ended app=shop-api .*succeeded"), timeout=60)
    wait_more_describes(sim, stuck["id"], n=0)
    assert sim.rollback_calls(stuck["id"]) == 1
    assert sim.rollbacks(healthy["id"]) == []
    if fault["kind"] == "throttle":
        # about the account, not the app: said once, and no app error
        assert len(d.find_logs(re.compile(r"warning rollguard-api-throttled"))) == 1
        assert not d.find_logs("rollguard-api-error")
    elif fault["kind"] != "slow":
        assert d.find_logs("rollguard-api-error"), "a failed read must be logged"
    assert d.running


def test_permission_error_degrades_one_app_others_go_on(sim, tmp_path, start_daemon):
    stuck = stuck_order()
    good = sae_app(orders=[stuck], name="payments")
    denied = sae_app(orders=[stuck_order()], name="locked")
    sim.set_apps([good, denied])
    sim.add_fault(kind="http_status", status=403, code="Resouce.no.permission", count=-1,
                  match={"app_id": denied["app_id"]})
    d = start_daemon(write_config(tmp_path, sim, [good, denied]))
    sim.wait_for_rollback(stuck["id"], timeout=20)
    d.wait_for_log(re.compile(r"err rollguard-app-degraded app=locked .*HTTP 403 Resouce.no.permission"))
    wait_for(lambda: len([r for r in sim.requests() if r.get("app_id") == denied["app_id"]]) >= 4,
             timeout=20, what="the degraded app to keep being retried")
    assert len(d.find_logs("rollguard-app-degraded app=locked")) == 1, "logged once per state change"
    sim.clear_faults()
    d.wait_for_log(re.compile(r"rollguard-app-recovered app=locked"), timeout=20)
    assert d.running


def test_unknown_app_is_degraded_not_fatal(sim, tmp_path, start_daemon):
    real = sae_app(orders=[healthy_order(steps=3)], name="real")
    sim.set_apps([real])
    ghost = {"name": "ghost", "platform": "sae", "region": "cn-hangzhou",
             "app_id": "00000000-0000-0000-0000-000000000000"}
    d = start_daemon(write_config(tmp_path, sim, [real, ghost]))
    d.wait_for_log(re.compile(r"rollguard-app-degraded app=ghost .*InvalidAppId.NotFound"))
    d.wait_for_log(re.compile(r"rollguard-release-ended app=real"), timeout=20)
    assert d.running


def test_rate_limit_is_never_exceeded(sim, tmp_path, start_daemon):
    """20 apps polled every second want ~40 calls/s; the account allows 10
    per 2 s. No 2-second window the server sees may hold more than 10."""
    if UNDER_VALGRIND:
        # The limiter keeps 250 ms of margin for network jitter; under
        # valgrind one loop iteration can take longer than that, so the
        # server's view drifts from the daemon's by more than the margin.
        pytest.skip("wire timing is not meaningful under valgrind")
    apps = [sae_app(orders=[healthy_order(steps=1000)], name=f"app{i:02d}") for i in range(20)]
    sim.set_apps(apps)
    d = start_daemon(write_config(tmp_path, sim, apps, defaults={"rate_limit": "10/2s"}))
    wait_for(lambda: len(sim.requests()) >= 60, timeout=40, what="60 requests")
    reqs = sim.requests()
    assert sim.max_calls_in_window(window=2.0) <= 10, "a 2 s window held more than rate_limit calls"
    assert all(r["error_code"] is None or not r["error_code"].startswith("Throttling") for r in reqs)
    assert d.running


def test_polls_on_the_wire_are_capped_at_64(sim, tmp_path, start_daemon):
    """A slow endpoint queues polls instead of piling up connections: 100
    apps start polling within 3 s, every answer takes 10 s, and no more than
    64 requests are ever outstanding; the rest go out as answers return."""
    apps = [sae_app(orders=[], name=f"idle{i:03d}") for i in range(100)]
    sim.set_apps(apps)
    sim.add_fault(kind="slow", seconds=10, count=-1, match={"action": "DescribeApplicationStatus"})
    start_daemon(write_config(tmp_path, sim, apps, defaults={
        "poll_interval": "1h", "rate_limit": "1000/s", "timeout": "30s"}))
    first = sim.wait_for_requests("DescribeApplicationStatus", n=64, timeout=15)
    # Without the cap all 100 would be out by the end of the 3 s start-up
    # spread; watch until 5 s after the first, while no answer is back yet.
    t0 = min(r["t"] for r in first)
    wait_for(lambda: time.time() >= t0 + 5, timeout=15, what="5 s after the first poll")
    assert len(sim.requests(action="DescribeApplicationStatus")) == 64
    # Answers free the slots: the other 36 follow.
    sim.wait_for_requests("DescribeApplicationStatus", n=100, timeout=40)
    # Each request holds its slot for 10 s: no 9.5 s window may see more than 64 start.
    assert sim.max_calls_in_window(window=9.5, action="DescribeApplicationStatus") <= 64


def test_cancelled_polls_free_their_slots_at_once(sim, tmp_path, start_daemon):
    """Apps removed by a reload while their polls hang give their slots back
    straight away: the waiting apps do not sit behind answers nobody wants."""
    apps = [sae_app(orders=[], name=f"idle{i:03d}") for i in range(100)]
    sim.set_apps(apps)
    sim.add_fault(kind="slow", seconds=20, count=-1, match={"action": "DescribeApplicationStatus"})
    defaults = {"poll_interval": "1h", "rate_limit": "1000/s", "timeout": "30s"}
    cfg = write_config(tmp_path, sim, apps, defaults=defaults)
    d = start_daemon(cfg)
    out = sim.wait_for_requests("DescribeApplicationStatus", n=64, timeout=15)
    polled = {r["app_id"] for r in out}
    waiting = [a for a in apps if a["app_id"] not in polled]
    write_config(tmp_path, sim, waiting, defaults=defaults)
    d.reload()
    d.wait_for_log("rollguard-reloaded")
    # Well before the first hung answer (20 s), every waiting app is polled.
    t0 = min(r["t"] for r in out)
    sim.wait_for_requests("DescribeApplicationStatus", n=64 + len(waiting), timeout=15)
    assert max(r["t"] for r in sim.requests(action="DescribeApplicationStatus")) < t0 + 19
    assert {r["app_id"] for r in sim.requests(action="DescribeApplicationStatus")} >= {a["app_id"] for a in waiting}


def test_rate_limit_gives_in_flight_apps_priority(sim, tmp_path, start_daemon):
    """With the budget far below demand, the app with a release in flight is
    still seen and rolled back promptly while idle apps wait."""
    idle = [sae_app(orders=[], name=f"idle{i:02d}") for i in range(30)]
    stuck = stuck_order()
    busy = sae_app(orders=[stuck], name="busy")
    sim.set_apps(idle + [busy])
    d = start_daemon(write_config(tmp_path, sim, idle + [busy], defaults={"rate_limit": "6/1s"}))
    sim.wait_for_rollback(stuck["id"], timeout=30)
    assert d.running


def test_corrupt_state_file_quarantines_not_fatal(sim, tmp_path, start_daemon):
    """A truncated record may have held a done or unconfirmed act: it is kept
    and the app is quarantined (0.1 moved it aside, started empty and rolled
    back again). Not fatal: the app is still watched."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [app])
    text = '{"version":1,"app":"payments","acts":[{"chan'
    (tmp_path / "state" / "payments.json").write_text(text)
    d = start_daemon(cfg)
    d.wait_for_log(re.compile(r"err rollguard-state-quarantined app=payments: .*payments\.json"))
    d.wait_for_log(re.compile(r"rollguard-action-skipped app=payments .*quarantined"), timeout=20)
    assert (tmp_path / "state" / "payments.json").read_text() == text
    assert sim.rollbacks() == []
    assert d.running


def test_circuit_breaker_trips_and_recovers(sim, tmp_path, start_daemon):
    """max_actions_per_hour 1, and one action already on record from 3598 s
    ago: the breaker is open at start (log-only, said loudly), closes when
    that action leaves the hour, and only then does rollguard act."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [app], defaults={"max_actions_per_hour": 1, "cooldown": "0s"})
    old = int(time.time() * 1000) - 3597_000
    (tmp_path / "state" / "other.json").write_text(json.dumps({
        "version": 1, "app": "other", "cooldown_until_ms": 0, "last_change_order_id": None,
        "acts": [{"change_order_id": "old-order", "rule": "stalled", "action": "rollback",
                  "intent_ms": old, "result": "done", "detail": None, "rollback_order_id": None,
                  "finished_ms": old + 500}],
        "pending": []}))
    other = {"name": "other", "platform": "sae", "region": "cn-hangzhou", "app_id": "other-app-id"}
    sim.add_app(sae_app(app_id="other-app-id", orders=[], name="other"))
    cfg = write_config(tmp_path, sim, [app, other], defaults={"max_actions_per_hour": 1, "cooldown": "0s"})
    d = start_daemon(cfg)
    d.wait_for_log(re.compile(r"warning rollguard-circuit-open: CIRCUIT BREAKER OPEN"))
    d.wait_for_log(re.compile(r"rollguard-action-skipped app=payments .*circuit breaker open"))
    assert sim.rollbacks() == []
    d.wait_for_log("rollguard-circuit-closed", timeout=15)
    rb = sim.wait_for_rollback(co["id"], timeout=15)
    assert rb["t"] * 1000 >= old + 3600_000 - 1000, "acted while the breaker was open"
    # and the new action trips it again
    d.wait_for_log(re.compile(r"rollguard-circuit-open"), since=0)


def test_cooldown_is_respected(sim, tmp_path, start_daemon):
    """A second bad release right after a rollback waits out the cooldown."""
    first = stuck_order()
    app = sae_app(orders=[first], name="payments")
    sim.set_apps([app])
    d = start_daemon(write_config(tmp_path, sim, [app], defaults={"cooldown": "6s"}))
    rb1 = sim.wait_for_rollback(first["id"], timeout=20)
    second = stuck_order()
    sim.add_change_order(app["app_id"], second)
    d.wait_for_log(re.compile(r"rollguard-action-skipped app=payments co=%s .*cooldown" % second["id"]),
                   timeout=20)
    rb2 = sim.wait_for_rollback(second["id"], timeout=20)
    assert rb2["t"] - rb1["t"] >= 6.0 - 0.5
    assert len(sim.rollbacks()) == 2


def test_recheck_before_acting_sees_the_order_moved_on(sim, tmp_path, start_daemon):
    """The order recovers between the decision and the re-read: nothing is done."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    # one call per 3 s: the re-read leaves ~3 s after the decision, and the
    # order recovers in between
    d = start_daemon(write_config(tmp_path, sim, [app], defaults={"rate_limit": "1/3s"}))
    d.wait_for_log(re.compile(r"rollguard-decision app=payments"), timeout=20)
    sim.patch_change_order(co["id"], status=2, sub_status=0)
    d.wait_for_log(re.compile(r"rollguard-order-moved-on app=payments .*nothing done"), timeout=20)
    assert sim.rollbacks() == []


def test_order_ended_by_itself_is_recorded_not_retried(sim, tmp_path, start_daemon):
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    sim.add_fault(kind="http_status", status=400, code="Application.ChangerOrder.Not.Running",
                  match={"action": ROLLBACK}, count=-1)
    d = start_daemon(write_config(tmp_path, sim, [app]))
    d.wait_for_log(re.compile(r"rollguard-order-moved-on app=payments .*ended by itself"), timeout=20)
    wait_more_describes(sim, co["id"], n=3)
    assert len([r for r in sim.requests(action=ROLLBACK)]) == 1
    assert read_state(tmp_path, "payments")["acts"][0]["result"] == "ended_by_itself"


def test_sigterm_waits_for_a_rollback_on_the_wire(sim, tmp_path, start_daemon):
    """SIGTERM while the rollback call is in flight: the daemon waits for the
    answer (bounded by the request timeout) so the outcome is recorded as
    done instead of unconfirmed, then exits 0."""
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    sim.add_fault(kind="slow", seconds=2, match={"action": ROLLBACK})
    d = start_daemon(write_config(tmp_path, sim, [app], defaults={"timeout": "5s"}))
    wait_for(lambda: sim.rollbacks(co["id"]), timeout=20, what="the rollback to reach the sim")
    d.send_signal(signal.SIGTERM)
    d.wait_for_log("waiting up to")
    assert d.wait_exit(timeout=10) == 0
    assert d.find_logs(re.compile(r"rollguard-action-done app=payments"))
    assert read_state(tmp_path, "payments")["acts"][0]["result"] == "done"
    assert len(sim.requests(action=ROLLBACK)) == 1
