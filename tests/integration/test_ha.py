# SPDX-License-Identifier: MIT
"""Two or three real rollguard daemons with the same apps, one real etcd
(etcd_server.EtcdServer) and the simulator (issue 15). Each daemon signs
with its own AccessKey, so the simulator's records say who polled and who
rolled back. Only the leader polls and acts; kill -9 hands over within
lease_ttl + one interval; a paused leader that wakes up cannot act; without
etcd nobody acts, and once etcd is back the stuck release is rolled back
once."""

import json
import re
import signal
import subprocess
import time
import urllib.request
import uuid

import pytest

from conftest import (_SECRETS, SLOWDOWN, config_app_from, rule, rollguard_bin, daemon_env, sae_app,
                      stuck_order, wait_for, write_config)
from etcd_server import EtcdServer, etcd  # noqa: F401  (the fixture)
from test_alerts import free_port, write_token

TTL = 3                # seconds: short, so takeovers are quick
INTERVAL = 1           # poll_interval and active_poll_interval of the test defaults
# kill -9 to the first poll of the successor: the lease runs out (TTL), the
# standby notices at its next look at the leader key (TTL/3), reads acts/
# and polls at once; plus scheduling slack on a shared machine.
TAKEOVER = TTL + INTERVAL + 1.5
ROLLBACK = "AbortAndRollbackChangeOrder"
STUCK = rule("stuck", for_="2s", status=["executing"], sub_status="error")


class Node:
    def __init__(self, name, key_id, daemon, port, config):
        self.name, self.key_id, self.daemon, self.port, self.config = name, key_id, daemon, port, config

    def get(self, path, timeout=5):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
            return r.read().decode()

    def status(self):
        return json.loads(self.get("/status"))

    def ha(self):
        try:
            return self.status().get("ha")
        except OSError:
            return None

    def role(self):
        h = self.ha()
        return h and h["role"]

    def metrics(self):
        return self.get("/metrics")


class Cluster:
    def __init__(self, tmp_path, etcd, sim, start_daemon):  # noqa: F811
        self.tmp_path, self.etcd, self.sim, self.start_daemon = tmp_path, etcd, sim, start_daemon
        self.prefix = f"/rollguard/test-{uuid.uuid4().hex[:8]}"
        self.nodes = {}
        self.apps = []

    def start(self, name, rules=(STUCK,), ttl=TTL, extra_ha=None):
        if not self.apps:
            idle = sae_app(orders=[], name="idle")
            self.apps.append(idle)
            self.sim.set_apps([idle])
        key_id = f"ha-{name}"
        d = self.tmp_path / name
        d.mkdir(exist_ok=True)
        port = free_port()
        ha = {"etcd": [self.etcd.url], "prefix": self.prefix, "lease_ttl": f"{ttl}s", "node": name}
        ha.update(extra_ha or {})
        cfg = write_config(d, self.sim, [config_app_from(a, rules=list(rules)) for a in self.apps],
                           extra={"ha": ha, "alerts": {"listen": f"127.0.0.1:{port}",
                                                       "token_file": str(write_token(d / "alert-token"))}})
        daemon = self.start_daemon(cfg, env={"ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
                                             "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret_of(name)})
        node = Node(name, key_id, daemon, port, cfg)
        self.nodes[name] = node
        wait_for(lambda: node.ha() is not None or not daemon.running, timeout=10, what=f"{name}'s /status")
        assert daemon.running, f"{name} exited: {daemon.output[-2000:]}"
        return node

    def leader(self):
        """The one node that says it leads, if every other live one agrees."""
        live = [n for n in self.nodes.values() if n.daemon.running]
        leads = [n for n in live if n.role() == "leader"]
        if len(leads) != 1:
            return None
        others = [n.ha() for n in live if n is not leads[0]]
        if all(o and o["role"] == "standby" and o["leader"] == leads[0].name for o in others):
            return leads[0]
        return None

    def wait_leader(self, timeout=15):
        return wait_for(self.leader, timeout=timeout, what="exactly one leader that the others name")

    def requests_by(self, node, action=None):
        return [r for r in self.sim.requests(action=action) if r.get("access_key_id") == node.key_id]

    def add_stuck_release(self, name="payments"):
        co = stuck_order()
        app = sae_app(orders=[co], name=name)
        self.apps.append(app)
        return app, co


def secret_of(name):
    return f"ha-secret-{name}-7f3e"


@pytest.fixture
def cluster(tmp_path, etcd, make_sim, start_daemon):  # noqa: F811
    sim = make_sim(keys=[f"ha-{n}:{secret_of(n)}" for n in ("a", "b", "c")])
    return Cluster(tmp_path, etcd, sim, start_daemon)


def describes(sim, co_id, key_id=None):
    return [r for r in sim.requests(action="DescribeChangeOrder")
            if r.get("change_order_id") == co_id and (key_id is None or r.get("access_key_id") == key_id)]


def more_describes(cluster, node, co_id, n=3, timeout=15):
    """Let `node` look at the order n more times: time enough for a second
    (wrong) rollback to have happened if it were going to."""
    base = len(describes(cluster.sim, co_id, node.key_id))
    wait_for(lambda: len(describes(cluster.sim, co_id, node.key_id)) >= base + n, timeout=timeout,
             what=f"{n} more DescribeChangeOrder of {co_id} by {node.name}")


def metric(text, name, labels=""):
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


# --------------------------------------------------------------------------


def test_only_the_leader_polls_and_acts(cluster):
    app, co = cluster.add_stuck_release()
    cluster.sim.set_apps([app])
    a = cluster.start("a")
    wait_for(lambda: a.role() == "leader", timeout=10, what="a leads")
    b = cluster.start("b")
    assert cluster.wait_leader() is a

    rb = cluster.sim.wait_for_rollback(co["id"], timeout=20)
    more_describes(cluster, a, co["id"], n=0)
    wait_for(lambda: len(cluster.requests_by(a, "DescribeApplicationStatus")) >= 4, timeout=15,
             what="a few more polls by the leader")
    # the account's budget is spent once: the standby never called the cloud
    assert cluster.requests_by(b) == []
    assert len(cluster.sim.rollbacks()) == 1 and rb["action"] == ROLLBACK
    rollback_requests = cluster.sim.requests(action=ROLLBACK)
    assert [r["access_key_id"] for r in rollback_requests] == [a.key_id]

    # the act key: who, which rule, and the result written after the call
    rec = json.loads(cluster.etcd.get(f"{cluster.prefix}/acts/{co['id']}")["value"])
    assert rec["node"] == "a" and rec["intent"]["app"] == "payments" and rec["intent"]["rule"] == "stuck"
    assert rec["result"]["result"] == "done"

    # /status, /metrics and `rollguard status` say who leads
    assert b.ha() == {"node": "b", "role": "standby", "leader": "a", "reason": "a leads"}
    assert a.ha()["role"] == "leader" and a.ha()["leader"] == "a"
    ma, mb = a.metrics(), b.metrics()
    assert metric(ma, "rollguard_ha_leader") == 1 and metric(mb, "rollguard_ha_leader") == 0
    assert metric(ma, "rollguard_ha_role", '{role="leader"}') == 1
    assert metric(ma, "rollguard_ha_role", '{role="standby"}') == 0
    assert metric(mb, "rollguard_ha_role", '{role="standby"}') == 1
    assert metric(ma, "rollguard_ha_fences_total", '{result="FENCED_OK"}') == 1
    out = subprocess.run([rollguard_bin(), "--config", str(b.config), "status"], capture_output=True, text=True,
                         env=daemon_env(cluster.tmp_path), timeout=30)
    assert out.returncode == 0, out.stderr
    assert "ha: b is standby; a leads" in out.stdout
    out = subprocess.run([rollguard_bin(), "--config", str(a.config), "status"], capture_output=True, text=True,
                         env=daemon_env(cluster.tmp_path), timeout=30)
    assert re.search(r"^ha: a is the leader \(holds /rollguard/test-\w+/leader", out.stdout, re.M), out.stdout


def test_kill_9_of_the_leader_standby_takes_over_and_rolls_back_once(cluster):
    app, co = cluster.add_stuck_release()
    cluster.sim.set_apps([app])
    hold = rule("stuck", for_="4s", status=["executing"], sub_status="error")
    a = cluster.start("a", rules=[hold])
    wait_for(lambda: a.role() == "leader", timeout=10, what="a leads")
    b = cluster.start("b", rules=[hold])
    cluster.wait_leader()
    # the leader sees the release and holds; it dies before `for` is up
    a.daemon.wait_for_log(re.compile(r"rollguard-rule-holding app=payments co=%s" % co["id"]), timeout=10)
    killed_at = time.time()
    a.daemon.kill9()

    first = wait_for(lambda: cluster.requests_by(b), timeout=TAKEOVER + 5, what="b's first poll")[0]
    took = first["t"] - killed_at
    print(f"kill -9 to the successor's first poll: {took:.2f}s")
    assert took <= TAKEOVER * SLOWDOWN, f"b polled {took:.1f}s after the kill (want <= ttl + one interval)"
    assert b.role() == "leader" and b.ha()["leader"] == "b"

    cluster.sim.wait_for_rollback(co["id"], timeout=20)
    more_describes(cluster, b, co["id"], n=0)
    wait_for(lambda: len(cluster.requests_by(b, "DescribeApplicationStatus")) >= 5, timeout=15,
             what="a few more polls by the new leader")
    assert [r["access_key_id"] for r in cluster.sim.requests(action=ROLLBACK)] == [b.key_id]
    assert cluster.sim.rollback_calls(co["id"]) == 1


def test_paused_leader_wakes_up_and_does_not_act(cluster):
    app, co = cluster.add_stuck_release()
    cluster.sim.set_apps([app])
    hold = rule("stuck", for_="3s", status=["executing"], sub_status="error")
    a = cluster.start("a", rules=[hold])
    wait_for(lambda: a.role() == "leader", timeout=10, what="a leads")
    b = cluster.start("b", rules=[hold])
    cluster.wait_leader()
    a.daemon.wait_for_log(re.compile(r"rollguard-rule-holding app=payments co=%s" % co["id"]), timeout=10)
    mark = a.daemon.mark()
    a.daemon.send_signal(signal.SIGSTOP)
    try:
        # a's lease runs out while it sleeps; b takes over and, once its
        # own `for` is up, rolls back
        wait_for(lambda: b.role() == "leader", timeout=TAKEOVER + 5, what="b leads while a sleeps")
        cluster.sim.wait_for_rollback(co["id"], timeout=20)
        assert [r["access_key_id"] for r in cluster.sim.requests(action=ROLLBACK)] == [b.key_id]
    finally:
        a.daemon.send_signal(signal.SIGCONT)
    # a's `for` is long up: awake, it must neither poll as a leader nor act
    a.daemon.wait_for_log(re.compile(r"rollguard-ha-role .*ha: a is standby: b leads"), timeout=10, since=mark)
    more_describes(cluster, b, co["id"], n=0)
    wait_for(lambda: len(cluster.requests_by(b, "DescribeApplicationStatus")) >= 5, timeout=15,
             what="a few more polls by b")
    assert cluster.sim.rollback_calls(co["id"]) == 1
    assert len(cluster.sim.requests(action=ROLLBACK)) == 1
    assert a.daemon.find_logs("rollguard-action-done") == []
    assert cluster.leader() is b


def test_without_etcd_nobody_acts_and_says_why_then_rolls_back_once(cluster):
    app = sae_app(orders=[], name="payments")
    cluster.apps.append(app)
    cluster.sim.set_apps([app])
    a = cluster.start("a", rules=[STUCK])
    wait_for(lambda: a.role() == "leader", timeout=10, what="a leads")
    b = cluster.start("b", rules=[STUCK])
    cluster.wait_leader()
    cluster.etcd.stop()
    wait_for(lambda: a.role() == "lost" and b.role() == "lost", timeout=TTL + 5,
             what="both nodes say they lost etcd")
    a.daemon.wait_for_log(re.compile(r"rollguard-ha-role .*ha: a is lost: etcd has not confirmed the lease in time, "
                                     r"not acting, still observing"), timeout=5)
    b.daemon.wait_for_log(re.compile(r"rollguard-ha-role .*ha: b is lost: etcd has not confirmed"), timeout=5)
    assert "etcd" in a.ha()["reason"] and "not acting" in a.ha()["reason"]

    # a release goes bad while etcd is down: the old leader keeps watching
    # it (and says why it does not act); the standby polls nothing
    co = cluster.sim.add_change_order(app["app_id"], stuck_order())
    a.daemon.wait_for_log(re.compile(r"rollguard-action-skipped app=payments co=%s .*but this node does not act" % co["id"]),
                          timeout=15)
    more_describes(cluster, a, co["id"], n=3)
    assert cluster.sim.rollbacks() == []
    assert describes(cluster.sim, co["id"], b.key_id) == []
    assert a.daemon.running and b.daemon.running
    assert a.role() == "lost" and b.role() == "lost"

    # etcd is back: whoever leads now rolls back, once
    cluster.etcd.start()
    cluster.wait_leader(timeout=TTL * 3 + 5)
    cluster.sim.wait_for_rollback(co["id"], timeout=20)
    leader = cluster.leader()
    more_describes(cluster, leader, co["id"], n=0)
    wait_for(lambda: len(cluster.requests_by(leader, "DescribeApplicationStatus")) >= 5, timeout=15,
             what="a few more polls by the leader")
    assert len(cluster.sim.requests(action=ROLLBACK)) == 1
    assert cluster.sim.rollback_calls(co["id"]) == 1


def test_an_order_already_in_acts_is_never_acted_on(cluster):
    """A new leader reads acts/ first: an order another node claimed (here:
    claimed and never confirmed) is reported, not rolled back."""
    app, co = cluster.add_stuck_release()
    cluster.sim.set_apps([app])
    record = {"node": "ops-old", "lease": "1", "leader_revision": "2", "fenced_at_ms": int(time.time() * 1000),
              "intent": {"app": "payments", "rule": "stuck", "action": "rollback",
                         "when_ms": int(time.time() * 1000)}}
    cluster.etcd.put(f"{cluster.prefix}/acts/{co['id']}", json.dumps(record))
    a = cluster.start("a")
    a.daemon.wait_for_log(re.compile(
        r"rollguard-action-unconfirmed app=payments co=%s .*claimed by ops-old but no result was written" % co["id"]),
        timeout=10)
    more_describes(cluster, a, co["id"], n=4)
    assert cluster.sim.rollbacks() == []
    last = next(x for x in a.status()["apps"] if x["name"] == "payments")["last_action"]
    assert last["change_order"] == co["id"] and last["result"] == "unconfirmed"


def test_sigterm_resigns_so_the_standby_takes_over_at_once(cluster):
    a = cluster.start("a")
    wait_for(lambda: a.role() == "leader", timeout=10, what="a leads")
    b = cluster.start("b")
    cluster.wait_leader()
    assert a.daemon.stop() == 0
    stopped = time.monotonic()
    assert "ha: lease revoked" in a.daemon.output
    wait_for(lambda: b.role() == "leader", timeout=TTL + 3, what="b leads")
    took = time.monotonic() - stopped
    print(f"SIGTERM exit to the successor leading: {took:.2f}s")
    # one look at the leader key (TTL/3), not the lease's TTL
    assert took < TTL * SLOWDOWN, f"b took over {took:.1f}s after a stopped"


def test_three_nodes_one_successor(cluster):
    a = cluster.start("a")
    wait_for(lambda: a.role() == "leader", timeout=10, what="a leads")
    b, c = cluster.start("b"), cluster.start("c")
    assert cluster.wait_leader() is a
    a.daemon.kill9()
    new = wait_for(cluster.leader, timeout=TAKEOVER + 5, what="one successor the other names")
    assert new in (b, c)


def test_once_takes_no_part_in_leadership_and_only_logs(tmp_path, sim, etcd, run_cli):  # noqa: F811
    co = stuck_order()
    app = sae_app(orders=[co], name="payments")
    sim.set_apps([app])
    cfg = write_config(tmp_path, sim, [config_app_from(app, rules=[rule("stuck", status=["executing"],
                                                                         sub_status="error")])],
                       extra={"ha": {"etcd": [etcd.url]}})
    r = run_cli("--config", cfg, "once")
    assert r.returncode == 0, r.stderr
    assert "'once' does not take part in leadership, so it only logs" in r.stderr
    assert re.search(r"rollguard-decision app=payments .*dry-run: would rollback", r.stderr), r.stderr
    assert sim.rollbacks() == []
    assert etcd.get_prefix("/rollguard/") == []


def test_check_prints_the_ha_line_and_never_the_password(tmp_path, sim, run_cli):
    pw = tmp_path / "etcd-password"
    pw.write_text("etcd-pass-0c4f1d\n")
    _SECRETS.add("etcd-pass-0c4f1d")
    app = sae_app(orders=[])
    cfg = write_config(tmp_path, sim, [app], extra={"ha": {
        "etcd": ["http://10.0.0.5:2379", "http://10.0.0.6:2379"], "prefix": "/rollguard/prod/",
        "lease_ttl": "10s", "node": "ops-1", "user": "rollguard", "password_file": str(pw)}})
    r = run_cli("--config", cfg, "check")
    assert r.returncode == 0, r.stderr
    assert (f"  ha: etcd http://10.0.0.5:2379, http://10.0.0.6:2379; prefix /rollguard/prod, node ops-1, "
            f"lease 10s, user rollguard (password from {pw})") in r.stdout

    cfg.write_text(cfg.read_text().replace("lease_ttl: 10s", "lease_ttl: 1500ms"))
    r = run_cli("--config", cfg, "check")
    assert r.returncode == 1
    assert re.search(r"rollguard.yaml:\d+:\d+: ha.lease_ttl: ", r.stderr), r.stderr


def test_a_password_file_that_cannot_be_read_stops_the_start(tmp_path, sim, etcd, start_daemon):  # noqa: F811
    cfg = write_config(tmp_path, sim, [sae_app(orders=[])], extra={"ha": {
        "etcd": [etcd.url], "user": "root", "password_file": str(tmp_path / "missing")}})
    d = start_daemon(cfg)
    assert d.wait_exit(10) == 1
    assert re.search(r"cannot read the etcd password file .*missing", d.output), d.output
