#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""./tools/dev demo: the simulator plus the daemon on conf/demo.yaml, with
the daemon's decisions shown as they happen. Exits 0 when the healthy
release finished untouched and the stuck one was rolled back exactly once."""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SIM_PORT = 18931  # conf/demo.yaml points at it
HEALTHY = ("shop-api", "5d2f1a3c-6b7e-4f80-9a1b-2c3d4e5f0102")
STUCK = ("payments", "765fa5c0-9ebb-4bb4-b383-1f8854470001")
DEADLINE = 30.0

BOLD, DIM, RED, GREEN, YELLOW, RESET = "\033[1m", "\033[2m", "\033[31m", "\033[32m", "\033[33m", "\033[0m"
if not sys.stdout.isatty():
    BOLD = DIM = RED = GREEN = YELLOW = RESET = ""


def control(path):
    with urllib.request.urlopen(f"http://127.0.0.1:{SIM_PORT}/_sim/{path}", timeout=5) as r:
        return json.load(r)


def colour(line):
    if " rollguard-action-done " in line or " rollguard-decision " in line:
        return YELLOW + line + RESET
    if line.startswith(("err ", "crit ", "warning ")):
        return RED + line + RESET
    if " rollguard-release-ended " in line:
        return GREEN + line + RESET
    return line


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "build" / "rollguard"))
    ap.add_argument("--config", default=str(ROOT / "conf" / "demo.yaml"))
    args = ap.parse_args()

    print(f"{BOLD}rollguard demo{RESET}: a simulated SAE account with two releases in flight")
    print(f"  {HEALTHY[0]:9} a healthy phased release, batches moving every 2 s")
    print(f"  {STUCK[0]:9} stuck: batch 2 failed, Status 1 / SubStatus 1 (waiting for a human)")
    print(f"{DIM}simulator: 127.0.0.1:{SIM_PORT} (verifies every request's V3 signature); "
          f"config: {os.path.relpath(args.config, ROOT)}{RESET}\n")

    work = tempfile.mkdtemp(prefix="rollguard-demo-")
    sim = subprocess.Popen([sys.executable, str(ROOT / "tests" / "sim" / "sim.py"), "--port", str(SIM_PORT),
                            "--scenario", str(ROOT / "tests" / "sim" / "scenarios" / "demo.json")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = sim.stdout.readline()
    if "listening" not in first:
        sim.kill()
        print(f"{RED}the simulator did not start: {first.strip()}{RESET}\n"
              f"(is something else on 127.0.0.1:{SIM_PORT}?)", file=sys.stderr)
        return 1
    threading.Thread(target=lambda: [None for _ in sim.stdout], daemon=True).start()

    env = dict(os.environ)
    env.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": "testid", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "testsecret",
                "STATE_DIRECTORY": os.path.join(work, "state"), "HOME": work})
    for k in ("JOURNAL_STREAM", "NOTIFY_SOCKET", "ALIBABA_CLOUD_SECURITY_TOKEN"):
        env.pop(k, None)
    t0 = time.monotonic()
    daemon = subprocess.Popen([args.bin, "--config", args.config, "run"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def pump():
        for line in daemon.stderr:
            print(f"{DIM}[{time.monotonic() - t0:5.1f}s]{RESET} {colour(line.rstrip())}", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()

    ok = False
    rolled_at = None
    try:
        while time.monotonic() - t0 < DEADLINE and daemon.poll() is None:
            rbs = control("rollbacks")["rollbacks"]
            healthy = control(f"change_orders/{HEALTHY[1]}")
            if rbs and rolled_at is None:
                rolled_at = time.monotonic() - t0
            if rbs and healthy["status"] == 2:
                ok = True
                break
            time.sleep(0.2)  # polling the simulator's record, bounded by DEADLINE
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        try:
            code = daemon.wait(timeout=10)
        except subprocess.TimeoutExpired:
            daemon.kill()
            code = daemon.wait()
        reader.join(2)
        rbs = control("rollbacks")["rollbacks"] if sim.poll() is None else []
        stuck = control(f"change_orders/{STUCK[1]}") if sim.poll() is None else {}
        sim.send_signal(signal.SIGTERM)
        sim.wait(timeout=10)

    print()
    by_app = {}
    for rb in rbs:
        by_app.setdefault(rb["change_order_id"], []).append(rb)
    n_stuck = len(by_app.get(STUCK[1], []))
    n_healthy = len(by_app.get(HEALTHY[1], []))
    print(f"{BOLD}What the simulated cloud recorded{RESET}")
    print(f"  {HEALTHY[0]:9} rollback calls: {n_healthy}   (release finished on its own)")
    print(f"  {STUCK[0]:9} rollback calls: {n_stuck}   -> rollback order "
          f"{(by_app.get(STUCK[1]) or [{}])[0].get('new_change_order_id', '-')}"
          + (f", {rolled_at:.1f}s after start" if rolled_at else ""))
    print(f"  daemon exit code after SIGTERM: {code}")
    if ok and n_stuck == 1 and n_healthy == 0 and code == 0 and stuck.get("status") == 6:
        print(f"{GREEN}demo OK{RESET}: the stuck release was rolled back once; the healthy one was left alone.")
        return 0
    print(f"{RED}demo FAILED{RESET} (deadline {DEADLINE:.0f}s)", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
