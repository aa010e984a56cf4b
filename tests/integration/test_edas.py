# SPDX-License-Identifier: MIT
"""EDAS (SPEC 4, issue 5) end to end: the real binary against the simulator's
EDAS endpoints. ECS apps roll back with RollbackChangeOrder, Kubernetes apps
(edas_kind: k8s) with AbortAndRollbackChangeOrder; the rules and the safety
gate are the ones SAE uses. Every assertion is on what the simulator recorded
or what the daemon logged."""
import json
import re

import pytest

from conftest import (config_app_from, edas_app, failed_pipeline_order, healthy_order,
                      known_secrets, non_rollbackable_order, pipeline, rollback_order, sae_app,
                      stalled_order, stuck_order, wait_for, write_config)

LIST = "ListRecentChangeOrder"
INFO = "GetChangeOrderInfo"
ECS_ROLLBACK = "RollbackChangeOrder"
K8S_ROLLBACK = "AbortAndRollbackChangeOrder"
ECS_ROLLBACK_PATH = "/pop/v5/oam/changeorder/rollback"
K8S_ROLLBACK_PATH = "/pop/v5/changeorder/change_order_abort_and_rollback"
SAE_ROLLBACK_PATH = "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder"
EDAS_PATHS = {
    LIST: ("POST", "/pop/v5/changeorder/change_order_list"),
    INFO: ("POST", "/pop/v5/changeorder/change_order_info"),
    ECS_ROLLBACK: ("PUT", ECS_ROLLBACK_PATH),
    K8S_ROLLBACK: ("PUT", K8S_ROLLBACK_PATH),
}


# --------------------------------------------------------------------------
# Helpers


def puts(sim):
    """Every state-changing call the daemon sent, whatever the product."""
    return [r for r in sim.requests() if r["method"] == "PUT"]


def infos_of(sim, co_id):
    return [r for r in sim.requests(action=INFO) if r.get("change_order_id") == co_id]


def lists_of(sim, app_id):
    return [r for r in sim.requests(action=LIST) if r.get("app_id") == app_id]


def looks_of(sim, app_id):
    """Every look at the app: the app call, or while an order is in flight
    the order call alone (issue 11: one call per look)."""
    return [r for r in sim.requests() if r["action"] in (LIST, INFO) and r.get("app_id") == app_id]


def wait_more_lists(sim, app_id, n=4, timeout=20):
    """Let the daemon look at the app n more times: enough for a second
    (wrong) decision to have been made if it were going to be."""
    base = len(looks_of(sim, app_id))
    wait_for(lambda: len(looks_of(sim, app_id)) >= base + n, timeout=timeout,
             what=f"{n} more looks at {app_id}")


def wait_rollback_order_done(sim, d, co_id, timeout=30):
    """The rollback order the API created runs to success and the daemon
    sees it end: everything after a rollback has settled."""
    new_id = sim.wait_for_rollback(co_id, timeout=20)["new_change_order_id"]
    wait_for(lambda: sim.change_order(new_id)["status"] == 2, timeout=timeout,
             what=f"rollback order {new_id} to succeed")
    d.wait_for_log(re.compile(r"rollguard-release-ended .*co=%s result=succeeded" % new_id), timeout=timeout)
    return new_id


def assert_edas_requests_valid(sim):
    """Every EDAS call was signed correctly and accepted. The simulator answers
    400 InvalidVersion unless x-acs-version is 2017-08-01 and 400
    InvalidAction.Mismatch unless x-acs-action names the API the path belongs
    to, and both headers are signed (it refuses SignedHeaders without them):
    status 200 with signature_ok proves all of it for each request."""
    reqs = [r for r in sim.requests() if r["path"].startswith("/pop/v5/")]
    assert reqs, "no EDAS request was made"
    for r in reqs:
        assert r["signature_ok"] is True, r
        assert r["status"] == 200 and r["error_code"] is None, r
        assert r["access_key_id"] == "testid", r
        assert r["action"] in EDAS_PATHS, r
        assert (r["method"], r["path"]) == EDAS_PATHS[r["action"]], r
    return reqs


def state_text(tmp_path):
    return "\n".join(p.read_text(errors="replace") for p in (tmp_path / "state").iterdir() if p.is_file())


def start(sim, tmp_path, start_daemon, apps, *args, config_apps=None, defaults=None, extra=None):
    """Load the apps into the simulator and start a daemon watching them
    (config_apps: the config entries, when not the plain conversion)."""
    sim.set_apps(apps)
    cfg = write_config(tmp_path, sim, config_apps or apps, defaults=defaults, extra=extra)
    return start_daemon(cfg, *args)


# --------------------------------------------------------------------------
# Stuck, stalled and failed releases are rolled back once, on the right API


@pytest.mark.parametrize("kind,action,path,other_path", [
    ("ecs", ECS_ROLLBACK, ECS_ROLLBACK_PATH, K8S_ROLLBACK_PATH),
    ("k8s", K8S_ROLLBACK, K8S_ROLLBACK_PATH, ECS_ROLLBACK_PATH),
])
def test_stuck_release_is_rolled_back_exactly_once(sim, tmp_path, start_daemon, kind, action, path, other_path):
    co = stuck_order()  # executing, batch 2 failed 20 minutes ago, nothing moves
    app = edas_app(orders=[co], name="edas-shop", kind=kind)
    d = start(sim, tmp_path, start_daemon, [app])

    rb = sim.wait_for_rollback(co["id"], timeout=20)
    assert rb["action"] == action and rb["product"] == "edas", rb
    line = d.wait_for_log(re.compile(r"rollguard-action-done app=edas-shop co=%s .*result=done" % co["id"]))
    assert action in line and rb["new_change_order_id"] in line, line

    # The rollback order EDAS created runs to its end under the daemon's
    # eyes, and a few more polls follow: still exactly one call.
    wait_rollback_order_done(sim, d, co["id"])
    wait_more_lists(sim, app["app_id"], n=3)
    calls = [r for r in sim.requests() if r["path"] == path]
    assert len(calls) == 1, calls
    assert calls[0]["method"] == "PUT" and calls[0]["change_order_id"] == co["id"]
    assert calls[0]["query"] == {"ChangeOrderId": co["id"]}
    assert [r for r in sim.requests() if r["path"] == other_path] == []
    assert len(puts(sim)) == 1
    assert sim.rollback_calls(co["id"]) == 1
    # the poll's describe and the re-read just before acting both precede it
    assert len([r for r in infos_of(sim, co["id"]) if r["seq"] < calls[0]["seq"]]) >= 2
    assert_edas_requests_valid(sim)
    assert d.stop() == 0


def test_failed_batch_is_rolled_back_by_the_failed_batch_rule(sim, tmp_path, start_daemon):
    """EDAS reports a failed batch only through PipelineStatus; a batch that
    failed seconds ago is not stalled, so only failed-batch can fire."""
    co = failed_pipeline_order(failed_ago=5)
    app = edas_app(orders=[co], name="edas-orders")
    d = start(sim, tmp_path, start_daemon, [app])
    rb = sim.wait_for_rollback(co["id"], timeout=20)
    assert rb["action"] == ECS_ROLLBACK
    d.wait_for_log(re.compile(r"rollguard-decision app=edas-orders co=%s rule=failed-batch .*result=go" % co["id"]))
    wait_rollback_order_done(sim, d, co["id"])
    assert sim.rollback_calls(co["id"]) == 1
    assert_edas_requests_valid(sim)


def test_batch_error_rule_sees_the_failed_pipeline_as_sub_status_error(sim, tmp_path, start_daemon):
    """EDAS has no SubStatus: a failed batch under an executing order is what
    SAE calls SubStatus 1, so a `sub_status: error` rule works on EDAS too."""
    co = failed_pipeline_order(failed_ago=5)
    app = edas_app(orders=[co], name="edas-sub")
    rules = [{"name": "sub-error", "when": {"status": ["executing"], "sub_status": "error"},
              "action": "rollback"}]
    d = start(sim, tmp_path, start_daemon, [app], config_apps=[config_app_from(app, rules=rules)])
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-decision app=edas-sub .*rule=sub-error .*sub_status error"))


def test_stalled_release_without_an_error_is_rolled_back(sim, tmp_path, start_daemon):
    """Executing, nothing failed, but no pipeline UpdateTime for 20 minutes
    (pipeline times arrive as strings of milliseconds)."""
    co = stalled_order(idle_for=1200)
    app = edas_app(orders=[co], name="edas-search")
    d = start(sim, tmp_path, start_daemon, [app])
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-decision app=edas-search .*rule=stalled .*no progress for 20m"))
    assert sim.rollback_calls(co["id"]) == 1


@pytest.mark.parametrize("created_ago,stalled", [(1200, True), (60, False)], ids=["20m-ago", "1m-ago"])
def test_create_time_is_read_as_china_time(sim, tmp_path, start_daemon, created_ago, stalled):
    """An executing order without pipelines: its CreateTime ("YYYY-MM-DD
    HH:MM:SS", China Standard Time) is the only evidence of progress. Read as
    UTC it would lie 8 hours in the future and never look stalled; read with
    the offset the wrong way round it would be 16 hours old and always look
    stalled. Only the right reading gets both cases right."""
    from conftest import _order
    co = _order(None, status=1, sub_status=0, create_ago_seconds=created_ago, pipelines=[])
    app = edas_app(orders=[co], name="edas-time")
    d = start(sim, tmp_path, start_daemon, [app])
    if stalled:
        sim.wait_for_rollback(co["id"], timeout=20)
        d.wait_for_log(re.compile(r"rollguard-decision app=edas-time .*rule=stalled .*no progress for 20m"))
    else:
        d.wait_for_log(re.compile(r"rollguard-release-seen app=edas-time co=%s" % co["id"]), timeout=15)
        wait_more_lists(sim, app["app_id"], n=4)
        assert puts(sim) == []
        assert d.find_logs("rollguard-decision") == []
    assert_edas_requests_valid(sim)


# --------------------------------------------------------------------------
# Partial success (status 7) is an ending, not a release to roll back


def partial_order(id=None, **kw):
    """EDAS status 7: batch 1 succeeded, batch 2 failed, the order is over."""
    from conftest import _order
    return _order(id, status=7, sub_status=0, batch_count=2, create_ago_seconds=600,
                  pipelines=[pipeline(2, "Batch 1 Change", start_ago=590, update_ago=500),
                             pipeline(3, "Batch 2 Change", start_ago=490, update_ago=400)], **kw)


def test_release_that_ends_partially_succeeded_is_not_rolled_back(sim, tmp_path, start_daemon):
    """A watched release ends with status 7 and a failed batch. SPEC 6 rolls
    back only orders in flight, and 7 is final (EDAS refuses to roll back an
    ended order anyway): the daemon logs that the release ended as partial,
    goes idle, and calls nothing - even though failed-batch (which names no
    status) would match the failed pipeline."""
    co = stalled_order(idle_for=30)  # in flight, healthy-looking, not moving
    app = edas_app(orders=[co], name="edas-partial")
    d = start(sim, tmp_path, start_daemon, [app])
    d.wait_for_log(re.compile(r"rollguard-release-seen app=edas-partial co=%s" % co["id"]), timeout=15)
    wait_for(lambda: infos_of(sim, co["id"]), timeout=10, what="the order described while in flight")

    sim.patch_change_order(co["id"], status=7, pipelines=[
        pipeline(2, "Batch 1 Change", start_ago=90, update_ago=60),
        pipeline(3, "Batch 2 Change", start_ago=50, update_ago=1),
        pipeline(0, "Batch 3 Change"),
    ])
    line = d.wait_for_log(re.compile(r"rollguard-release-ended app=edas-partial co=%s result=partial" % co["id"]),
                          timeout=15)
    assert "no longer in flight (partial)" in line, line
    wait_more_lists(sim, app["app_id"], n=4)
    assert puts(sim) == []
    assert sim.rollbacks() == []
    assert d.find_logs("rollguard-decision") == []
    assert_edas_requests_valid(sim)


def test_partially_succeeded_order_found_at_start_is_left_alone(sim, tmp_path, start_daemon):
    """The newest order already ended partial when the daemon starts: not in
    flight, so it is not even described, and nothing is called."""
    co = partial_order()
    app = edas_app(orders=[co], name="edas-partial-old")
    d = start(sim, tmp_path, start_daemon, [app])
    wait_more_lists(sim, app["app_id"], n=4)
    assert infos_of(sim, co["id"]) == []
    assert puts(sim) == []
    assert d.find_logs("rollguard-decision") == []


def test_partial_status_on_the_re_read_before_acting_cancels_the_rollback(sim, tmp_path, start_daemon):
    """The rule fires, and the re-read just before acting finds the order
    ended partially (it moved on between the two reads): nothing is called."""
    co = stuck_order()
    app = edas_app(orders=[co], name="edas-race")
    # the first GetChangeOrderInfo sees it stuck; the second one (the re-read
    # before acting) sees status 7: a one-shot "slow" fault processes the
    # first read, then holds its answer while the test PATCHes the order.
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [app], defaults={"poll_interval": "1h", "active_poll_interval": "1h"})
    sim.add_fault(kind="slow", seconds=1.5, count=1, match={"action": INFO})
    d = start_daemon(cfg)
    # once the first describe has been answered (status is recorded when the
    # simulator processed it, before the fault holds the answer back), the
    # order ends partially
    wait_for(lambda: any(r["status"] == 200 for r in infos_of(sim, co["id"])), timeout=10,
             what="the first describe processed")
    sim.patch_change_order(co["id"], status=7)
    # the first answer (stuck) fires stalled; the re-read says partial
    d.wait_for_log(re.compile(r"rollguard-order-moved-on app=edas-race co=%s .*now partial" % co["id"]), timeout=15)
    assert puts(sim) == []


# --------------------------------------------------------------------------
# A healthy release runs to success untouched


def test_healthy_progressing_release_is_left_alone(sim, tmp_path, start_daemon):
    co = healthy_order(steps=5, step_seconds=0.5)
    app = edas_app(orders=[co], name="edas-healthy")
    d = start(sim, tmp_path, start_daemon, [app])
    d.wait_for_log(re.compile(r"rollguard-release-seen app=edas-healthy co=%s" % co["id"]), timeout=15)
    d.wait_for_log(re.compile(r"rollguard-release-ended app=edas-healthy co=%s result=succeeded" % co["id"]),
                   timeout=30)
    assert sim.change_order(co["id"])["status"] == 2
    assert len(infos_of(sim, co["id"])) >= 2, "the order was watched while it progressed"
    assert puts(sim) == []
    assert d.find_logs("rollguard-decision") == []
    assert_edas_requests_valid(sim)
    assert d.stop() == 0


# --------------------------------------------------------------------------
# Orders that must never be rolled back


@pytest.mark.parametrize("order,why", [
    (non_rollbackable_order(), "SupportRollback is false"),
    (rollback_order(), "itself a rollback (CoRollback)"),
    (rollback_order(co_type="CoDeployHistroy"), "itself a rollback (CoDeployHistroy)"),
], ids=["support-rollback-false", "CoRollback", "CoDeployHistroy"])
def test_orders_that_must_never_be_rolled_back(sim, tmp_path, start_daemon, order, why):
    app = edas_app(orders=[order], name="edas-guarded")
    d = start(sim, tmp_path, start_daemon, [app])
    base = len(infos_of(sim, order["id"]))
    wait_for(lambda: len(infos_of(sim, order["id"])) >= base + 4, timeout=20, what="four describes")
    assert puts(sim) == []
    assert sim.rollbacks() == []
    if "SupportRollback" in why:
        d.wait_for_log(re.compile(r"rollguard-action-skipped app=edas-guarded .*SupportRollback is false"))
        # each rule that fires says so once, not on every poll
        said = [re.search(r" rule=(\S+) ", line).group(1) for line in d.find_logs("SupportRollback is false")]
        assert said and len(said) == len(set(said)), said
    else:
        # built-in rules name deploy-like orders only: a rollback order is
        # not even a candidate, so no rule fires on it
        assert d.find_logs("rollguard-decision") == []
    assert_edas_requests_valid(sim)
    assert d.stop() == 0


def test_rollback_order_is_never_matched_even_when_a_rule_names_its_type(sim, tmp_path, start_daemon):
    """A rule that explicitly lists CoRollback still never matches a rollback
    order (and the safety gate would refuse it if it did): no decision, no call."""
    order = rollback_order()
    app = edas_app(orders=[order], name="edas-rb")
    rules = [{"name": "any-failure", "when": {"pipeline_failed": True, "co_type": ["CoRollback"]},
              "action": "rollback"}]
    d = start(sim, tmp_path, start_daemon, [app], config_apps=[config_app_from(app, rules=rules)])
    d.wait_for_log(re.compile(r"rollguard-release-seen app=edas-rb co=%s" % order["id"]), timeout=15)
    wait_more_lists(sim, app["app_id"], n=4)
    assert len(infos_of(sim, order["id"])) >= 4
    assert puts(sim) == []
    assert d.find_logs("rollguard-decision") == []


# --------------------------------------------------------------------------
# Once only, across restarts and whatever the API shows afterwards


def test_never_acts_twice_even_if_the_order_looks_stuck_again(sim, tmp_path, start_daemon):
    """After the rollback EDAS shows the original order executing with a
    failed batch again (a console glitch, a stale read): the daemon, and a
    restarted daemon reading the state file, never call a second time."""
    co = stuck_order()
    app = edas_app(orders=[co], name="edas-once")
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [app])
    d = start_daemon(cfg)
    new_id = wait_rollback_order_done(sim, d, co["id"])

    # the original reappears in flight and stuck, newer than the rollback
    sim.patch_change_order(co["id"], status=1, create_ago_seconds=5)
    line = d.wait_for_log(re.compile(r"rollguard-action-skipped app=edas-once co=%s .*already acted" % co["id"]),
                          timeout=15)
    assert "rollback done" in line, line
    assert d.stop() == 0

    d2 = start_daemon(cfg)
    d2.wait_for_log(re.compile(r"rollguard-action-skipped app=edas-once co=%s .*already acted" % co["id"]),
                    timeout=15)
    wait_more_lists(sim, app["app_id"], n=3)
    assert len(puts(sim)) == 1
    assert sim.rollback_calls(co["id"]) == 1
    assert sim.rollback_calls(new_id) == 0
    # the state file remembers the rollback order EDAS created, and no secret
    state = state_text(tmp_path)
    assert co["id"] in state and new_id in state
    assert not any(s in state for s in known_secrets())


def test_order_ended_by_itself_before_the_rollback(sim, tmp_path, start_daemon):
    """RollbackChangeOrder answers Application.ChangerOrder.Not.Running: the
    order ended by itself; recorded, not retried."""
    co = stuck_order()
    app = edas_app(orders=[co], name="edas-ended")
    sim.set_apps([app])
    sim.add_fault(kind="http_status", status=400, code="Application.ChangerOrder.Not.Running",
                  message="The change order is not running.", count=1, match={"action": ECS_ROLLBACK})
    d = start_daemon(write_config(tmp_path, sim, [app]))
    d.wait_for_log(re.compile(r"rollguard-order-moved-on app=edas-ended co=%s .*ended by itself" % co["id"]),
                   timeout=20)
    wait_more_lists(sim, app["app_id"], n=3)
    assert len([r for r in sim.requests() if r["path"] == ECS_ROLLBACK_PATH]) == 1


def test_wrong_edas_kind_is_refused_once_and_not_retried(sim, tmp_path, start_daemon):
    """The config says ECS (the default) but the app runs on Kubernetes: EDAS
    refuses RollbackChangeOrder for it. That is a permanent refusal: logged as
    a failed action for a human, never sent again, never tried on the other
    API behind the operator's back."""
    co = stuck_order()
    app = edas_app(orders=[co], name="edas-k8s-misconfigured", kind="k8s")
    sim.set_apps([app])
    entry = config_app_from(app)
    entry.pop("edas_kind", None)  # the mistake: ecs by default
    d = start_daemon(write_config(tmp_path, sim, [entry]))
    line = d.wait_for_log(re.compile(r"rollguard-action-failed app=edas-k8s-misconfigured co=%s .*result=failed"
                                     % co["id"]), timeout=20)
    assert "InvalidOperation.AppType" in line and "act by hand" in line, line
    wait_more_lists(sim, app["app_id"], n=4)
    assert [(r["path"], r["status"]) for r in puts(sim)] == [(ECS_ROLLBACK_PATH, 400)]


# --------------------------------------------------------------------------
# SAE and EDAS side by side


def test_mixed_sae_and_edas_apps_each_roll_back_on_their_own_api(sim, tmp_path, start_daemon):
    sae_co, ecs_co, k8s_co = stuck_order(), stuck_order(), stuck_order()
    apps = [sae_app(orders=[sae_co], name="sae-app"),
            edas_app(orders=[ecs_co], name="edas-ecs-app"),
            edas_app(orders=[k8s_co], name="edas-k8s-app", kind="k8s")]
    d = start(sim, tmp_path, start_daemon, apps)
    for co in (sae_co, ecs_co, k8s_co):
        sim.wait_for_rollback(co["id"], timeout=20)
    for name, co in (("sae-app", sae_co), ("edas-ecs-app", ecs_co), ("edas-k8s-app", k8s_co)):
        d.wait_for_log(re.compile(r"rollguard-action-done app=%s co=%s .*result=done" % (name, co["id"])))
    for co in (sae_co, ecs_co, k8s_co):
        wait_rollback_order_done(sim, d, co["id"])

    by_path = {}
    for r in puts(sim):
        by_path.setdefault(r["path"], []).append(r["change_order_id"])
    assert by_path == {SAE_ROLLBACK_PATH: [sae_co["id"]], ECS_ROLLBACK_PATH: [ecs_co["id"]],
                       K8S_ROLLBACK_PATH: [k8s_co["id"]]}
    # every call went to its own product with its own version
    for r in sim.requests():
        assert r["signature_ok"] is True and r["status"] == 200, r
    sae_reqs = [r for r in sim.requests() if r["path"].startswith("/pop/v1/sam/")]
    assert {r["app_id"] for r in sae_reqs} == {apps[0]["app_id"]}
    assert_edas_requests_valid(sim)
    assert d.stop() == 0


# --------------------------------------------------------------------------
# The CLI on EDAS apps


def test_check_names_the_edas_kind(sim, tmp_path, run_cli):
    apps = [edas_app(name="e-ecs"), edas_app(name="e-k8s", kind="k8s")]
    cfg = write_config(tmp_path, sim, apps)
    r = run_cli("--config", cfg, "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"e-ecs: edas \(ecs\) %s" % apps[0]["app_id"], r.stdout), r.stdout
    assert re.search(r"e-k8s: edas \(k8s\) %s" % apps[1]["app_id"], r.stdout), r.stdout


def test_edas_kind_on_an_sae_app_is_a_config_error(sim, tmp_path, run_cli):
    app = sae_app(name="not-edas")
    cfg = write_config(tmp_path, sim, [config_app_from(app, edas_kind="k8s")])
    r = run_cli("--config", cfg, "check")
    assert r.returncode == 1
    assert "edas_kind: only applies to platform edas" in r.stderr, r.stderr


def test_once_dry_run_on_edas_decides_and_calls_nothing(sim, tmp_path, run_cli):
    co = stuck_order()
    app = edas_app(orders=[co], name="edas-once-dry")
    sim.set_apps([app])
    r = run_cli("--config", write_config(tmp_path, sim, [app]), "--dry-run", "once")
    assert r.returncode == 0, r.stderr
    assert re.search(r"rollguard-decision app=edas-once-dry co=%s .*result=dry-run" % co["id"], r.stderr), r.stderr
    assert puts(sim) == []
    assert_edas_requests_valid(sim)


def test_once_rolls_back_an_edas_order_and_exits(sim, tmp_path, run_cli):
    co = stuck_order()
    app = edas_app(orders=[co], name="edas-once-act", kind="k8s")
    sim.set_apps([app])
    r = run_cli("--config", write_config(tmp_path, sim, [app]), "once")
    assert r.returncode == 0, r.stderr
    assert [(x["path"], x["change_order_id"]) for x in puts(sim)] == [(K8S_ROLLBACK_PATH, co["id"])]
    assert "AbortAndRollbackChangeOrder accepted" in r.stderr
    states = [json.loads(p.read_text()) for p in (tmp_path / "state").glob("*.json")]
    assert len(states) == 1 and co["id"] in json.dumps(states[0])
