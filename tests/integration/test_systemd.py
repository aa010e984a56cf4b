# SPDX-License-Identifier: MIT
"""rollguard under systemd: the unit (systemd-analyze security and verify),
the journal catalog, sd_notify (READY, STATUS, WATCHDOG, RELOADING with
MONOTONIC_USEC, STOPPING) through a NOTIFY_SOCKET the test owns, and
SIGHUP reloads with good and bad configurations."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (SLOWDOWN, SRCDIR, config_app_from, rollguard_bin, rule, sae_app, stuck_order,
                      wait_for, write_config)

UNIT_TEMPLATE = SRCDIR / "systemd" / "rollguard.service.in"
CATALOG = SRCDIR / "systemd" / "rollguard.catalog"
LOG_C = SRCDIR / "src" / "tell" / "log.c"
MAX_EXPOSURE = 1.5
# WatchdogSec=2s, stretched for the valgrind and sanitizer runs
WATCHDOG_USEC = int(2_000_000 * SLOWDOWN)


# --------------------------------------------------------------------------
# The unit


def built_unit():
    """The unit meson generated next to the binary under test, or None."""
    u = Path(rollguard_bin()).resolve().parent / "systemd" / "rollguard.service"
    return u if u.exists() else None


def unit_copy(tmp_path, exec_path):
    """The unit with @bindir@/rollguard replaced by exec_path."""
    text = UNIT_TEMPLATE.read_text()
    assert "@bindir@/rollguard" in text
    out = Path(tmp_path) / "unit" / "rollguard.service"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text.replace("@bindir@/rollguard", str(exec_path)))
    return out


def unit_settings(path):
    """(section, key) -> list of values, in file order."""
    settings, section = {}, None
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        k, _, v = line.partition("=")
        settings.setdefault((section, k), []).append(v)
    return settings


def systemd_analyze():
    exe = shutil.which("systemd-analyze")
    if not exe:
        pytest.skip("systemd-analyze is not installed")
    return exe


def exposure(unit_path):
    r = subprocess.run([systemd_analyze(), "security", "--offline=true", "--no-pager", str(unit_path)],
                       capture_output=True, text=True, timeout=60)
    if "offline" in r.stderr and ("unrecognized" in r.stderr or "Unknown" in r.stderr):
        pytest.skip(f"systemd-analyze security has no --offline here: {r.stderr.strip()}")
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", r.stdout + r.stderr)
    if not m:
        pytest.skip(f"systemd-analyze security --offline cannot rate units here: {(r.stderr or r.stdout).strip()[:300]}")
    return float(m.group(1)), r.stdout


def test_unit_declares_what_the_daemon_relies_on(tmp_path):
    s = unit_settings(built_unit() or unit_copy(tmp_path, "/usr/bin/rollguard"))

    def svc(key):
        return s.get(("Service", key), [])

    assert svc("Type") == ["notify"]
    assert svc("NotifyAccess") == ["main"]
    assert svc("WatchdogSec") and svc("Restart") == ["on-failure"]
    assert svc("ExecReload") == ["/bin/kill -HUP $MAINPID"]
    assert svc("DynamicUser") == ["yes"]
    assert svc("StateDirectory") == ["rollguard"]
    assert svc("ConfigurationDirectory") == ["rollguard"]
    assert "aliyun:/etc/rollguard/credentials" in svc("LoadCredential")
    assert svc("LimitCORE") == ["0"], "core dumps could hold the AccessKeySecret"
    # config and usage errors are not cured by restarting
    assert set(svc("RestartPreventExitStatus")[0].split()) == {"1", "2"}
    (exec_start,) = svc("ExecStart")
    argv = exec_start.split()
    assert argv[0].startswith("/") and argv[0].endswith("/bin/rollguard"), exec_start
    assert argv[1:] == ["--config", "${CONFIGURATION_DIRECTORY}/rollguard.yaml", "run"]
    assert not svc("ExecStartPre"), "a failing ExecStartPre bypasses RestartPreventExitStatus"


def test_built_unit_execs_the_installed_binary_path():
    u = built_unit()
    if u is None:
        pytest.skip("no meson-generated unit next to the binary")
    exec_start = unit_settings(u)[("Service", "ExecStart")][0]
    assert "@" not in exec_start
    assert re.fullmatch(r"/\S+/bin/rollguard --config \$\{CONFIGURATION_DIRECTORY\}/rollguard.yaml run", exec_start)


def test_security_exposure_is_at_most_1_5(tmp_path):
    for unit in filter(None, [built_unit(), unit_copy(tmp_path, rollguard_bin())]):
        level, report = exposure(unit)
        bad = [l for l in report.splitlines() if l.startswith("✗")]
        assert level <= MAX_EXPOSURE, f"{unit}: exposure {level} > {MAX_EXPOSURE}:\n" + "\n".join(bad)


def test_systemd_analyze_verify_accepts_the_unit(tmp_path):
    exe = systemd_analyze()
    # A unit that cannot be wrong tells whether verify works in this
    # environment at all (it needs no running systemd, but containers vary).
    ref = Path(tmp_path) / "ref" / "rollguard-reference.service"
    ref.parent.mkdir()
    ref.write_text("[Unit]\nDescription=reference\n[Service]\nType=oneshot\nExecStart=/bin/true\n")
    r = subprocess.run([exe, "verify", "--man=no", str(ref)], capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        pytest.skip(f"systemd-analyze verify cannot run here: {(r.stderr or r.stdout).strip()[:300]}")
    noise = set((r.stdout + r.stderr).splitlines())

    unit = unit_copy(tmp_path, Path(rollguard_bin()).resolve())
    r = subprocess.run([exe, "verify", "--man=no", str(unit)], capture_output=True, text=True, timeout=60)
    # verify exits 0 on "Unknown key" and "Invalid syntax, ignoring": any
    # line about our unit is a failure too.
    complaints = [l for l in (r.stdout + r.stderr).splitlines() if l not in noise]
    assert r.returncode == 0 and not complaints, "\n".join(complaints)


def test_journal_catalog_compiles_with_an_entry_per_event(tmp_path):
    journalctl = shutil.which("journalctl")
    if not journalctl:
        pytest.skip("journalctl is not installed")
    ids = dict(re.findall(r'\{\s*"(rollguard-[a-z-]+)",\s*"([0-9a-f]{32})"\s*\}', LOG_C.read_text()))
    assert len(ids) >= 20
    root = Path(tmp_path) / "root"
    catdir = root / "usr/lib/systemd/catalog"
    catdir.mkdir(parents=True)
    shutil.copy(CATALOG, catdir / "rollguard.catalog")
    r = subprocess.run([journalctl, "--root", str(root), "--update-catalog"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([journalctl, "--root", str(root), "--list-catalog", "--no-pager"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    listed = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line.strip())
    for name, mid in ids.items():
        assert mid in listed, f"{name} ({mid}) has no catalog entry"
        assert listed[mid].startswith("rollguard: "), listed[mid]


# --------------------------------------------------------------------------
# sd_notify


class NotifySocket:
    """A NOTIFY_SOCKET of our own: every datagram, parsed, with its arrival time."""

    def __init__(self):
        # sun_path holds 108 bytes; pytest's tmp_path can be longer
        self.dir = tempfile.mkdtemp(prefix="rg-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []  # (monotonic seconds, {key: value}, raw text)
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            text = data.decode("utf-8", "replace")
            fields = dict(l.split("=", 1) for l in text.split("\n") if "=" in l)
            with self._cond:
                self.messages.append((time.monotonic(), fields, text))
                self._cond.notify_all()

    def mark(self):
        with self._cond:
            return len(self.messages)

    def wait_for(self, pred, since=0, timeout=10.0, what="a notify message"):
        """The first message at index >= since for which pred(fields) holds:
        (index, fields)."""
        deadline = time.monotonic() + timeout * SLOWDOWN
        with self._cond:
            while True:
                for i in range(since, len(self.messages)):
                    if pred(self.messages[i][1]):
                        return i, self.messages[i][1]
                left = deadline - time.monotonic()
                if left <= 0:
                    got = "\n".join(m[2].replace("\n", " | ") for m in self.messages[since:][-15:])
                    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}; got:\n{got}")
                self._cond.wait(left)

    def times(self, pred, since=0):
        with self._cond:
            return [t for t, f, _ in self.messages[since:] if pred(f)]

    def close(self):
        self._stop = True
        self._thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def is_ready(f):
    return f.get("READY") == "1"


def status_says(pattern):
    return lambda f: "STATUS" in f and re.search(pattern, f["STATUS"]) is not None


def notify_env(n):
    # WATCHDOG_PID stays unset (conftest scrubs it): libsystemd then takes
    # WATCHDOG_USEC as meant for this process.
    return {"NOTIFY_SOCKET": n.path, "WATCHDOG_USEC": str(WATCHDOG_USEC)}


def write_atomically(path, text):
    """Like an editor's save: the daemon never reads half a file."""
    tmp = Path(str(path) + ".new")
    tmp.write_text(text)
    os.replace(tmp, path)


def start_watching(tmp_path, sim, start_daemon, notify, apps, **kw):
    cfg = write_config(tmp_path, sim, apps, **kw)
    d = start_daemon(cfg, env=notify_env(notify))
    notify.wait_for(is_ready, what="READY=1")
    return cfg, d


def polled(sim, app, since=0, n=1, timeout=10.0):
    """Wait for n looks at `app` (a sae_app dict: one DescribeApplicationStatus
    each, or while a release is in flight one DescribeChangeOrder) with
    seq > since; returns their requests."""
    def got():
        rs = [r for r in sim.requests()
              if r["action"] in ("DescribeApplicationStatus", "DescribeChangeOrder")
              and r["seq"] > since and r.get("app_id") == app["app_id"]]
        return rs if len(rs) >= n else None
    return wait_for(got, timeout=timeout, what=f"{n} poll(s) of {app['name']} after request {since}")


def last_seq(sim):
    rs = sim.requests()
    return rs[-1]["seq"] if rs else 0


def test_ready_status_and_watchdog(tmp_path, sim, start_daemon, notify):
    apps = [sim.add_app(sae_app(name="shop-api")), sim.add_app(sae_app(name="billing"))]
    cfg = write_config(tmp_path, sim, apps)
    d = start_daemon(cfg, env=notify_env(notify))

    ready_at, _ = notify.wait_for(is_ready, what="READY=1")
    d.wait_for_log("rollguard-started")
    # READY comes once the first polls are scheduled, and they do happen
    for a in apps:
        polled(sim, a)
    notify.wait_for(status_says(r"^watching 2 apps, 0 releases in flight$"), what="STATUS=watching 2 apps")

    # The event loop pings at least as often as WatchdogSec demands.
    start = notify.mark()
    wait_for(lambda: len(notify.times(lambda f: f.get("WATCHDOG") == "1", since=start)) >= 4, timeout=10,
             what="four WATCHDOG=1 pings")
    pings = notify.times(lambda f: f.get("WATCHDOG") == "1", since=start)
    gaps = [b - a for a, b in zip(pings, pings[1:])]
    assert max(gaps) < WATCHDOG_USEC / 1e6, f"watchdog pings {gaps} s apart; WATCHDOG_USEC is {WATCHDOG_USEC}"
    assert d.running


def test_status_counts_a_release_in_flight(tmp_path, sim, start_daemon, notify):
    busy = sim.add_app(sae_app(name="busy", orders=[stuck_order()]))
    quiet = sim.add_app(sae_app(name="quiet"))
    # a rule that never fires keeps the release in flight
    apps = [config_app_from(busy, rules=[rule("never", action="log", status=["preparing"])]), quiet]
    start_watching(tmp_path, sim, start_daemon, notify, apps)
    notify.wait_for(status_says(r"^watching 2 apps, 1 release in flight$"), timeout=15,
                    what="STATUS=watching 2 apps, 1 release in flight")


def test_reload_applies_added_and_removed_apps(tmp_path, sim, start_daemon, notify):
    kept = sim.add_app(sae_app(name="kept"))
    removed = sim.add_app(sae_app(name="removed"))
    added = sim.add_app(sae_app(name="added"))
    cfg, d = start_watching(tmp_path, sim, start_daemon, notify, [kept, removed])
    polled(sim, removed)

    write_atomically(cfg, write_config(tmp_path, sim, [kept, added], name="next.yaml").read_text())
    log_mark, n_mark = d.mark(), notify.mark()
    before_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    d.reload()

    i, reloading = notify.wait_for(lambda f: f.get("RELOADING") == "1", since=n_mark, what="RELOADING=1")
    after_usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    # systemd (Type=notify-reload) wants MONOTONIC_USEC in the same message
    assert "MONOTONIC_USEC" in reloading, reloading
    assert before_usec <= int(reloading["MONOTONIC_USEC"]) <= after_usec
    notify.wait_for(is_ready, since=i + 1, what="READY=1 after RELOADING=1")
    line = d.wait_for_log("rollguard-reloaded", since=log_mark)
    assert f"reloaded {cfg}: watching 2 apps" in line
    d.wait_for_log(re.compile(r"app=removed.*no longer watching removed"), since=log_mark)
    notify.wait_for(status_says(r"^watching 2 apps"), since=i + 1, what="STATUS after the reload")

    # the new app is polled; the removed one no longer is
    first = polled(sim, added)[0]["seq"]
    polled(sim, added, since=first)          # a second poll, a full interval later
    polled(sim, kept, since=first)
    stragglers = [r for r in sim.requests() if r["seq"] > first and r.get("app_id") == removed["app_id"]]
    assert not stragglers, f"the removed app is still polled: {stragglers}"
    assert d.running


BAD_CONFIGS = {
    # name: (edit of the good text, expected message after FILE:LINE:COL:)
    "no-unit": (lambda t: t.replace("poll_interval: 1s", "poll_interval: 30"),
                "defaults.poll_interval: '30' has no unit"),
    "yaml-syntax": (lambda t: t.replace("apps:", "apps: [", 1), "YAML syntax error"),
    "unknown-key": (lambda t: t.replace("  timeout: 3s", "  timout: 3s"),
                    "unknown key 'timout' in defaults (did you mean 'timeout'?)"),
}


@pytest.mark.parametrize("kind", sorted(BAD_CONFIGS))
def test_bad_reload_keeps_the_running_config(tmp_path, sim, start_daemon, notify, kind):
    a = sim.add_app(sae_app(name="shop-api"))
    b = sim.add_app(sae_app(name="billing"))
    extra = sim.add_app(sae_app(name="extra"))
    cfg, d = start_watching(tmp_path, sim, start_daemon, notify, [a, b])
    notify.wait_for(status_says(r"^watching 2 apps"), what="STATUS=watching 2 apps")

    edit, message = BAD_CONFIGS[kind]
    good = write_config(tmp_path, sim, [a, b, extra], name="next.yaml").read_text()
    bad = edit(good)
    assert bad != good
    write_atomically(cfg, bad)
    log_mark, n_mark = d.mark(), notify.mark()
    d.reload()

    line = d.wait_for_log("rollguard-reload-failed", since=log_mark)
    m = re.search(re.escape(str(cfg)) + r":(\d+):(\d+): (.*)$", line)
    assert m, f"no FILE:LINE:COL in {line!r}"
    assert "reload failed, keeping the running config" in line
    assert message in m.group(3), line
    if kind == "no-unit":
        # the exact place of the mistake
        lines = bad.splitlines()
        row = next(n for n, l in enumerate(lines, 1) if "poll_interval: 30" in l)
        assert (int(m.group(1)), int(m.group(2))) == (row, lines[row - 1].index("30") + 1)

    # systemd is told the reload is over, and the old config is still in force
    i, _ = notify.wait_for(lambda f: f.get("RELOADING") == "1", since=n_mark, what="RELOADING=1")
    notify.wait_for(is_ready, since=i + 1, what="READY=1 after a failed reload")
    seq = last_seq(sim)
    polled(sim, a, since=seq)
    polled(sim, b, since=seq)
    assert not d.find_logs("rollguard-reloaded", since=log_mark)
    assert not [r for r in sim.requests() if r.get("app_id") == extra["app_id"]], "the bad config was applied"
    assert d.running

    # fixed file, next reload: applied
    write_atomically(cfg, good)
    log_mark = d.mark()
    d.reload()
    assert "watching 3 apps" in d.wait_for_log("rollguard-reloaded", since=log_mark)
    polled(sim, extra)


def test_reload_of_a_missing_file_keeps_running(tmp_path, sim, start_daemon, notify):
    a = sim.add_app(sae_app(name="shop-api"))
    cfg, d = start_watching(tmp_path, sim, start_daemon, notify, [a])
    os.unlink(cfg)
    log_mark = d.mark()
    d.reload()
    line = d.wait_for_log("rollguard-reload-failed", since=log_mark)
    assert f"{cfg}: cannot read: No such file or directory" in line
    polled(sim, a, since=last_seq(sim))
    assert d.running


def pending_since(tmp_path, app_name, co_id, rule_name):
    """since_ms of a rule waiting for its `for`, from the app's state file."""
    st = None
    for f in (Path(tmp_path) / "state").glob("*.json"):
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError):
            continue
        if doc.get("name") == app_name:
            st = doc
    if st is None:
        return None
    for p in st.get("pending", []):
        if p["change_order_id"] == co_id and p["rule"] == rule_name:
            return p["since_ms"]
    return None


def test_reload_keeps_the_clock_of_a_holding_rule(tmp_path, sim, start_daemon, notify):
    """A rule waiting for its `for` keeps its start time across a reload:
    the rollback comes `for` after the first match, not after the reload."""
    hold = int(6 * SLOWDOWN)
    co = stuck_order()
    app = sim.add_app(sae_app(name="shop-api", orders=[co]))
    other = sim.add_app(sae_app(name="other"))
    rules = [rule("batch-error", status=["executing"], sub_status="error", for_=f"{hold}s")]
    cfg, d = start_watching(tmp_path, sim, start_daemon, notify, [config_app_from(app, rules=rules)])

    d.wait_for_log(re.compile(r"rollguard-rule-holding app=shop-api .*rule=batch-error"))
    since = wait_for(lambda: pending_since(tmp_path, "shop-api", co["id"], "batch-error"),
                     what="the pending match in the state file")

    # reload with an extra app; shop-api's entry is unchanged
    write_atomically(cfg, write_config(tmp_path, sim, [config_app_from(app, rules=rules), other],
                                       name="next.yaml").read_text())
    log_mark = d.mark()
    d.reload()
    d.wait_for_log("rollguard-reloaded", since=log_mark)
    polled(sim, app, since=last_seq(sim), n=2)
    assert not sim.rollbacks(co["id"]), "the rule fired before the test could reload; raise `hold`"
    # a restarted clock would show as a new since_ms once the next poll saved it
    assert pending_since(tmp_path, "shop-api", co["id"], "batch-error") == since

    rb = sim.wait_for_rollback(co["id"], timeout=3 * hold)
    assert rb["t"] >= since / 1000 + hold - 0.1, "the rollback came before `for` had passed"
    assert sim.rollback_calls(co["id"]) == 1
    d.wait_for_log(re.compile(r"rollguard-action-done app=shop-api"))


def test_state_directory_from_systemd_wins(tmp_path, sim, start_daemon, notify):
    """StateDirectory= sets $STATE_DIRECTORY (possibly a colon-separated
    list): the first entry is used, not the config's state_directory."""
    a = sim.add_app(sae_app(name="shop-api"))
    cfg = write_config(tmp_path, sim, [a])
    first, second = Path(tmp_path) / "sd-first", Path(tmp_path) / "sd-second"
    first.mkdir()
    second.mkdir()
    d = start_daemon(cfg, env=dict(notify_env(notify), STATE_DIRECTORY=f"{first}:{second}"))
    notify.wait_for(is_ready, what="READY=1")
    assert (first / ".lock").exists()
    assert not (second / ".lock").exists()
    assert not (Path(tmp_path) / "state" / ".lock").exists()
    assert f"state {first}" in d.wait_for_log("rollguard-started")


def test_sigterm_stops_promptly_with_stopping_1(tmp_path, sim, start_daemon, notify):
    a = sim.add_app(sae_app(name="shop-api"))
    _, d = start_watching(tmp_path, sim, start_daemon, notify, [a])
    polled(sim, a)
    mark, log_mark = notify.mark(), d.mark()
    t0 = time.monotonic()
    d.send_signal(signal.SIGTERM)
    rc = d.wait_exit(timeout=5)
    assert rc == 0
    assert time.monotonic() - t0 < 5 * SLOWDOWN
    notify.wait_for(lambda f: f.get("STOPPING") == "1", since=mark, timeout=2, what="STOPPING=1")
    assert d.find_logs("rollguard-stopping", since=log_mark)


def test_sigint_stops_like_sigterm(tmp_path, sim, start_daemon, notify):
    a = sim.add_app(sae_app(name="shop-api"))
    _, d = start_watching(tmp_path, sim, start_daemon, notify, [a])
    mark = notify.mark()
    d.send_signal(signal.SIGINT)
    assert d.wait_exit(timeout=5) == 0
    notify.wait_for(lambda f: f.get("STOPPING") == "1", since=mark, timeout=2, what="STOPPING=1")
