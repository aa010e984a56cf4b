# SPDX-License-Identifier: MIT
"""src/ha (leadership, fail-safe, fencing) against a real etcd, through
tests/ha_probe: one line per event on stdout, one command per stdin line.
Until the daemon speaks `ha:`, this is where issue 15's guarantees are
checked: one leader, takeover after kill -9 within ttl + one poll, a paused
leader that wakes up cannot act, no etcd = nobody acts."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import SLOWDOWN, assert_tool_clean, wait_for
from etcd_server import EtcdServer, etcd  # noqa: F401  (the fixture)

TTL = 3          # seconds: etcd's floor is about 2s
INTERVAL = TTL / 3


def probe_bin():
    b = os.environ.get("ROLLGUARD_HA_PROBE")
    if not b and os.environ.get("ROLLGUARD_BIN"):
        b = str(Path(os.environ["ROLLGUARD_BIN"]).parent / "tests" / "ha_probe")
    if not b or not os.access(b, os.X_OK):
        pytest.skip("no tests/ha_probe next to ROLLGUARD_BIN")
    return b


class Probe:
    def __init__(self, tmp_path, endpoints, prefix, node, ttl=TTL, extra=()):
        self.node = node
        self.lines = []
        self.lock = threading.Lock()
        self.stderr_path = tmp_path / f"probe-{node}-{uuid.uuid4().hex[:6]}.err"
        self._err = open(self.stderr_path, "w")
        self.proc = subprocess.Popen(
            [probe_bin(), "--endpoints", ",".join(endpoints), "--prefix", prefix,
             "--node", node, "--ttl", str(ttl), *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def send(self, command):
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def seen(self, pattern, since=0):
        rx = re.compile(pattern)
        with self.lock:
            for i, (t, line) in enumerate(self.lines):
                if i >= since and rx.search(line):
                    return (i, t, line)
        return None

    def mark(self):
        with self.lock:
            return len(self.lines)

    def wait(self, pattern, since=0, timeout=10.0):
        hit = wait_for(lambda: self.seen(pattern, since), timeout=timeout,
                       what=f"{self.node}: /{pattern}/ (got: {self.tail()})")
        return hit

    def ask(self, command, pattern, timeout=10.0):
        m = self.mark()
        self.send(command)
        return self.wait(pattern, m, timeout)[2]

    def role(self):
        with self.lock:
            for _, line in reversed(self.lines):
                if line.startswith("role "):
                    return line.split()[1]
        return None

    def tail(self, n=6):
        with self.lock:
            return " | ".join(line for _, line in self.lines[-n:])

    def alive(self):
        return self.proc.poll() is None

    def close(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGCONT)
                self.send("quit")
                self.proc.wait(5)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        err = self.stderr_path.read_text(errors="replace")
        if self.proc.returncode != -signal.SIGKILL:
            assert_tool_clean(self.proc.returncode, err, f"ha_probe {self.node}")


@pytest.fixture
def probes(tmp_path, etcd):  # noqa: F811
    made = []
    prefix = f"/rollguard/test-{uuid.uuid4().hex[:8]}"

    def make(node, endpoints=None, ttl=TTL, extra=()):
        p = Probe(tmp_path, endpoints or [etcd.url], prefix, node, ttl, extra)
        made.append(p)
        return p

    make.prefix = prefix
    yield make
    for p in made:
        p.close()


def leaders(*ps):
    return [p for p in ps if p.role() == "leader"]


def one_leader(*ps):
    """Exactly one leader and everyone else a standby that names it."""
    ls = leaders(*ps)
    if len(ls) != 1:
        return None
    others = [p for p in ps if p is not ls[0]]
    if all(p.role() == "standby" and p.seen(rf"^role standby leader={ls[0].node} ") for p in others):
        return ls[0]
    return None


def test_two_probes_elect_exactly_one_leader(etcd, probes):  # noqa: F811
    a, b = probes("ops-a"), probes("ops-b")
    leader = wait_for(lambda: one_leader(a, b), timeout=10, what="one leader, one standby")
    key = etcd.get(probes.prefix + "/leader")
    assert key["value"] == leader.node and key["lease"] != 0
    # It stays that way over several keepalives.
    deadline = time.monotonic() + 2 * TTL
    while time.monotonic() < deadline:
        assert len(leaders(a, b)) <= 1
        time.sleep(0.1)
    assert one_leader(a, b) is leader
    assert "may_act=1" in leader.ask("status", "^status ")
    other = b if leader is a else a
    assert "may_act=0" in other.ask("status", "^status ")


def test_kill_9_leader_standby_takes_over_within_ttl_and_a_poll(probes):
    a, b = probes("ops-a"), probes("ops-b")
    leader = wait_for(lambda: one_leader(a, b), timeout=10, what="one leader")
    standby = b if leader is a else a
    m = standby.mark()
    killed = time.monotonic()
    leader.proc.kill()
    _, t, _ = standby.wait(r"^role leader leader=" + standby.node, m, timeout=3 * TTL)
    took = t - killed
    print(f"takeover after kill -9: {took:.2f}s (ttl {TTL}s, poll {INTERVAL:g}s)")
    # The lease lives at most TTL after the last keepalive; then one poll.
    assert took <= (TTL + INTERVAL + 1.0) * SLOWDOWN, f"takeover took {took:.2f}s"
    assert "FENCED_OK" in standby.ask("fence co-after-kill", r"^fence co-after-kill ")


def test_paused_leader_wakes_up_and_cannot_act(etcd, probes):  # noqa: F811
    a, b = probes("ops-a"), probes("ops-b")
    old = wait_for(lambda: one_leader(a, b), timeout=10, what="one leader")
    new = b if old is a else a
    m = new.mark()
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        new.wait(r"^role leader leader=" + new.node, m, timeout=3 * TTL)
        line = new.ask("fence co-A rule1", r"^fence co-A ")
        assert " FENCED_OK " in line, line
        assert json.loads(etcd.get(probes.prefix + "/acts/co-A")["value"])["node"] == new.node
    finally:
        mo = old.mark()
        os.kill(old.proc.pid, signal.SIGCONT)
    # Right away, before it had a chance to look at etcd: no act of its own...
    other = old.ask("fence co-B rule1", r"^fence co-B ")
    print(other)
    assert " REFUSED_NOT_LEADER " in other, other
    # ...and the order the new leader took is reported with its record.
    same = old.ask("fence co-A rule1", r"^fence co-A ")
    assert " REFUSED_ALREADY_ACTED " in same, same
    assert json.loads(same.split(" record=", 1)[1])["node"] == new.node
    assert etcd.get(probes.prefix + "/acts/co-B") is None
    # It noticed it was paused past its lease, then follows the new leader.
    old.wait(r"^role lost ", mo, timeout=5)
    old.wait(r"^role standby leader=" + new.node, mo, timeout=3 * TTL)
    assert one_leader(a, b) is new


def test_leader_key_taken_behind_its_back_etcd_refuses_the_fence(etcd, probes):  # noqa: F811
    """The txn, not the local view, is the proof: a leader whose key was
    replaced (here by hand) since its last poll gets refused by etcd."""
    ttl = 30  # polls every 10s: the fence below comes long before it looks
    a = probes("ops-a", ttl=ttl)
    a.wait(r"^role leader leader=ops-a", timeout=10)
    lease = etcd.grant(60)
    key = probes.prefix + "/leader"
    etcd.delete(key)
    etcd.put(key, "intruder", lease=lease)
    etcd.put(probes.prefix + "/acts/co-done", json.dumps({"node": "intruder"}))
    line = a.ask("fence co-new", r"^fence co-new ")
    assert " REFUSED_NOT_LEADER why=etcd: intruder holds the leader key" in line, line
    line = a.ask("fence co-done", r"^fence co-done ")
    assert " REFUSED_ALREADY_ACTED " in line and '"intruder"' in line, line
    assert etcd.get(probes.prefix + "/acts/co-new") is None
    a.wait(r"^role standby leader=intruder", timeout=5)


def test_etcd_down_nobody_acts_and_says_why_then_a_leader_again(etcd, probes):  # noqa: F811
    a, b = probes("ops-a"), probes("ops-b")
    leader = wait_for(lambda: one_leader(a, b), timeout=10, what="one leader")
    ma, mb = a.mark(), b.mark()
    stopped = time.monotonic()
    etcd.stop()
    for p, m in ((a, ma), (b, mb)):
        _, t, line = p.wait(r"^role lost ", m, timeout=2 * TTL)
        # Before the lease could have expired at etcd, with the margin.
        assert t - stopped <= TTL * SLOWDOWN, f"{p.node} noticed after {t - stopped:.2f}s"
        assert "etcd has not confirmed the lease" in line, line
        print(f"{p.node} stopped acting {t - stopped:.2f}s after etcd stopped: {line}")
    assert "still observing" in leader.seen(r"^role lost ", ma if leader is a else mb)[2]
    for p in (a, b):
        line = p.ask("fence co-X", r"^fence co-X ")
        assert " REFUSED_NOT_LEADER " in line, line
        st = p.ask("status", r"^status ")
        assert "may_act=0" in st and "role=lost" in st, st
    assert "observing=1" in leader.ask("status", r"^status ")
    # It stays fail-safe while etcd is away, and the probes keep running.
    deadline = time.monotonic() + TTL
    while time.monotonic() < deadline:
        assert a.alive() and b.alive() and not leaders(a, b)
        time.sleep(0.2)
    etcd.start()
    wait_for(lambda: one_leader(a, b), timeout=5 * TTL, what="a leader again after etcd is back")
    new = one_leader(a, b)
    assert " FENCED_OK " in new.ask("fence co-X", r"^fence co-X ")


def _closed_port():
    import socket
    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        return so.getsockname()[1]


def test_endpoints_are_tried_in_turn(etcd, probes):  # noqa: F811
    dead = f"http://127.0.0.1:{_closed_port()}"
    a = probes("ops-a", endpoints=[dead, etcd.url])
    a.wait(r"^role leader leader=ops-a", timeout=10)
    assert " FENCED_OK " in a.ask("fence co-1", r"^fence co-1 ")
    # Keeps leading across keepalives (each starts at the endpoint that answered).
    m = a.mark()
    deadline = time.monotonic() + 2 * TTL
    while time.monotonic() < deadline:
        assert not a.seen(r"^role (lost|standby)", m)
        time.sleep(0.1)


def test_authentication_token_renewed_and_password_kept_secret(tmp_path):
    password = "s3cret-" + uuid.uuid4().hex
    with EtcdServer(tmp_path) as e:
        e.enable_auth("root", password)
        pw = tmp_path / "pw"
        pw.write_text(password + "\n")
        bad = tmp_path / "bad"
        bad.write_text("wrong\n")
        prefix = "/rollguard/auth"
        a = Probe(tmp_path, [e.url], prefix, "ops-a", TTL, ["--user", "root", "--password-file", str(pw)])
        b = Probe(tmp_path, [e.url], prefix, "ops-b", TTL, ["--user", "root", "--password-file", str(bad)])
        try:
            a.wait(r"^role leader leader=ops-a", timeout=10)
            line = b.wait(r"^role lost ", timeout=10)[2]
            assert "etcd authentication as root failed" in line, line
            first = a.mark()
            # Turning auth off and on drops every token: the probe's next
            # request is refused ("invalid auth token") and it must log in again.
            token = e.call("/v3/auth/authenticate", {"name": "root", "password": password})["token"]
            assert "error" not in e.call("/v3/auth/disable", {}, token=token)
            assert "error" not in e.call("/v3/auth/enable", {})
            assert "error" in e.call("/v3/kv/range", {"key": "YQ=="}, token=token)
            assert not a.seen(r"^role (lost|standby)", first), a.tail()
            assert " FENCED_OK " in a.ask("fence co-1", r"^fence co-1 ")
            assert " REFUSED_NOT_LEADER " in b.ask("fence co-2", r"^fence co-2 ")
        finally:
            a.close()
            b.close()
        for p in (a, b):
            out = "\n".join(line for _, line in p.lines) + p.stderr_path.read_text()
            assert password not in out and "wrong" not in out


def test_three_probes_one_leader_and_one_successor(probes):
    ps = [probes(f"ops-{n}") for n in "abc"]
    leader = wait_for(lambda: one_leader(*ps), timeout=10, what="one leader of three")
    leader.proc.kill()
    rest = [p for p in ps if p is not leader]
    successor = wait_for(lambda: one_leader(*rest), timeout=3 * TTL, what="one successor")
    # The act goes through the successor once; the other standby is refused.
    assert " FENCED_OK " in successor.ask("fence co-3", r"^fence co-3 ")
    other = next(p for p in rest if p is not successor)
    assert " REFUSED_ALREADY_ACTED " in other.ask("fence co-3", r"^fence co-3 ")


def test_resign_hands_over_at_the_next_poll(probes):
    a, b = probes("ops-a", ttl=9), probes("ops-b", ttl=9)  # polls every 3s
    leader = wait_for(lambda: one_leader(a, b), timeout=10, what="one leader")
    standby = b if leader is a else a
    m = standby.mark()
    t0 = time.monotonic()
    assert leader.ask("resign", r"^resigned ") == "resigned 0"
    _, t, _ = standby.wait(r"^role leader leader=" + standby.node, m, timeout=9)
    # Revoking drops the key now: one poll (3s), not the 9s TTL.
    assert t - t0 <= 3 + 1.0 * SLOWDOWN, f"hand-over took {t - t0:.2f}s"
    assert "may_act=0" in leader.ask("status", r"^status ")
    assert " REFUSED_NOT_LEADER " in leader.ask("fence co-r", r"^fence co-r ")
