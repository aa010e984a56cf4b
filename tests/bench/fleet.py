#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The fleet benchmark (issue 11): can every release in flight count on the
API budget? Stdlib only; loopback only.

  fleet.py --bin build-bench/rollguard --out build-bench/fleet.json [--scale 5] [--quick]

N SAE apps on one simulated account whose limit the simulator enforces
(60 calls/min, shared by every key of the account) and shares with a second
client that plays the deploy pipeline (20 calls/min, its own AccessKey).
rollguard runs at its defaults (poll_interval 30s, active_poll_interval 5s,
rate_limit 30/min: its share) with one rule, `sub_status: error` for 30s.
Releases appear on random apps at random times, run a minute, then get
stuck. Time is compressed by --scale (5: the account's 60 s window is 12 s;
rollguard refuses an active_poll_interval under 1 s)
and every interval with it; every number reported is scaled back to real
time.

Runs: 60 and 1000 apps, each with events (the bench posts the SAE
SaeChangeOrderFailEvent to POST /api/v1/events when a release gets stuck,
as an EventBridge rule with an HTTP target would) and without. Then 60 apps
with releases in flight that never end, and bursts of HTTP 500s on their
calls (4 to 6 in a row).

Measured:
  detection latency: the rollback call's arrival at the simulator - (the
    moment the order got stuck + the rule's `for`); p50/p99/max
  pipeline calls throttled (Throttling.User answers to the pipeline's key)
  the longest gap between two answered looks (a call about the app that got
    a 200) at a release in flight, in the error run
  the longest wait of an action: from the decision's log record (stderr,
    time-stamped as it arrives) to the rollback call at the simulator
  the idle sweep: rollguard_idle_sweep_seconds from /metrics when the
    daemon has it, else computed from the config (apps / the budget)
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import http.client
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (Server, helpers)

TOKEN = "bench-events-token-8c1d"

# Real-time settings: rollguard's defaults after issue 11, SAE's documented
# account limit, the pipeline of the issue.
REAL = {
    "account_limit": 60, "window": 60.0,
    "pipeline_rate": 20,
    "rate_limit": 30,
    "poll_interval": 30.0, "active_poll_interval": 5.0, "timeout": 10.0,
    "for": 30.0,
    "release_runs": 60.0,   # a release runs this long before it gets stuck
    "jitter": 0.1,          # the watcher's poll jitter, as a fraction
}

DETECTION_SLACK_EVENTS = 2.0   # x active_poll_interval
DETECTION_SLACK_SWEEP = 1.5    # x idle sweep
LOOK_GAP_FACTOR = 4.0          # x active_poll_interval (+ jitter)


def log(msg):
    print(f"fleet: {msg}", file=sys.stderr, flush=True)


def pct(values, p):
    return bench.percentile(values, p) if values else None


# --------------------------------------------------------------------------
# The daemon, its stderr time-stamped line by line


class Daemon:
    def __init__(self, binary, config, workdir, name):
        self.lines = []  # (time.time(), line)
        self.lock = threading.Lock()
        self.log_path = Path(workdir) / f"{name}.log"
        self.proc = subprocess.Popen([binary, "--config", str(config), "run"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=bench.daemon_env())
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_path, "w") as out:
            for raw in self.proc.stderr:
                t = time.time()
                line = raw.decode(errors="replace").rstrip("\n")
                out.write(f"{t:.3f} {line}\n")
                with self.lock:
                    self.lines.append((t, line))

    def find(self, pattern):
        rx = re.compile(pattern)
        with self.lock:
            return [(t, l) for t, l in self.lines if rx.search(l)]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        return self.proc.returncode


# --------------------------------------------------------------------------
# Config and traffic


def yaml_config(path, sim_url, state_dir, apps, s, port):
    sc = s["scale"]
    d = {
        "poll_interval": f"{int(REAL['poll_interval'] * 1000 / sc)}ms",
        "active_poll_interval": f"{int(REAL['active_poll_interval'] * 1000 / sc)}ms",
        "timeout": f"{max(1000, int(REAL['timeout'] * 1000 / sc))}ms",
        "cooldown": "0s", "max_actions_per_hour": 1000,
        "rate_limit": f"{REAL['rate_limit']}/{REAL['window'] / sc:g}s",
    }
    out = ["alerts:", f"  listen: 127.0.0.1:{port}", f"  token_file: {s['token_file']}", "defaults:"]
    out += [f"  {k}: {v}" for k, v in d.items()]
    out += ["endpoints:", f"  sae: {sim_url}", f"  edas: {sim_url}", f"state_directory: {state_dir}", "apps:"]
    for name, app_id in apps:
        out += [f"  - name: {name}", "    platform: sae", "    region: cn-hangzhou", f"    app_id: {app_id}",
                "    rules:",
                f"      - {{ name: batch-error, when: {{ status: [executing], sub_status: error }}, "
                f"for: {int(REAL['for'] * 1000 / sc)}ms, action: rollback }}"]
    Path(path).write_text("\n".join(out) + "\n")
    return d


def idle_order():
    return {"status": 2, "sub_status": 0, "batch_count": 2, "create_ago_seconds": 7200}


def release(co_id, appear_after, stuck_after):
    """Executing and healthy from appear_after, stuck (batch 2 failed, sub
    status error) from stuck_after; both seconds from now."""
    return {"id": co_id, "co_type": "CoDeploy", "status": 1, "sub_status": 0, "batch_count": 3,
            "batch_type": "auto", "batch_wait": 0, "support_rollback": True, "behaviour": "static",
            "appear_after_seconds": appear_after,
            "pipelines": [{"status": 2, "name": "Batch 1 Change"}, {"status": 1, "name": "Batch 2 Change"},
                          {"status": 0, "name": "Batch 3 Change"}],
            "timeline": [] if stuck_after is None else [
                {"after_seconds": stuck_after,
                 "set": {"sub_status": 1, "pipelines": [{"status": 2, "name": "Batch 1 Change"},
                                                        {"status": 3, "name": "Batch 2 Change"},
                                                        {"status": 0, "name": "Batch 3 Change"}]}}]}


def sae_fail_event(app_id, co_id):
    return {"specversion": "1.0", "id": str(uuid.uuid4()), "source": "acs.sae",
            "type": "sae:ChangeOrder:SaeChangeOrderFailEvent",
            "subject": f"acs:sae:cn-hangzhou:1234567890:application/{app_id}",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "aliyunaccountid": "1234567890",
            "aliyunregionid": "cn-hangzhou", "aliyuneventbusname": "default",
            "datacontenttype": "application/json;charset=utf-8",
            "data": {"resourceId": app_id, "changeOrderId": co_id, "status": "FAIL"}}


def post_event(port, ev):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/api/v1/events", body=json.dumps(ev).encode(),
                     headers={"Content-Type": "application/cloudevents+json", "Authorization": f"Bearer {TOKEN}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


def scrape(port, name):
    """The first sample of a metric family on /metrics, or None."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            try:
                return float(line.rsplit(" ", 1)[1])
            except ValueError:
                return None
    return None


def calls(sim, since=0):
    doc = sim.get(f"/_sim/calls?since={since}")
    return [dict(zip(doc["fields"], row)) for row in doc["calls"]]


# --------------------------------------------------------------------------
# One run


def run(binary, work, n_apps, events, s, label, trials, errors=False):
    sc = s["scale"]
    window = REAL["window"] / sc
    sim = bench.Server(work, [bench.PY, str(bench.SIM_PY), "--account-limit", f"{REAL['account_limit']}/{window:g}s"],
                       f"sim-{label}")
    d = None
    try:
        ids = [bench.app_id(500000 + i) for i in range(n_apps)]
        names = [f"fleet-{i:04d}" for i in range(n_apps)]
        rng = random.Random(f"{label}-{n_apps}")
        # Releases: `trials` distinct apps; the pipeline deploys to the others.
        chosen = rng.sample(range(n_apps), trials)
        warmup = 3.0 if n_apps <= 100 else 6.0
        spread = s["error_spread"] if errors else s["spread"]
        runs = REAL["release_runs"] / sc
        plan = {}
        apps = []
        for i, a in enumerate(ids):
            orders = [idle_order()]
            if i in chosen:
                appear = warmup + rng.uniform(0, spread)
                co = str(uuid.uuid4())
                orders.append(release(co, appear, None if errors else appear + runs))
                plan[co] = {"app": i, "appear": appear}
            apps.append({"app_id": a, "platform": "sae", "name": names[i], "change_orders": orders})
        t_added = time.time()
        sim.get("/_sim/apps", "POST", {"apps": apps})
        # the stuck moments as the simulator will apply them (absolute)
        for co, p in plan.items():
            o = sim.get(f"/_sim/change_orders/{co}")
            p["visible"] = o["visible_at"]
            p["stuck"] = o["timeline_pending"][0] if o["timeline_pending"] else None
        others = [a for i, a in enumerate(ids) if i not in chosen] or ids
        sim.get("/_sim/pipeline", "POST", {"rate": f"{REAL['pipeline_rate']}/{window:g}s",
                                           "app_ids": others[:50]})

        state = Path(work) / f"state-{label}"
        state.mkdir()
        port = bench.free_port()
        cfg_defaults = yaml_config(Path(work) / f"{label}.yaml", sim.url, state, list(zip(names, ids)), s, port)
        d = Daemon(binary, Path(work) / f"{label}.yaml", work, f"rollguard-{label}")
        bench.wait_until(lambda: d.find("listening on") or d.proc.poll() is not None, 20, "the listener")
        if d.proc.poll() is not None:
            d.reader.join(5)
            raise SystemExit(f"fleet: rollguard exited {d.proc.returncode}: " + " / ".join(l for _, l in d.lines[-5:]))

        posted = {}
        stop = threading.Event()

        def post_at_stuck():
            for co, p in sorted(plan.items(), key=lambda kv: kv[1]["stuck"] or 0):
                if p["stuck"] is None:
                    continue
                if stop.wait(max(0.0, p["stuck"] - time.time())):
                    return
                st = post_event(port, sae_fail_event(ids[p["app"]], co))
                posted[co] = (time.time(), st)

        bursts = []

        def inject_bursts():
            # a burst of 4-6 HTTP 500s on one in-flight app's calls, ~ every
            # active interval on some app
            while not stop.wait(REAL["active_poll_interval"] / sc * rng.uniform(0.5, 1.5)):
                co, p = rng.choice(list(plan.items()))
                if time.time() < p["visible"]:
                    continue
                n = rng.randint(4, 6)
                sim.get("/_sim/faults", "POST", {"kind": "http_status", "status": 500, "code": "InternalError",
                                                 "count": n, "match": {"app_id": ids[p["app"]], "kind": "api"}})
                bursts.append((time.time(), ids[p["app"]], n))

        threads = []
        if events:
            threads.append(threading.Thread(target=post_at_stuck, daemon=True))
        if errors:
            threads.append(threading.Thread(target=inject_bursts, daemon=True))
        for t in threads:
            t.start()

        sweep_metric = []
        for_s = REAL["for"] / sc
        deadline_extra = s["wait_events"] if events else s["wait_sweep"](n_apps)
        if errors:
            end = t_added + warmup + spread + s["error_run"]
        else:
            end = max(p["stuck"] for p in plan.values()) + for_s + deadline_extra

        def rolled_back():
            rs = sim.get("/_sim/rollbacks")["rollbacks"]
            return {r["change_order_id"] for r in rs if r["result"] == "accepted"}

        while time.time() < end:
            time.sleep(0.5)
            v = scrape(port, "rollguard_idle_sweep_seconds")
            if v is not None:
                sweep_metric.append(v)
            if not errors and plan.keys() <= rolled_back():
                break
        stop.set()
        for t in threads:
            t.join(10)
        t_end = time.time()

        cs = calls(sim)
        pipe = sim.get("/_sim/pipeline")
        acct = sim.get("/_sim/account")
        rbs = sim.get("/_sim/rollbacks")["rollbacks"]
        rc = d.stop()
        if rc not in (0, None):
            raise SystemExit(f"fleet: rollguard exited {rc} after the {label} run; see {d.log_path}")
        ours = [c for c in cs if c["access_key_id"] == bench.KEY_ID]

        res = {"apps": n_apps, "events": events, "errors_injected": errors, "releases": len(plan),
               "seconds_compressed": round(t_end - t_added, 1), "scale": sc,
               "config": cfg_defaults}

        first_rb = {}
        for c in ours:
            if c["action"] == "AbortAndRollbackChangeOrder" and c["change_order_id"] in plan:
                first_rb.setdefault(c["change_order_id"], c["t"])
        accepted = {}
        for r in rbs:
            if r["result"] == "accepted":
                accepted[r["change_order_id"]] = accepted.get(r["change_order_id"], 0) + 1
        res["rolled_back_twice"] = sum(1 for v in accepted.values() if v > 1)
        if errors:
            res["rolled_back"] = len(accepted)  # none are stuck: must be 0

        if not errors:
            lat = [(first_rb[co] - (p["stuck"] + for_s)) * sc for co, p in plan.items() if co in first_rb]
            res["detected"] = len(lat)
            res["undetected"] = len(plan) - len(lat)
            res["waited_seconds_after_last_stuck"] = round((end - max(p["stuck"] for p in plan.values())) * sc, 1)
            res["detection_p50_s"] = round(pct(lat, 50), 2) if lat else None
            res["detection_p99_s"] = round(pct(lat, 99), 2) if lat else None
            res["detection_max_s"] = round(max(lat), 2) if lat else None
            res["detection_s"] = sorted(round(x, 2) for x in lat)

        # the longest wait of an action: decision record -> rollback call
        waits = []
        for t, line in d.find(r"rollguard-decision "):
            m = re.search(r" co=(\S+)", line)
            if m and m.group(1) in first_rb and first_rb[m.group(1)] >= t - 0.05:
                waits.append((first_rb[m.group(1)] - t) * sc)
        res["action_wait_max_s"] = round(max(waits), 2) if waits else None
        res["action_wait_p50_s"] = round(pct(waits, 50), 2) if waits else None

        # the longest gap between two answered looks at a release in flight
        gaps = []
        for co, p in plan.items():
            a = ids[p["app"]]
            t_from = p["visible"]
            t_to = first_rb.get(co, p["stuck"] + for_s if p["stuck"] else t_end)
            looks = [c["t"] for c in ours if c["app_id"] == a and c["status"] == 200 and t_from <= c["t"] <= t_to]
            if len(looks) >= 2:
                # from the first look: until then the release was not known
                gaps.append(max(b - a_ for a_, b in zip(looks, looks[1:])) * sc)
        res["look_gap_max_s"] = round(max(gaps), 2) if gaps else None
        res["look_gap_p50_s"] = round(pct(gaps, 50), 2) if gaps else None
        if events:
            res["events_posted"] = len(posted)
            res["events_accepted"] = sum(1 for _, st in posted.values() if st == 202)
        if errors:
            res["bursts"] = len(bursts)
            res["errors_answered"] = sum(1 for c in ours if c["status"] == 500)

        res["pipeline_calls"] = pipe.get("calls")
        res["pipeline_throttled"] = pipe.get("throttled")
        res["rollguard_calls"] = len(ours)
        res["rollguard_throttled"] = sum(1 for c in ours if (c["error_code"] or "").startswith("Throttling"))
        res["rollguard_calls_per_minute"] = round(len(ours) / ((t_end - t_added) * sc / 60.0), 1)
        res["account_max_in_window"] = acct.get("max_in_window")

        budget_per_s = REAL["rate_limit"] / REAL["window"]
        computed = max(REAL["poll_interval"], n_apps / budget_per_s)
        if sweep_metric:
            res["idle_sweep_s"] = round(sorted(sweep_metric)[len(sweep_metric) // 2] * sc, 1)  # the median
            res["idle_sweep_from"] = "rollguard_idle_sweep_seconds"
        else:
            res["idle_sweep_s"] = round(computed, 1)
            res["idle_sweep_from"] = "computed: apps / (rate_limit per second), at least poll_interval"

        log(f"{label}: {n_apps} apps, events {'on' if events else 'off'}"
            + ("" if errors else f": detection p50 {res['detection_p50_s']} s p99 {res['detection_p99_s']} s "
               f"({res['undetected']} undetected)")
            + f"; pipeline throttled {res['pipeline_throttled']}/{res['pipeline_calls']}; "
            f"longest look gap {res['look_gap_max_s']} s; longest action wait {res['action_wait_max_s']} s")
        return res
    finally:
        if d is not None and d.proc.poll() is None:
            d.stop()
        sim.stop()


# --------------------------------------------------------------------------


def fmt(v, unit=" s"):
    return "-" if v is None else f"{v:g}{unit}"


def verdict(ok):
    return "PASS" if ok else "MISS"


def evaluate(results):
    act = REAL["active_poll_interval"]
    jitter = act * REAL["jitter"]
    rows, targets = [], {}
    for key in ("60_events", "60_polling", "1000_events", "1000_polling"):
        r = results.get(key)
        if not r:
            continue
        what = f"{r['apps']} apps, {'events' if r['events'] else 'no events'}"
        if r["events"]:
            limit = DETECTION_SLACK_EVENTS * act
            tgt = f"<= {limit:g} s (for + 2 x active_poll_interval from stuck)"
        else:
            limit = DETECTION_SLACK_SWEEP * r["idle_sweep_s"]
            tgt = f"<= {limit:g} s (1.5 x idle sweep {r['idle_sweep_s']:g} s)"
        ok = r["detection_p99_s"] is not None and r["undetected"] == 0 and r["detection_p99_s"] <= limit
        targets[f"detection_p99_{key}"] = ok
        rows.append((f"detection p50, {what}", fmt(r["detection_p50_s"]), "", ""))
        rows.append((f"detection p99, {what}", fmt(r["detection_p99_s"])
                     + (f" ({r['undetected']} of {r['releases']} not by +{r['waited_seconds_after_last_stuck']:g} s)"
                        if r["undetected"] else ""), tgt, verdict(ok)))
    throttled = sum(r["pipeline_throttled"] or 0 for r in results.values())
    calls = sum(r["pipeline_calls"] or 0 for r in results.values())
    targets["no_pipeline_call_throttled"] = throttled == 0
    rows.append(("pipeline calls throttled, all runs", f"{throttled} of {calls}", "0", verdict(throttled == 0)))
    e = results.get("60_errors")
    if e:
        limit = LOOK_GAP_FACTOR * act + jitter
        ok = e["look_gap_max_s"] is not None and e["look_gap_max_s"] <= limit
        targets["look_gap_under_errors"] = ok
        rows.append((f"longest gap between looks in flight, 5xx bursts ({e['bursts']})", fmt(e["look_gap_max_s"]),
                     f"<= {limit:g} s (4 x active_poll_interval + jitter)", verdict(ok)))
        targets["nothing_rolled_back_in_error_run"] = e["rolled_back"] == 0
    waits = [r["action_wait_max_s"] for r in results.values() if r.get("action_wait_max_s") is not None]
    rows.append(("longest wait of an action for budget (decision -> call)", fmt(max(waits) if waits else None),
                 "", ""))
    twice = sum(r["rolled_back_twice"] for r in results.values())
    targets["nothing_rolled_back_twice"] = twice == 0
    rows.append(("orders rolled back twice", f"{twice}", "0", verdict(twice == 0)))
    for key in ("60_polling", "1000_polling"):
        r = results.get(key)
        if r:
            rows.append((f"idle sweep, {r['apps']} apps ({'metric' if r['idle_sweep_from'].startswith('rollguard') else 'computed'})",
                         fmt(r["idle_sweep_s"]), "", ""))
            rows.append((f"rollguard calls/min, {r['apps']} apps (its share: {REAL['rate_limit']})",
                         f"{r['rollguard_calls_per_minute']:g}", "", ""))
    return rows, targets


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--out", required=True)
    # 5 is as far as it goes: active_poll_interval must be at least 1 s
    ap.add_argument("--scale", type=float, default=5.0, help="time compression (default 5: 60 s -> 12 s)")
    ap.add_argument("--trials", type=int, default=24, help="stuck releases per run (default 24)")
    ap.add_argument("--quick", action="store_true", help="60 apps only, fewer releases")
    args = ap.parse_args()
    binary = str(Path(args.bin).resolve())
    started = time.monotonic()
    sc = args.scale
    with tempfile.TemporaryDirectory(prefix="rollguard-fleet-") as work:
        token = Path(work) / "token"
        token.write_text(TOKEN + "\n")
        s = {"scale": sc, "token_file": token,
             "spread": 120.0 / sc,                      # releases appear over 2 real minutes
             "wait_events": 60.0 / sc,                  # one real minute after the last stuck + for
             # 1.5 idle sweeps (at the whole budget) + a minute after the
             # last stuck + for, but never more than 7.5 real minutes: a
             # full bench run stays near 10 minutes
             "wait_sweep": lambda n: min(1.5 * max(REAL["poll_interval"], n * REAL["window"] / REAL["rate_limit"])
                                         + 60.0, 450.0) / sc,
             "error_spread": 30.0 / sc,
             "error_run": 90.0 / sc}
        trials = min(args.trials, 12) if args.quick else args.trials
        results = {}
        sizes = (60,) if args.quick else (60, 1000)
        for n in sizes:
            for events in (True, False):
                key = f"{n}_{'events' if events else 'polling'}"
                results[key] = run(binary, work, n, events, s, key, trials)
        results["60_errors"] = run(binary, work, 60, False, s, "60_errors", min(trials, 12), errors=True)
    rows, targets = evaluate(results)
    out = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "binary": binary,
           "machine": {"cpus": os.cpu_count(), "loadavg_at_end": os.getloadavg()},
           "real_settings": REAL, "scale": sc, "runs": results, "targets": targets,
           "bench_seconds": round(time.monotonic() - started, 1)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(bench.format_rows(rows))
    print(f"\n(real-time units, time compressed {sc:g}x; written to {args.out}; {out['bench_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
