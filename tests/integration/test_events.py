# SPDX-License-Identifier: MIT
"""Cloud events as hints (issue 11): POST /api/v1/events takes CloudEvents
1.0 as Alibaba Cloud EventBridge's HTTP targets deliver them. An event that
names a configured app's id makes that app poll now; the decision always
comes from the fresh read, never from the event."""

import json
import re
import uuid

import pytest

from conftest import config_app_from, edas_app, rule, sae_app, stuck_order, succeeded_order, wait_for
from test_alerts import TOKEN, last_seq, parse_prometheus, start_with_alerts

STUCK_RULE = rule("batch-error", for_="0s", status=["executing"], sub_status="error")
# Idle apps are polled once at start-up and then not for an hour: only an
# event can cause the next poll within a test.
SLOW = {"poll_interval": "1h", "active_poll_interval": "1h"}


def cloud_event(type_, source="acs.sae", subject=None, data=None, id=None, **extra):
    """What EventBridge delivers: the CloudEvents envelope with Alibaba
    Cloud's extension attributes."""
    ev = {"specversion": "1.0", "id": id or str(uuid.uuid4()), "source": source, "type": type_,
          "time": "2026-12-01T21:04:41+08:00", "aliyunaccountid": "1234567890",
          "aliyunregionid": "cn-hangzhou", "aliyunpublishtime": "2026-12-01T21:04:42.179PRC",
          "aliyuneventbusname": "default", "aliyunpublishaddr": "172.25.XX.XX",
          "datacontenttype": "application/json;charset=utf-8"}
    if subject is not None:
        ev["subject"] = subject
    if data is not None:
        ev["data"] = data
    ev.update(extra)
    return ev


def sae_event(app_id, kind="SaeChangeOrderFailEvent", **kw):
    return cloud_event(f"sae:ChangeOrder:{kind}",
                       subject=f"acs:sae:cn-hangzhou:1234567890:application/{app_id}",
                       data={"resourceId": app_id, "changeOrderId": str(uuid.uuid4()), "status": "FAIL"}, **kw)


def edas_event(app_id, **kw):
    co = str(uuid.uuid4())
    return cloud_event("edas:ApplicationChange:ChangeOrder", source="acs.edas",
                       subject=f"acs:edas:cn-hangzhou:1234567890:changeorder/{co}",
                       data={"appId": app_id, "changeOrderId": co, "status": 3}, **kw)


def actiontrail_event(app_id, **kw):
    return cloud_event("actiontrail:ActionTrail:ApiCall", source="acs.actiontrail",
                       data={"eventName": "DeployApplication", "serviceName": "sae", "eventType": "ApiCall",
                             "eventRW": "Write", "acsRegion": "cn-hangzhou",
                             "requestParameters": {"AppId": app_id, "ImageUrl": "registry.example/shop:2"}},
                       **kw)


def post_events(lis, body, token=TOKEN, content_type="application/cloudevents+json"):
    h = {"Content-Type": content_type}
    if token is not None:
        h["Authorization"] = f"Bearer {token}"
    status, _, raw = lis.request("POST", "/api/v1/events", body, h)
    return status, json.loads(raw) if raw else None


def polls_of(sim, app_id, since):
    """API calls about app_id after request number `since` (any action: the
    idle call, the order call, or EDAS's)."""
    return [r for r in sim.requests() if r["seq"] > since and r["app_id"] == app_id]


def started(sim, d, *apps):
    """Every app had its start-up poll: from here on only events poll."""
    for a in apps:
        wait_for(lambda: polls_of(sim, a["app_id"], 0), timeout=15, what=f"the start-up poll of {a['name']}")


def hint_lines(d, app_name):
    return d.find_logs(re.compile(rf"rollguard-cloud-event app={re.escape(app_name)} .*polling it now"))


@pytest.fixture
def fleet(tmp_path, sim, start_daemon):
    """Three idle SAE apps, one idle EDAS app; polling slowed to an hour."""
    apps = [sim.add_app(sae_app(orders=[succeeded_order()], name=n)) for n in ("shop-api", "cart", "billing")]
    apps.append(sim.add_app(edas_app(orders=[succeeded_order()], name="ledger")))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon, [config_app_from(a, rules=[STUCK_RULE]) for a in apps],
                               defaults=SLOW)
    started(sim, d, *apps)
    lis.daemon, lis.apps = d, {a["name"]: a for a in apps}
    return lis


# --------------------------------------------------------------------------
# Hints


def test_sae_fail_event_polls_an_idle_app_at_once_and_its_stuck_release_is_rolled_back(tmp_path, sim,
                                                                                       start_daemon):
    shop = sim.add_app(sae_app(orders=[succeeded_order()], name="shop-api"))
    cart = sim.add_app(sae_app(orders=[succeeded_order()], name="cart"))
    d, lis = start_with_alerts(tmp_path, sim, start_daemon,
                               [config_app_from(a, rules=[STUCK_RULE]) for a in (shop, cart)], defaults=SLOW)
    started(sim, d, shop, cart)

    # The release gets stuck after the start-up poll: without the event the
    # next look would be an hour away.
    co = stuck_order()
    sim.add_change_order(shop["app_id"], co)
    mark = last_seq(sim)
    status, doc = post_events(lis, sae_event(shop["app_id"]))
    assert status == 202, doc
    assert doc == {"received": 1, "matched": 1, "unmatched": 0, "duplicates": 0}
    rb = sim.wait_for_rollback(co["id"], timeout=10)
    assert rb["action"] == "AbortAndRollbackChangeOrder", rb
    # the decision came from reads made after the event
    actions = [r["action"] for r in polls_of(sim, shop["app_id"], mark)]
    assert actions[:2] == ["DescribeApplicationStatus", "DescribeChangeOrder"], actions
    d.wait_for_log("rollguard-action-done", timeout=10)
    assert len(hint_lines(d, "shop-api")) == 1
    assert not polls_of(sim, cart["app_id"], mark), "an app the event did not name was polled"
    assert len(sim.rollbacks(co["id"])) == 1


def test_an_event_is_only_a_hint(fleet, sim):
    """A failure event for a release that reads healthy decides nothing."""
    shop = fleet.apps["shop-api"]
    mark = last_seq(sim)
    status, doc = post_events(fleet, sae_event(shop["app_id"]))
    assert status == 202 and doc["matched"] == 1
    wait_for(lambda: polls_of(sim, shop["app_id"], mark), timeout=10, what="the hinted poll")
    wait_for(lambda: hint_lines(fleet.daemon, "shop-api"), what="the hint's log line")
    assert sim.rollbacks() == []
    assert not fleet.daemon.find_logs("rollguard-decision")


def test_batch_polls_each_named_app_once(fleet, sim):
    shop, cart, billing = (fleet.apps[n] for n in ("shop-api", "cart", "billing"))
    mark = last_seq(sim)
    batch = [sae_event(shop["app_id"]), sae_event(cart["app_id"], kind="SaeWaitBatchConfirmEvent"),
             cloud_event("sae:ChangeOrder:SaeK8sUnhealthyEvent",
                         subject=f"acs:sae:cn-hangzhou:1234567890:application/{shop['app_id']}",
                         data={"resourceId": shop["app_id"]}),
             sae_event(str(uuid.uuid4()))]
    status, doc = post_events(fleet, batch, content_type="application/cloudevents-batch+json")
    assert status == 202, doc
    assert doc == {"received": 4, "matched": 3, "unmatched": 1, "duplicates": 0}
    for a in (shop, cart):
        wait_for(lambda: polls_of(sim, a["app_id"], mark), timeout=10, what=f"the poll of {a['name']}")
    # A later event polls billing; by then a second poll of shop-api (named
    # twice in the batch) would have started too.
    status, _ = post_events(fleet, sae_event(billing["app_id"]))
    assert status == 202
    wait_for(lambda: polls_of(sim, billing["app_id"], mark), timeout=10, what="the poll of billing")
    idle_calls = [r for r in polls_of(sim, shop["app_id"], mark) if r["action"] == "DescribeApplicationStatus"]
    assert len(idle_calls) == 1, idle_calls
    assert len(hint_lines(fleet.daemon, "shop-api")) == 2  # one line per event, one poll per app


def test_edas_change_order_event(fleet, sim):
    ledger = fleet.apps["ledger"]
    mark = last_seq(sim)
    status, doc = post_events(fleet, edas_event(ledger["app_id"]), content_type="application/json")
    assert status == 202 and doc["matched"] == 1, doc
    wait_for(lambda: polls_of(sim, ledger["app_id"], mark), timeout=10, what="the EDAS app's poll")
    assert hint_lines(fleet.daemon, "ledger")


def test_actiontrail_deploy_call_event(fleet, sim):
    cart = fleet.apps["cart"]
    mark = last_seq(sim)
    status, doc = post_events(fleet, actiontrail_event(cart["app_id"]))
    assert status == 202 and doc["matched"] == 1, doc
    wait_for(lambda: polls_of(sim, cart["app_id"], mark), timeout=10, what="the poll after the deploy call")


def test_unknown_app_is_counted_and_dropped(fleet, sim):
    mark = last_seq(sim)
    # an id that contains a configured one is not that id
    longer = fleet.apps["shop-api"]["app_id"] + "-canary"
    status, doc = post_events(fleet, [sae_event(str(uuid.uuid4())), cloud_event("x:y:Z", subject=longer)])
    assert status == 202
    assert doc == {"received": 2, "matched": 0, "unmatched": 2, "duplicates": 0}
    m = parse_prometheus(fleet.metrics_text())
    assert m[("rollguard_events_received_total",
              '{type="sae:ChangeOrder:SaeChangeOrderFailEvent",matched="false"}')] == 1
    assert m[("rollguard_events_received_total", '{type="x:y:Z",matched="false"}')] == 1
    # a sentinel: the next hinted poll is the first call after the mark
    billing = fleet.apps["billing"]
    post_events(fleet, sae_event(billing["app_id"]))
    wait_for(lambda: polls_of(sim, billing["app_id"], mark), timeout=10, what="the sentinel poll")
    assert {r["app_id"] for r in sim.requests() if r["seq"] > mark} == {billing["app_id"]}


def test_a_redelivery_polls_nothing(fleet, sim):
    shop = fleet.apps["shop-api"]
    mark = last_seq(sim)
    ev = sae_event(shop["app_id"])
    assert post_events(fleet, ev) == (202, {"received": 1, "matched": 1, "unmatched": 0, "duplicates": 0})
    wait_for(lambda: polls_of(sim, shop["app_id"], mark), timeout=10, what="the first poll")
    # EventBridge retries with the same id; so may a batch
    assert post_events(fleet, ev) == (202, {"received": 1, "matched": 0, "unmatched": 0, "duplicates": 1})
    assert post_events(fleet, [ev, ev]) == (202, {"received": 2, "matched": 0, "unmatched": 0, "duplicates": 2})
    # the same id from another source is another event
    other = dict(ev, source="acs.sae.other")
    assert post_events(fleet, other)[1]["matched"] == 1
    wait_for(lambda: len([r for r in polls_of(sim, shop["app_id"], mark)
                          if r["action"] == "DescribeApplicationStatus"]) >= 2, timeout=10, what="the second poll")
    assert len(hint_lines(fleet.daemon, "shop-api")) == 2
    calls = [r for r in polls_of(sim, shop["app_id"], mark) if r["action"] == "DescribeApplicationStatus"]
    assert len(calls) == 2, calls
    m = parse_prometheus(fleet.metrics_text())
    assert m[("rollguard_events_received_total",
              '{type="sae:ChangeOrder:SaeChangeOrderFailEvent",matched="duplicate"}')] == 3
    assert m[("rollguard_events_received_total",
              '{type="sae:ChangeOrder:SaeChangeOrderFailEvent",matched="true"}')] == 2


# --------------------------------------------------------------------------
# Refusals


@pytest.mark.parametrize("token", [None, "wrong-token", TOKEN[:-1]])
def test_without_the_token_is_401(fleet, sim, token):
    mark = last_seq(sim)
    status, doc = post_events(fleet, sae_event(fleet.apps["shop-api"]["app_id"]), token=token)
    assert status == 401, doc
    fleet.daemon.wait_for_log("rejected cloud events from 127.0.0.1: missing or invalid bearer token")
    m = parse_prometheus(fleet.metrics_text())
    assert m[("rollguard_event_deliveries_total", '{result="unauthorized"}')] == 1
    assert ("rollguard_events_received_total", '{type="sae:ChangeOrder:SaeChangeOrderFailEvent",matched="true"}') \
        not in m
    assert not [r for r in sim.requests() if r["seq"] > mark]


@pytest.mark.parametrize("body,reason", [
    ("", "empty body"),
    ('{"specversion": "1.0", ', "malformed JSON near byte"),
    ('"hello"', "expected a CloudEvent (a JSON object) or a batch of them (a JSON array)"),
    ('{"id": "1", "source": "s", "type": "t"}', "specversion: missing"),
    ('{"specversion": "0.3", "id": "1", "source": "s", "type": "t"}', 'specversion: expected "1.0", got "0.3"'),
    ('[{"specversion": "1.0", "id": "1", "source": "s", "type": "t"}, 7]', "[1]: expected a CloudEvent"),
    ('[{"specversion": "1.0", "id": "1", "source": "s", "type": "t"},'
     ' {"specversion": "1.0", "source": "s", "type": "t"}]', "[1].id: missing"),
    ('{"specversion": "1.0", "id": "1", "source": "s", "type": "t", "subject": 5}', "subject: expected a string"),
])
def test_malformed_is_400_with_the_reason(fleet, sim, body, reason):
    mark = last_seq(sim)
    status, doc = post_events(fleet, body)
    assert status == 400, doc
    assert reason in doc["error"], doc
    fleet.daemon.wait_for_log("rejected cloud events from 127.0.0.1: ")
    # all or nothing: a batch with one bad event polls nothing
    assert not [r for r in sim.requests() if r["seq"] > mark]
    m = parse_prometheus(fleet.metrics_text())
    assert m[("rollguard_event_deliveries_total", '{result="malformed"}')] == 1


def test_body_over_one_mib_is_413(fleet):
    status, _ = post_events(fleet, "[" + " " * (1024 * 1024) + "]")
    assert status == 413
    m = parse_prometheus(fleet.metrics_text())
    assert m[("rollguard_event_deliveries_total", '{result="too_large"}')] == 1


def test_get_is_405(fleet):
    status, hdrs, _ = fleet.request("GET", "/api/v1/events")
    assert status == 405 and hdrs.get("allow") == "POST"


# --------------------------------------------------------------------------
# Metrics


def test_metrics_count_types_with_a_bounded_label_set(fleet):
    shop = fleet.apps["shop-api"]
    m = parse_prometheus(fleet.metrics_text())
    assert m[("rollguard_event_deliveries_total", '{result="ok"}')] == 0
    # 40 kinds of event the rule let through, most naming nobody
    batch = [cloud_event(f"custom:Kind:Event{i:02d}", source="my.app") for i in range(40)]
    batch.append(sae_event(shop["app_id"]))
    status, doc = post_events(fleet, batch)
    assert status == 202 and doc["received"] == 41 and doc["matched"] == 1, doc
    m = parse_prometheus(fleet.metrics_text())
    series = {labels: v for (name, labels), v in m.items() if name == "rollguard_events_received_total"}
    types = {re.match(r'\{type="([^"]*)"', lb).group(1) for lb in series}
    assert len(types) == 33 and "other" in types, sorted(types)  # 32 kept, then "other"
    assert sum(series.values()) == 41
    assert series['{type="custom:Kind:Event00",matched="false"}'] == 1
    assert series['{type="other",matched="false"}'] == 8
    # the SAE event came after the cap: counted as other, and still a hint
    assert series['{type="other",matched="true"}'] == 1
    assert m[("rollguard_event_deliveries_total", '{result="ok"}')] == 1
