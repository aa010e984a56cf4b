#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Local simulator of the SAE and EDAS change-order APIs (and of the ECS
metadata service) for rollguard's tests and demo.

Standard library only. Listens on 127.0.0.1 and nothing else.

  python3 tests/sim/sim.py [--port 0] [--port-file PATH] [--scenario FILE]
                           [--key ID:SECRET[:TOKEN] ...] [--log-requests]
                           [--account-limit N/WINDOW] [--pipeline-rate N/WINDOW]
                           [--pipeline-key ID:SECRET] [--pipeline-app APP_ID ...]

  --account-limit 60/min   the account's limit, shared by every AccessKey of
                           the account, over a sliding window (60/6s: time
                           compressed 10x); over it: Throttling.User
  --pipeline-rate 20/min   also run a deploy pipeline (pipeline.py) against
                           this simulator with its own key (default
                           pipeline:pipelinesecret) on the listed apps (default
                           every SAE app), counting its throttled calls

Every cloud API request must carry a valid ACS3-HMAC-SHA256 signature
(SPEC 5); the simulator recomputes it from what arrived. Tests drive it
through the unsigned JSON control API under /_sim/ (see CONTROL API below)
and assert on what it recorded.

CONTROL API (JSON in, JSON out; no signature):
  GET    /_sim/health
  POST   /_sim/reset                       everything back to the start state
  GET    /_sim/apps
  POST   /_sim/apps                        {"apps": [...]} replaces, {"app": {...}} adds
  POST   /_sim/apps/<app_id>/change_orders  body: a change order; appended (newest)
  GET    /_sim/change_orders/<id>
  PATCH  /_sim/change_orders/<id>          body: fields to set
  GET    /_sim/faults   POST /_sim/faults (rule, list, or {"faults": [...]})
  DELETE /_sim/faults
  GET    /_sim/requests[?action=&kind=&since=SEQ]   -> {"requests": [...]}
  GET    /_sim/rollbacks[?change_order_id=]         -> {"rollbacks": [...]}
  POST   /_sim/rate_limit                  {"limit": N|null, "window_seconds": 60,
                                            "status": 400|429}  (per account)
  GET    /_sim/account[?account=default]   {"limit", "window_seconds", "max_in_window",
                                            "by_key": {ID: {"calls", "throttled"}}}
  GET    /_sim/calls[?since=SEQ]           compact record of every API call:
                                           {"fields": [...], "calls": [[...], ...]}
  GET    /_sim/pipeline  POST /_sim/pipeline {"rate": "20/min", "access_key_id"?,
                                            "access_key_secret"?, "app_ids"?}
  DELETE /_sim/pipeline                    -> {"running", "calls", "ok", "throttled", ...}
  GET    /_sim/metadata  POST /_sim/metadata  {"role": "..."|null, "expiry_seconds": N}
  GET    /_sim/keys      POST /_sim/keys   {"access_key_id","access_key_secret",
                                           "security_token"?, "expires_in"?,
                                           "account"? (default "default")}
  POST   /_sim/keys/expire                 {"access_key_id": "..."}
  POST   /_sim/settings                    {"rollback_lag_seconds": N,
                                            "max_skew_seconds": 900,
                                            "rollback_visible_after_lag": false}
         (true: during the lag, app-level calls still name the old order)

MODEL (control API and --scenario JSON: {"apps": [...], "faults": [...],
"settings": {...}, "rate_limit": N, "metadata": {...}}; times in it count
from the start or the last reset):
  app:    {"app_id", "platform": "sae"|"edas", "edas_kind": "ecs"|"k8s"|null,
           "name", "change_orders": [oldest ... newest]}
  order:  {"id", "co_type": "CoDeploy", "status": 1, "sub_status": 0,
           "support_rollback": true, "batch_count", "batch_type": "auto"|"Manual",
           "batch_wait" (minutes), "create_ms" | "create_ago_seconds",
           "pipelines": [{"id", "name", "status", "start_ms"|"start_ago_seconds",
                          "update_ms"|"update_ago_seconds"}]  (default: batch_count
                          pipelines shaped by the status),
           "behaviour": "static"|"progress"|"stall_after" (or {"kind": ..., "steps",
           "step_seconds", "stall_after"}), "steps": 5, "step_seconds": 1,
           "stall_after": N, "rollback_lag_seconds", "description",
           "appear_after_seconds": N (invisible to every call until then; its
           CreateTime defaults to the moment it appears),
           "timeline": [{"after_seconds": N, "set": {fields}}] (applied once
           that long after the order was added, e.g. it gets stuck at N)}
  Behaviours advance only when an API call reads the order, by at most one
  step per read and per step_seconds. Rollback (AbortAndRollback, EDAS
  rollback / abort_and_rollback) of an in-flight order (0 1 8 9 11 12) adds a
  CoRollback order (progress, SupportRollback false) and terminates the
  original (6) after rollback_lag_seconds; meanwhile a second call gets
  Application.ChangerOrderRunning, afterwards Application.ChangerOrder.Not.Running.
  fault:  {"kind": http_status|throttle|upgrading|timeout|reset|malformed|html|
           empty|garbage|slow, "match": {action, app_id, change_order_id,
           path_prefix, method, kind ("api"|"metadata")}, "count": 1 (-1 forever),
           "after": 0, "status", "code", "message", "body", "seconds": 5,
           "process": false (true: the request takes effect, then the answer is
           faulted; always true for slow)}. The first matching rule wins.
  Rate limit: a sliding window over admitted calls per account; every key
  is in account "default" unless POST /_sim/keys names another.
"""

import argparse
import hashlib
import hmac
import http.server
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import quote, unquote_to_bytes

SAE_VERSION = "2019-05-06"
EDAS_VERSION = "2017-08-01"
ALGORITHM = "ACS3-HMAC-SHA256"
DEFAULT_KEYS = ["testid:testsecret"]
NONCE_WINDOW_S = 15 * 60
IN_FLIGHT = frozenset({0, 1, 8, 9, 11, 12})
CHINA_TZ = timezone(timedelta(hours=8))

SAE_LAST_STATUS = {
    0: "READY", 1: "RUNNING", 2: "SUCCESS", 3: "FAIL", 6: "ABORT",
    8: "WAIT_BATCH_CONFIRM", 9: "AUTO_BATCH_WAIT", 10: "SYSTEM_FAIL",
    11: "WAIT_APPROVE", 12: "APPROVED",
}
CO_TYPE_TEXT = {
    "CoDeploy": "Deploy application",
    "CoRollback": "Roll back application",
    "CoDeployHistroy": "Deploy a historical version",
    "CoScaleIn": "Scale in",
    "CoScaleOut": "Scale out",
    "CoRestartApplication": "Restart application",
    "CoBindSlb": "Bind SLB",
}
FAULT_KINDS = frozenset({"http_status", "throttle", "upgrading", "timeout", "reset",
                         "malformed", "html", "empty", "garbage", "slow"})

# --------------------------------------------------------------------------
# ACS3-HMAC-SHA256, server side (SPEC 5). Pure functions; test_sim.py checks
# them against both SPEC vectors.


def rfc3986(value):
    """RFC 3986 strict: only A-Z a-z 0-9 - _ . ~ stay (quote() always keeps
    exactly those when safe is empty)."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    return quote(value, safe="")


def canonical_uri(raw_path):
    # Decode what arrived, then encode each segment strictly: a client that
    # encoded correctly gets its own path back.
    if not raw_path:
        return "/"
    segments = raw_path.split("/")
    return "/".join(rfc3986(unquote_to_bytes(s)) for s in segments) or "/"


def parse_query(raw_query):
    """[(name, value)] decoded; '+' is a literal plus (clients encode space as %20)."""
    pairs = []
    if not raw_query:
        return pairs
    for part in raw_query.split("&"):
        if part == "":
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote_to_bytes(name).decode("utf-8", "replace"),
                      unquote_to_bytes(value).decode("utf-8", "replace")))
    return pairs


def canonical_query(pairs):
    encoded = sorted((rfc3986(n), rfc3986(v)) for n, v in pairs)
    return "&".join(f"{n}={v}" for n, v in encoded)


def canonical_request(method, raw_path, query_pairs, headers, signed_headers, body_sha256):
    """headers: lower-case name -> value as sent. signed_headers: the list."""
    lines = [method.upper(), canonical_uri(raw_path), canonical_query(query_pairs)]
    header_block = "".join(f"{h}:{headers.get(h, '').strip()}\n" for h in signed_headers)
    return "\n".join(lines) + "\n" + header_block + "\n" + ";".join(signed_headers) + "\n" + body_sha256


def string_to_sign(canonical):
    return ALGORITHM + "\n" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def compute_signature(secret, sts):
    return hmac.new(secret.encode("utf-8"), sts.encode("utf-8"), hashlib.sha256).hexdigest()


AUTH_RE = re.compile(
    r"^ACS3-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-fA-F]+)\s*$")


def parse_authorization(value):
    m = AUTH_RE.match(value or "")
    if not m:
        return None
    return m.group("cred"), m.group("signed").split(";"), m.group("sig")


# --------------------------------------------------------------------------
# Small helpers


def now_ms():
    return int(time.time() * 1000)


def new_uuid():
    return str(uuid.uuid4())


def request_id():
    return str(uuid.uuid4()).upper()


def iso_z(t):
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def china_time(ms):
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")


class SimError(Exception):
    """An API error answer: HTTP status + Code + Message."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def _int(value, name, default=None):
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ControlError(400, f"{name}: expected a number, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------
# The model


class Pipeline:
    FIELDS = ("id", "name", "status", "start_ms", "update_ms")

    def __init__(self, spec, index, base_ms):
        now = now_ms()
        self.id = spec.get("id") or new_uuid()
        self.name = spec.get("name") or f"Batch {index + 1} Change"
        self.status = _int(spec.get("status"), "pipeline.status", 0)
        self.start_ms = self._time(spec, "start", now, base_ms if self.status != 0 else None)
        self.update_ms = self._time(spec, "update", now, self.start_ms)

    @staticmethod
    def _time(spec, what, now, default):
        if spec.get(f"{what}_ms") is not None:
            return _int(spec[f"{what}_ms"], f"pipeline.{what}_ms")
        if spec.get(f"{what}_ago_seconds") is not None:
            ago = spec[f"{what}_ago_seconds"]
            if isinstance(ago, bool) or not isinstance(ago, (int, float)):
                raise ControlError(400, f"pipeline.{what}_ago_seconds: expected a number")
            return now - int(ago * 1000)
        return default

    def to_dict(self):
        return {f: getattr(self, f) for f in self.FIELDS}


class ChangeOrder:
    SETTABLE = ("co_type", "status", "sub_status", "support_rollback", "batch_count",
                "batch_type", "batch_wait", "create_ms", "behaviour", "steps",
                "step_seconds", "stall_after", "rollback_lag_seconds",
                "current_pipeline_id", "description", "pipelines",
                "create_ago_seconds", "appear_after_seconds", "timeline")

    def __init__(self, app_id, spec, settings):
        if not isinstance(spec, dict):
            raise ControlError(400, "a change order must be a JSON object")
        unknown = set(spec) - set(self.SETTABLE) - {"id"}
        if unknown:
            raise ControlError(400, f"unknown change order fields: {sorted(unknown)}")
        self.id = spec.get("id") or new_uuid()
        self.app_id = app_id
        self.co_type = "CoDeploy"
        self.status = 1
        self.sub_status = 0
        self.support_rollback = True
        self.batch_count = None
        self.batch_type = "auto"
        self.batch_wait = 0
        self.create_ms = now_ms()
        self.behaviour = "static"
        self.steps = 5
        self.step_seconds = 1.0
        self.stall_after = None
        self.rollback_lag_seconds = None  # None: the global setting
        self.current_pipeline_id = None
        self.description = None
        self.pipelines = []
        self.steps_done = 0
        self.last_step_t = time.time()
        self.stalled = False
        self.terminate_at = None
        self.rollback_calls = 0
        self.abort_calls = 0
        self.rolled_back_by = None
        self.rollback_of = None
        self.settings = settings
        self.added_t = time.time()
        self.visible_at = None
        self.appears_later = False  # scripted: not even found by id before visible_at
        self.timeline = []
        self.timeline_applied = []
        spec = dict(spec)
        if "pipelines" not in spec:
            spec["pipelines"] = None
        self.update(spec)

    def update(self, spec):
        unknown = set(spec) - set(self.SETTABLE) - {"id"}
        if unknown:
            raise ControlError(400, f"unknown change order fields: {sorted(unknown)}")
        if "id" in spec and spec["id"] != self.id:
            raise ControlError(400, "a change order's id cannot change")
        behaviour = spec.get("behaviour")
        if isinstance(behaviour, dict):
            behaviour = dict(behaviour)
            spec = dict(spec)
            spec["behaviour"] = behaviour.pop("kind", None) or self.behaviour
            for k in ("steps", "step_seconds", "stall_after"):
                if k in behaviour:
                    spec[k] = behaviour.pop(k)
            if behaviour:
                raise ControlError(400, f"unknown behaviour fields: {sorted(behaviour)}")
        if "behaviour" in spec:
            if spec["behaviour"] not in ("static", "progress", "stall_after"):
                raise ControlError(400, f"behaviour: unknown {spec['behaviour']!r}")
            self.behaviour = spec["behaviour"]
            self.stalled = False
            self.last_step_t = time.time()
        for key in ("co_type", "batch_type", "description", "current_pipeline_id"):
            if key in spec:
                self.__dict__[key] = spec[key]
        for key in ("status", "sub_status", "batch_wait", "steps", "batch_count", "stall_after", "create_ms"):
            if key in spec:
                self.__dict__[key] = _int(spec[key], key)
        for key in ("step_seconds", "rollback_lag_seconds"):
            if key in spec and spec[key] is not None:
                if isinstance(spec[key], bool) or not isinstance(spec[key], (int, float)):
                    raise ControlError(400, f"{key}: expected a number")
                self.__dict__[key] = float(spec[key])
        if spec.get("create_ago_seconds") is not None:
            self.create_ms = now_ms() - int(float(spec["create_ago_seconds"]) * 1000)
        if spec.get("appear_after_seconds") is not None:
            after = spec["appear_after_seconds"]
            if isinstance(after, bool) or not isinstance(after, (int, float)) or after < 0:
                raise ControlError(400, "appear_after_seconds: expected a number >= 0")
            self.visible_at = time.time() + float(after)
            self.appears_later = True
            if spec.get("create_ms") is None and spec.get("create_ago_seconds") is None:
                self.create_ms = int(self.visible_at * 1000)
        if "timeline" in spec:
            self._set_timeline(spec["timeline"])
        if "support_rollback" in spec:
            if not isinstance(spec["support_rollback"], bool):
                raise ControlError(400, "support_rollback: expected a boolean")
            self.support_rollback = spec["support_rollback"]
        if self.behaviour == "stall_after" and self.stall_after is None:
            self.stall_after = 2
        if "pipelines" in spec:
            self._set_pipelines(spec["pipelines"])
        if self.batch_count is None:
            self.batch_count = len(self.pipelines)

    def _set_timeline(self, steps):
        if not isinstance(steps, list):
            raise ControlError(400, "timeline: expected a list of {after_seconds, set}")
        out = []
        for step in steps:
            if not isinstance(step, dict) or set(step) - {"after_seconds", "set"}:
                raise ControlError(400, "timeline: each step is {after_seconds, set}")
            after, fields = step.get("after_seconds"), step.get("set")
            if isinstance(after, bool) or not isinstance(after, (int, float)) or not isinstance(fields, dict):
                raise ControlError(400, "timeline: after_seconds is a number, set an object")
            bad = set(fields) - set(self.SETTABLE) or set(fields) & {"timeline", "appear_after_seconds"}
            if bad:
                raise ControlError(400, f"timeline: cannot set {sorted(bad)}")
            out.append((self.added_t + float(after), dict(fields)))
        self.timeline = sorted(out, key=lambda st: st[0])

    def _set_pipelines(self, specs):
        if specs is None:
            # Realistic defaults: batch_count pipelines, shaped by the status.
            n = self.batch_count or 2
            specs = []
            for i in range(n):
                if self.status == 2:
                    st = 2
                elif self.status in (0, 11, 12):
                    st = 0
                elif self.status in (8, 9) and n > 1:
                    st = 2 if i == 0 else (self.status if i == 1 else 0)
                elif i == 0:
                    st = 3 if self.status == 1 and self.sub_status == 1 else self.status
                else:
                    st = 0
                specs.append({"status": st})
            self.batch_count = n
        if not isinstance(specs, list) or not all(isinstance(p, dict) for p in specs):
            raise ControlError(400, "pipelines: expected a list of objects")
        self.pipelines = [Pipeline(p, i, self.create_ms) for i, p in enumerate(specs)]

    # --- time passes -----------------------------------------------------

    def resolve(self, now):
        """Time-driven state: scripted timeline steps and a lagging
        rollback's termination land."""
        while self.timeline and self.timeline[0][0] <= now:
            at, fields = self.timeline.pop(0)
            self.update(fields)
            self.timeline_applied.append(at)
        if self.terminate_at is not None and now >= self.terminate_at:
            self.terminate_at = None
            self._terminate()

    def _terminate(self):
        self.status = 6
        t = now_ms()
        for p in self.pipelines:
            if p.status in IN_FLIGHT:
                p.status = 6
                p.update_ms = t

    def advance(self, now):
        """One read of the order by the API: maybe one step of progress."""
        self.resolve(now)
        if self.behaviour == "static" or self.stalled or self.terminate_at is not None:
            return
        if self.status not in (0, 1, 9, 12):
            return
        if self.behaviour == "stall_after" and self.steps_done >= self.stall_after:
            self._stall()
            return
        if now - self.last_step_t < self.step_seconds:
            return
        self.steps_done += 1
        self.last_step_t = now
        self.status = 1
        t = int(now * 1000)
        n = len(self.pipelines)
        if self.steps_done >= self.steps:
            self.status = 2
            self.sub_status = 0
            for p in self.pipelines:
                if p.status != 2:
                    p.status = 2
                    p.start_ms = p.start_ms or t
                    p.update_ms = t
            return
        if n:
            idx = min(n - 1, self.steps_done * n // max(self.steps, 1))
            for p in self.pipelines[:idx]:
                if p.status != 2:
                    p.status = 2
                    p.update_ms = t
            cur = self.pipelines[idx]
            cur.status = 1
            cur.start_ms = cur.start_ms or t
            cur.update_ms = t
        if self.behaviour == "stall_after" and self.steps_done >= self.stall_after:
            self._stall()

    def _stall(self):
        self.stalled = True
        self.status = 1
        self.sub_status = 1
        cur = self.current_pipeline()
        if cur is not None:
            cur.status = 3

    def current_pipeline(self):
        if self.current_pipeline_id:
            for p in self.pipelines:
                if p.id == self.current_pipeline_id:
                    return p
        for p in self.pipelines:
            if p.status != 2:
                return p
        return self.pipelines[-1] if self.pipelines else None

    def in_flight(self):
        return self.status in IN_FLIGHT

    def lag(self):
        if self.rollback_lag_seconds is not None:
            return self.rollback_lag_seconds
        return float(self.settings.get("rollback_lag_seconds", 0))

    def to_dict(self):
        return {
            "id": self.id, "app_id": self.app_id, "co_type": self.co_type,
            "status": self.status, "sub_status": self.sub_status,
            "support_rollback": self.support_rollback, "batch_count": self.batch_count,
            "batch_type": self.batch_type, "batch_wait": self.batch_wait,
            "create_ms": self.create_ms, "behaviour": self.behaviour, "steps": self.steps,
            "step_seconds": self.step_seconds, "stall_after": self.stall_after,
            "steps_done": self.steps_done, "stalled": self.stalled,
            "rollback_lag_seconds": self.rollback_lag_seconds,
            "terminate_at": self.terminate_at, "rollback_calls": self.rollback_calls,
            "abort_calls": self.abort_calls, "rolled_back_by": self.rolled_back_by,
            "rollback_of": self.rollback_of, "description": self.description,
            "visible_at": self.visible_at, "timeline_pending": [t for t, _ in self.timeline],
            "timeline_applied": list(self.timeline_applied),
            "current_pipeline_id": (self.current_pipeline().id if self.current_pipeline() else None),
            "pipelines": [p.to_dict() for p in self.pipelines],
        }


class App:
    def __init__(self, spec, sim):
        if not isinstance(spec, dict):
            raise ControlError(400, "an app must be a JSON object")
        unknown = set(spec) - {"app_id", "platform", "edas_kind", "name", "change_orders", "orders"}
        if unknown:
            raise ControlError(400, f"unknown app fields: {sorted(unknown)}")
        self.app_id = spec.get("app_id") or new_uuid()
        self.platform = spec.get("platform", "sae")
        if self.platform not in ("sae", "edas"):
            raise ControlError(400, f"platform: expected sae or edas, got {self.platform!r}")
        self.edas_kind = spec.get("edas_kind")
        if self.edas_kind not in (None, "ecs", "k8s"):
            raise ControlError(400, f"edas_kind: expected ecs or k8s, got {self.edas_kind!r}")
        self.name = spec.get("name")
        self.orders = []
        for co in spec.get("change_orders", spec.get("orders", [])) or []:
            sim.add_order(self, co)

    def to_dict(self):
        return {"app_id": self.app_id, "platform": self.platform, "edas_kind": self.edas_kind,
                "name": self.name, "change_orders": [co.to_dict() for co in self.orders]}


class FaultRule:
    MATCH_KEYS = ("action", "app_id", "change_order_id", "path_prefix", "method", "kind")

    def __init__(self, spec, rule_id):
        if not isinstance(spec, dict):
            raise ControlError(400, "a fault rule must be a JSON object")
        self.id = rule_id
        self.kind = spec.get("kind")
        if self.kind not in FAULT_KINDS:
            raise ControlError(400, f"fault kind: expected one of {sorted(FAULT_KINDS)}")
        self.match = spec.get("match") or {}
        if not isinstance(self.match, dict) or set(self.match) - set(self.MATCH_KEYS):
            raise ControlError(400, f"fault match: keys are {self.MATCH_KEYS}")
        self.count = _int(spec.get("count"), "count", 1)
        self.after = _int(spec.get("after"), "after", 0)
        self.status = _int(spec.get("status"), "status", None)
        self.code = spec.get("code")
        self.message = spec.get("message")
        self.body = spec.get("body")
        self.seconds = float(spec.get("seconds", 5))
        self.process = bool(spec.get("process", self.kind == "slow"))
        self.seen = 0
        self.applied = 0
        self.spec = spec

    def matches(self, info):
        m = self.match
        for key in ("action", "app_id", "change_order_id", "method", "kind"):
            if key in m and m[key] != info.get(key):
                return False
        if "path_prefix" in m and not info["path"].startswith(m["path_prefix"]):
            return False
        return True

    def take(self, info):
        """Count a matching request; True when this one gets the fault."""
        if not self.matches(info):
            return False
        self.seen += 1
        if self.seen <= self.after:
            return False
        if self.count >= 0 and self.applied >= self.count:
            return False
        self.applied += 1
        return True

    def to_dict(self):
        d = dict(self.spec)
        d.update({"id": self.id, "seen": self.seen, "applied": self.applied})
        return d


# --------------------------------------------------------------------------
# Routes


class Route:
    def __init__(self, product, method, action, param, handler):
        self.product = product
        self.method = method
        self.action = action
        self.param = param  # "AppId" or "ChangeOrderId"
        self.handler = handler


ROUTES = {
    "/pop/v1/sam/app/describeApplicationStatus":
        Route("sae", "GET", "DescribeApplicationStatus", "AppId", "sae_app_status"),
    "/pop/v1/sam/changeorder/ListChangeOrders":
        Route("sae", "GET", "ListChangeOrders", "AppId", "sae_list"),
    "/pop/v1/sam/changeorder/DescribeChangeOrder":
        Route("sae", "GET", "DescribeChangeOrder", "ChangeOrderId", "sae_describe"),
    "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder":
        Route("sae", "PUT", "AbortAndRollbackChangeOrder", "ChangeOrderId", "rollback"),
    "/pop/v1/sam/changeorder/AbortChangeOrder":
        Route("sae", "PUT", "AbortChangeOrder", "ChangeOrderId", "abort"),
    "/pop/v5/changeorder/change_order_list":
        Route("edas", "POST", "ListRecentChangeOrder", "AppId", "edas_list"),
    "/pop/v5/changeorder/change_order_info":
        Route("edas", "POST", "GetChangeOrderInfo", "ChangeOrderId", "edas_info"),
    "/pop/v5/oam/changeorder/rollback":
        Route("edas", "PUT", "RollbackChangeOrder", "ChangeOrderId", "rollback"),
    "/pop/v5/changeorder/change_order_abort_and_rollback":
        Route("edas", "PUT", "AbortAndRollbackChangeOrder", "ChangeOrderId", "rollback"),
    "/pop/v5/changeorder/change_order_abort":
        Route("edas", "PUT", "AbortChangeOrder", "ChangeOrderId", "abort"),
}
VERSIONS = {"sae": SAE_VERSION, "edas": EDAS_VERSION}
METADATA_PREFIX = "/latest/"
EDAS_ECS_ONLY = "RollbackChangeOrder"


class Key:
    def __init__(self, key_id, secret, token=None, expires_at=None, source="cli", account="default"):
        self.id = key_id
        self.secret = secret
        self.token = token
        self.expires_at = expires_at
        self.expired = False
        self.source = source
        self.account = account

    def to_dict(self):
        return {"access_key_id": self.id, "access_key_secret": self.secret,
                "security_token": self.token, "expires_at": self.expires_at,
                "expired": self.expired, "source": self.source, "account": self.account}


class Simulator:
    """All state, behind one lock. HTTP handler threads call in."""

    def __init__(self, cli_keys, scenario=None, account_limit=None):
        self.lock = threading.RLock()
        self.stop = threading.Event()
        self.cli_keys = cli_keys
        self.scenario = scenario
        self.account_limit = account_limit  # (N, window seconds) from the command line
        self.port = None                    # set by make_server
        self.pipeline = None
        self.pipeline_from_cli = False
        self.reset()

    # --- state management --------------------------------------------------

    def reset(self):
        with self.lock:
            self.keys = {}
            for spec in self.cli_keys:
                key_id, secret, token = (spec.split(":", 2) + [None])[:3]
                self.keys[key_id] = Key(key_id, secret, token or None)
            self.apps = {}
            self.orders = {}
            self.faults = []
            self.fault_seq = 0
            self.requests = []
            self.rollbacks = []
            self.nonces = {}
            self.arrivals = {}   # account -> admitted times still in the window
            self.admitted = {}   # account -> every admitted time (max_in_window)
            self.by_key = {}     # key -> {"calls", "throttled"}
            self.rate_limit = self.account_limit[0] if self.account_limit else None
            self.rate_window = self.account_limit[1] if self.account_limit else 60.0
            self.throttle_status = 400
            if self.pipeline is not None:
                if self.pipeline_from_cli:
                    self.pipeline.reset_counts()
                else:
                    # no join: its call in flight may be waiting for this lock
                    self.pipeline.halt.set()
                    self.pipeline = None
            self.settings = {"rollback_lag_seconds": 0.0, "max_skew_seconds": NONCE_WINDOW_S,
                             "rollback_visible_after_lag": 0.0}
            self.metadata = {"role": "rollguard-test-role", "expiry_seconds": 3600}
            self.imds_tokens = {}
            self.issued = []
            if self.scenario:
                self.load_scenario(self.scenario)

    def load_scenario(self, doc):
        self.set_apps(doc.get("apps", []))
        for rule in doc.get("faults", []):
            self.add_fault(rule)
        if "settings" in doc:
            self.update_settings(doc["settings"])
        if doc.get("rate_limit") is not None:
            self.rate_limit = int(doc["rate_limit"])
        if "metadata" in doc:
            self.set_metadata(doc["metadata"])

    def set_apps(self, specs, replace=True):
        if not isinstance(specs, list):
            raise ControlError(400, "apps: expected a list")
        with self.lock:
            if replace:
                self.apps = {}
                self.orders = {}
            for spec in specs:
                self.add_app(spec)
            return [a.app_id for a in self.apps.values()]

    def add_app(self, spec):
        with self.lock:
            app_id = spec.get("app_id") if isinstance(spec, dict) else None
            if app_id in self.apps:
                for co in self.apps[app_id].orders:
                    self.orders.pop(co.id, None)
                del self.apps[app_id]
            app = App(spec, self)
            self.apps[app.app_id] = app
            return app

    def add_order(self, app, spec):
        co = ChangeOrder(app.app_id, spec, self.settings)
        if co.id in self.orders:
            raise ControlError(409, f"change order {co.id} already exists")
        self.orders[co.id] = co
        app.orders.append(co)
        return co

    def add_fault(self, spec):
        with self.lock:
            self.fault_seq += 1
            rule = FaultRule(spec, self.fault_seq)
            self.faults.append(rule)
            return rule

    def update_settings(self, spec):
        with self.lock:
            for k, v in spec.items():
                if k not in self.settings:
                    raise ControlError(400, f"unknown setting {k!r}")
                if k == "rollback_visible_after_lag" and isinstance(v, bool):
                    v = 1.0 if v else 0.0
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ControlError(400, f"{k}: expected a number")
                self.settings[k] = float(v)

    def set_metadata(self, spec):
        with self.lock:
            for k, v in spec.items():
                if k not in self.metadata:
                    raise ControlError(400, f"unknown metadata setting {k!r}")
                self.metadata[k] = v

    # --- recording -----------------------------------------------------------

    def record(self, **fields):
        with self.lock:
            fields["seq"] = len(self.requests) + 1
            self.requests.append(fields)
            return fields

    # --- signature checking --------------------------------------------------

    def authenticate(self, req):
        """Raises SimError; returns the Key. Consumes the nonce when valid."""
        hdrs = req.headers_lower
        parsed = parse_authorization(hdrs.get("authorization"))
        if parsed is None:
            raise SimError(400, "IncompleteSignature",
                           "Authorization header missing or not ACS3-HMAC-SHA256 "
                           "Credential=...,SignedHeaders=...,Signature=...")
        key_id, signed, sig = parsed
        rec = req.record
        rec["access_key_id"] = key_id
        with self.lock:
            key = self.keys.get(key_id)
        if key is None:
            raise SimError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")

        rec["signature_ok"] = False
        if signed != sorted(signed) or any(h != h.lower() for h in signed) or len(set(signed)) != len(signed):
            raise SimError(400, "SignatureDoesNotMatch",
                           "SignedHeaders must be lower-case, unique and sorted: " + ";".join(signed))
        required = {"host", "x-acs-action", "x-acs-content-sha256", "x-acs-date",
                    "x-acs-signature-nonce", "x-acs-version"}
        required |= {h for h in hdrs if h.startswith("x-acs-")}
        missing = sorted(required - set(signed))
        if missing:
            raise SimError(400, "SignatureDoesNotMatch",
                           "SignedHeaders lacks required headers: " + ";".join(missing))
        absent = [h for h in signed if h not in hdrs]
        if absent:
            raise SimError(400, "SignatureDoesNotMatch",
                           "SignedHeaders names headers that were not sent: " + ";".join(absent))
        body_hash = hashlib.sha256(req.body).hexdigest()
        if hdrs["x-acs-content-sha256"].strip() != body_hash:
            raise SimError(400, "SignatureDoesNotMatch",
                           "x-acs-content-sha256 does not match the request body (server: "
                           + body_hash + ")")
        canonical = canonical_request(req.method, req.raw_path, req.query_pairs, hdrs, signed, body_hash)
        sts = string_to_sign(canonical)
        expected = compute_signature(key.secret, sts)
        if not hmac.compare_digest(expected, sig.lower()):
            raise SimError(400, "SignatureDoesNotMatch",
                           "Specified signature does not match our calculation. server canonical request is:\n"
                           + canonical + "\nserver string to sign is:\n" + sts)
        rec["signature_ok"] = True

        if key.expired or (key.expires_at is not None and time.time() >= key.expires_at):
            if key.token:
                raise SimError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
            raise SimError(400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
        token = hdrs.get("x-acs-security-token")
        if key.token is not None and token != key.token:
            raise SimError(400, "InvalidSecurityToken.Mismatch",
                           "x-acs-security-token is missing or does not belong to this AccessKeyId.")
        if key.token is None and token is not None:
            raise SimError(400, "InvalidSecurityToken.Mismatch",
                           "x-acs-security-token sent with a permanent AccessKeyId.")

        date = hdrs["x-acs-date"].strip()
        try:
            t = datetime.strptime(date, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise SimError(400, "InvalidTimeStamp.Format",
                           f"x-acs-date {date!r} is not YYYY-MM-DDTHH:MM:SSZ") from None
        if abs(time.time() - t) > self.settings["max_skew_seconds"]:
            raise SimError(400, "InvalidTimeStamp.Expired",
                           f"x-acs-date {date} is more than 15 minutes from the server time {iso_z(time.time())}")
        nonce = hdrs["x-acs-signature-nonce"].strip()
        if not nonce:
            raise SimError(400, "MissingSignatureNonce", "x-acs-signature-nonce is empty")
        with self.lock:
            now = time.time()
            if len(self.nonces) > 4096:
                self.nonces = {n: ts for n, ts in self.nonces.items() if now - ts < NONCE_WINDOW_S}
            seen = self.nonces.get(nonce)
            if seen is not None and now - seen < NONCE_WINDOW_S:
                raise SimError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self.nonces[nonce] = now
        return key

    # --- API semantics (called with the lock held) --------------------------

    def find_app(self, route, app_id):
        if not app_id:
            raise SimError(400, "InvalidParameter.NotEmpty", "AppId must not be empty.")
        app = self.apps.get(app_id)
        if app is None or app.platform != route.product:
            raise SimError(404, "InvalidAppId.NotFound", f"The application {app_id} does not exist.")
        return app

    def find_order(self, route, co_id):
        if not co_id:
            raise SimError(400, "InvalidParameter.NotEmpty", "ChangeOrderId must not be empty.")
        co = self.orders.get(co_id)
        if (co is None or self.apps[co.app_id].platform != route.product
                or (co.appears_later and co.visible_at > time.time())):
            raise SimError(404, "InvalidChangeOrder.NotFound", f"The change order {co_id} does not exist.")
        return co

    def _sae_ok(self, data):
        return {"RequestId": request_id(), "Code": "200", "Message": "success", "Success": True,
                "TraceId": "%032x" % random.getrandbits(128), "Data": data}

    def _edas_ok(self, **fields):
        out = {"Code": 200, "Message": "success", "RequestId": request_id()}
        out.update(fields)
        return out

    @staticmethod
    def visible_orders(app, now):
        return [co for co in app.orders if co.visible_at is None or co.visible_at <= now]

    def sae_app_status(self, route, params, now):
        app = self.find_app(route, params.get("AppId"))
        visible = self.visible_orders(app, now)
        last = visible[-1] if visible else None
        if last is not None:
            last.advance(now)
        running = bool(last and last.in_flight())
        return self._sae_ok({
            "AppId": app.app_id,
            "CurrentStatus": "RUNNING",
            "RunningInstances": 2,
            "LastChangeOrderId": last.id if last else None,
            "LastChangeOrderRunning": running,
            "LastChangeOrderStatus": SAE_LAST_STATUS.get(last.status) if last else None,
            "SubStatus": "RUNNING_BUT_HAS_ERROR" if running and last.sub_status == 1 else None,
            "EnableAgent": False,
        })

    def sae_list(self, route, params, now):
        app = self.find_app(route, params.get("AppId"))
        try:
            page = int(params.get("CurrentPage") or 1)
            size = int(params.get("PageSize") or 10)
            co_status = params.get("CoStatus")
            co_status = int(co_status) if co_status not in (None, "") else None
        except ValueError:
            raise SimError(400, "InvalidParameter", "CurrentPage, PageSize and CoStatus are numbers.") from None
        if page < 1 or size < 1 or size > 100:
            raise SimError(400, "InvalidParameter", "CurrentPage >= 1, 1 <= PageSize <= 100.")
        for co in app.orders:
            co.advance(now)
        orders = [co for co in reversed(self.visible_orders(app, now)) if co_status is None or co.status == co_status]
        chunk = orders[(page - 1) * size: page * size]
        return self._sae_ok({
            "CurrentPage": page, "PageSize": size, "TotalSize": len(orders),
            "ChangeOrderList": [{
                "ChangeOrderId": co.id, "AppId": co.app_id, "Status": co.status,
                "SubStatus": co.sub_status, "CoTypeCode": co.co_type,
                "CoType": CO_TYPE_TEXT.get(co.co_type, co.co_type),
                "CreateTime": china_time(co.create_ms), "BatchCount": co.batch_count,
                "BatchType": sae_batch_type(co.batch_type), "BatchWaitTime": co.batch_wait,
                "Description": co.description, "Source": "console",
                "SupportRollback": co.support_rollback,
            } for co in chunk],
        })

    def sae_describe(self, route, params, now):
        co = self.find_order(route, params.get("ChangeOrderId"))
        co.advance(now)
        cur = co.current_pipeline()
        return self._sae_ok({
            "ChangeOrderId": co.id, "AppId": co.app_id,
            "AppName": self.apps[co.app_id].name,
            "Status": co.status, "SubStatus": co.sub_status,
            "CoType": CO_TYPE_TEXT.get(co.co_type, co.co_type), "CoTypeCode": co.co_type,
            "SupportRollback": co.support_rollback, "BatchCount": co.batch_count,
            "BatchType": sae_batch_type(co.batch_type), "BatchWaitTime": co.batch_wait,
            "CurrentPipelineId": cur.id if cur else None,
            "CreateTime": co.create_ms, "Description": co.description,
            "Pipelines": [{
                "PipelineId": p.id, "PipelineName": p.name, "Status": p.status,
                "StartTime": p.start_ms, "UpdateTime": p.update_ms,
                "ParallelCount": 0, "BatchType": 0,
            } for p in co.pipelines],
        })

    def edas_list(self, route, params, now):
        app = self.find_app(route, params.get("AppId"))
        for co in app.orders:
            co.advance(now)
        return self._edas_ok(ChangeOrderList={"ChangeOrder": [{
            "ChangeOrderId": co.id, "AppId": co.app_id, "Status": co.status,
            "CoTypeCode": co.co_type, "CoType": CO_TYPE_TEXT.get(co.co_type, co.co_type),
            "CreateTime": china_time(co.create_ms), "BatchType": edas_batch_type(co.batch_type),
            "BatchCount": co.batch_count, "Desc": co.description, "CreateUserId": "rollguard-sim",
        } for co in reversed(self.visible_orders(app, now))]})

    def edas_info(self, route, params, now):
        co = self.find_order(route, params.get("ChangeOrderId"))
        co.advance(now)
        return self._edas_ok(changeOrderInfo={
            "ChangeOrderId": co.id, "AppId": co.app_id, "Status": co.status,
            "CoTypeCode": co.co_type, "CoType": CO_TYPE_TEXT.get(co.co_type, co.co_type),
            "SupportRollback": co.support_rollback, "BatchCount": co.batch_count,
            "BatchType": edas_batch_type(co.batch_type), "CreateTime": china_time(co.create_ms),
            "Desc": co.description, "CreateUserId": "rollguard-sim",
            "PipelineInfoList": {"PipelineInfo": [{
                "PipelineId": p.id, "PipelineName": p.name, "PipelineStatus": p.status,
                "StartTime": str(p.start_ms) if p.start_ms is not None else None,
                "UpdateTime": str(p.update_ms) if p.update_ms is not None else None,
                "StageList": {"StageInfoDTO": []},
            } for p in co.pipelines]},
        })

    def _action_answer(self, route, co_id):
        if route.product == "sae":
            return self._sae_ok({"ChangeOrderId": co_id})
        return self._edas_ok(Data={"ChangeOrderId": co_id})

    def _record_action(self, route, co, result, code=None, new_id=None, fault=None):
        self.rollbacks.append({
            "change_order_id": co.id if co else None, "app_id": co.app_id if co else None,
            "action": route.action, "product": route.product, "t": time.time(),
            "result": result, "error_code": code, "new_change_order_id": new_id, "fault": fault,
        })

    def rollback(self, route, params, now, fault=None):
        co = None
        try:
            co = self.find_order(route, params.get("ChangeOrderId"))
            co.resolve(now)
            co.rollback_calls += 1
            app = self.apps[co.app_id]
            if route.product == "edas" and app.edas_kind is not None:
                wanted = "ecs" if route.action == EDAS_ECS_ONLY else "k8s"
                if app.edas_kind != wanted:
                    raise SimError(400, "InvalidOperation.AppType",
                                   f"{route.action} does not apply to {app.edas_kind} applications.")
            if co.terminate_at is not None:
                raise SimError(400, "Application.ChangerOrderRunning",
                               "A rollback of this change order is already running.")
            if not co.in_flight():
                raise SimError(400, "Application.ChangerOrder.Not.Running",
                               "The change order is not running.")
            if not co.support_rollback:
                raise SimError(400, "InvalidChangeOrder.NotSupportRollback",
                               "This change order does not support rollback.")
            new = self.add_order(app, {
                "co_type": "CoRollback", "status": 1, "behaviour": "progress",
                "support_rollback": False, "batch_count": 1, "batch_type": co.batch_type,
                "pipelines": [{"name": "Batch 1 Rollback", "status": 1}],
                "description": f"Rollback of {co.id}",
            })
            new.rollback_of = co.id
            co.rolled_back_by = new.id
            lag = co.lag()
            if lag > 0:
                co.terminate_at = now + lag
                if self.settings.get("rollback_visible_after_lag"):
                    # eventual consistency: app-level calls keep naming the
                    # old order as the latest until the lag is over
                    new.visible_at = now + lag
            else:
                co._terminate()
            self._record_action(route, co, "accepted", new_id=new.id, fault=fault)
            return self._action_answer(route, new.id)
        except SimError as e:
            self._record_action(route, co, "rejected", code=e.code, fault=fault)
            raise

    def abort(self, route, params, now, fault=None):
        co = None
        try:
            co = self.find_order(route, params.get("ChangeOrderId"))
            co.resolve(now)
            co.abort_calls += 1
            if co.terminate_at is not None:
                raise SimError(400, "Application.ChangerOrderRunning",
                               "A rollback of this change order is already running.")
            if not co.in_flight():
                raise SimError(400, "Application.ChangerOrder.Not.Running",
                               "The change order is not running.")
            co._terminate()
            self._record_action(route, co, "accepted", fault=fault)
            return self._action_answer(route, co.id)
        except SimError as e:
            self._record_action(route, co, "rejected", code=e.code, fault=fault)
            raise

    def check_rate(self, now, key=None):
        """Sliding window over the calls the account admitted so far (every
        arrival is in self.requests anyway), shared by all its keys. Call
        with the lock held."""
        now = time.time()  # not the arrival time: keeps the window sorted
        account = key.account if key is not None else "default"
        counts = self.by_key.setdefault(key.id if key is not None else None, {"calls": 0, "throttled": 0})
        counts["calls"] += 1
        window = self.arrivals.setdefault(account, [])
        cutoff = now - self.rate_window
        while window and window[0] <= cutoff:
            window.pop(0)
        if self.rate_limit is not None and len(window) >= self.rate_limit:
            counts["throttled"] += 1
            raise SimError(self.throttle_status, "Throttling.User", "Request was denied due to user flow control.")
        window.append(now)
        self.admitted.setdefault(account, []).append(now)

    def max_in_window(self, account):
        times, most, j = self.admitted.get(account, []), 0, 0
        for i, t in enumerate(times):
            while times[j] <= t - self.rate_window:
                j += 1
            most = max(most, i - j + 1)
        return most

    # --- the deploy pipeline ---------------------------------------------------

    def start_pipeline(self, rate, window, key_id, secret, app_ids=None, from_cli=False):
        import pipeline as pipemod  # here: pipeline.py imports this module
        with self.lock:
            if self.port is None:
                raise ControlError(409, "the simulator is not listening yet")
            if self.pipeline is not None:
                self.pipeline.halt.set()
            if key_id not in self.keys:
                self.keys[key_id] = Key(key_id, secret, source="pipeline")
            if from_cli:
                self.cli_keys = list(self.cli_keys) + [f"{key_id}:{secret}"]

            def sae_apps():
                with self.lock:
                    return [a.app_id for a in self.apps.values() if a.platform == "sae"]
            self.pipeline = pipemod.Pipeline(self.port, key_id, self.keys[key_id].secret, rate, window,
                                             app_ids or sae_apps)
            self.pipeline_from_cli = from_cli
            self.pipeline.start()
            return self.pipeline.stats()

    # --- metadata ------------------------------------------------------------

    def metadata_request(self, req):
        path = req.raw_path
        hdrs = req.headers_lower
        now = time.time()
        with self.lock:
            if path == "/latest/api/token":
                if req.method != "PUT":
                    return 405, "text/plain", b"method not allowed\n"
                ttl = hdrs.get("x-aliyun-ecs-metadata-token-ttl-seconds")
                if ttl is None or not ttl.strip().isdigit() or not 1 <= int(ttl) <= 21600:
                    return 400, "text/plain", b"X-aliyun-ecs-metadata-token-ttl-seconds: 1..21600 required\n"
                token = "imds-" + uuid.uuid4().hex
                self.imds_tokens[token] = now + int(ttl)
                return 200, "text/plain", token.encode()
            if req.method != "GET":
                return 405, "text/plain", b"method not allowed\n"
            token = hdrs.get("x-aliyun-ecs-metadata-token")
            if token is None or self.imds_tokens.get(token, 0) < now:
                return 401, "text/plain", b"missing or expired X-aliyun-ecs-metadata-token\n"
            base = "/latest/meta-data/ram/security-credentials/"
            if not path.startswith(base):
                return 404, "text/plain", b"not found\n"
            role = self.metadata["role"]
            rest = path[len(base):]
            if role is None:
                return 404, "text/plain", b"no RAM role is attached to this instance\n"
            if rest == "":
                return 200, "text/plain", role.encode()
            if rest != role:
                return 404, "text/plain", b"no such role\n"
            expiry = float(self.metadata["expiry_seconds"])
            key = Key("STS." + uuid.uuid4().hex[:20], uuid.uuid4().hex + uuid.uuid4().hex[:12],
                      "CAIS" + uuid.uuid4().hex * 3, now + expiry, source="metadata")
            self.keys[key.id] = key
            self.issued.append(key)
            body = {"AccessKeyId": key.id, "AccessKeySecret": key.secret,
                    "Expiration": iso_z(key.expires_at), "SecurityToken": key.token,
                    "LastUpdated": iso_z(now), "Code": "Success"}
            return 200, "application/json", json.dumps(body, indent=2).encode()

    # --- control API -----------------------------------------------------------

    def control(self, method, path, query, body):
        parts = [p for p in path[len("/_sim/"):].split("/") if p]
        with self.lock:
            if parts == ["health"] and method == "GET":
                return {"ok": True}
            if parts == ["reset"] and method == "POST":
                self.reset()
                return {"ok": True}
            if parts == ["apps"]:
                if method == "GET":
                    return {"apps": [a.to_dict() for a in self.apps.values()]}
                if method == "POST":
                    if "apps" in body:
                        return {"apps": self.set_apps(body["apps"])}
                    if "app" in body:
                        return {"app": self.add_app(body["app"]).to_dict()}
                    raise ControlError(400, 'expected {"apps": [...]} or {"app": {...}}')
            if len(parts) == 3 and parts[0] == "apps" and parts[2] == "change_orders" and method == "POST":
                app = self.apps.get(parts[1])
                if app is None:
                    raise ControlError(404, f"no app {parts[1]}")
                return self.add_order(app, body).to_dict()
            if len(parts) == 2 and parts[0] == "change_orders":
                co = self.orders.get(parts[1])
                if co is None:
                    raise ControlError(404, f"no change order {parts[1]}")
                co.resolve(time.time())
                if method == "PATCH":
                    co.update(body)
                if method in ("GET", "PATCH"):
                    return co.to_dict()
            if parts == ["faults"]:
                if method == "GET":
                    return {"faults": [f.to_dict() for f in self.faults]}
                if method == "DELETE":
                    self.faults = []
                    return {"ok": True}
                if method == "POST":
                    rules = body.get("faults", body) if isinstance(body, dict) else body
                    rules = rules if isinstance(rules, list) else [rules]
                    return {"ids": [self.add_fault(r).id for r in rules]}
            if parts == ["requests"] and method == "GET":
                out = self.requests
                since = int(query.get("since", 0) or 0)
                out = [r for r in out if r["seq"] > since]
                for key in ("action", "kind"):
                    if query.get(key):
                        out = [r for r in out if r.get(key) == query[key]]
                return {"requests": out}
            if parts == ["rollbacks"] and method == "GET":
                out = self.rollbacks
                if query.get("change_order_id"):
                    out = [r for r in out if r["change_order_id"] == query["change_order_id"]]
                return {"rollbacks": out}
            if parts == ["rate_limit"] and method == "POST":
                limit = body.get("limit")
                self.rate_limit = _int(limit, "limit") if limit else None
                self.rate_window = float(body.get("window_seconds", 60))
                status = _int(body.get("status"), "status", 400)
                if status not in (400, 429):
                    raise ControlError(400, "status: SAE answers Throttling with 400 or 429")
                self.throttle_status = status
                return {"limit": self.rate_limit, "window_seconds": self.rate_window, "status": status}
            if parts == ["account"] and method == "GET":
                account = query.get("account") or "default"
                keys = {k: dict(v) for k, v in self.by_key.items()
                        if k is not None and k in self.keys and self.keys[k].account == account}
                return {"account": account, "limit": self.rate_limit, "window_seconds": self.rate_window,
                        "status": self.throttle_status, "max_in_window": self.max_in_window(account),
                        "by_key": keys}
            if parts == ["calls"] and method == "GET":
                since = int(query.get("since", 0) or 0)
                fields = ["seq", "t", "access_key_id", "action", "app_id", "change_order_id", "status",
                          "error_code"]
                return {"fields": fields,
                        "calls": [[r.get(f) for f in fields] for r in self.requests
                                  if r["seq"] > since and r["kind"] == "api"]}
            if parts == ["pipeline"]:
                if method == "GET":
                    return self.pipeline.stats() if self.pipeline else {"running": False}
                if method == "DELETE":
                    if self.pipeline is None:
                        return {"running": False}
                    self.pipeline.halt.set()
                    out = self.pipeline.stats()
                    self.pipeline = None
                    return out
                if method == "POST":
                    import pipeline as pipemod
                    try:
                        rate, window = pipemod.parse_rate(body.get("rate", "20/min"))
                    except ValueError as e:
                        raise ControlError(400, str(e)) from None
                    key_id = body.get("access_key_id") or "pipeline"
                    secret = body.get("access_key_secret") or "pipelinesecret"
                    app_ids = body.get("app_ids")
                    if app_ids is not None and (not isinstance(app_ids, list)
                                                or not all(isinstance(a, str) for a in app_ids)):
                        raise ControlError(400, "app_ids: expected a list of app ids")
                    return self.start_pipeline(rate, window, key_id, secret, app_ids)
            if parts == ["metadata"]:
                if method == "POST":
                    self.set_metadata(body)
                if method in ("GET", "POST"):
                    return dict(self.metadata, issued=[k.id for k in self.issued])
            if parts == ["keys"]:
                if method == "GET":
                    return {"keys": [k.to_dict() for k in self.keys.values()]}
                if method == "POST":
                    try:
                        expires_in = body.get("expires_in")
                        key = Key(body["access_key_id"], body["access_key_secret"],
                                  body.get("security_token"),
                                  time.time() + float(expires_in) if expires_in else None, source="control",
                                  account=str(body.get("account") or "default"))
                    except KeyError as e:
                        raise ControlError(400, f"missing {e}") from None
                    self.keys[key.id] = key
                    return key.to_dict()
            if parts == ["keys", "expire"] and method == "POST":
                key = self.keys.get(body.get("access_key_id"))
                if key is None:
                    raise ControlError(404, "no such access key")
                key.expired = True
                return {"ok": True}
            if parts == ["settings"] and method == "POST":
                self.update_settings(body)
                return dict(self.settings)
            if parts == ["settings"] and method == "GET":
                return dict(self.settings)
        raise ControlError(404, f"no control endpoint {method} {path}")


def sae_batch_type(value):
    return "Manual" if str(value).lower() == "manual" else "auto"


def edas_batch_type(value):
    return "Manual" if str(value).lower() == "manual" else "Automatic"


# --------------------------------------------------------------------------
# HTTP


class ParsedRequest:
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rollguard-sim/1"
    sys_version = ""
    sim = None  # set on the class by make_server
    log_requests = False

    def version_string(self):
        return self.server_version

    # -- plumbing ---------------------------------------------------------------

    def log_message(self, fmt, *args):
        # Control calls are the test talking to itself: not worth a line.
        if self.log_requests and not getattr(self, "path", "").startswith("/_sim/"):
            sys.stderr.write("sim: %s %s\n" % (self.address_string(), fmt % args))

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(16)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status, body, content_type="application/json", extra=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _reset_socket(self):
        # RST, not FIN: linger 0 then close the only reference to the fd.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.rfile.close()
            self.connection.close()
        except OSError:
            pass

    def _parse(self, body):
        req = ParsedRequest()
        req.method = self.command
        req.raw_path, _, req.raw_query = self.path.partition("?")
        req.query_pairs = parse_query(req.raw_query)
        req.params = {}
        for n, v in req.query_pairs:
            req.params.setdefault(n, v)
        req.headers_lower = {}
        for name, value in self.headers.items():
            lname = name.lower()
            if lname in req.headers_lower:
                req.headers_lower[lname] += "," + value
            else:
                req.headers_lower[lname] = value
        req.body = body
        return req

    def _dispatch(self):
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            self._send(400, {"Code": "MalformedRequest", "Message": "bad body framing"})
            return
        req = self._parse(body)
        if req.raw_path.startswith("/_sim/"):
            self._control(req)
        elif req.raw_path.startswith(METADATA_PREFIX):
            self._metadata(req)
        else:
            self._api(req)

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = lambda self: self._dispatch()

    # -- control ------------------------------------------------------------------

    def _control(self, req):
        try:
            doc = json.loads(req.body) if req.body.strip() else {}
        except ValueError as e:
            self._send(400, {"error": f"body is not JSON: {e}"})
            return
        query = {n: v for n, v in req.query_pairs}
        try:
            self._send(200, self.sim.control(req.method, req.raw_path, query, doc))
        except ControlError as e:
            self._send(e.status, {"error": str(e)})
        except (TypeError, ValueError, AttributeError) as e:
            self._send(400, {"error": f"bad control request: {e}"})

    # -- faults -------------------------------------------------------------------

    def _pick_fault(self, info):
        with self.sim.lock:
            for rule in self.sim.faults:
                if rule.take(info):
                    return rule
        return None

    def _wait(self, seconds):
        self.sim.stop.wait(seconds)

    def _apply_fault(self, rule, answer):
        """answer: (status, body) of the real processing or None. Returns the
        recorded status (None when nothing was answered)."""
        kind = rule.kind
        rid = request_id()
        if kind == "timeout":
            self._wait(rule.seconds)
            self.close_connection = True
            return None
        if kind == "reset":
            self._reset_socket()
            return None
        if kind == "slow":
            self._wait(rule.seconds)
            self._send(*answer)
            return answer[0]
        if kind == "http_status":
            status = rule.status or 500
            body = rule.body if rule.body is not None else {
                "Code": rule.code or "InternalError",
                "Message": rule.message or "The request processing has failed due to some unknown error.",
                "RequestId": rid}
            self._send(status, body)
            return status
        if kind == "throttle":
            status = rule.status or 400
            self._send(status, {"Code": rule.code or "Throttling.User",
                                "Message": rule.message or "Request was denied due to user flow control.",
                                "RequestId": rid})
            return status
        if kind == "upgrading":
            status = rule.status or 503
            self._send(status, {"Code": "System.Upgrading",
                                "Message": rule.message or "The system is upgrading. Try again later.",
                                "RequestId": rid})
            return status
        if kind == "malformed":
            full = answer[1] if answer else {"RequestId": rid, "Code": "200", "Message": "success",
                                              "Success": True, "Data": {"Status": 1, "Pipelines": []}}
            if isinstance(full, (dict, list)):
                full = json.dumps(full)
            self._send(200, full[: max(1, len(full) // 2)])
            return 200
        if kind == "html":
            status = rule.status or 502
            self._send(status, "<html><head><title>502 Bad Gateway</title></head><body>"
                               "<center><h1>502 Bad Gateway</h1></center><hr><center>Tengine</center>"
                               "</body></html>\n", "text/html")
            return status
        if kind == "empty":
            self._send(rule.status or 200, b"")
            return rule.status or 200
        if kind == "garbage":
            self._send(200, bytes(random.getrandbits(8) for _ in range(97)) + b"\xff\xfe{",
                       "application/json")
            return 200
        raise AssertionError(kind)

    # -- metadata -------------------------------------------------------------------

    def _metadata(self, req):
        path = req.raw_path
        if path == "/latest/api/token":
            action = "MetadataToken"
        elif path.rstrip("/") == "/latest/meta-data/ram/security-credentials":
            action = "MetadataRole"
        else:
            action = "MetadataCredentials"
        rec = self.sim.record(t=time.time(), kind="metadata", method=req.method, path=path,
                              action=action, query=dict(req.params), app_id=None,
                              change_order_id=None, signature_ok=None, error_code=None,
                              status=None, fault=None, security_token_present=False,
                              access_key_id=None)
        info = {"kind": "metadata", "action": action, "path": path, "method": req.method}
        rule = self._pick_fault(info)
        if rule is not None and not rule.process:
            rec["fault"] = rule.kind
            rec["status"] = self._apply_fault(rule, None)
            return
        status, ctype, body = self.sim.metadata_request(req)
        rec["status"] = status
        if rule is not None:
            rec["fault"] = rule.kind
            rec["status"] = self._apply_fault(rule, (status, body, ctype))
            return
        self._send(status, body, ctype)

    # -- cloud API ------------------------------------------------------------------

    def _api(self, req):
        sim = self.sim
        now = time.time()
        route = ROUTES.get(req.raw_path)
        hdrs = req.headers_lower
        action = route.action if route else hdrs.get("x-acs-action")
        rec = sim.record(t=now, kind="api", method=req.method, path=req.raw_path, action=action,
                         query=dict(req.params), app_id=req.params.get("AppId"),
                         change_order_id=req.params.get("ChangeOrderId"), signature_ok=None,
                         error_code=None, status=None, fault=None,
                         security_token_present="x-acs-security-token" in hdrs,
                         access_key_id=None, nonce=hdrs.get("x-acs-signature-nonce"),
                         host=hdrs.get("host"))
        req.record = rec
        with sim.lock:
            if rec["app_id"] is None and rec["change_order_id"] in sim.orders:
                rec["app_id"] = sim.orders[rec["change_order_id"]].app_id

        req.key = None
        try:
            req.key = sim.authenticate(req)
            auth_error = None
        except SimError as e:
            auth_error = e

        info = {"kind": "api", "action": action, "app_id": rec["app_id"],
                "change_order_id": rec["change_order_id"], "path": req.raw_path,
                "method": req.method}
        rule = self._pick_fault(info)
        if rule is not None and not rule.process:
            rec["fault"] = rule.kind
            if rule.kind in ("http_status", "throttle", "upgrading"):
                rec["error_code"] = rule.code or {"throttle": "Throttling.User",
                                                  "upgrading": "System.Upgrading"}.get(rule.kind, "InternalError")
            rec["status"] = self._apply_fault(rule, None)
            return

        status, body = self._process(req, route, auth_error, now, rule.kind if rule else None)
        rec["status"] = status
        if isinstance(body, dict) and status >= 400:
            rec["error_code"] = body.get("Code")
            if self.log_requests:
                sys.stderr.write(f"sim: {req.method} {req.raw_path} -> {status} {body.get('Code')}: "
                                 f"{body.get('Message')}\n")
        if rule is not None:
            rec["fault"] = rule.kind
            rec["status"] = self._apply_fault(rule, (status, body))
            return
        self._send(status, body)

    def _process(self, req, route, auth_error, now, fault):
        sim = self.sim
        try:
            if auth_error is not None:
                raise auth_error
            hdrs = req.headers_lower
            if route is None:
                raise SimError(404, "InvalidAction.NotFound",
                               f"Specified api is not found, please check your url and method: {req.raw_path}")
            if hdrs.get("x-acs-version") != VERSIONS[route.product]:
                raise SimError(400, "InvalidVersion",
                               f"x-acs-version must be {VERSIONS[route.product]} for {route.product}, "
                               f"got {hdrs.get('x-acs-version')!r}")
            if hdrs.get("x-acs-action") != route.action:
                raise SimError(400, "InvalidAction.Mismatch",
                               f"x-acs-action {hdrs.get('x-acs-action')!r} does not match "
                               f"{req.raw_path} ({route.action})")
            if req.method != route.method:
                raise SimError(400, "UnsupportedHTTPMethod",
                               f"{route.action} takes {route.method}, not {req.method}")
            with sim.lock:
                sim.check_rate(now, req.key)
                handler = getattr(sim, route.handler)
                if route.handler in ("rollback", "abort"):
                    return 200, handler(route, req.params, now, fault=fault)
                return 200, handler(route, req.params, now)
        except SimError as e:
            return e.status, {"Code": e.code, "Message": e.message, "RequestId": request_id()}


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def make_server(sim, port, log_requests=False):
    handler = type("BoundHandler", (Handler,), {"sim": sim, "log_requests": log_requests})
    server = Server(("127.0.0.1", port), handler)
    sim.port = server.server_address[1]
    return server


def write_port_file(path, port):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description="SAE/EDAS API simulator for rollguard tests")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--scenario")
    ap.add_argument("--key", action="append", default=[],
                    help="ID:SECRET or ID:SECRET:STS_TOKEN (repeatable; default testid:testsecret)")
    ap.add_argument("--log-requests", action="store_true")
    ap.add_argument("--account-limit", help="N/WINDOW: the account's limit over a sliding window (60/min)")
    ap.add_argument("--pipeline-rate", help="N/WINDOW: also run a deploy pipeline with its own key")
    ap.add_argument("--pipeline-key", default="pipeline:pipelinesecret")
    ap.add_argument("--pipeline-app", action="append", default=[])
    args = ap.parse_args(argv)
    import pipeline as pipemod
    account_limit = pipeline_rate = None
    try:
        if args.account_limit:
            account_limit = pipemod.parse_rate(args.account_limit)
        if args.pipeline_rate:
            pipeline_rate = pipemod.parse_rate(args.pipeline_rate)
    except ValueError as e:
        ap.error(str(e))
    pipe_id, _, pipe_secret = args.pipeline_key.partition(":")
    if not pipe_id or not pipe_secret:
        ap.error("--pipeline-key: expected ID:SECRET")
    if args.host not in ("127.0.0.1", "localhost"):
        ap.error("the simulator listens on 127.0.0.1 only")
    for k in args.key:
        if k.count(":") < 1 or not k.split(":")[0] or not k.split(":")[1]:
            ap.error(f"--key {k.split(':')[0]}:...: expected ID:SECRET[:TOKEN]")
    scenario = None
    if args.scenario:
        with open(args.scenario) as f:
            scenario = json.load(f)
    sim = Simulator(args.key or DEFAULT_KEYS, scenario, account_limit)
    server = make_server(sim, args.port, args.log_requests)
    port = server.server_address[1]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    if pipeline_rate:
        sim.start_pipeline(*pipeline_rate, pipe_id, pipe_secret, args.pipeline_app or None, from_cli=True)
    if args.port_file:
        write_port_file(args.port_file, port)
    print(f"sim listening on 127.0.0.1:{port}", flush=True)
    while not stop.wait(3600):
        pass
    if sim.pipeline is not None:
        sim.pipeline.stop()
    sim.stop.set()  # releases connections held by timeout/slow faults
    server.shutdown()
    server.server_close()
    thread.join(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
