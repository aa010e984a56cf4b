# SPDX-License-Identifier: MIT
"""Issue 12: never twice, never deaf, never hung on a hostile or unlucky host
(the state, file and clock items; the listener's are in test_alerts.py).

Each test here reproduces one way 0.1 broke its promises and checks it no
longer does."""

import json
import os
import re
import signal
import time
from pathlib import Path

import pytest

from conftest import (config_app, sae_app, stuck_order, wait_for, write_config)
from test_alerts import free_port

ROLLBACK = "AbortAndRollbackChangeOrder"
DESCRIBE = "DescribeChangeOrder"


def key_file(tmp_path, app, region="cn-hangzhou", platform="sae"):
    """Where the record of a sim app lives: named by identity, not name."""
    return Path(tmp_path) / "state" / f"{platform}_{region}_{app['app_id']}.json"


def describes_of(sim, co_id):
    return [r for r in sim.requests(action=DESCRIBE) if r.get("change_order_id") == co_id]


def stuck_app(sim, name="payments", lag=True):
    co = stuck_order()
    app = sae_app(orders=[co], name=name)
    sim.add_app(app)
    if lag:
        # the rollback takes effect but the order keeps looking stuck: only
        # the record stops a second call
        sim.settings(rollback_lag_seconds=600, rollback_visible_after_lag=True)
    return co, app


def renamed(app, name):
    return config_app(name, app["app_id"])


# --------------------------------------------------------------------------
# 1. identity is the cloud's


def test_rename_reload_and_restart_keep_the_record(sim, tmp_path, start_daemon):
    co, app = stuck_app(sim)
    cfg = write_config(tmp_path, sim, [app], defaults={"cooldown": "1h"})
    d = start_daemon(cfg)
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-action-done app=payments"))
    before = json.loads(key_file(tmp_path, app).read_text())
    assert before["acts"][0]["result"] == "done" and before["cooldown_until_ms"] > 0

    # rename + reload: the same app_watch goes on under the new name
    mark = d.mark()
    write_config(tmp_path, sim, [renamed(app, "payments-renamed")], defaults={"cooldown": "1h"})
    d.reload()
    d.wait_for_log("rollguard-reloaded", since=mark)
    d.wait_for_log(re.compile(r"app payments is now called payments-renamed"), since=mark)
    base = len(describes_of(sim, co["id"]))
    wait_for(lambda: len(describes_of(sim, co["id"])) >= base + 3, timeout=20, what="3 more polls")
    assert sim.rollback_calls(co["id"]) == 1
    d.stop()

    # and a restart under yet another name, in another position
    other = sae_app(name="first")
    sim.add_app(other)
    cfg = write_config(tmp_path, sim, [other, renamed(app, "payments-3")], defaults={"cooldown": "1h"})
    d = start_daemon(cfg)
    base = len(describes_of(sim, co["id"]))
    wait_for(lambda: len(describes_of(sim, co["id"])) >= base + 3, timeout=20, what="3 polls after restart")
    assert sim.rollback_calls(co["id"]) == 1
    after = json.loads(key_file(tmp_path, app).read_text())
    assert after["acts"] == before["acts"]
    assert after["cooldown_until_ms"] == before["cooldown_until_ms"]
    assert after["name"] == "payments-3"


def test_named_file_of_0_1_is_migrated(sim, tmp_path, start_daemon):
    co, app = stuck_app(sim, lag=False)
    now = int(time.time() * 1000)
    legacy = Path(tmp_path) / "state" / "payments.json"
    legacy.parent.mkdir(exist_ok=True)
    legacy.write_text(json.dumps({
        "version": 1, "app": "payments", "cooldown_until_ms": 0, "last_change_order_id": co["id"],
        "acts": [{"change_order_id": co["id"], "rule": "batch-error", "action": "rollback",
                  "intent_ms": now - 5000, "result": "unconfirmed", "detail": None,
                  "rollback_order_id": None, "finished_ms": now - 4000}],
        "pending": []}))
    d = start_daemon(write_config(tmp_path, sim, [app]))
    d.wait_for_log(re.compile(r"state of payments migrated from .*payments\.json"))
    d.wait_for_log(re.compile(r"rollguard-action-skipped app=payments co=%s .*already acted" % co["id"]),
                   timeout=20)
    assert sim.rollback_calls(co["id"]) == 0
    assert not legacy.exists() and list(legacy.parent.glob("payments.json.migrated-*"))
    assert json.loads(key_file(tmp_path, app).read_text())["acts"][0]["change_order_id"] == co["id"]


def test_by_order_index_stops_a_second_call_whatever_the_config(sim, tmp_path, start_daemon):
    """The app's identity changes in the config while the same order stays
    visible: the record is another one, but the by-order index says no."""
    co, app = stuck_app(sim)
    d = start_daemon(write_config(tmp_path, sim, [app]))
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-action-done app=payments"))
    d.stop()
    assert (Path(tmp_path) / "state" / "by-order" / co["id"]).exists()
    # another identity (the region changed in the config; the simulator
    # serves the app whatever the region): an empty record, the same order
    d = start_daemon(write_config(tmp_path, sim, [config_app("payments", app["app_id"], region="cn-shanghai")]))
    d.wait_for_log(re.compile(r"co=%s .*(by-order index)" % co["id"]), timeout=20)
    assert sim.rollback_calls(co["id"]) == 1


# --------------------------------------------------------------------------
# 2. damaged records quarantine, `state repair` ends it


def test_damaged_record_quarantines_and_state_repair(sim, tmp_path, start_daemon, run_cli):
    from test_alerts import free_port, write_token, Listener
    co, app = stuck_app(sim, lag=False)
    port = free_port()
    cfg = write_config(tmp_path, sim, [app], extra={"alerts": {
        "listen": f"127.0.0.1:{port}", "token_file": str(write_token(Path(tmp_path) / "alert-token"))}})
    f = key_file(tmp_path, app)
    text = ('{"version": 7, "app": "sae_cn-hangzhou_%s", "acts": [{"change_order_id": "%s", '
            '"rule": "batch-error", "result": "done"}], "pending": [{"change_order_id": "pending-co"'
            % (app["app_id"], co["id"]))
    f.write_text(text)
    d = start_daemon(cfg)
    line = d.wait_for_log(re.compile(r"err rollguard-state-quarantined app=payments:"))
    assert str(f) in line and "unexpected end of file" in line
    d.wait_for_log(re.compile(r"rollguard-action-skipped app=payments .*quarantined"), timeout=20)
    assert f.read_text() == text, "the damaged record must be kept as it is"
    lst = Listener(port)
    st = next(a for a in lst.status()["apps"] if a["name"] == "payments")
    assert st["quarantined"] is True
    assert 'rollguard_app_quarantined{app="payments"} 1' in lst.metrics_text()
    assert sim.rollback_calls(co["id"]) == 0

    r = run_cli("--config", cfg, "state", "repair", "payments")
    assert r.returncode == 0, r.stderr
    assert "keeping 1 change order" in r.stdout
    moved = list(f.parent.glob(f.name + ".broken-*"))
    assert len(moved) == 1 and moved[0].read_text() == text
    fresh = json.loads(f.read_text())
    assert [(a["change_order_id"], a["result"]) for a in fresh["acts"]] == [(co["id"], "unconfirmed")]

    # the daemon picks the fresh record up by itself, and still never acts
    # on the order the damaged record knew
    d.wait_for_log(re.compile(r"rollguard-state-quarantined app=payments: payments: state file reads again"),
                   timeout=20)
    d.wait_for_log(re.compile(r"rollguard-action-skipped app=payments co=%s .*already acted" % co["id"]),
                   timeout=20)
    assert sim.rollback_calls(co["id"]) == 0
    assert 'rollguard_app_quarantined{app="payments"} 0' in lst.metrics_text()
    # a healthy record is left alone
    r = run_cli("--config", cfg, "state", "repair", "payments")
    assert r.returncode == 0 and "reads fine; nothing to repair" in r.stdout


def test_bad_files_of_one_app_do_not_stop_the_others(sim, tmp_path, start_daemon):
    co, good = stuck_app(sim, name="good", lag=False)
    dir_app, zero_app, fifo_app = (sae_app(name=n) for n in ("as-dir", "to-dev-zero", "as-fifo"))
    for a in (dir_app, zero_app, fifo_app):
        sim.add_app(a)
    cfg = write_config(tmp_path, sim, [dir_app, zero_app, fifo_app, good])
    key_file(tmp_path, dir_app).mkdir()
    key_file(tmp_path, zero_app).symlink_to("/dev/zero")
    os.mkfifo(key_file(tmp_path, fifo_app))
    d = start_daemon(cfg)
    d.wait_for_log(re.compile(r"rollguard-state-quarantined app=as-dir: .*is a directory"))
    d.wait_for_log(re.compile(r"rollguard-state-quarantined app=to-dev-zero: .*symbolic link"))
    d.wait_for_log(re.compile(r"rollguard-state-quarantined app=as-fifo: .*is a FIFO"))
    sim.wait_for_rollback(co["id"], timeout=20)
    # SIGTERM is honoured promptly (0.1 hung in open() on the FIFO)
    d.send_signal(signal.SIGTERM)
    assert d.wait_exit(timeout=10) == 0


# --------------------------------------------------------------------------
# 4. FIFOs never hang us


def test_fifo_config_and_credentials_do_not_hang(sim, tmp_path, start_daemon, run_cli):
    fifo = Path(tmp_path) / "fifo.yaml"
    os.mkfifo(fifo)
    r = run_cli("--config", fifo, "check", timeout=10)
    assert r.returncode == 1 and f"{fifo}: cannot read: {fifo} is a FIFO, not a regular file" in r.stderr

    creds = Path(tmp_path) / "creds-fifo"
    os.mkfifo(creds)
    app = sae_app(name="x")
    sim.add_app(app)
    cfg = write_config(tmp_path, sim, [app], extra={"credentials": {"file": str(creds)}})
    r = run_cli("--config", cfg, "check", timeout=10,
                env={"ALIBABA_CLOUD_ACCESS_KEY_ID": None, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": None})
    assert r.returncode == 1 and f"credentials file {creds} is a FIFO" in r.stdout + r.stderr

    # a running daemon whose config becomes a FIFO: the reload fails, the
    # loop goes on
    cfg = write_config(tmp_path, sim, [app])
    d = start_daemon(cfg)
    d.wait_for_log("rollguard-started")
    cfg.unlink()
    os.mkfifo(cfg)
    mark = d.mark()
    d.reload()
    line = d.wait_for_log("rollguard-reload-failed", since=mark)
    assert "is a FIFO" in line
    mark = d.mark()
    d.reload()
    d.wait_for_log("rollguard-reload-failed", since=mark)
    assert d.running


# --------------------------------------------------------------------------
# 5, 6. symlinks, ownership, the lock


def test_fifo_alert_token_does_not_hang(sim, tmp_path, start_daemon):
    """The alert token is read at start and on every reload: a FIFO in its
    place is refused at once with its type named, never waited on."""
    token = Path(tmp_path) / "alert-token-fifo"
    os.mkfifo(token)
    app = sae_app(name="x")
    sim.add_app(app)
    cfg = write_config(tmp_path, sim, [app],
                       extra={"alerts": {"listen": f"127.0.0.1:{free_port()}", "token_file": str(token)}})
    d = start_daemon(cfg)
    line = d.wait_for_log("alert token", timeout=10)
    assert "is a FIFO" in line, line
    assert d.wait_exit(timeout=10) == 1


def test_planted_symlinks_are_not_followed(sim, tmp_path, start_daemon):
    co, app = stuck_app(sim, lag=False)
    cfg = write_config(tmp_path, sim, [app])
    state = Path(tmp_path) / "state"
    victim = Path(tmp_path) / "victim-created-by-lock"
    (state / ".lock").symlink_to(victim)
    d = start_daemon(cfg)
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"rollguard-action-done app=payments"))
    assert not victim.exists(), ".lock was opened through a planted symlink"
    assert not list(state.glob("*.tmp.*")), "temp files left behind"


def test_state_directory_must_be_private(sim, tmp_path, start_daemon):
    app = sae_app(name="x")
    sim.add_app(app)
    cfg = write_config(tmp_path, sim, [app])
    state = Path(tmp_path) / "state"
    state.chmod(0o777)
    d = start_daemon(cfg)
    assert d.wait_exit(timeout=10) == 1
    assert d.find_logs(re.compile(r"refusing to start: state directory .*state is writable by group or others"))
    if os.geteuid() == 0:
        state.chmod(0o700)
        os.chown(state, 65534, 65534)
        d = start_daemon(cfg)
        assert d.wait_exit(timeout=10) == 1
        assert d.find_logs(re.compile(r"state directory .* is owned by uid 65534"))


def test_lock_survives_deleting_its_file(sim, tmp_path, start_daemon):
    app = sae_app(name="x")
    sim.add_app(app)
    cfg = write_config(tmp_path, sim, [app])
    d = start_daemon(cfg)
    d.wait_for_log("rollguard-started")
    lock = Path(tmp_path) / "state" / ".lock"
    if lock.exists():
        lock.unlink()
    d2 = start_daemon(cfg)
    assert d2.wait_exit(timeout=10) != 0
    assert d2.find_logs("another rollguard is running with state directory")
    assert d.running


# --------------------------------------------------------------------------
# 10. credentials with control characters


@pytest.mark.parametrize("var", ["ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_ACCESS_KEY_ID"])
def test_crlf_credentials_are_refused_by_check_and_run(sim, tmp_path, start_daemon, run_cli, var):
    app = sae_app(name="x")
    sim.add_app(app)
    cfg = write_config(tmp_path, sim, [app])
    value = ("testsecret" if "SECRET" in var else "testid") + "\r"
    r = run_cli("--config", cfg, "check", env={var: value})
    assert r.returncode == 1, r.stdout
    assert f"environment variable {var} contains a control character" in r.stdout + r.stderr
    d = start_daemon(cfg, env={var: value})
    assert d.wait_exit(timeout=10) == 1
    assert d.find_logs(f"environment variable {var} contains a control character")
    assert not sim.requests()


# --------------------------------------------------------------------------
# 11. an intent that cannot be written


def test_unwritable_intent_is_said_once_and_costs_no_reread(sim, tmp_path, start_daemon):
    co, app = stuck_app(sim, lag=False)
    cfg = write_config(tmp_path, sim, [app])
    blocker = Path(tmp_path) / "state" / "by-order"
    blocker.write_text("not a directory")  # the index cannot be created
    d = start_daemon(cfg)
    d.wait_for_log(re.compile(r"err rollguard-action-failed app=payments .*cannot write the intent"), timeout=20)
    # While the order is in flight each look is one DescribeChangeOrder
    # (issue 11); a re-read that would fail on the same write would make it
    # two. So 12 reads take about 11 looks of 1s: at 2 a look, about 6s.
    base = len(describes_of(sim, co["id"]))
    t0 = time.monotonic()
    wait_for(lambda: len(describes_of(sim, co["id"])) >= base + 12, timeout=40, what="12 reads of the order")
    elapsed = time.monotonic() - t0
    assert elapsed >= 8.0, f"12 reads in {elapsed:.1f}s: the order is re-read on every look"
    assert len(d.find_logs(re.compile(r"err rollguard-action-failed .*cannot write the intent"))) == 1
    assert sim.rollback_calls(co["id"]) == 0
    blocker.unlink()
    sim.wait_for_rollback(co["id"], timeout=20)
    d.wait_for_log(re.compile(r"the state in .* can be written again"))
