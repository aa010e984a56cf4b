# SPDX-License-Identifier: MIT
"""Harness for rollguard's integration tests: the real binary against the
simulator (tests/sim/sim.py).

Fixtures
  sim            a fresh simulator process for the test (class Sim below)
  make_sim       factory: make_sim(keys=[...], scenario=path) for special setups
  start_daemon   factory: start_daemon(config_path, *args, env=None) -> Daemon
  run_cli        run_cli(*args, env=None, timeout=30) -> CompletedProcess (text)

Helpers (import them: `from conftest import stuck_order, sae_app, ...`)
  change orders  healthy_order stuck_order stalled_order failed_pipeline_order
                 non_rollbackable_order rollback_order succeeded_order
                 waiting_manual_order stall_after_order pipeline
  apps           sae_app edas_app
  config         write_config config_app config_app_from rule to_yaml
  waiting        wait_for max_calls_in_window

Rules of the house: no bare time.sleep; wait on a condition with a deadline
(wait_for, Daemon.wait_for_log, Sim.wait_for). Every daemon and CLI run is
checked for leaked secrets (all keys the simulator knows, STS tokens included).
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
import http.client
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRCDIR = Path(os.environ.get("ROLLGUARD_SRCDIR") or HERE.parents[1]).resolve()
SIM_PY = SRCDIR / "tests" / "sim" / "sim.py"
if not SIM_PY.exists():
    SIM_PY = HERE.parent / "sim" / "sim.py"
PYTHON = sys.executable or "/usr/bin/python3"

# Set by ./tools/dev for its ASan+UBSan and valgrind runs: SLOWDOWN stretches
# every deadline below; TOOL_EXITCODE is the exit code the checker gives a
# process in which it found a leak or an error. Either that code or a
# sanitizer report on stderr fails the test, whatever the test asserted.
SLOWDOWN = float(os.environ.get("ROLLGUARD_TEST_SLOWDOWN") or 1)
TOOL_EXITCODE = int(os.environ.get("ROLLGUARD_TOOL_EXITCODE") or 0)
# ./tools/dev valgrind: the daemon runs 20-50x slower, so time between
# deciding to send and the bytes leaving can exceed what a test about
# wire timing allows for the network.
UNDER_VALGRIND = os.environ.get("ROLLGUARD_UNDER_VALGRIND") == "1"
_TOOL_REPORT = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: ")

TEST_KEY_ID = "testid"
TEST_KEY_SECRET = "testsecret"

# Secrets no daemon output may ever contain. Sims add the keys they issued.
_SECRETS = {TEST_KEY_SECRET}
_LIVE_SIMS = set()
_LIVE_LOCK = threading.Lock()


# --------------------------------------------------------------------------
# Waiting


def wait_for(predicate, timeout=10.0, interval=0.05, what="condition"):
    """Poll predicate() until it returns something truthy (returned) or the
    deadline passes (AssertionError naming `what`)."""
    deadline = time.monotonic() + timeout * SLOWDOWN
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def max_calls_in_window(requests_or_times, window=60.0):
    """Largest number of calls any sliding window of `window` seconds held.
    Takes Sim.requests() records or plain arrival times."""
    ts = sorted(r["t"] if isinstance(r, dict) else r for r in requests_or_times)
    best, lo = 0, 0
    for hi, t in enumerate(ts):
        while t - ts[lo] >= window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def assert_tool_clean(rc, text, what):
    """No sanitizer report and no checker exit code (see TOOL_EXITCODE)."""
    if _TOOL_REPORT.search(text) or (TOOL_EXITCODE and rc == TOOL_EXITCODE):
        tail = "\n".join(text.splitlines()[-60:])
        raise AssertionError(f"{what} exited {rc}: the memory/UB checker found a problem:\n"
                             f"{_redact(tail, _SECRETS)}")


def known_secrets():
    with _LIVE_LOCK:
        sims = list(_LIVE_SIMS)
    for s in sims:
        s.collect_secrets()
    return set(_SECRETS)


def _redact(text, secrets):
    for s in secrets:
        if s:
            text = text.replace(s, "<SECRET>")
    return text


def assert_no_secrets(text, what="output"):
    secrets = known_secrets()
    for lineno, line in enumerate(text.splitlines(), 1):
        if any(s and s in line for s in secrets):
            raise AssertionError(f"a secret leaked into {what}, line {lineno}: {_redact(line, secrets)}")


# --------------------------------------------------------------------------
# The simulator


class Sim:
    """A running tests/sim/sim.py. Control API wrappers return parsed JSON."""

    def __init__(self, workdir, keys=None, scenario=None, start_timeout=20.0):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        port_file = self.workdir / "sim.port"
        self.log_path = self.workdir / "sim.log"
        argv = [PYTHON, str(SIM_PY), "--port", "0", "--port-file", str(port_file), "--log-requests"]
        for k in keys or []:
            argv += ["--key", k]
        if scenario:
            argv += ["--scenario", str(scenario)]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: port_file.exists() or self.proc.poll() is not None,
                     timeout=start_timeout, what="the simulator's port file")
            if self.proc.poll() is not None:
                raise AssertionError(f"simulator exited with {self.proc.returncode}:\n{self.log()}")
        except BaseException:
            self._terminate()
            raise
        self.port = int(port_file.read_text().strip())
        self.url = f"http://127.0.0.1:{self.port}"
        self._stopped = False
        with _LIVE_LOCK:
            _LIVE_SIMS.add(self)

    # -- plumbing -------------------------------------------------------------

    def control(self, method, path, body=None, timeout=10.0):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/_sim/" + path.lstrip("/"), body=data,
                         headers={"Content-Type": "application/json"} if data is not None else {})
            resp = conn.getresponse()
            raw = resp.read()
        finally:
            conn.close()
        doc = json.loads(raw) if raw else None
        if resp.status != 200:
            raise AssertionError(f"sim control {method} /_sim/{path} -> {resp.status}: {doc}")
        return doc

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def collect_secrets(self):
        if self._stopped or self.proc.poll() is not None:
            return
        try:
            for k in self.control("GET", "keys", timeout=5)["keys"]:
                for v in (k.get("access_key_secret"), k.get("security_token")):
                    if v:
                        _SECRETS.add(v)
        except (OSError, AssertionError, ValueError):
            pass

    def _terminate(self, timeout=10.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def stop(self):
        if self._stopped:
            return self.proc.returncode
        self.collect_secrets()
        with _LIVE_LOCK:
            _LIVE_SIMS.discard(self)
        self._stopped = True
        self._terminate()
        return self.proc.returncode

    # -- model ----------------------------------------------------------------

    def reset(self):
        return self.control("POST", "reset")

    def set_apps(self, apps):
        """Replace every app. apps: sae_app()/edas_app() dicts."""
        return self.control("POST", "apps", {"apps": list(apps)})["apps"]

    def add_app(self, app):
        return self.control("POST", "apps", {"app": app})["app"]

    def apps(self):
        return self.control("GET", "apps")["apps"]

    def add_change_order(self, app_id, co):
        """Append a change order (a new release starts); returns it as stored."""
        return self.control("POST", f"apps/{app_id}/change_orders", co)

    def patch_change_order(self, co_id, fields=None, **kw):
        body = dict(fields or {}, **kw)
        return self.control("PATCH", f"change_orders/{co_id}", body)

    def change_order(self, co_id):
        """The stored order: status, sub_status, pipelines, steps_done,
        rollback_calls, abort_calls, rolled_back_by, terminate_at, ..."""
        return self.control("GET", f"change_orders/{co_id}")

    def settings(self, **kw):
        """rollback_lag_seconds, max_skew_seconds."""
        return self.control("POST", "settings", kw) if kw else self.control("GET", "settings")

    # -- faults ---------------------------------------------------------------

    def add_fault(self, rule=None, **kw):
        """add_fault({"kind": "timeout", "seconds": 3, "match": {...}}) or
        add_fault(kind="throttle", count=2, match={"action": "DescribeChangeOrder"}).
        Returns the rule id."""
        body = dict(rule or {}, **kw)
        return self.control("POST", "faults", body)["ids"][0]

    def add_faults(self, rules):
        return self.control("POST", "faults", {"faults": list(rules)})["ids"]

    def clear_faults(self):
        return self.control("DELETE", "faults")

    def faults(self):
        return self.control("GET", "faults")["faults"]

    # -- what happened -------------------------------------------------------

    def requests(self, action=None, kind="api", since=0):
        """Recorded requests, oldest first. kind: "api" (cloud calls),
        "metadata", or None for both. Each: seq t method path action query
        app_id change_order_id signature_ok error_code status fault
        security_token_present access_key_id nonce host kind."""
        q = [f"since={since}"]
        if action:
            q.append(f"action={action}")
        if kind:
            q.append(f"kind={kind}")
        return self.control("GET", "requests?" + "&".join(q))["requests"]

    def rollbacks(self, change_order_id=None, action=None, result=None):
        """Every rollback/abort call that passed authentication: change_order_id
        app_id action product t result ("accepted"|"rejected") error_code
        new_change_order_id fault."""
        path = "rollbacks" + (f"?change_order_id={change_order_id}" if change_order_id else "")
        out = self.control("GET", path)["rollbacks"]
        if action:
            out = [r for r in out if r["action"] == action]
        if result:
            out = [r for r in out if r["result"] == result]
        return out

    def rollback_calls(self, co_id):
        return self.change_order(co_id)["rollback_calls"]

    def max_calls_in_window(self, window=60.0, action=None):
        return max_calls_in_window(self.requests(action=action), window)

    def wait_for(self, predicate, timeout=10.0, interval=0.05, what="condition"):
        return wait_for(predicate, timeout=timeout, interval=interval, what=what)

    def wait_for_requests(self, action=None, n=1, timeout=10.0, **match):
        """Wait until at least n recorded API requests (of `action`, whose
        fields equal **match) exist; returns them."""
        def got():
            rs = [r for r in self.requests(action=action) if all(r.get(k) == v for k, v in match.items())]
            return rs if len(rs) >= n else None
        return wait_for(got, timeout=timeout, what=f"{n} request(s) {action or ''} {match or ''}".strip())

    def wait_for_rollback(self, co_id, timeout=10.0):
        """Wait for an accepted rollback of co_id; returns its record."""
        return wait_for(lambda: self.rollbacks(co_id, result="accepted"), timeout=timeout,
                        what=f"a rollback of {co_id}")[0]

    # -- accounts ---------------------------------------------------------------

    def set_rate_limit(self, n, window_seconds=60):
        """n calls per window (admitted calls, all keys = one account); None = off."""
        return self.control("POST", "rate_limit", {"limit": n, "window_seconds": window_seconds})

    def metadata(self, **fields):
        """metadata(role="name"|None, expiry_seconds=N) sets; metadata() reads.
        Returns {"role", "expiry_seconds", "issued": [AccessKeyIds handed out]}."""
        if fields:
            return self.control("POST", "metadata", fields)
        return self.control("GET", "metadata")

    @property
    def metadata_endpoint(self):
        return self.url

    def add_key(self, access_key_id, access_key_secret, security_token=None, expires_in=None):
        _SECRETS.add(access_key_secret)
        if security_token:
            _SECRETS.add(security_token)
        body = {"access_key_id": access_key_id, "access_key_secret": access_key_secret}
        if security_token:
            body["security_token"] = security_token
        if expires_in:
            body["expires_in"] = expires_in
        return self.control("POST", "keys", body)

    def expire_key(self, access_key_id):
        return self.control("POST", "keys/expire", {"access_key_id": access_key_id})

    def keys(self):
        return self.control("GET", "keys")["keys"]


@pytest.fixture
def make_sim(tmp_path, request):
    """make_sim(keys=["testid:testsecret", "ID:SECRET:TOKEN"], scenario=path) -> Sim.
    On failure the end of each simulator's request log is printed."""
    sims = []

    def make(keys=None, scenario=None):
        s = Sim(tmp_path / f"sim{len(sims)}", keys=keys, scenario=scenario)
        sims.append(s)
        return s

    yield make
    for s in sims:
        s.stop()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for i, s in enumerate(sims):
            tail = "\n".join(s.log().splitlines()[-40:])
            print(f"--- simulator #{i} log (last 40 lines) ---\n{_redact(tail, _SECRETS)}")


@pytest.fixture
def sim(make_sim):
    """A fresh simulator: key testid:testsecret, no apps."""
    return make_sim()


# --------------------------------------------------------------------------
# Model builders (simulator JSON). Times are relative ("*_ago_seconds") so a
# change order built now still means "stuck for 20 minutes" when loaded.


def new_id():
    return str(uuid.uuid4())


def pipeline(status, name=None, start_ago=None, update_ago=None, id=None):
    p = {"status": status}
    if name:
        p["name"] = name
    if id:
        p["id"] = id
    if start_ago is not None:
        p["start_ago_seconds"] = start_ago
    if update_ago is not None:
        p["update_ago_seconds"] = update_ago
    return p


def _batches(batch_count, current, current_status, current_update_ago, current_start_ago):
    """Batches before `current` (1-based) done, `current` in current_status,
    the rest not started."""
    ps = []
    for i in range(1, batch_count + 1):
        name = f"Batch {i} Change"
        if i < current:
            start = current_start_ago + 60 * (current - i)
            ps.append(pipeline(2, name, start_ago=start, update_ago=start - 50))
        elif i == current:
            ps.append(pipeline(current_status, name, start_ago=current_start_ago, update_ago=current_update_ago))
        else:
            ps.append(pipeline(0, name))
    return ps


def _order(co_id, **fields):
    co = {"id": co_id or new_id(), "co_type": "CoDeploy", "batch_type": "auto", "batch_wait": 0,
          "support_rollback": True, "behaviour": "static"}
    co.update(fields)
    return co


def healthy_order(id=None, steps=5, step_seconds=1, batch_count=3, **kw):
    """A release that progresses on every describe and succeeds after `steps` steps."""
    return _order(id, status=1, sub_status=0, batch_count=batch_count, create_ago_seconds=15,
                  behaviour="progress", steps=steps, step_seconds=step_seconds,
                  pipelines=_batches(batch_count, 1, 1, 1, 10), **kw)


def stuck_order(id=None, stuck_for=1200, batch_count=3, failed_batch=2, **kw):
    """SAE's stuck state: status 1 (executing), sub_status 1 (error), batch
    `failed_batch` failed (3) `stuck_for` seconds ago; never changes."""
    return _order(id, status=1, sub_status=1, batch_count=batch_count,
                  create_ago_seconds=stuck_for + 300,
                  pipelines=_batches(batch_count, failed_batch, 3, stuck_for, stuck_for + 60), **kw)


def stalled_order(id=None, idle_for=1200, batch_count=3, batch=1, **kw):
    """Executing, no error, but batch `batch` has not moved for `idle_for` seconds."""
    return _order(id, status=1, sub_status=0, batch_count=batch_count,
                  create_ago_seconds=idle_for + 120,
                  pipelines=_batches(batch_count, batch, 1, idle_for, idle_for + 60), **kw)


def failed_pipeline_order(id=None, batch_count=3, failed_batch=1, failed_ago=5, **kw):
    """Executing, sub_status normal, one batch failed (3) recently."""
    return _order(id, status=1, sub_status=0, batch_count=batch_count,
                  create_ago_seconds=failed_ago + 120,
                  pipelines=_batches(batch_count, failed_batch, 3, failed_ago, failed_ago + 30), **kw)


def non_rollbackable_order(id=None, **kw):
    """Stuck, but SupportRollback is false."""
    kw.setdefault("support_rollback", False)
    return stuck_order(id, **kw)


def rollback_order(id=None, co_type="CoRollback", **kw):
    """A rollback order that looks stuck. SupportRollback stays true so the
    only thing protecting it is its CoTypeCode."""
    return stuck_order(id, co_type=co_type, **kw)


def succeeded_order(id=None, ago=3600, batch_count=2, **kw):
    return _order(id, status=2, sub_status=0, batch_count=batch_count, create_ago_seconds=ago + 300,
                  pipelines=[pipeline(2, f"Batch {i} Change", start_ago=ago + 300 - 60 * i,
                                      update_ago=ago + 250 - 60 * i) for i in range(1, batch_count + 1)],
                  **kw)


def waiting_manual_order(id=None, idle_for=1200, batch_count=3, **kw):
    """Waiting for a human to release the next batch (status 8)."""
    return _order(id, status=8, sub_status=0, batch_count=batch_count, batch_type="Manual",
                  create_ago_seconds=idle_for + 300,
                  pipelines=_batches(batch_count, 2, 8, idle_for, idle_for), **kw)


def stall_after_order(id=None, after=2, steps=6, step_seconds=1, batch_count=3, **kw):
    """Progresses for `after` steps, then stays stuck (sub_status 1, current batch 3)."""
    return _order(id, status=1, sub_status=0, batch_count=batch_count, create_ago_seconds=15,
                  behaviour="stall_after", stall_after=after, steps=steps, step_seconds=step_seconds,
                  pipelines=_batches(batch_count, 1, 1, 1, 10), **kw)


def sae_app(app_id=None, orders=(), name=None):
    app_id = app_id or new_id()
    return {"app_id": app_id, "platform": "sae", "name": name or f"app-{app_id[:8]}",
            "change_orders": list(orders)}


def edas_app(app_id=None, orders=(), name=None, kind="ecs"):
    app_id = app_id or new_id()
    return {"app_id": app_id, "platform": "edas", "edas_kind": kind,
            "name": name or f"app-{app_id[:8]}", "change_orders": list(orders)}


# --------------------------------------------------------------------------
# Config


def rule(name, action="rollback", for_=None, **when):
    """rule("stalled", no_progress_for="15m", status=["executing"])."""
    r = {"name": name, "when": when}
    if for_ is not None:
        r["for"] = for_
    r["action"] = action
    return r


def config_app(name, app_id, platform="sae", region="cn-hangzhou", rules=None, dry_run=None, **extra):
    a = {"name": name, "platform": platform, "region": region, "app_id": app_id}
    if dry_run is not None:
        a["dry_run"] = dry_run
    a.update(extra)
    if rules is not None:
        a["rules"] = list(rules)
    return a


def config_app_from(sim_app, **overrides):
    """The config entry for a sae_app()/edas_app() dict. k8s EDAS apps get
    `edas_kind: k8s` (ECS is the default)."""
    extra = {}
    if sim_app.get("platform") == "edas" and sim_app.get("edas_kind") == "k8s":
        extra["edas_kind"] = "k8s"
    extra.update(overrides)
    return config_app(extra.pop("name", sim_app.get("name") or f"app-{sim_app['app_id'][:8]}"),
                      sim_app["app_id"], platform=sim_app.get("platform", "sae"), **extra)


_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ""}
_PLAIN = re.compile(r"[A-Za-z0-9_./][A-Za-z0-9_./+-]*")


def _numeric(s):
    for conv in (float, lambda x: int(x, 0)):
        try:
            conv(s)
            return True
        except ValueError:
            pass
    return False


def _yaml_scalar(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, Path):
        v = str(v)
    if not isinstance(v, str):
        raise TypeError(f"cannot write {type(v).__name__} to YAML")
    if _PLAIN.fullmatch(v) and v.lower() not in _YAML_WORDS and not _numeric(v):
        return v  # 1s 15m 60/min cn-hangzhou /tmp/x uuid-like ids stay plain
    return json.dumps(v)  # a YAML double-quoted scalar


def _yaml_lines(obj, indent):
    pad = " " * indent
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            key = _yaml_scalar(str(k))
            if isinstance(v, dict) and v:
                out.append(f"{pad}{key}:")
                out += _yaml_lines(v, indent + 2)
            elif isinstance(v, (list, tuple)) and v:
                out.append(f"{pad}{key}:")
                out += _yaml_lines(list(v), indent + 2)
            elif isinstance(v, dict):
                out.append(f"{pad}{key}: {{}}")
            elif isinstance(v, (list, tuple)):
                out.append(f"{pad}{key}: []")
            else:
                out.append(f"{pad}{key}: {_yaml_scalar(v)}")
    elif isinstance(obj, list):
        for item in obj:
            if isinstance(item, (dict, list, tuple)) and item:
                sub = _yaml_lines(list(item) if isinstance(item, tuple) else item, indent + 2)
                sub[0] = f"{pad}- " + sub[0][indent + 2:]
                out += sub
            elif isinstance(item, dict):
                out.append(f"{pad}- {{}}")
            elif isinstance(item, (list, tuple)):
                out.append(f"{pad}- []")
            else:
                out.append(f"{pad}- {_yaml_scalar(item)}")
    else:
        out.append(pad + _yaml_scalar(obj))
    return out


def to_yaml(obj):
    """Block-style YAML for dicts, lists and scalars (insertion order kept)."""
    return "\n".join(_yaml_lines(obj, 0)) + "\n"


TEST_DEFAULTS = {
    "poll_interval": "1s",
    "active_poll_interval": "1s",
    "timeout": "3s",
    "rate_limit": "600/min",
}


def _merge(base, extra):
    out = dict(base)
    for k, v in (extra or {}).items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def write_config(tmp_path, sim, apps=(), defaults=None, extra=None, name="rollguard.yaml"):
    """Write a config for the daemon and return its path.

    apps: config entries (config_app(), or sae_app()/edas_app() dicts, which
    are converted with config_app_from). defaults: merged over the test
    defaults (1s polling, 3s timeout, 600/min). extra: top-level keys merged
    in (alerts, credentials, ...); a None value removes a key. With sim=None
    the endpoints point at a closed local port: nothing reaches a real cloud."""
    tmp_path = Path(tmp_path)
    state = tmp_path / "state"
    state.mkdir(exist_ok=True)
    url = sim.url if sim is not None else "http://127.0.0.1:9"
    entries = [config_app_from(a) if "change_orders" in a else a for a in apps]
    doc = {
        "defaults": _merge(TEST_DEFAULTS, defaults),
        "endpoints": {"sae": url, "edas": url},
        "state_directory": str(state),
        "apps": entries,
    }
    doc = _merge(doc, extra)
    path = tmp_path / name
    path.write_text("# written by tests/integration/conftest.py\n" + to_yaml(doc))
    return path


# --------------------------------------------------------------------------
# The daemon


def rollguard_bin():
    b = os.environ.get("ROLLGUARD_BIN")
    if b:
        if not os.access(b, os.X_OK):
            pytest.fail(f"ROLLGUARD_BIN={b} is not an executable")
        return b
    candidate = SRCDIR / "build" / "rollguard"
    if os.access(candidate, os.X_OK):
        return str(candidate)
    pytest.skip("no rollguard binary: set ROLLGUARD_BIN or build into build/")


_SCRUB = {
    "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
    "no_proxy", "NO_PROXY", "CREDENTIALS_DIRECTORY", "STATE_DIRECTORY", "RUNTIME_DIRECTORY",
    "CONFIGURATION_DIRECTORY", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID",
    "JOURNAL_STREAM", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "INVOCATION_ID",
    "SYSTEMD_EXEC_PID", "MAINPID",
}
_SCRUB_PREFIXES = ("ALIBABA_CLOUD_", "ALICLOUD_", "ALIYUN_")


def daemon_env(tmp_path, overrides=None):
    """A clean environment: test credentials, HOME in tmp_path (the user's
    ~/.alibabacloud is never read), no proxies, nothing systemd-ish (so the
    daemon logs to stderr). overrides: a None value removes a variable."""
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB and not k.startswith(_SCRUB_PREFIXES)}
    home = Path(tmp_path) / "home"
    home.mkdir(exist_ok=True)
    env.update({
        "HOME": str(home),
        "ALIBABA_CLOUD_ACCESS_KEY_ID": TEST_KEY_ID,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": TEST_KEY_SECRET,
        "NO_PROXY": "*",
        "no_proxy": "*",
    })
    for k, v in (overrides or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
            if "SECRET" in k or "TOKEN" in k:
                _SECRETS.add(str(v))
    return env


class Daemon:
    """A running rollguard. stderr lines land in .lines as they arrive."""

    def __init__(self, argv, env, cwd):
        self.argv = argv
        self.lines = []         # stderr, one entry per line, newline stripped
        self.stdout_lines = []
        self._cond = threading.Condition()
        self._eof = 0
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, cwd=cwd)
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stderr, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout_lines), daemon=True),
        ]
        for t in self._readers:
            t.start()

    def _read(self, stream, sink):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                sink.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof += 1
            self._cond.notify_all()

    @property
    def pid(self):
        return self.proc.pid

    @property
    def returncode(self):
        return self.proc.poll()

    @property
    def running(self):
        return self.proc.poll() is None

    @property
    def output(self):
        with self._cond:
            return "\n".join(self.lines)

    def mark(self):
        """Current position in .lines, for wait_for_log(..., since=mark)."""
        with self._cond:
            return len(self.lines)

    @staticmethod
    def _matcher(pattern):
        if isinstance(pattern, re.Pattern):
            return lambda line: pattern.search(line) is not None
        return lambda line: pattern in line

    def find_logs(self, pattern, since=0):
        match = self._matcher(pattern)
        with self._cond:
            return [line for line in self.lines[since:] if match(line)]

    def wait_for_log(self, pattern, timeout=10.0, since=0):
        """Wait until a stderr line at index >= since contains `pattern`
        (a str) or matches it (a compiled regex); returns the line. Fails
        at once if the daemon exits without logging it."""
        match = self._matcher(pattern)
        deadline = time.monotonic() + timeout * SLOWDOWN
        pos = since
        with self._cond:
            while True:
                while pos < len(self.lines):
                    if match(self.lines[pos]):
                        return self.lines[pos]
                    pos += 1
                if self._eof >= 2:
                    rc = self.proc.wait()
                    raise AssertionError(f"rollguard exited ({rc}) without logging {pattern!r}; "
                                         f"last lines:\n{self._tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out after {timeout:g}s waiting for log {pattern!r}; "
                                         f"last lines:\n{self._tail()}")
                self._cond.wait(left)

    def _tail(self, n=30):
        return _redact("\n".join(self.lines[-n:]), _SECRETS)

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self):
        self.proc.send_signal(signal.SIGHUP)

    def wait_exit(self, timeout=10.0):
        try:
            rc = self.proc.wait(timeout=timeout * SLOWDOWN)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"rollguard still running after {timeout:g}s") from None
        self._join()
        return rc

    def _join(self):
        for t in self._readers:
            t.join(5)

    def stop(self, timeout=10.0):
        """SIGTERM, wait up to `timeout`, return the exit code. A daemon that
        does not exit in time is killed and the test fails."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout * SLOWDOWN)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._join()
                raise AssertionError(f"rollguard did not exit within {timeout:g}s of SIGTERM; "
                                     f"last lines:\n{self._tail()}") from None
        self._join()
        return self.proc.returncode

    def kill9(self):
        if self.proc.poll() is None:
            self.proc.kill()
        rc = self.proc.wait()
        self._join()
        return rc

    def assert_tool_clean(self):
        with self._cond:
            text = "\n".join(self.lines)
        assert_tool_clean(self.proc.returncode, text, f"rollguard (pid {self.pid})")

    def assert_no_secrets(self):
        with self._cond:
            text = "\n".join(self.lines + self.stdout_lines)
        assert_no_secrets(text, "rollguard's output")


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def start_daemon(tmp_path, request):
    """start_daemon(config_path, "--dry-run", "--verbose", env={...}, command="run").
    Every daemon is stopped at teardown and its output checked for secrets;
    on failure its last stderr lines are printed (secrets redacted)."""
    started = []

    def start(config_path, *args, env=None, command="run", cwd=None):
        argv = [rollguard_bin(), "--config", str(config_path), *map(str, args)]
        if command:
            argv.append(command)
        d = Daemon(argv, daemon_env(tmp_path, env), cwd or tmp_path)
        started.append(d)
        return d

    yield start
    errors = []
    for d in started:
        try:
            d.stop()
        except AssertionError as e:
            errors.append(str(e))
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for i, d in enumerate(started):
            print(f"--- rollguard #{i} stderr (last 60 lines) ---\n{d._tail(60)}")
    for d in started:
        d.assert_no_secrets()
        try:
            d.assert_tool_clean()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        raise AssertionError("; ".join(errors))


@pytest.fixture
def run_cli(tmp_path):
    """run_cli("--config", path, "check") -> CompletedProcess with text
    stdout/stderr, same clean environment as the daemon; checked for secrets."""

    def run(*args, env=None, timeout=30, input=None):
        r = subprocess.run([rollguard_bin(), *map(str, args)], capture_output=True, text=True,
                           env=daemon_env(tmp_path, env), cwd=tmp_path, timeout=timeout * SLOWDOWN,
                           input=input, stdin=None if input is not None else subprocess.DEVNULL)
        assert_no_secrets(r.stdout, "rollguard's stdout")
        assert_no_secrets(r.stderr, "rollguard's stderr")
        assert_tool_clean(r.returncode, r.stderr, "rollguard " + " ".join(map(str, args)))
        return r

    return run
