# SPDX-License-Identifier: MIT
"""The simulator on its own: signature checking (with an independent V3
signer that reproduces both SPEC 5 vectors), API shapes, change-order
behaviours, rollback semantics, faults, rate limit, metadata service."""

import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SIM_PY = HERE / "sim.py"
sys.path.insert(0, str(HERE))
import sim as simmod  # noqa: E402  (the pure signing helpers)

SAE_V = "2019-05-06"
EDAS_V = "2017-08-01"
STS_ID, STS_SECRET, STS_TOKEN = "stsid", "stssecret", "ststoken-CAIS123"

# --------------------------------------------------------------------------
# An independent client-side V3 signer (does not reuse sim.py's code).

UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def enc(s):
    return "".join(chr(b) if b in UNRESERVED else "%%%02X" % b for b in s.encode("utf-8"))


def v3_sign(method, host, path, query, action, version, key_id, secret, date, nonce,
            body=b"", token=None):
    """Returns (headers, signature). query: list of (name, value)."""
    headers = {
        "host": host,
        "x-acs-action": action,
        "x-acs-version": version,
        "x-acs-date": date,
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(body).hexdigest(),
    }
    if token is not None:
        headers["x-acs-security-token"] = token
    signed = sorted(headers)
    canonical = "\n".join([
        method,
        "/".join(enc(seg) for seg in path.split("/")) or "/",
        "&".join(sorted(f"{enc(k)}={enc(v)}" for k, v in query)),
        "".join(f"{h}:{headers[h].strip()}\n" for h in signed),
        ";".join(signed),
        headers["x-acs-content-sha256"],
    ])
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    sig = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"ACS3-HMAC-SHA256 Credential={key_id},"
                                f"SignedHeaders={';'.join(signed)},Signature={sig}")
    headers["accept"] = "application/json"
    return headers, sig


SIGNED6 = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
VECTORS = [
    dict(name="published", secret="YourAccessKeySecret", method="POST", host="ecs.cn-shanghai.aliyuncs.com",
         path="/", action="RunInstances", version="2014-05-26",
         query=[("ImageId", "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd"), ("RegionId", "cn-shanghai")],
         date="2023-10-26T10:22:32Z", nonce="3156853299f313e23d1673dc12e1703d",
         want="06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"),
    dict(name="sae", secret="testsecret", method="PUT", host="sae.cn-hangzhou.aliyuncs.com",
         path="/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder", action="AbortAndRollbackChangeOrder",
         version="2019-05-06", query=[("ChangeOrderId", "765fa5c0-9ebb-4bb4-b383-1f8854470001")],
         date="2026-11-23T08:00:00Z", nonce="6a1f0c2e9b7d4e3f8a5b1c0d2e4f6a8b",
         want="5b35a571f4cf8390cc2a7a42cbc5bceb3182d0ec9ebeabc9175d7b1feafeb604"),
]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_spec_vectors_test_signer(v):
    headers, sig = v3_sign(v["method"], v["host"], v["path"], v["query"], v["action"], v["version"],
                           "YourAccessKeyId", v["secret"], v["date"], v["nonce"])
    assert sig == v["want"], v["name"]
    assert f"SignedHeaders={SIGNED6}," in headers["authorization"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_spec_vectors_sim_verifier(v):
    body_hash = hashlib.sha256(b"").hexdigest()
    headers = {"host": v["host"], "x-acs-action": v["action"], "x-acs-version": v["version"],
               "x-acs-date": v["date"], "x-acs-signature-nonce": v["nonce"],
               "x-acs-content-sha256": body_hash}
    canonical = simmod.canonical_request(v["method"], v["path"], v["query"], headers,
                                         SIGNED6.split(";"), body_hash)
    assert simmod.compute_signature(v["secret"], simmod.string_to_sign(canonical)) == v["want"], v["name"]


def test_rfc3986_strict():
    s = "a b*c~d/e+f=g&h:é"
    assert enc(s) == "a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%3A%C3%A9"
    assert simmod.rfc3986(s) == enc(s)
    # The server decodes what arrived, then re-encodes strictly and sorts.
    pairs = simmod.parse_query("b=2&a=x%20y&c&a%2A=%2B")
    assert simmod.canonical_query(pairs) == "a=x%20y&a%2A=%2B&b=2&c="


# --------------------------------------------------------------------------
# The simulator process (one per module, reset before every test)


def wait_for(predicate, timeout=10.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def start_sim(tmp_path, *args):
    port_file = tmp_path / f"port-{uuid.uuid4().hex}"
    proc = subprocess.Popen([sys.executable, str(SIM_PY), "--port", "0", "--port-file", str(port_file), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: port_file.exists() or proc.poll() is not None, timeout=15, what="sim port file")
    except AssertionError:
        proc.kill()
        raise
    if proc.poll() is not None:
        raise AssertionError(f"sim exited: {proc.stderr.read()}")
    return proc, int(port_file.read_text())


def stop_sim(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


class Client:
    def __init__(self, port):
        self.port = port
        self.host = f"127.0.0.1:{port}"

    def control(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            data = json.dumps(body).encode() if body is not None else None
            conn.request(method, "/_sim/" + path, body=data,
                         headers={"Content-Type": "application/json"} if data else {})
            resp = conn.getresponse()
            doc = json.loads(resp.read() or b"null")
            if resp.status != 200:
                raise AssertionError(f"control {method} {path}: {resp.status} {doc}")
            return doc
        finally:
            conn.close()

    def signed(self, method, path, query, action=None, version=None, key=("testid", "testsecret"),
               token=None, date=None, nonce=None, mutate=None, conn=None, timeout=10):
        """Send a signed request; mutate(headers, query) may tamper after signing.
        Returns (status, headers, body bytes, json doc or None)."""
        product = "edas" if path.startswith("/pop/v5/") else "sae"
        route = simmod.ROUTES.get(path)
        action = action or (route.action if route else "Unknown")
        version = version or (EDAS_V if product == "edas" else SAE_V)
        date = date or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        nonce = nonce or uuid.uuid4().hex
        query = list(query.items()) if isinstance(query, dict) else list(query)
        headers, _ = v3_sign(method, self.host, path, query, action, version, key[0], key[1], date, nonce,
                             token=token)
        if mutate:
            mutate(headers, query)
        url = path + ("?" + "&".join(f"{enc(k)}={enc(v)}" for k, v in query) if query else "")
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, url, body=b"" if method in ("PUT", "POST") else None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            try:
                doc = json.loads(body)
            except ValueError:
                doc = None
            return resp.status, resp.headers, body, doc
        finally:
            if own:
                conn.close()

    # SAE / EDAS shortcuts
    def app_status(self, app_id, **kw):
        return self.signed("GET", "/pop/v1/sam/app/describeApplicationStatus", {"AppId": app_id}, **kw)

    def describe(self, co_id, **kw):
        return self.signed("GET", "/pop/v1/sam/changeorder/DescribeChangeOrder", {"ChangeOrderId": co_id}, **kw)

    def list_orders(self, app_id, **params):
        q = {"AppId": app_id, "CurrentPage": "1", "PageSize": "10"}
        q.update(params)
        return self.signed("GET", "/pop/v1/sam/changeorder/ListChangeOrders", q)

    def rollback(self, co_id, **kw):
        return self.signed("PUT", "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder",
                           {"ChangeOrderId": co_id}, **kw)

    def abort(self, co_id, **kw):
        return self.signed("PUT", "/pop/v1/sam/changeorder/AbortChangeOrder", {"ChangeOrderId": co_id}, **kw)

    def edas(self, path, param, value, **kw):
        method = "POST" if path.endswith(("change_order_list", "change_order_info")) else "PUT"
        return self.signed(method, path, {param: value}, **kw)

    def requests(self, **q):
        qs = "&".join(f"{k}={v}" for k, v in q.items())
        return self.control("GET", "requests" + ("?" + qs if qs else ""))["requests"]


@pytest.fixture(scope="module")
def sim_proc(tmp_path_factory):
    proc, port = start_sim(tmp_path_factory.mktemp("sim"), "--key", "testid:testsecret",
                           "--key", f"{STS_ID}:{STS_SECRET}:{STS_TOKEN}")
    yield proc, port
    stop_sim(proc)


@pytest.fixture
def c(sim_proc):
    client = Client(sim_proc[1])
    client.control("POST", "reset")
    return client


APP = "7171a6ca-d1cd-4928-8642-7d5cfe69aaaa"
APP2 = "7171a6ca-d1cd-4928-8642-7d5cfe69bbbb"
EAPP = "e0a5c1d2-0000-4000-8000-00000000e001"
CO_OLD = "765fa5c0-9ebb-4bb4-b383-1f88544700aa"
CO = "765fa5c0-9ebb-4bb4-b383-1f8854470001"


def stuck(co_id=CO, **kw):
    d = {"id": co_id, "status": 1, "sub_status": 1, "batch_count": 3, "batch_type": "auto",
         "create_ago_seconds": 1500,
         "pipelines": [{"name": "Batch 1 Change", "status": 2, "start_ago_seconds": 1400, "update_ago_seconds": 1300},
                       {"name": "Batch 2 Change", "status": 3, "start_ago_seconds": 1300, "update_ago_seconds": 1200},
                       {"name": "Batch 3 Change", "status": 0}]}
    d.update(kw)
    return d


def setup_sae(c, *orders, app=APP):
    c.control("POST", "apps", {"apps": [{"app_id": app, "platform": "sae", "name": "shop",
                                         "change_orders": list(orders)}]})


# --------------------------------------------------------------------------
# Signature checking


def test_signed_request_succeeds_and_is_recorded(c):
    setup_sae(c, {"id": CO_OLD, "status": 2}, stuck())
    status, _, _, doc = c.app_status(APP)
    assert status == 200, doc
    assert doc["Code"] == "200" and doc["Success"] is True and doc["RequestId"] and doc["TraceId"]
    data = doc["Data"]
    assert data["LastChangeOrderId"] == CO
    assert data["LastChangeOrderRunning"] is True
    assert data["LastChangeOrderStatus"] == "RUNNING"
    assert data["SubStatus"] == "RUNNING_BUT_HAS_ERROR"
    (rec,) = c.requests()
    assert rec["signature_ok"] is True and rec["status"] == 200 and rec["error_code"] is None
    assert rec["action"] == "DescribeApplicationStatus" and rec["app_id"] == APP
    assert rec["query"] == {"AppId": APP} and rec["method"] == "GET"
    assert rec["security_token_present"] is False and rec["fault"] is None
    assert abs(rec["t"] - time.time()) < 5


def _set(name, value):
    def mutate(headers, query):
        headers[name] = value
    return mutate


def _change_query(headers, query):
    query[0] = (query[0][0], query[0][1] + "x")


def _add_query(headers, query):
    query.append(("Extra", "1"))


def _drop_signed(headers, query):
    headers["authorization"] = headers["authorization"].replace("x-acs-signature-nonce;", "")


TAMPERED = [
    ("changed query value", dict(mutate=_change_query)),
    ("added query param", dict(mutate=_add_query)),
    ("changed x-acs-date header", dict(mutate=_set("x-acs-date",
                                                   (datetime.now(timezone.utc) - timedelta(seconds=5))
                                                   .strftime("%Y-%m-%dT%H:%M:%SZ")))),
    ("changed nonce header", dict(mutate=_set("x-acs-signature-nonce", "f" * 32))),
    ("changed host header", dict(mutate=_set("host", "sae.cn-hangzhou.aliyuncs.com"))),
    ("wrong secret", dict(key=("testid", "nottestsecret"))),
    ("content hash not of the body", dict(mutate=_set("x-acs-content-sha256", "0" * 64))),
    ("required header not signed", dict(mutate=_drop_signed)),
    ("unsigned x-acs header", dict(mutate=_set("x-acs-extra", "1"))),
]


@pytest.mark.parametrize("name,kw", TAMPERED, ids=[t[0] for t in TAMPERED])
def test_tampered_request_is_rejected(c, name, kw):
    setup_sae(c, stuck())
    status, _, _, doc = c.app_status(APP, **kw)
    assert status == 400, name
    assert doc["Code"] == "SignatureDoesNotMatch", (name, doc)
    assert doc["Message"] and doc["RequestId"]
    (rec,) = c.requests()
    assert rec["signature_ok"] is False and rec["error_code"] == "SignatureDoesNotMatch", name


def test_unknown_access_key(c):
    setup_sae(c, stuck())
    status, _, _, doc = c.app_status(APP, key=("nosuchid", "x"))
    assert (status, doc["Code"]) == (404, "InvalidAccessKeyId.NotFound")


def test_nonce_reuse_rejected(c):
    setup_sae(c, stuck())
    assert c.app_status(APP, nonce="nonce-1")[0] == 200
    status, _, _, doc = c.app_status(APP, nonce="nonce-1")
    assert (status, doc["Code"]) == (400, "SignatureNonceUsed")
    assert c.app_status(APP, nonce="nonce-2")[0] == 200


@pytest.mark.parametrize("skew", [-16 * 60, 16 * 60])
def test_date_too_far_off(c, skew):
    setup_sae(c, stuck())
    date = (datetime.now(timezone.utc) + timedelta(seconds=skew)).strftime("%Y-%m-%dT%H:%M:%SZ")
    status, _, _, doc = c.app_status(APP, date=date)
    assert (status, doc["Code"]) == (400, "InvalidTimeStamp.Expired")
    ok_date = (datetime.now(timezone.utc) + timedelta(seconds=skew // 2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert c.app_status(APP, date=ok_date)[0] == 200


def test_version_and_action_checked(c):
    setup_sae(c, stuck())
    status, _, _, doc = c.app_status(APP, version=EDAS_V)
    assert (status, doc["Code"]) == (400, "InvalidVersion")
    status, _, _, doc = c.app_status(APP, action="DescribeChangeOrder")
    assert (status, doc["Code"]) == (400, "InvalidAction.Mismatch")
    status, _, _, doc = c.signed("GET", "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder",
                                 {"ChangeOrderId": CO})
    assert (status, doc["Code"]) == (400, "UnsupportedHTTPMethod")
    assert rollbacks(c) == []
    status, _, _, doc = c.signed("GET", "/pop/v1/sam/nope", {})
    assert (status, doc["Code"]) == (404, "InvalidAction.NotFound")


def test_sts_token_required_and_expirable(c):
    setup_sae(c, stuck())
    sts = (STS_ID, STS_SECRET)
    status, _, _, doc = c.app_status(APP, key=sts)
    assert (status, doc["Code"]) == (400, "InvalidSecurityToken.Mismatch")
    status, _, _, doc = c.app_status(APP, key=sts, token="wrong")
    assert (status, doc["Code"]) == (400, "InvalidSecurityToken.Mismatch")
    status, _, _, doc = c.app_status(APP, key=("testid", "testsecret"), token=STS_TOKEN)
    assert (status, doc["Code"]) == (400, "InvalidSecurityToken.Mismatch")
    assert c.app_status(APP, key=sts, token=STS_TOKEN)[0] == 200
    assert c.requests()[-1]["security_token_present"] is True
    c.control("POST", "keys/expire", {"access_key_id": STS_ID})
    status, _, _, doc = c.app_status(APP, key=sts, token=STS_TOKEN)
    assert (status, doc["Code"]) == (400, "InvalidSecurityToken.Expired")
    c.control("POST", "keys/expire", {"access_key_id": "testid"})
    status, _, _, doc = c.app_status(APP)
    assert (status, doc["Code"]) == (400, "InvalidAccessKeyId.Inactive")


def test_keep_alive_reuses_one_connection(c):
    setup_sae(c, stuck())
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    try:
        results = []
        for kw in ({}, {"key": ("testid", "bad")}, {}, {"nonce": "same"}, {"nonce": "same"}, {}):
            results.append(c.app_status(APP, conn=conn, **kw)[0])
            if len(results) == 1:
                sock = conn.sock
            assert conn.sock is sock, "server closed a keep-alive connection"
        assert results == [200, 400, 200, 200, 400, 200]
        status, headers, body, _ = c.rollback(CO, conn=conn)
        assert status == 200 and int(headers["Content-Length"]) == len(body)
    finally:
        conn.close()


def test_chunked_empty_body_is_an_empty_body(c):
    setup_sae(c, stuck())
    path = "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder"
    query = [("ChangeOrderId", CO)]
    date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    headers, _ = v3_sign("PUT", c.host, path, query, "AbortAndRollbackChangeOrder", SAE_V,
                         "testid", "testsecret", date, uuid.uuid4().hex)
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    try:
        conn.request("PUT", f"{path}?ChangeOrderId={CO}", body=iter([]), headers=headers, encode_chunked=True)
        resp = conn.getresponse()
        doc = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 200, doc


# --------------------------------------------------------------------------
# SAE shapes and behaviours


def test_sae_describe_change_order_shape(c):
    setup_sae(c, stuck(batch_wait=2))
    status, _, _, doc = c.describe(CO)
    assert status == 200
    d = doc["Data"]
    assert d["ChangeOrderId"] == CO and d["AppId"] == APP
    assert (d["Status"], d["SubStatus"], d["CoTypeCode"]) == (1, 1, "CoDeploy")
    assert d["SupportRollback"] is True and d["BatchCount"] == 3
    assert d["BatchType"] == "auto" and d["BatchWaitTime"] == 2
    assert isinstance(d["CreateTime"], int) and abs(d["CreateTime"] - (time.time() - 1500) * 1000) < 5000
    assert [p["Status"] for p in d["Pipelines"]] == [2, 3, 0]
    assert d["CurrentPipelineId"] == d["Pipelines"][1]["PipelineId"]
    p = d["Pipelines"][1]
    assert set(p) >= {"PipelineId", "PipelineName", "Status", "StartTime", "UpdateTime"}
    assert abs(p["UpdateTime"] - (time.time() - 1200) * 1000) < 5000


def test_sae_unknown_ids(c):
    setup_sae(c, stuck())
    status, _, _, doc = c.app_status("7171a6ca-0000-0000-0000-000000000000")
    assert (status, doc["Code"]) == (404, "InvalidAppId.NotFound")
    status, _, _, doc = c.describe("765fa5c0-0000-0000-0000-000000000000")
    assert (status, doc["Code"]) == (404, "InvalidChangeOrder.NotFound")
    status, _, _, doc = c.describe("")
    assert (status, doc["Code"]) == (400, "InvalidParameter.NotEmpty")


def test_sae_app_without_orders(c):
    setup_sae(c)
    d = c.app_status(APP)[3]["Data"]
    assert d["LastChangeOrderId"] is None and d["LastChangeOrderRunning"] is False


def test_sae_list_change_orders(c):
    orders = [{"id": f"765fa5c0-9ebb-4bb4-b383-1f88544701{i:02d}", "status": 2,
               "create_ago_seconds": 1000 - i} for i in range(12)]
    setup_sae(c, *orders, stuck())
    d = c.list_orders(APP)[3]["Data"]
    assert d["TotalSize"] == 13 and d["CurrentPage"] == 1 and d["PageSize"] == 10
    ids = [o["ChangeOrderId"] for o in d["ChangeOrderList"]]
    assert ids[0] == CO and ids[1] == orders[-1]["id"] and len(ids) == 10
    d = c.list_orders(APP, CurrentPage="2")[3]["Data"]
    assert [o["ChangeOrderId"] for o in d["ChangeOrderList"]] == [o["id"] for o in orders[2::-1]]
    d = c.list_orders(APP, CoStatus="1")[3]["Data"]
    assert [o["ChangeOrderId"] for o in d["ChangeOrderList"]] == [CO]
    first = d["ChangeOrderList"][0]
    assert first["CoTypeCode"] == "CoDeploy" and first["Status"] == 1
    datetime.strptime(first["CreateTime"], "%Y-%m-%d %H:%M:%S")


def test_progress_behaviour_succeeds_after_steps(c):
    setup_sae(c, {"id": CO, "status": 1, "batch_count": 3, "create_ago_seconds": 60,
                  "behaviour": {"kind": "progress", "steps": 4, "step_seconds": 0}})
    seen = []
    for _ in range(4):
        d = c.describe(CO)[3]["Data"]
        seen.append((d["Status"], [p["Status"] for p in d["Pipelines"]]))
        assert all(p["UpdateTime"] is None or p["UpdateTime"] <= time.time() * 1000 + 1 for p in d["Pipelines"])
    assert seen[0] == (1, [1, 0, 0])
    assert seen[1][0] == 1 and seen[1][1][0] == 2  # moved to the next batch
    assert seen[-1] == (2, [2, 2, 2])
    d = c.app_status(APP)[3]["Data"]
    assert d["LastChangeOrderRunning"] is False and d["LastChangeOrderStatus"] == "SUCCESS"


def test_progress_step_seconds_limits_steps(c):
    setup_sae(c, {"id": CO, "status": 1, "behaviour": "progress", "steps": 3, "step_seconds": 3600})
    for _ in range(3):
        assert c.describe(CO)[3]["Data"]["Status"] == 1
    assert c.control("GET", f"change_orders/{CO}")["steps_done"] == 0


def test_progress_moves_update_time(c):
    setup_sae(c, {"id": CO, "status": 1, "behaviour": "progress", "steps": 50, "step_seconds": 0.2,
                  "pipelines": [{"status": 1, "start_ago_seconds": 600, "update_ago_seconds": 600}]})
    first = c.describe(CO)[3]["Data"]["Pipelines"][0]["UpdateTime"]
    later = wait_for(lambda: (lambda u: u if u > first else None)(
        c.describe(CO)[3]["Data"]["Pipelines"][0]["UpdateTime"]), what="UpdateTime to move")
    assert abs(later - time.time() * 1000) < 5000


def test_stall_after_gets_stuck(c):
    setup_sae(c, {"id": CO, "status": 1, "batch_count": 2,
                  "behaviour": {"kind": "stall_after", "stall_after": 2, "steps": 6, "step_seconds": 0}})
    for _ in range(2):
        d = c.describe(CO)[3]["Data"]
    assert d["SubStatus"] == 1 and d["Status"] == 1
    stuck_pipeline = next(p for p in d["Pipelines"] if p["Status"] == 3)
    assert d["CurrentPipelineId"] == stuck_pipeline["PipelineId"]
    for _ in range(3):
        again = c.describe(CO)[3]["Data"]
    assert again["Pipelines"] == d["Pipelines"] and again["Status"] == 1
    assert c.app_status(APP)[3]["Data"]["SubStatus"] == "RUNNING_BUT_HAS_ERROR"


def test_static_never_changes(c):
    setup_sae(c, stuck())
    first = c.describe(CO)[3]["Data"]
    for _ in range(3):
        assert c.describe(CO)[3]["Data"]["Pipelines"] == first["Pipelines"]


# --------------------------------------------------------------------------
# Rollback semantics


def rollbacks(c, co_id=None):
    return c.control("GET", "rollbacks" + (f"?change_order_id={co_id}" if co_id else ""))["rollbacks"]


def test_rollback_creates_rollback_order_and_terminates(c):
    setup_sae(c, {"id": CO_OLD, "status": 2}, stuck())
    status, _, _, doc = c.rollback(CO)
    assert status == 200 and doc["Code"] == "200"
    new_id = doc["Data"]["ChangeOrderId"]
    assert new_id and new_id != CO
    assert c.describe(CO)[3]["Data"]["Status"] == 6
    d = c.describe(new_id)[3]["Data"]
    assert d["CoTypeCode"] == "CoRollback" and d["SupportRollback"] is False and d["Status"] == 1
    assert c.app_status(APP)[3]["Data"]["LastChangeOrderId"] == new_id
    (rb,) = rollbacks(c)
    assert rb["change_order_id"] == CO and rb["action"] == "AbortAndRollbackChangeOrder"
    assert rb["result"] == "accepted" and rb["new_change_order_id"] == new_id and rb["t"] > 0
    # Again: the order has ended.
    status, _, _, doc = c.rollback(CO)
    assert (status, doc["Code"]) == (400, "Application.ChangerOrder.Not.Running")
    assert [r["result"] for r in rollbacks(c, CO)] == ["accepted", "rejected"]
    assert c.control("GET", f"change_orders/{CO}")["rollback_calls"] == 2


def test_rollback_lag_keeps_old_status_and_rejects_second_call(c):
    setup_sae(c, stuck(rollback_lag_seconds=1.5))
    status, _, _, doc = c.rollback(CO)
    assert status == 200
    t0 = time.monotonic()
    d = c.describe(CO)[3]["Data"]
    if time.monotonic() - t0 < 1.2:
        assert (d["Status"], d["SubStatus"]) == (1, 1), "the lag must hide the termination"
    status, _, _, doc = c.rollback(CO)
    if time.monotonic() - t0 < 1.2:
        assert (status, doc["Code"]) == (400, "Application.ChangerOrderRunning")
    wait_for(lambda: c.describe(CO)[3]["Data"]["Status"] == 6, what="the lagging termination")
    accepted = [r for r in rollbacks(c, CO) if r["result"] == "accepted"]
    assert len(accepted) == 1


def test_rollback_lag_global_setting(c):
    c.control("POST", "settings", {"rollback_lag_seconds": 3600})
    setup_sae(c, stuck())
    assert c.rollback(CO)[0] == 200
    assert c.describe(CO)[3]["Data"]["Status"] == 1
    assert c.rollback(CO)[3]["Code"] == "Application.ChangerOrderRunning"


@pytest.mark.parametrize("status", [2, 3, 6, 10])
def test_rollback_of_finished_order_is_not_running(c, status):
    setup_sae(c, {"id": CO, "status": status})
    s, _, _, doc = c.rollback(CO)
    assert (s, doc["Code"]) == (400, "Application.ChangerOrder.Not.Running")


def test_rollback_of_non_rollbackable_order_rejected(c):
    setup_sae(c, stuck(support_rollback=False))
    s, _, _, doc = c.rollback(CO)
    assert (s, doc["Code"]) == (400, "InvalidChangeOrder.NotSupportRollback")
    assert c.describe(CO)[3]["Data"]["Status"] == 1


def test_abort_terminates_without_new_order(c):
    setup_sae(c, stuck())
    s, _, _, doc = c.abort(CO)
    assert s == 200 and doc["Data"]["ChangeOrderId"] == CO
    assert c.describe(CO)[3]["Data"]["Status"] == 6
    assert c.app_status(APP)[3]["Data"]["LastChangeOrderId"] == CO
    assert c.abort(CO)[3]["Code"] == "Application.ChangerOrder.Not.Running"
    assert [r["action"] for r in rollbacks(c)] == ["AbortChangeOrder"] * 2


def test_unsigned_rollback_is_not_a_rollback(c):
    setup_sae(c, stuck())
    assert c.rollback(CO, key=("testid", "wrong"))[0] == 400
    assert rollbacks(c) == []
    assert c.describe(CO)[3]["Data"]["Status"] == 1


# --------------------------------------------------------------------------
# EDAS


def setup_edas(c, *orders, kind="ecs"):
    c.control("POST", "apps", {"apps": [{"app_id": EAPP, "platform": "edas", "edas_kind": kind,
                                         "change_orders": list(orders)}]})


EDAS_LIST = "/pop/v5/changeorder/change_order_list"
EDAS_INFO = "/pop/v5/changeorder/change_order_info"
EDAS_ROLLBACK = "/pop/v5/oam/changeorder/rollback"
EDAS_K8S_ROLLBACK = "/pop/v5/changeorder/change_order_abort_and_rollback"
EDAS_ABORT = "/pop/v5/changeorder/change_order_abort"


def test_edas_shapes(c):
    setup_edas(c, {"id": CO_OLD, "status": 7, "batch_type": "Manual", "create_ago_seconds": 7200}, stuck())
    status, _, _, doc = c.edas(EDAS_LIST, "AppId", EAPP)
    assert status == 200 and doc["Code"] == 200 and doc["Message"] == "success" and doc["RequestId"]
    items = doc["ChangeOrderList"]["ChangeOrder"]
    assert [i["ChangeOrderId"] for i in items] == [CO, CO_OLD]
    assert items[1]["Status"] == 7 and items[1]["BatchType"] == "Manual" and items[0]["BatchType"] == "Automatic"
    created = datetime.strptime(items[0]["CreateTime"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=timezone(timedelta(hours=8)))
    assert abs(created.timestamp() - (time.time() - 1500)) < 5, "CreateTime is UTC+8"

    status, _, _, doc = c.edas(EDAS_INFO, "ChangeOrderId", CO)
    assert status == 200 and doc["Code"] == 200
    info = doc["changeOrderInfo"]
    assert (info["ChangeOrderId"], info["Status"], info["CoTypeCode"]) == (CO, 1, "CoDeploy")
    assert info["SupportRollback"] is True and info["BatchCount"] == 3 and info["CoType"]
    pipes = info["PipelineInfoList"]["PipelineInfo"]
    assert [p["PipelineStatus"] for p in pipes] == [2, 3, 0]
    assert isinstance(pipes[1]["UpdateTime"], str) and int(pipes[1]["UpdateTime"]) > 0
    assert pipes[1]["StageList"] == {"StageInfoDTO": []}
    assert "Status" not in pipes[1]


def test_edas_does_not_see_sae_apps(c):
    setup_sae(c, stuck())
    status, _, _, doc = c.edas(EDAS_LIST, "AppId", APP)
    assert (status, doc["Code"]) == (404, "InvalidAppId.NotFound")
    status, _, _, doc = c.edas(EDAS_INFO, "ChangeOrderId", CO)
    assert (status, doc["Code"]) == (404, "InvalidChangeOrder.NotFound")


@pytest.mark.parametrize("kind,path,action", [
    ("ecs", EDAS_ROLLBACK, "RollbackChangeOrder"),
    ("k8s", EDAS_K8S_ROLLBACK, "AbortAndRollbackChangeOrder"),
])
def test_edas_rollback(c, kind, path, action):
    setup_edas(c, stuck(), kind=kind)
    status, _, _, doc = c.edas(path, "ChangeOrderId", CO)
    assert status == 200 and doc["Code"] == 200
    new_id = doc["Data"]["ChangeOrderId"]
    info = c.edas(EDAS_INFO, "ChangeOrderId", new_id)[3]["changeOrderInfo"]
    assert info["CoTypeCode"] == "CoRollback" and info["SupportRollback"] is False
    assert c.edas(EDAS_INFO, "ChangeOrderId", CO)[3]["changeOrderInfo"]["Status"] == 6
    (rb,) = rollbacks(c)
    assert rb["action"] == action and rb["product"] == "edas"
    # The other flavour does not apply to this kind of app.
    other = EDAS_K8S_ROLLBACK if kind == "ecs" else EDAS_ROLLBACK
    setup_edas(c, stuck(), kind=kind)
    status, _, _, doc = c.edas(other, "ChangeOrderId", CO)
    assert (status, doc["Code"]) == (400, "InvalidOperation.AppType")


def test_edas_abort_and_partial_success(c):
    setup_edas(c, {"id": CO_OLD, "status": 7}, stuck())
    status, _, _, doc = c.edas(EDAS_ROLLBACK, "ChangeOrderId", CO_OLD)
    assert (status, doc["Code"]) == (400, "Application.ChangerOrder.Not.Running")
    status, _, _, doc = c.edas(EDAS_ABORT, "ChangeOrderId", CO)
    assert status == 200 and doc["Code"] == 200
    assert c.edas(EDAS_INFO, "ChangeOrderId", CO)[3]["changeOrderInfo"]["Status"] == 6


# --------------------------------------------------------------------------
# Faults


def _json_fails(body):
    try:
        json.loads(body)
    except ValueError:
        return True
    return False


FAULTS = [
    ("http_status", {"status": 500, "code": "InternalError"},
     lambda s, h, b, d: s == 500 and d["Code"] == "InternalError"),
    ("http_status", {"status": 403, "code": "Resouce.no.permission", "message": "no"},
     lambda s, h, b, d: s == 403 and d["Code"] == "Resouce.no.permission" and d["Message"] == "no"),
    ("throttle", {}, lambda s, h, b, d: s == 400 and d["Code"] == "Throttling.User"),
    ("throttle", {"status": 429}, lambda s, h, b, d: s == 429 and d["Code"] == "Throttling.User"),
    ("upgrading", {}, lambda s, h, b, d: s == 503 and d["Code"] == "System.Upgrading"),
    ("malformed", {}, lambda s, h, b, d: s == 200 and d is None and b.startswith(b"{") and _json_fails(b)),
    ("html", {}, lambda s, h, b, d: s == 502 and h["Content-Type"].startswith("text/html") and b"<html>" in b),
    ("empty", {}, lambda s, h, b, d: s == 200 and b == b"" and h["Content-Length"] == "0"),
    ("garbage", {}, lambda s, h, b, d: s == 200 and len(b) > 0 and _json_fails(b)),
]


@pytest.mark.parametrize("kind,extra,check", FAULTS, ids=[f"{f[0]}-{i}" for i, f in enumerate(FAULTS)])
def test_fault_answers(c, kind, extra, check):
    setup_sae(c, stuck())
    c.control("POST", "faults", dict({"kind": kind, "match": {"action": "DescribeChangeOrder"}}, **extra))
    assert c.app_status(APP)[0] == 200, "the fault must not hit other actions"
    status, headers, body, doc = c.describe(CO)
    assert check(status, headers, body, doc), (kind, status, body[:200])
    assert c.describe(CO)[0] == 200, "count defaults to 1"
    recs = c.requests(action="DescribeChangeOrder")
    assert [r["fault"] for r in recs] == [kind, None]


def test_fault_timeout_holds_then_closes(c):
    setup_sae(c, stuck())
    c.control("POST", "faults", {"kind": "timeout", "seconds": 0.5, "match": {"change_order_id": CO}})
    t0 = time.monotonic()
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.describe(CO)
    assert time.monotonic() - t0 >= 0.45
    (rec,) = c.requests()
    assert rec["fault"] == "timeout" and rec["status"] is None


def test_fault_reset_closes_at_once(c):
    setup_sae(c, stuck())
    c.control("POST", "faults", {"kind": "reset", "match": {"app_id": APP}})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.describe(CO)  # app_id matches change-order requests of the app too
    assert c.describe(CO)[0] == 200


def test_fault_slow_answers_correctly(c):
    setup_sae(c, stuck())
    c.control("POST", "faults", {"kind": "slow", "seconds": 0.4, "match": {"path_prefix": "/pop/v1/sam/app/"}})
    t0 = time.monotonic()
    status, _, _, doc = c.app_status(APP)
    assert time.monotonic() - t0 >= 0.35
    assert status == 200 and doc["Data"]["LastChangeOrderId"] == CO


def test_fault_count_after_and_forever(c):
    setup_sae(c, stuck())
    c.control("POST", "faults", {"kind": "upgrading", "after": 1, "count": 2,
                                 "match": {"action": "DescribeApplicationStatus"}})
    assert [c.app_status(APP)[0] for _ in range(5)] == [200, 503, 503, 200, 200]
    c.control("DELETE", "faults")
    c.control("POST", "faults", [{"kind": "throttle", "count": -1, "match": {"action": "DescribeApplicationStatus"}}])
    assert [c.app_status(APP)[0] for _ in range(4)] == [400] * 4
    faults = c.control("GET", "faults")["faults"]
    assert faults[0]["applied"] == 4
    c.control("DELETE", "faults")
    assert c.app_status(APP)[0] == 200


def test_fault_with_process_applies_side_effects(c):
    """A rollback whose answer is lost: it happened anyway; a retry must see that."""
    setup_sae(c, stuck())
    c.control("POST", "faults", {"kind": "timeout", "seconds": 0.1, "process": True,
                                 "match": {"action": "AbortAndRollbackChangeOrder"}})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        c.rollback(CO)
    (rb,) = rollbacks(c)
    assert rb["result"] == "accepted" and rb["fault"] == "timeout"
    assert c.describe(CO)[3]["Data"]["Status"] == 6
    assert c.rollback(CO)[3]["Code"] == "Application.ChangerOrder.Not.Running"


def test_faulted_rollback_without_process_changes_nothing(c):
    setup_sae(c, stuck())
    c.control("POST", "faults", {"kind": "http_status", "status": 500, "match": {"method": "PUT"}})
    assert c.rollback(CO)[0] == 500
    assert rollbacks(c) == []
    assert c.rollback(CO)[0] == 200


def test_bad_fault_rule_rejected(c):
    for rule in ({"kind": "explode"}, {"kind": "reset", "match": {"colour": "red"}}):
        with pytest.raises(AssertionError, match="400"):
            c.control("POST", "faults", rule)


# --------------------------------------------------------------------------
# Rate limit


def test_rate_limit_throttles_over_limit(c):
    setup_sae(c, stuck())
    c.control("POST", "rate_limit", {"limit": 3})
    results = [c.app_status(APP) for _ in range(5)]
    assert [r[0] for r in results] == [200, 200, 200, 400, 400]
    assert results[3][3]["Code"] == "Throttling.User"
    c.control("POST", "rate_limit", {"limit": None})
    assert c.app_status(APP)[0] == 200
    ts = [r["t"] for r in c.requests()]
    assert ts == sorted(ts) and len(ts) == 6


def test_rate_limit_window_slides(c):
    setup_sae(c, stuck())
    c.control("POST", "rate_limit", {"limit": 2, "window_seconds": 3})
    assert [c.app_status(APP)[0] for _ in range(3)] == [200, 200, 400]
    wait_for(lambda: c.app_status(APP)[0] == 200, what="the window to slide")


# --------------------------------------------------------------------------
# ECS metadata service


def imds(c, method, path, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


CREDS = "/latest/meta-data/ram/security-credentials/"


def test_metadata_token_flow_and_sts_keys(c):
    setup_sae(c, stuck())
    assert imds(c, "PUT", "/latest/api/token")[0] == 400
    assert imds(c, "GET", CREDS)[0] == 401
    status, token = imds(c, "PUT", "/latest/api/token", {"X-aliyun-ecs-metadata-token-ttl-seconds": "21600"})
    assert status == 200 and token
    hdr = {"X-aliyun-ecs-metadata-token": token}
    assert imds(c, "GET", CREDS, {"X-aliyun-ecs-metadata-token": "bogus"})[0] == 401
    status, role = imds(c, "GET", CREDS, hdr)
    assert (status, role) == (200, "rollguard-test-role")
    assert imds(c, "GET", CREDS + "other-role", hdr)[0] == 404
    status, body = imds(c, "GET", CREDS + role, hdr)
    first = json.loads(body)
    assert status == 200 and first["Code"] == "Success"
    expiry = datetime.strptime(first["Expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert 3500 < expiry.timestamp() - time.time() <= 3600
    datetime.strptime(first["LastUpdated"], "%Y-%m-%dT%H:%M:%SZ")

    key = (first["AccessKeyId"], first["AccessKeySecret"])
    assert c.app_status(APP, key=key)[3]["Code"] == "InvalidSecurityToken.Mismatch"
    assert c.app_status(APP, key=key, token=first["SecurityToken"])[0] == 200

    second = json.loads(imds(c, "GET", CREDS + role, hdr)[1])
    assert second["AccessKeyId"] != first["AccessKeyId"], "each fetch rotates"
    assert c.app_status(APP, key=key, token=first["SecurityToken"])[0] == 200, "old key valid until expiry"
    assert c.app_status(APP, key=(second["AccessKeyId"], second["AccessKeySecret"]),
                        token=second["SecurityToken"])[0] == 200
    md = c.control("GET", "metadata")
    assert md["issued"] == [first["AccessKeyId"], second["AccessKeyId"]]
    kinds = [r["action"] for r in c.requests(kind="metadata")]
    assert kinds[:3] == ["MetadataToken", "MetadataRole", "MetadataToken"]


def test_metadata_short_expiry_and_no_role(c):
    setup_sae(c, stuck())
    c.control("POST", "metadata", {"expiry_seconds": 0.5})
    token = imds(c, "PUT", "/latest/api/token", {"X-aliyun-ecs-metadata-token-ttl-seconds": "60"})[1]
    hdr = {"X-aliyun-ecs-metadata-token": token}
    creds = json.loads(imds(c, "GET", CREDS + "rollguard-test-role", hdr)[1])
    key, tok = (creds["AccessKeyId"], creds["AccessKeySecret"]), creds["SecurityToken"]
    wait_for(lambda: c.app_status(APP, key=key, token=tok)[3]["Code"] == "InvalidSecurityToken.Expired",
             what="the STS key to expire")
    c.control("POST", "metadata", {"role": None})
    assert imds(c, "GET", CREDS, hdr)[0] == 404


def test_metadata_faults(c):
    c.control("POST", "faults", {"kind": "http_status", "status": 500, "match": {"path_prefix": "/latest/"}})
    assert imds(c, "PUT", "/latest/api/token", {"X-aliyun-ecs-metadata-token-ttl-seconds": "60"})[0] == 500
    assert imds(c, "PUT", "/latest/api/token", {"X-aliyun-ecs-metadata-token-ttl-seconds": "60"})[0] == 200


# --------------------------------------------------------------------------
# Control API


def test_control_add_and_patch_change_orders(c):
    setup_sae(c, {"id": CO_OLD, "status": 2})
    assert c.app_status(APP)[3]["Data"]["LastChangeOrderRunning"] is False
    co = c.control("POST", f"apps/{APP}/change_orders", {"status": 1, "batch_count": 2})
    assert co["app_id"] == APP and len(co["pipelines"]) == 2 and co["support_rollback"] is True
    assert uuid.UUID(co["id"])
    d = c.app_status(APP)[3]["Data"]
    assert d["LastChangeOrderId"] == co["id"] and d["LastChangeOrderRunning"] is True
    patched = c.control("PATCH", f"change_orders/{co['id']}", {"status": 8, "sub_status": 0})
    assert patched["status"] == 8
    assert c.describe(co["id"])[3]["Data"]["Status"] == 8
    with pytest.raises(AssertionError, match="400"):
        c.control("PATCH", f"change_orders/{co['id']}", {"colour": "red"})
    with pytest.raises(AssertionError, match="404"):
        c.control("GET", "change_orders/nope")
    c.control("POST", "apps", {"app": {"app_id": APP2, "platform": "sae"}})
    assert {a["app_id"] for a in c.control("GET", "apps")["apps"]} == {APP, APP2}
    c.control("POST", "reset")
    assert c.control("GET", "apps")["apps"] == [] and c.requests() == []


def test_control_requests_since_and_keys(c):
    setup_sae(c, stuck())
    c.app_status(APP)
    c.describe(CO)
    first = c.requests()
    assert [r["seq"] for r in first] == [1, 2]
    assert [r["action"] for r in c.requests(since=1)] == ["DescribeChangeOrder"]
    assert c.requests(action="DescribeChangeOrder")[0]["change_order_id"] == CO
    assert c.requests(action="DescribeChangeOrder")[0]["app_id"] == APP
    c.control("POST", "keys", {"access_key_id": "k2", "access_key_secret": "s2"})
    assert c.app_status(APP, key=("k2", "s2"))[0] == 200


# --------------------------------------------------------------------------
# The process


def test_refuses_non_loopback_host(tmp_path):
    r = subprocess.run([sys.executable, str(SIM_PY), "--host", "0.0.0.0", "--port", "0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "127.0.0.1 only" in r.stderr


def test_scenario_and_clean_shutdown(tmp_path):
    proc, port = start_sim(tmp_path, "--scenario", str(HERE / "scenarios" / "demo.json"))
    try:
        line = proc.stdout.readline()
        assert line.strip() == f"sim listening on 127.0.0.1:{port}"
        c = Client(port)
        apps = {a["name"]: a for a in c.control("GET", "apps")["apps"]}
        assert apps["shop-api"]["app_id"] == "7171a6ca-d1cd-4928-8642-7d5cfe690001"
        assert apps["payments"]["app_id"] == "7171a6ca-d1cd-4928-8642-7d5cfe690002"
        d = c.app_status("7171a6ca-d1cd-4928-8642-7d5cfe690002")[3]["Data"]
        assert d["LastChangeOrderRunning"] is True and d["SubStatus"] == "RUNNING_BUT_HAS_ERROR"
        co = c.describe(d["LastChangeOrderId"])[3]["Data"]
        assert co["SupportRollback"] is True and any(p["Status"] == 3 for p in co["Pipelines"])
        # Times in the scenario are relative to the simulator's start.
        scenario = json.loads((HERE / "scenarios" / "demo.json").read_text())
        spec = next(o for a in scenario["apps"] for o in a["change_orders"] if o["id"] == d["LastChangeOrderId"])
        ago = min(p["update_ago_seconds"] for p in spec["pipelines"] if "update_ago_seconds" in p)
        last = max(p["UpdateTime"] or 0 for p in co["Pipelines"])
        assert ago - 1 < time.time() - last / 1000 < ago + 10
        shop = c.app_status("7171a6ca-d1cd-4928-8642-7d5cfe690001")[3]["Data"]
        assert shop["LastChangeOrderRunning"] is True
        # A connection held by a timeout fault must not delay shutdown.
        c.control("POST", "faults", {"kind": "timeout", "seconds": 60})
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /pop/v1/sam/app/describeApplicationStatus?AppId=x HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_for(lambda: c.requests(), what="the held request to be recorded")
        t0 = time.monotonic()
        assert stop_sim(proc) == 0
        assert time.monotonic() - t0 < 5
        s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.skipif(not any(os.access(os.path.join(d, "curl"), os.X_OK)
                            for d in os.environ.get("PATH", "/usr/bin").split(os.pathsep)),
                    reason="no curl binary")
def test_libcurl_client_framing_and_keep_alive(c):
    """What libcurl really sends (PUT without a body, POST with an empty one
    and its automatic Content-Type) verifies, over one reused connection."""
    setup_sae(c, stuck())
    c.control("POST", "apps", {"app": {"app_id": EAPP, "platform": "edas", "change_orders": [stuck("edas-co-1")]}})
    date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    calls = [
        ("GET", "/pop/v1/sam/changeorder/DescribeChangeOrder", [("ChangeOrderId", CO)], SAE_V, []),
        ("POST", EDAS_INFO, [("ChangeOrderId", "edas-co-1")], EDAS_V, ["-d", ""]),
        ("PUT", "/pop/v1/sam/changeorder/AbortAndRollbackChangeOrder", [("ChangeOrderId", CO)], SAE_V,
         ["-X", "PUT"]),
    ]
    argv = ["curl", "-sS", "-v", "--noproxy", "*", "-o", "/dev/null"]
    for i, (method, path, query, version, opts) in enumerate(calls):
        headers, _ = v3_sign(method, c.host, path, query, simmod.ROUTES[path].action, version,
                             "testid", "testsecret", date, uuid.uuid4().hex)
        if i:
            argv += ["--next", "-sS", "--noproxy", "*", "-o", "/dev/null"]
        for k, v in headers.items():
            if k != "host":
                argv += ["-H", f"{k}: {v}"]
        argv += opts + [f"http://{c.host}{path}?" + "&".join(f"{k}={enc(v)}" for k, v in query)]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    recs = c.requests()
    assert [(x["method"], x["status"], x["signature_ok"]) for x in recs] == [
        ("GET", 200, True), ("POST", 200, True), ("PUT", 200, True)], [x["error_code"] for x in recs]
    assert "Re-using existing connection" in r.stderr or "Reusing existing" in r.stderr


# --------------------------------------------------------------------------
# The account: a limit shared by every key, a competing pipeline, orders
# that appear later, the compact call record (issue 11)


def add_key(c, key_id, secret, account=None):
    body = {"access_key_id": key_id, "access_key_secret": secret}
    if account:
        body["account"] = account
    return c.control("POST", "keys", body)


def test_account_limit_is_shared_by_all_keys_of_the_account(c):
    setup_sae(c, stuck())
    add_key(c, "deployid", "deploysecret")
    add_key(c, "otherid", "othersecret", account="other")
    c.control("POST", "rate_limit", {"limit": 3, "window_seconds": 60})
    ours, theirs = ("testid", "testsecret"), ("deployid", "deploysecret")
    got = [c.app_status(APP, key=k)[0] for k in (ours, theirs, ours, theirs, ours)]
    assert got == [200, 200, 200, 400, 400]
    # another account has its own window
    assert c.app_status(APP, key=("otherid", "othersecret"))[0] == 200
    acct = c.control("GET", "account")
    assert acct["limit"] == 3 and acct["max_in_window"] == 3
    assert acct["by_key"] == {"testid": {"calls": 3, "throttled": 1}, "deployid": {"calls": 2, "throttled": 1}}
    assert c.control("GET", "account?account=other")["by_key"] == {"otherid": {"calls": 1, "throttled": 0}}
    codes = [r["error_code"] for r in c.requests() if r["access_key_id"] == "deployid"]
    assert codes == [None, "Throttling.User"]


def test_account_limit_answers_429_when_asked(c):
    setup_sae(c, stuck())
    c.control("POST", "rate_limit", {"limit": 1, "status": 429})
    assert c.app_status(APP)[0] == 200
    status, _, _, doc = c.app_status(APP)
    assert status == 429 and doc["Code"] == "Throttling.User"
    with pytest.raises(AssertionError):
        c.control("POST", "rate_limit", {"limit": 1, "status": 503})


def test_calls_record_is_compact(c):
    setup_sae(c, stuck())
    c.app_status(APP)
    c.describe(CO)
    doc = c.control("GET", "calls")
    rows = [dict(zip(doc["fields"], row)) for row in doc["calls"]]
    assert [(r["access_key_id"], r["action"], r["app_id"]) for r in rows] == [
        ("testid", "DescribeApplicationStatus", APP), ("testid", "DescribeChangeOrder", APP)]
    assert rows[0]["t"] <= rows[1]["t"] and rows[1]["change_order_id"] == CO
    assert c.control("GET", f"calls?since={rows[0]['seq']}")["calls"][0][0] == rows[1]["seq"]


def test_order_appears_later(c):
    old = {"id": CO_OLD, "status": 2}
    later = dict(stuck(), appear_after_seconds=1.5)
    for k in ("create_ago_seconds",):
        later.pop(k)
    setup_sae(c, old, later)
    t_added = time.time()
    d = c.app_status(APP)[3]["Data"]
    assert d["LastChangeOrderId"] == CO_OLD and d["LastChangeOrderRunning"] is False
    assert c.describe(CO)[3]["Code"] == "InvalidChangeOrder.NotFound"
    assert [o["ChangeOrderId"] for o in c.list_orders(APP)[3]["Data"]["ChangeOrderList"]] == [CO_OLD]
    wait_for(lambda: c.app_status(APP)[3]["Data"]["LastChangeOrderId"] == CO, what="the order to appear")
    assert time.time() - t_added >= 1.5
    co = c.describe(CO)[3]["Data"]
    # CreateTime is when it appeared, not when the test added it
    assert abs(co["CreateTime"] / 1000 - (t_added + 1.5)) < 0.5
    assert c.control("GET", f"change_orders/{CO}")["visible_at"] == pytest.approx(t_added + 1.5, abs=0.5)


def test_timeline_changes_an_order_at_its_time(c):
    running = {"id": CO, "status": 1, "sub_status": 0, "batch_count": 2,
               "timeline": [{"after_seconds": 1, "set": {"sub_status": 1}},
                            {"after_seconds": 30, "set": {"status": 2}}]}
    setup_sae(c, running)
    assert c.describe(CO)[3]["Data"]["SubStatus"] == 0
    wait_for(lambda: c.describe(CO)[3]["Data"]["SubStatus"] == 1, what="the scripted stall")
    co = c.control("GET", f"change_orders/{CO}")
    assert len(co["timeline_applied"]) == 1 and len(co["timeline_pending"]) == 1
    assert co["status"] == 1
    for bad in ([{"after_seconds": 1}], [{"after_seconds": "x", "set": {}}],
                [{"after_seconds": 1, "set": {"nope": 1}}], {"after_seconds": 1}):
        with pytest.raises(AssertionError):
            c.control("POST", f"apps/{APP}/change_orders", {"timeline": bad})


def test_pipeline_control_counts_its_throttled_calls(c):
    setup_sae(c, stuck())
    c.control("POST", "rate_limit", {"limit": 4, "window_seconds": 30})
    st = c.control("POST", "pipeline", {"rate": "20/s", "app_ids": [APP]})
    assert st["running"] is True and st["access_key_id"] == "pipeline" and st["rate_per_minute"] == 1200
    st = wait_for(lambda: (lambda s: s if s["calls"] >= 8 else None)(c.control("GET", "pipeline")),
                  what="pipeline calls")
    assert st["ok"] == 4 and st["throttled"] == st["calls"] - 4 and st["errors"] == 0
    done = c.control("DELETE", "pipeline")
    assert done["running"] is False
    assert c.control("GET", "pipeline") == {"running": False}
    reqs = c.control("GET", "requests?kind=api")["requests"]
    assert all(r["access_key_id"] == "pipeline" and r["app_id"] == APP for r in reqs)
    # what the simulator counted for the key agrees (one call may still land after the stop)
    counted = c.control("GET", "account")["by_key"]["pipeline"]
    assert done["calls"] <= counted["calls"] <= done["calls"] + 1
    assert done["throttled"] <= counted["throttled"] <= done["throttled"] + 1
    with pytest.raises(AssertionError):
        c.control("POST", "pipeline", {"rate": "fast"})


def test_pipeline_and_account_limit_from_the_command_line(tmp_path):
    proc, port = start_sim(tmp_path, "--account-limit", "3/60s", "--pipeline-rate", "600/min",
                           "--pipeline-key", "pipe:pipesecret", "--scenario", str(HERE / "scenarios" / "demo.json"))
    try:
        c = Client(port)
        st = wait_for(lambda: (lambda s: s if s["calls"] >= 5 else None)(c.control("GET", "pipeline")),
                      what="pipeline calls")
        assert st["access_key_id"] == "pipe" and st["ok"] == 3 and st["throttled"] >= 2
        assert c.app_status("7171a6ca-d1cd-4928-8642-7d5cfe690001")[3]["Code"] == "Throttling.User"
        # a reset keeps the command line's limit, key and pipeline
        c.control("POST", "reset")
        acct = c.control("GET", "account")
        assert acct["limit"] == 3 and acct["window_seconds"] == 60
        wait_for(lambda: c.control("GET", "pipeline")["calls"] >= 1, what="the pipeline after a reset")
        assert "pipe" in {k["access_key_id"] for k in c.control("GET", "keys")["keys"]}
        assert stop_sim(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    r = subprocess.run([sys.executable, str(SIM_PY), "--account-limit", "lots"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "--account-limit" not in r.stdout and "rate 'lots'" in r.stderr


def test_pipeline_script_on_its_own(c, tmp_path):
    setup_sae(c, stuck())
    add_key(c, "pipe2", "pipe2secret")
    c.control("POST", "rate_limit", {"limit": 2, "window_seconds": 60})
    out = tmp_path / "pipeline.json"
    r = subprocess.run([sys.executable, str(HERE / "pipeline.py"), "--port", str(c.port), "--key", "pipe2:pipe2secret",
                        "--rate", "10/s", "--app", APP, "--duration", "0.45", "--json-out", str(out)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    st = json.loads(out.read_text())
    assert st["calls"] >= 3 and st["ok"] == 2 and st["throttled"] == st["calls"] - 2
    assert len(c.requests()) == st["calls"]
    assert {x["access_key_id"] for x in c.requests()} == {"pipe2"}


def test_parse_rate():
    sys.path.insert(0, str(HERE))
    import pipeline
    assert pipeline.parse_rate("20/min") == (20, 60.0)
    assert pipeline.parse_rate("20/6s") == (20, 6.0)
    assert pipeline.parse_rate("5/s") == (5, 1.0)
    assert pipeline.parse_rate("100/h") == (100, 3600.0)
    for bad in ("0/min", "20", "x/min", "20/0s", "20/day"):
        with pytest.raises(ValueError):
            pipeline.parse_rate(bad)


def test_late_stuck_scenario(tmp_path):
    """The scenario the budget's integration tests start from: releases
    that appear (and get stuck) seconds after the simulator starts."""
    proc, port = start_sim(tmp_path, "--scenario", str(HERE / "scenarios" / "late_stuck.json"),
                           "--account-limit", "60/min")
    try:
        c = Client(port)
        t0 = time.time()
        shop, pay = "7171a6ca-d1cd-4928-8642-7d5cfe69a001", "7171a6ca-d1cd-4928-8642-7d5cfe69a002"
        late = "a0000000-0000-4000-8000-000000000002"
        if time.time() - t0 < 1.5:
            assert c.app_status(pay)[3]["Data"]["LastChangeOrderId"] is None
        d = wait_for(lambda: (lambda d: d if d["LastChangeOrderId"] == late else None)(c.app_status(shop)[3]["Data"]),
                     timeout=15, interval=0.4, what="shop-api's release")  # 60/min: do not poll faster
        assert d["LastChangeOrderRunning"] is True and d["SubStatus"] == "RUNNING_BUT_HAS_ERROR"
        wait_for(lambda: c.app_status(pay)[3]["Data"]["SubStatus"] == "RUNNING_BUT_HAS_ERROR", timeout=15,
                 interval=0.4, what="payments to get stuck")
        assert c.control("GET", "account")["limit"] == 60
        assert stop_sim(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
