#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Soak test (`./tools/dev soak [SECONDS]`; not part of CI). Stdlib, loopback.

One rollguard watches 40 apps (SAE, EDAS on ECS and on Kubernetes) on the
simulator (signatures checked, account rate limit on) for SECONDS while:
  - releases keep starting on 15 apps: stuck, failed batch, stalling after a
    while, healthy, not rollbackable, rollback orders, alert-driven;
  - faults are injected on reads all the time (timeouts, resets, throttling,
    System.Upgrading, 5xx, malformed/HTML/empty/garbage bodies, slow answers);
  - Alertmanager webhooks arrive (the ones that must roll back, and noise);
  - /status and /metrics are read, and the config is reloaded (SIGHUP).
Then it checks, and exits non-zero when any fails:
  - every release that should have been rolled back got exactly one
    rollback call (none missed), no other release got any (none doubled or
    wrong), per the simulator's own record;
  - the simulator never had to throttle rollguard (pacing held);
  - RSS and open file descriptors do not grow after the first minute;
  - rollguard exits 0 on SIGTERM and logged no crit/alert/emerg line.
Figures go to --out (JSON) and a summary to stdout.
"""

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import http.client
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "bench"))
import bench  # noqa: E402  (Server, Daemon, /proc readers)

TOKEN = "soak-alert-token-0d9f2c"
READ_ACTIONS = ["DescribeApplicationStatus", "DescribeChangeOrder", "ListRecentChangeOrder",
                "GetChangeOrderInfo"]
FAULTS = [
    {"kind": "timeout", "seconds": 4}, {"kind": "reset"}, {"kind": "throttle"},
    {"kind": "throttle", "status": 429, "code": "Throttling"}, {"kind": "upgrading"},
    {"kind": "http_status", "status": 500}, {"kind": "http_status", "status": 502},
    {"kind": "malformed"}, {"kind": "html"}, {"kind": "empty"}, {"kind": "garbage"},
    {"kind": "slow", "seconds": 1},
]
RSS_GROWTH_LIMIT_KIB = 1024
FD_GROWTH_LIMIT = 4
ROLLBACK_DEADLINE_S = 60.0
HOLD_NONE_S = 15.0


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def now_ms():
    return int(time.time() * 1000)


# --------------------------------------------------------------------------
# Change orders (simulator model, see tests/sim/sim.py MODEL)


def batches(n, current, status, update_ago, start_ago):
    out = []
    for i in range(1, n + 1):
        if i < current:
            s = start_ago + 60 * (current - i)
            out.append({"status": 2, "name": f"Batch {i} Change", "start_ago_seconds": s,
                        "update_ago_seconds": s - 50})
        elif i == current:
            out.append({"status": status, "name": f"Batch {i} Change", "start_ago_seconds": start_ago,
                        "update_ago_seconds": update_ago})
        else:
            out.append({"status": 0, "name": f"Batch {i} Change"})
    return out


def order(**kw):
    co = {"id": str(uuid.uuid4()), "co_type": "CoDeploy", "batch_type": "auto", "batch_wait": 0,
          "support_rollback": True, "behaviour": "static", "batch_count": 3}
    co.update(kw)
    return co


def stuck():
    return order(status=1, sub_status=1, create_ago_seconds=400, pipelines=batches(3, 2, 3, 60, 120))


def failed_batch():
    return order(status=1, sub_status=0, create_ago_seconds=130, pipelines=batches(3, 1, 3, 5, 30))


def stall_after():
    return order(status=1, sub_status=0, create_ago_seconds=15, behaviour="stall_after", stall_after=2,
                 steps=6, step_seconds=1, pipelines=batches(3, 1, 1, 1, 10))


def healthy(steps=5, step_seconds=1):
    return order(status=1, sub_status=0, create_ago_seconds=15, behaviour="progress", steps=steps,
                 step_seconds=step_seconds, pipelines=batches(3, 1, 1, 1, 10))


# variant name: (builder, expected decision)
SAE_VARIANTS = {
    "stuck": (stuck, "rollback"),
    "failed-batch": (failed_batch, "rollback"),
    "stall-after": (stall_after, "rollback"),
    "healthy": (healthy, "none"),
    "not-rollbackable": (lambda: dict(stuck(), support_rollback=False), "none"),
    "rollback-order": (lambda: dict(stuck(), co_type="CoRollback"), "none"),
}
EDAS_VARIANTS = {
    "failed-batch": (failed_batch, "rollback"),
    "healthy": (healthy, "none"),
    "rollback-order": (lambda: dict(failed_batch(), co_type="CoRollback"), "none"),
}


# --------------------------------------------------------------------------


class App:
    def __init__(self, i, group, platform, edas_kind=None):
        self.i = i
        self.name = f"soak-{group}-{i:02d}"
        self.app_id = f"50a50a50-0000-4000-8000-{i:012d}"
        self.group = group  # churn | alert | idle
        self.platform = platform
        self.edas_kind = edas_kind
        self.co = None
        self.variant = None
        self.expect = None
        self.started = 0.0
        self.alert_fired = False
        self.next_start = time.time() + random.uniform(3, 10)

    def sim_spec(self):
        spec = {"app_id": self.app_id, "platform": self.platform, "name": self.name,
                "change_orders": [order(status=2, sub_status=0, create_ago_seconds=7200, batch_count=2)]}
        if self.platform == "edas":
            spec["edas_kind"] = self.edas_kind
        return spec


def write_config(path, sim_url, state, apps, alerts_port, token_file, poll="2s"):
    lines = ["defaults:", f"  poll_interval: {poll}", "  active_poll_interval: 1s", "  cooldown: 0s",
             "  max_actions_per_hour: 1000", "  rate_limit: 3000/min", "  timeout: 3s",
             "endpoints:", f"  sae: {sim_url}", f"  edas: {sim_url}",
             "alerts:", f"  listen: 127.0.0.1:{alerts_port}", f"  token_file: {token_file}",
             f"state_directory: {state}", "apps:"]
    for a in apps:
        lines += [f"  - name: {a.name}", f"    platform: {a.platform}", "    region: cn-hangzhou",
                  f"    app_id: {a.app_id}"]
        if a.platform == "edas" and a.edas_kind == "k8s":
            lines.append("    edas_kind: k8s")
        lines += [
            "    rules:",
            "      - { name: batch-error, when: { status: [executing], sub_status: error }, for: 2s, action: rollback }",
            "      - { name: failed-batch, when: { pipeline_failed: true }, action: rollback }",
            "      - { name: error-rate-alert, when: { status: [executing, waiting_manual, waiting_auto],"
            " alert: { alertname: HighErrorRate } }, action: rollback }",
        ]
    Path(path).write_text("\n".join(lines) + "\n")


class Control:
    """The simulator's control API, retried: under load the simulator now and
    then resets a control connection (seen with its reset fault active on
    other connections). Every call the soak makes is safe to repeat."""

    def __init__(self, server):
        self.port = server.port
        self.retries = 0

    def __call__(self, path, method="GET", body=None):
        for attempt in range(5):
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            try:
                data = json.dumps(body).encode() if body is not None else None
                conn.request(method, path, body=data,
                             headers={"Content-Type": "application/json"} if data else {})
                resp = conn.getresponse()
                raw = resp.read()
            except (OSError, http.client.HTTPException):
                self.retries += 1
                time.sleep(0.1 * (attempt + 1))
                continue
            finally:
                conn.close()
            if resp.status == 409 and attempt > 0:
                return None  # the first attempt took effect after all
            if resp.status != 200:
                raise SystemExit(f"soak: {method} {path} -> {resp.status}: {raw[:300]!r}")
            return json.loads(raw)
        raise SystemExit(f"soak: the simulator stopped answering {method} {path}")


def backtrace(pid):
    """gdb's view of a daemon that stopped answering, when gdb is installed."""
    try:
        r = subprocess.run(["gdb", "-p", str(pid), "-batch", "-ex", "bt"], capture_output=True, text=True,
                           timeout=60)
        return r.stdout[-4000:]
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"(no backtrace: {e})"


class Listener:
    def __init__(self, port, pid):
        self.port = port
        self.pid = pid
        self.errors = 0
        self.hangs = []

    def request(self, method, path, body=None, token=TOKEN):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            headers = {"Authorization": f"Bearer {token}"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.status != 200:
                self.errors += 1
            return resp.status, raw
        except OSError as e:
            self.errors += 1
            if len(self.hangs) < 3:
                self.hangs.append({"t": time.time(), "request": f"{method} {path}", "error": str(e),
                                   "backtrace": backtrace(self.pid)})
                log(f"rollguard did not answer {method} {path}: {e}")
            return None, b""
        finally:
            conn.close()

    def alert(self, app, alertname, firing):
        t = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        payload = {"version": "4", "status": "firing" if firing else "resolved", "receiver": "rollguard",
                   "groupKey": "{}", "alerts": [{
                       "status": "firing" if firing else "resolved",
                       "labels": {"alertname": alertname, "app": app.name, "severity": "critical"},
                       "annotations": {"summary": "soak"},
                       "startsAt": t, "endsAt": "0001-01-01T00:00:00Z" if firing else t,
                       "fingerprint": f"{alertname}-{app.name}"}]}
        return self.request("POST", "/api/v1/alerts", payload)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=20261123)
    args = ap.parse_args()
    random.seed(args.seed)
    binary = str(Path(args.bin).resolve())

    apps = []
    for i in range(8):
        apps.append(App(i, "churn", "sae"))
    for i in range(8, 12):
        apps.append(App(i, "churn", "edas", "ecs" if i % 2 == 0 else "k8s"))
    for i in range(12, 15):
        apps.append(App(i, "alert", "sae"))
    for i in range(15, 40):
        apps.append(App(i, "idle", "sae" if i % 3 else "edas", "ecs"))
    by_co = {}

    with tempfile.TemporaryDirectory(prefix="rollguard-soak-") as work:
        sim = bench.Server(work, [bench.PY, str(bench.SIM_PY)], "sim")
        try:
            return run(args, binary, work, sim, apps, by_co)
        finally:
            sim.stop()


def run(args, binary, work, server, apps, by_co):
    sim = Control(server)
    sim("/_sim/apps", "POST", {"apps": [a.sim_spec() for a in apps]})
    # The account limit equals rollguard's own: any throttling the simulator
    # does (not an injected fault) means rollguard paced itself wrongly.
    sim("/_sim/rate_limit", "POST", {"limit": 3000, "window_seconds": 60})
    state = Path(work) / "state"
    state.mkdir()
    token_file = Path(work) / "alert-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    port = free_port()
    cfg = Path(work) / "rollguard.yaml"
    write_config(cfg, server.url, state, apps, port, token_file)
    d = bench.Daemon(binary, cfg, work, "rollguard-soak")
    d.wait_ready()
    listener = Listener(port, d.pid)
    log(f"rollguard pid {d.pid}: {len(apps)} apps, running {args.seconds:g}s (+ drain)")

    t_start = time.time()
    end = t_start + args.seconds
    drain_end = end + ROLLBACK_DEADLINE_S + 5
    samples = []  # (t, rss_kib, anon_kib, fds)
    outcomes = {"rollback_ok": 0, "none_ok": 0, "missed": [], "unexpected": [], "by_variant": {}}
    detect = []
    faults_added = 0
    alerts_sent = {"rollback": 0, "noise": 0, "resolved": 0}
    reloads = 0
    next_fault = t_start + 2
    next_sample = t_start
    next_noise = t_start + 5
    next_status = t_start + 3
    next_reload = t_start + 120
    noise_resolve = []

    def calls():
        out = {}
        for r in sim("/_sim/rollbacks")["rollbacks"]:
            out.setdefault(r["change_order_id"], []).append(r)
        return out

    def finish(a, ok, what=None):
        v = outcomes["by_variant"].setdefault(f"{a.platform}:{a.variant}", {"ok": 0, "bad": 0})
        v["ok" if ok else "bad"] += 1
        if not ok:
            outcomes[what].append({"app": a.name, "co": a.co, "variant": a.variant})
        a.co = None
        a.next_start = time.time() + random.uniform(6, 12)

    while True:
        now = time.time()
        if now >= drain_end or (now >= end and all(a.co is None for a in apps)):
            break
        if d.proc.poll() is not None:
            raise SystemExit(f"soak: rollguard died ({d.proc.returncode}); see {d.log_path}")
        if now >= next_sample:
            try:
                samples.append((round(now - t_start, 1), bench.status_kib(d.pid, "VmRSS"),
                                bench.status_kib(d.pid, "RssAnon"), len(os.listdir(f"/proc/{d.pid}/fd"))))
            except OSError:
                pass
            next_sample += 5
        if now < end and now >= next_fault:
            f = dict(random.choice(FAULTS))
            match = {"action": random.choice(READ_ACTIONS)}
            if random.random() < 0.5:
                match["app_id"] = random.choice(apps).app_id
            f.update(match=match, count=random.randint(1, 3))
            sim("/_sim/faults", "POST", f)
            faults_added += 1
            next_fault = now + random.uniform(1, 4)
        if now < end and now >= next_noise:
            # Firing alerts for apps without a release (nothing to roll
            # back) and other alert names: noise the rules must ignore.
            a = random.choice([x for x in apps if x.group == "idle"])
            listener.alert(a, random.choice(["HighErrorRate", "DiskFull"]), True)
            noise_resolve.append((now + 10, a))
            alerts_sent["noise"] += 1
            next_noise = now + random.uniform(3, 8)
        for t, a in list(noise_resolve):
            if now >= t:
                listener.alert(a, "HighErrorRate", False)
                listener.alert(a, "DiskFull", False)
                alerts_sent["resolved"] += 1
                noise_resolve.remove((t, a))
        if now >= next_status:
            listener.request("GET", "/status")
            listener.request("GET", "/metrics")
            next_status = now + 10
        if now < end and now >= next_reload:
            d.proc.send_signal(signal.SIGHUP)
            reloads += 1
            next_reload = now + 120

        seen = calls()
        for a in apps:
            if a.group == "idle":
                continue
            if a.co is None:
                if now < end and now >= a.next_start:
                    if a.group == "alert":
                        a.variant = random.choice(["alert", "alert", "other-alert"])
                        co = healthy(steps=200, step_seconds=5) if a.variant == "alert" else healthy()
                        a.expect = "rollback" if a.variant == "alert" else "none"
                    else:
                        variants = SAE_VARIANTS if a.platform == "sae" else EDAS_VARIANTS
                        a.variant = random.choice(list(variants))
                        build, a.expect = variants[a.variant]
                        co = build()
                    sim(f"/_sim/apps/{a.app_id}/change_orders", "POST", co)
                    a.co, a.started, a.alert_fired = co["id"], time.time(), False
                    by_co[a.co] = {"app": a.name, "variant": a.variant, "expect": a.expect, "t": a.started}
                continue
            got = seen.get(a.co, [])
            if a.group == "alert" and not a.alert_fired and now - a.started > 2:
                listener.alert(a, "HighErrorRate" if a.variant == "alert" else "DeployNoise", True)
                a.alert_fired = True
                alerts_sent["rollback" if a.variant == "alert" else "noise"] += 1
            if a.expect == "rollback":
                if got:
                    detect.append(got[0]["t"] - a.started)
                    outcomes["rollback_ok"] += 1
                    if a.group == "alert":
                        listener.alert(a, "HighErrorRate", False)
                        alerts_sent["resolved"] += 1
                    finish(a, True)
                elif now - a.started > ROLLBACK_DEADLINE_S:
                    sim(f"/_sim/change_orders/{a.co}", "PATCH", {"status": 2, "sub_status": 0})
                    finish(a, False, "missed")
            elif now - a.started > HOLD_NONE_S:
                if a.group == "alert":
                    listener.alert(a, "DeployNoise", False)
                    alerts_sent["resolved"] += 1
                co = sim(f"/_sim/change_orders/{a.co}")
                if co["status"] in (0, 1, 8, 9, 11, 12):
                    sim(f"/_sim/change_orders/{a.co}", "PATCH", {"status": 2, "sub_status": 0})
                if got:
                    finish(a, False, "unexpected")
                else:
                    outcomes["none_ok"] += 1
                    finish(a, True)
        time.sleep(0.25)

    # Settle: a late second call would show up here.
    time.sleep(3)
    final_calls = calls()
    samples.append((round(time.time() - t_start, 1), bench.status_kib(d.pid, "VmRSS"),
                    bench.status_kib(d.pid, "RssAnon"), len(os.listdir(f"/proc/{d.pid}/fd"))))
    cpu = bench.cpu_seconds(d.pid)
    hwm = bench.status_kib(d.pid, "VmHWM")
    _, metrics = listener.request("GET", "/metrics")
    rc = d.stop()
    lines = d.lines()

    # Every rollback/abort call the simulator saw, per order.
    doubled = [{"co": co, "calls": len(rs), **by_co.get(co, {})} for co, rs in final_calls.items() if len(rs) > 1]
    unknown = [co for co in final_calls if co not in by_co]
    wrong = [co for co, info in by_co.items() if info["expect"] == "none" and final_calls.get(co)]
    missed = [co for co, info in by_co.items() if info["expect"] == "rollback" and not final_calls.get(co)]

    reqs = sim("/_sim/requests?kind=api")["requests"]
    throttled_by_sim = sum(1 for r in reqs if r.get("error_code") in ("Throttling.User", "Throttling")
                           and not r.get("fault"))
    bad_sig = sum(1 for r in reqs if r.get("signature_ok") is False)
    faulted = sum(1 for r in reqs if r.get("fault"))
    prio = {}
    for line in lines:
        p = line.split(" ", 1)[0]
        prio[p] = prio.get(p, 0) + 1
    events = {}
    for line in lines:
        parts = line.split(" ", 2)
        if len(parts) > 1 and parts[1].startswith("rollguard-"):
            ev = parts[1].rstrip(":")
            events[ev] = events.get(ev, 0) + 1
    reloaded = sum(1 for l in lines if "rollguard-reloaded" in l)

    # RSS/fd growth: the first minute is warm-up (apps seen, buffers sized).
    steady = [s for s in samples if s[0] >= 60] or samples
    base_win = [s for s in steady if s[0] < steady[0][0] + 60]
    last_win = [s for s in steady if s[0] >= steady[-1][0] - 60]
    rss_base, rss_last = max(s[1] for s in base_win), max(s[1] for s in last_win)
    fd_base, fd_last = max(s[3] for s in base_win), max(s[3] for s in last_win)
    elapsed = time.time() - t_start

    checks = {
        "no_decision_doubled": not doubled,
        "no_decision_missed": not missed and not outcomes["missed"],
        "no_wrong_decision": not wrong and not outcomes["unexpected"] and not unknown,
        "never_throttled_by_account_limit": throttled_by_sim == 0,
        "all_signatures_valid": bad_sig == 0,
        "rss_does_not_grow": rss_last - rss_base <= RSS_GROWTH_LIMIT_KIB,
        "fds_do_not_grow": fd_last - fd_base <= FD_GROWTH_LIMIT,
        "clean_exit": rc == 0,
        "no_crit_or_worse_logged": not any(prio.get(p) for p in ("emerg", "alert", "crit")),
        "every_reload_applied": reloaded == reloads,
        "listener_answered": listener.errors == 0,
    }
    result = {
        "seconds": round(elapsed, 1),
        "apps": len(apps),
        "releases": len(by_co),
        "expected_rollbacks": sum(1 for i in by_co.values() if i["expect"] == "rollback"),
        "rollbacks_seen": sum(1 for co in by_co if final_calls.get(co)),
        "outcomes": {k: (len(v) if isinstance(v, list) else v) for k, v in outcomes.items() if k != "by_variant"},
        "by_variant": outcomes["by_variant"],
        "doubled": doubled, "missed": sorted(set(missed) | {m["co"] for m in outcomes["missed"]}),
        "wrong": wrong,
        "unknown_rollbacks": unknown,
        "detection_s": {"p50": round(statistics.median(detect), 2) if detect else None,
                        "max": round(max(detect), 2) if detect else None},
        "api_requests": len(reqs), "faulted_requests": faulted, "faults_added": faults_added,
        "throttled_by_account_limit": throttled_by_sim,
        "alerts_sent": alerts_sent, "reloads": reloads, "reloads_logged": reloaded,
        "rss_kib": {"first_minute_after_warmup_max": rss_base, "last_minute_max": rss_last,
                    "growth": rss_last - rss_base, "peak_vmhwm": hwm},
        "fds": {"first_minute_after_warmup_max": fd_base, "last_minute_max": fd_last},
        "cpu_seconds": round(cpu, 2),
        "cpu_share_of_one_core": round(cpu / elapsed, 4),
        "exit_code": rc,
        "log_lines_by_priority": prio,
        "log_events": events,
        "metrics_bytes": len(metrics or b""),
        "listener_errors": listener.errors,
        "simulator_control_retries": sim.retries,
        "hangs": listener.hangs,
        "samples": samples,
        "checks": checks,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")

    print(f"soak: {result['seconds']:.0f} s, {len(apps)} apps, {result['releases']} releases, "
          f"{result['api_requests']} API calls ({faulted} faulted by {faults_added} injected fault rules)")
    print(f"  rollbacks: {result['rollbacks_seen']} of {result['expected_rollbacks']} expected; "
          f"doubled {len(doubled)}, missed {len(result['missed'])}, wrong {len(wrong) + len(unknown)}")
    print(f"  detection (release start -> rollback call): p50 {result['detection_s']['p50']} s, "
          f"max {result['detection_s']['max']} s")
    print(f"  alerts: {alerts_sent}; reloads {reloads} (logged {reloaded}); "
          f"throttled by the account limit: {throttled_by_sim}")
    print(f"  RSS: {rss_base} KiB after warm-up -> {rss_last} KiB at the end "
          f"(growth {rss_last - rss_base} KiB, VmHWM {hwm} KiB); fds {fd_base} -> {fd_last}")
    print(f"  CPU {result['cpu_seconds']} s ({result['cpu_share_of_one_core'] * 100:.2f} % of a core); "
          f"exit code {rc}; log lines {prio}")
    failed = [k for k, ok in checks.items() if not ok]
    print("  checks: " + ("all passed" if not failed else "FAILED: " + ", ".join(failed)))
    print(f"  (written to {args.out}; rollguard's log was {d.log_path}, removed with the work dir)")
    if failed:
        keep = Path(args.out).with_suffix(".rollguard.log")
        keep.write_text("\n".join(lines) + "\n")
        print(f"  rollguard's log kept in {keep}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
