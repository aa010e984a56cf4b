# SPDX-License-Identifier: MIT
"""The credential chain (SPEC 8, issue 5) with the real binary: which source
wins, that `rollguard check` names it (never the secret), that `run` really
signs with that key (the simulator verifies every signature against the key
it knows), and the ECS RAM role against the simulator's fake metadata
service: hardened token flow, STS token on every call, refresh before
expiry, an outage during refresh, an expired token.

Nothing here ever talks to 100.100.100.200: every config that asks for the
RAM role goes through ram_role_config(), which always points
credentials.metadata_endpoint at the simulator."""
import os
import re
import signal
import stat

import pytest

from conftest import (_SECRETS, TEST_KEY_ID, TEST_KEY_SECRET, known_secrets, sae_app, stuck_order,
                      healthy_order, wait_for, write_config)

STATUS = "DescribeApplicationStatus"
# a look at an app: while a release is in flight the order call alone (issue 11)
LOOKS = (STATUS, "DescribeChangeOrder")

# Keys the simulator is started with: one per source, so the AccessKeyId it
# records says which source signed.
KEYS = {
    "env": ("envid", "env-secret-6c1f0e9a"),
    "file": ("fileid", "file-secret-0b7d33c4"),
    "systemd": ("sdid", "systemd-secret-93aa51e2"),
    "default": ("profid", "profile-secret-4e8f2d17"),
    "prod": ("prodid", "prod-secret-c2a9b470"),
}
STS_KEY = ("STS.envsts", "sts-secret-51d0e7f3", "sts-token-CAIS-8b2e41a6d9")
for _id, _secret in KEYS.values():
    _SECRETS.add(_secret)
_SECRETS.update(STS_KEY[1:])

NO_ENV_KEYS = {"ALIBABA_CLOUD_ACCESS_KEY_ID": None, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": None}


# --------------------------------------------------------------------------
# Helpers


@pytest.fixture
def ksim(make_sim):
    """A simulator that knows every test key (and testid:testsecret)."""
    keys = [f"{TEST_KEY_ID}:{TEST_KEY_SECRET}"] + [f"{i}:{s}" for i, s in KEYS.values()]
    keys.append(":".join(STS_KEY))
    return make_sim(keys=keys)


def ini(key_id, secret, section="default", extra=""):
    return f"[{section}]\ntype = access_key\naccess_key_id = {key_id}\naccess_key_secret = {secret}\n{extra}"


def write_secret_file(path, text, mode=0o600):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def config_file(tmp_path):
    return write_secret_file(tmp_path / "etc" / "credentials", ini(*KEYS["file"]))


def systemd_dir(tmp_path):
    d = tmp_path / "creds.d"
    write_secret_file(d / "aliyun", ini(*KEYS["systemd"]))
    return d


def profile_file(tmp_path, mode=0o600):
    """~/.alibabacloud/credentials in the HOME the harness gives the daemon."""
    text = ini(*KEYS["default"]) + "\n" + ini(*KEYS["prod"], section="prod")
    return write_secret_file(tmp_path / "home" / ".alibabacloud" / "credentials", text, mode)


def idle_app(sim, name="creds-app"):
    app = sae_app(name=name)
    sim.add_app(app)
    return app


def cfg_with(tmp_path, sim, apps, credentials=None, **kw):
    extra = {"credentials": credentials} if credentials else None
    return write_config(tmp_path, sim, apps, extra=extra, **kw)


def ram_role_config(tmp_path, sim, apps, role="auto", **kw):
    """The only way these tests ask for the RAM role: with the metadata
    endpoint on the simulator."""
    creds = {"ecs_ram_role": role, "metadata_endpoint": sim.url}
    assert creds["metadata_endpoint"].startswith("http://127.0.0.1:")
    return cfg_with(tmp_path, sim, apps, credentials=creds, **kw)


def check_source(run_cli, cfg, env=None):
    r = run_cli("--config", cfg, "check", env=env)
    m = re.search(r"^  credentials: (.*)$", r.stdout, re.M)
    assert m, r.stdout + r.stderr
    return r, m.group(1)


def api_requests(sim, since=0):
    return sim.requests(since=since)


def assert_signed_by(sim, key_id, token=False):
    reqs = api_requests(sim)
    assert reqs, "no API request was made"
    for r in reqs:
        assert r["access_key_id"] == key_id, r
        assert r["signature_ok"] is True and r["status"] == 200, r
        assert r["security_token_present"] is token, r


def run_until_signed(start_daemon, sim, cfg, app, env=None):
    """Start the daemon, wait for two polls of the app, stop it; returns it."""
    d = start_daemon(cfg, env=env)
    sim.wait_for_requests(STATUS, n=2, timeout=15, app_id=app["app_id"])
    assert d.stop() == 0
    return d


def assert_no_secret_in_state(tmp_path):
    secrets = known_secrets()
    for p in (tmp_path / "state").rglob("*"):
        if p.is_file():
            text = p.read_text(errors="replace")
            leaked = [s for s in secrets if s and s in text]
            assert not leaked, f"a secret leaked into {p.name}"


def metadata_requests(sim, since=0):
    return sim.requests(kind="metadata", since=since)


def issued(sim):
    return sim.metadata()["issued"]


def key_expiry(sim, key_id):
    for k in sim.keys():
        if k["access_key_id"] == key_id:
            return k["expires_at"]
    raise AssertionError(f"the simulator never issued {key_id}")


# --------------------------------------------------------------------------
# Static sources and their order


PRECEDENCE = [
    # (sources present, expected `check` source, expected signing key)
    (("env", "file", "systemd", "profile"), r"environment \(ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET\)", "env"),
    (("file", "systemd", "profile"), r"file \(.*/etc/credentials\)", "file"),
    (("systemd", "profile"), r"systemd-credential \(.*/creds\.d/aliyun\)", "systemd"),
    (("profile",), r"profile \(profile default in .*/home/\.alibabacloud/credentials\)", "default"),
]


@pytest.mark.parametrize("present,source,key", PRECEDENCE,
                         ids=["env-wins", "config-file-next", "systemd-credential-next", "profile-last"])
def test_first_source_in_the_chain_wins(ksim, tmp_path, run_cli, start_daemon, present, source, key):
    app = idle_app(ksim)
    env = dict(NO_ENV_KEYS)
    creds = None
    if "env" in present:
        env.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": KEYS["env"][0],
                    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": KEYS["env"][1]})
    if "file" in present:
        creds = {"file": str(config_file(tmp_path))}
    if "systemd" in present:
        env["CREDENTIALS_DIRECTORY"] = str(systemd_dir(tmp_path))
    if "profile" in present:
        profile_file(tmp_path)
    cfg = cfg_with(tmp_path, ksim, [app], credentials=creds)

    r, got = check_source(run_cli, cfg, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.fullmatch(source, got), got
    assert "warning" not in r.stdout, r.stdout

    run_until_signed(start_daemon, ksim, cfg, app, env)
    assert_signed_by(ksim, KEYS[key][0])
    assert_no_secret_in_state(tmp_path)


def test_profile_chosen_by_alibaba_cloud_profile(ksim, tmp_path, run_cli, start_daemon):
    app = idle_app(ksim)
    profile_file(tmp_path)
    env = dict(NO_ENV_KEYS, ALIBABA_CLOUD_PROFILE="prod")
    cfg = cfg_with(tmp_path, ksim, [app])
    r, got = check_source(run_cli, cfg, env)
    assert r.returncode == 0
    assert re.fullmatch(r"profile \(profile prod in .*/home/\.alibabacloud/credentials\)", got), got
    run_until_signed(start_daemon, ksim, cfg, app, env)
    assert_signed_by(ksim, KEYS["prod"][0])


def test_missing_named_profile_is_an_error_not_a_fallback(ksim, tmp_path, run_cli, start_daemon):
    app = idle_app(ksim)
    profile_file(tmp_path)
    env = dict(NO_ENV_KEYS, ALIBABA_CLOUD_PROFILE="staging")
    cfg = cfg_with(tmp_path, ksim, [app])
    r, got = check_source(run_cli, cfg, env)
    assert r.returncode == 1
    assert got.startswith("NONE: profile staging (from ALIBABA_CLOUD_PROFILE) not found in "), got
    d = start_daemon(cfg, env=env)
    assert d.wait_exit(10) == 1
    assert api_requests(ksim) == []


def test_sts_token_from_the_environment_is_sent(ksim, tmp_path, run_cli, start_daemon):
    app = idle_app(ksim)
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": STS_KEY[0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": STS_KEY[1],
           "ALIBABA_CLOUD_SECURITY_TOKEN": STS_KEY[2]}
    cfg = cfg_with(tmp_path, ksim, [app])
    r, got = check_source(run_cli, cfg, env)
    assert r.returncode == 0
    assert got == "environment (ALIBABA_CLOUD_ACCESS_KEY_ID and _SECRET), STS token", got
    run_until_signed(start_daemon, ksim, cfg, app, env)
    # the simulator refuses a request whose x-acs-security-token is not the
    # one issued with the key: status 200 means the right token went out
    assert_signed_by(ksim, STS_KEY[0], token=True)


def test_half_set_environment_is_an_error(ksim, tmp_path, run_cli):
    app = idle_app(ksim)
    profile_file(tmp_path)
    cfg = cfg_with(tmp_path, ksim, [app])
    r, got = check_source(run_cli, cfg, {"ALIBABA_CLOUD_ACCESS_KEY_SECRET": None})
    assert r.returncode == 1
    assert got == "NONE: ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set, but ALIBABA_CLOUD_ACCESS_KEY_ID is", got


def test_no_credentials_anywhere(ksim, tmp_path, run_cli, start_daemon):
    app = idle_app(ksim)
    cfg = cfg_with(tmp_path, ksim, [app])
    r, got = check_source(run_cli, cfg, NO_ENV_KEYS)
    assert r.returncode == 1
    assert got.startswith("NONE: no credentials found; looked at: the environment"), got
    for place in ("CREDENTIALS_DIRECTORY", ".alibabacloud/credentials"):
        assert place in got, got

    d = start_daemon(cfg, env=NO_ENV_KEYS)
    assert d.wait_exit(10) == 1
    line = d.wait_for_log("rollguard-credentials")
    assert line.startswith("err rollguard-credentials: no usable credentials: no credentials found"), line
    assert "credentials.ecs_ram_role" in line, "the last resort is named"
    assert api_requests(ksim) == [] and metadata_requests(ksim) == []


# --------------------------------------------------------------------------
# Broken and careless files


@pytest.mark.parametrize("where", ["config", "profile"])
def test_group_readable_file_gets_a_warning(ksim, tmp_path, run_cli, start_daemon, where):
    app = idle_app(ksim)
    env = dict(NO_ENV_KEYS)
    if where == "config":
        path = config_file(tmp_path)
        os.chmod(path, 0o640)
        cfg = cfg_with(tmp_path, ksim, [app], credentials={"file": str(path)})
        key = "file"
    else:
        path = profile_file(tmp_path, mode=0o644)
        cfg = cfg_with(tmp_path, ksim, [app])
        key = "default"
    r, got = check_source(run_cli, cfg, env)
    assert r.returncode == 0, "a warning, not an error"
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert f"  warning: {path} is readable by group or others (mode {mode:04o}); chmod 600 it" in r.stdout, r.stdout
    d = run_until_signed(start_daemon, ksim, cfg, app, env)
    assert d.find_logs(re.compile(r"^warning rollguard-credentials: .*readable by group or others"))
    assert_signed_by(ksim, KEYS[key][0])


def test_systemd_credential_mode_is_systemds_business(ksim, tmp_path, run_cli):
    app = idle_app(ksim)
    d = systemd_dir(tmp_path)
    os.chmod(d / "aliyun", 0o644)
    r, got = check_source(run_cli, cfg_with(tmp_path, ksim, [app]),
                          dict(NO_ENV_KEYS, CREDENTIALS_DIRECTORY=str(d)))
    assert r.returncode == 0 and got.startswith("systemd-credential"), got
    assert "warning" not in r.stdout


@pytest.mark.parametrize("kind", ["directory", "missing", "unreadable"])
def test_unusable_configured_file_is_a_clear_error(ksim, tmp_path, run_cli, start_daemon, kind):
    """The file the config names cannot be read. The tests run as root, for
    whom chmod 000 stops nothing: a directory and a missing path are the
    unreadable files every user can produce (the chmod case runs only when
    not root). A valid profile is present too: a file the operator named
    must never be silently replaced by another source."""
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads a mode 000 file; covered by the directory and missing cases")
    app = idle_app(ksim)
    profile_file(tmp_path)
    if kind == "directory":
        path, why = tmp_path / "etc", "Is a directory"
        path.mkdir()
    elif kind == "missing":
        path, why = tmp_path / "etc" / "no-such-credentials", "No such file or directory"
    else:
        path, why = write_secret_file(tmp_path / "etc" / "credentials", ini(*KEYS["file"]), 0o000), "Permission denied"
    cfg = cfg_with(tmp_path, ksim, [app], credentials={"file": str(path)})
    r, got = check_source(run_cli, cfg, NO_ENV_KEYS)
    assert r.returncode == 1
    assert got == f"NONE: credentials file {path}: {why}", got

    d = start_daemon(cfg, env=NO_ENV_KEYS)
    assert d.wait_exit(10) == 1
    d.wait_for_log(f"err rollguard-credentials: no usable credentials: credentials file {path}: {why}")
    assert api_requests(ksim) == []


@pytest.mark.parametrize("text,message", [
    ("[default]\naccess_key_id = fileid\n", "2: access_key_secret is missing"),
    ("[default]\naccess_key_id = fileid\naccess_key_secret file-secret-0b7d33c4\n", "3: expected 'key = value'"),
    ("[default]\naccess_key_id = fileid\naccess_key_secret = file-secret-\x010b7d33c4\n",
     "3: access_key_secret contains a control character"),
    ("[default]\ntype = ecs_ram_role\naccess_key_id = fileid\naccess_key_secret = file-secret-0b7d33c4\n",
     "2: this credential type is not supported"),
], ids=["no-secret", "no-equals", "control-char", "wrong-type"])
def test_malformed_file_names_the_line_never_the_value(ksim, tmp_path, run_cli, text, message):
    app = idle_app(ksim)
    path = write_secret_file(tmp_path / "etc" / "credentials", text)
    cfg = cfg_with(tmp_path, ksim, [app], credentials={"file": str(path)})
    r, got = check_source(run_cli, cfg, NO_ENV_KEYS)
    assert r.returncode == 1
    assert got.startswith(f"NONE: {path}:{message}") or got.startswith(f"NONE: {path}: {message}"), got
    for fragment in ("file-secret", "0b7d33c4"):
        assert fragment not in r.stdout + r.stderr


def test_env_wins_even_over_a_broken_config_file(ksim, tmp_path, run_cli):
    """The environment is first: a configured file is not even read then."""
    app = idle_app(ksim)
    cfg = cfg_with(tmp_path, ksim, [app], credentials={"file": str(tmp_path / "missing")})
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": KEYS["env"][0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": KEYS["env"][1]}
    r, got = check_source(run_cli, cfg, env)
    assert r.returncode == 0 and got.startswith("environment"), got


# --------------------------------------------------------------------------
# ECS instance RAM role (fake metadata service in the simulator)


def test_ram_role_only_when_asked_for(ksim, tmp_path, start_daemon):
    """Static credentials present and a role configured: the static ones win
    and the metadata service is never contacted."""
    app = idle_app(ksim)
    cfg = ram_role_config(tmp_path, ksim, [app])
    run_until_signed(start_daemon, ksim, cfg, app)
    assert_signed_by(ksim, TEST_KEY_ID)
    assert metadata_requests(ksim) == []


def test_ram_role_auto_hardened_flow_and_sts_token(ksim, tmp_path, run_cli, start_daemon):
    app = idle_app(ksim)
    cfg = ram_role_config(tmp_path, ksim, [app])
    r, got = check_source(run_cli, cfg, NO_ENV_KEYS)
    assert r.returncode == 0
    assert got == "ECS RAM role auto (fetched from the metadata service at start)", got
    assert metadata_requests(ksim) == [], "check must not fetch anything"

    d = start_daemon(cfg, env=NO_ENV_KEYS)
    d.wait_for_log(f"fetching ECS RAM role auto from {ksim.url}")
    ksim.wait_for_requests(STATUS, n=3, timeout=15)
    line = d.wait_for_log("ECS RAM role rollguard-test-role: credentials valid until")

    meta = metadata_requests(ksim)
    # token first (PUT, the simulator demands the TTL header), then the role
    # and its credentials with the token (the simulator answers 401 without)
    assert [(m["method"], m["action"]) for m in meta[:3]] == [
        ("PUT", "MetadataToken"), ("GET", "MetadataRole"), ("GET", "MetadataCredentials")], meta
    assert meta[2]["path"] == "/latest/meta-data/ram/security-credentials/rollguard-test-role"
    assert all(m["status"] == 200 for m in meta), meta
    sts_id = issued(ksim)[0]
    assert sts_id.startswith("STS.")
    assert_signed_by(ksim, sts_id, token=True)
    assert "refreshing in" in line
    assert d.stop() == 0
    d.assert_no_secrets()  # includes the STS secret and token the simulator issued
    assert_no_secret_in_state(tmp_path)


@pytest.mark.parametrize("how", ["config", "env"])
def test_named_ram_role_skips_discovery(ksim, tmp_path, start_daemon, how):
    ksim.metadata(role="rg-named-role")
    app = idle_app(ksim)
    env = dict(NO_ENV_KEYS)
    if how == "config":
        cfg = ram_role_config(tmp_path, ksim, [app], role="rg-named-role")
    else:
        # ALIBABA_CLOUD_ECS_METADATA names the role; the endpoint still comes
        # from the config so nothing leaves the machine
        cfg = cfg_with(tmp_path, ksim, [app], credentials={"metadata_endpoint": ksim.url})
        env["ALIBABA_CLOUD_ECS_METADATA"] = "rg-named-role"
    run_until_signed(start_daemon, ksim, cfg, app, env)
    meta = metadata_requests(ksim)
    assert [m["action"] for m in meta] == ["MetadataToken", "MetadataCredentials"], meta
    assert meta[1]["path"] == "/latest/meta-data/ram/security-credentials/rg-named-role"
    assert_signed_by(ksim, issued(ksim)[0], token=True)


def test_no_role_attached_keeps_retrying_and_calls_nothing(ksim, tmp_path, start_daemon):
    ksim.metadata(role=None)
    app = idle_app(ksim)
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    d.wait_for_log(re.compile(r"^warning rollguard-credentials: ECS RAM role auto: no RAM role is attached"),
                   timeout=10)
    # it retries with backoff and the daemon stays up
    wait_for(lambda: len([m for m in metadata_requests(ksim) if m["action"] == "MetadataToken"]) >= 3,
             timeout=20, what="three attempts")
    assert d.running
    assert api_requests(ksim) == []
    # a role gets attached: the next attempt finds it and polling starts
    ksim.metadata(role="late-role")
    ksim.wait_for_requests(STATUS, n=1, timeout=30)
    assert_signed_by(ksim, issued(ksim)[0], token=True)


def test_named_role_not_attached_says_so(ksim, tmp_path, start_daemon):
    app = idle_app(ksim)
    d = start_daemon(ram_role_config(tmp_path, ksim, [app], role="not-this-one"), env=NO_ENV_KEYS)
    d.wait_for_log(re.compile(r"^warning rollguard-credentials: ECS RAM role not-this-one: RAM role not-this-one "
                              r"is not attached to this instance \(GET .*: HTTP 404\); retrying in "), timeout=10)
    assert d.running
    assert api_requests(ksim) == []


def test_sts_credentials_are_refreshed_before_they_expire(ksim, tmp_path, start_daemon):
    """Six-second STS credentials: refreshed ahead of expiry again and again;
    every call is signed by a key that is valid when it arrives."""
    ksim.metadata(expiry_seconds=6)
    co = healthy_order(steps=10_000, step_seconds=1)  # in flight all along: 1s polls
    app = sae_app(orders=[co], name="sts-app")
    ksim.set_apps([app])
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    wait_for(lambda: len(issued(ksim)) >= 4, timeout=40, what="four STS credential fetches")
    keys = issued(ksim)
    # calls after the fourth fetch use the fourth key
    ksim.wait_for_requests(None, n=1, timeout=10, access_key_id=keys[3])
    assert d.stop() == 0

    reqs = api_requests(ksim)
    for r in reqs:
        assert r["signature_ok"] is True and r["status"] == 200, r
        assert r["security_token_present"] is True
    used = [r["access_key_id"] for r in reqs]
    assert set(keys[:4]) <= set(used), "each rotated key signed calls"
    # rotation is one way: once a newer key is in use an older one never returns
    order = [keys.index(k) for k in used]
    assert order == sorted(order), order
    # each key was replaced before it expired
    for k in keys[:3]:
        last_use = max(r["t"] for r in reqs if r["access_key_id"] == k)
        assert last_use < key_expiry(ksim, k)
    # every fetch is a full hardened flow with a fresh token
    meta = metadata_requests(ksim)
    creds_fetches = [m for m in meta if m["action"] == "MetadataCredentials"]
    tokens = [m for m in meta if m["action"] == "MetadataToken"]
    assert len(tokens) >= len(creds_fetches) >= 4
    assert len(d.find_logs("rollguard-credentials: ECS RAM role rollguard-test-role: credentials valid until")) >= 4
    d.assert_no_secrets()


def test_slow_metadata_refresh_does_not_block_the_loop(ksim, tmp_path, start_daemon):
    """The refresh is asynchronous: while the metadata service takes two
    seconds to answer, the daemon keeps polling with the current key."""
    ksim.metadata(expiry_seconds=15)
    co = healthy_order(steps=10_000, step_seconds=1)
    app = sae_app(orders=[co], name="slow-meta")
    ksim.set_apps([app])
    ksim.add_fault(kind="slow", seconds=2, count=1, after=1, match={"kind": "metadata", "action": "MetadataCredentials"})
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    wait_for(lambda: len(issued(ksim)) >= 2, timeout=30, what="the refresh")
    first, second = issued(ksim)[:2]
    ksim.wait_for_requests(None, n=1, timeout=10, access_key_id=second)
    slow = [m for m in metadata_requests(ksim) if m["action"] == "MetadataCredentials"][1]
    assert slow["fault"] == "slow"
    during = [r for r in api_requests(ksim) if slow["t"] < r["t"] < slow["t"] + 1.9]
    assert during, "no API call while the metadata answer was pending: the loop was blocked"
    assert all(r["access_key_id"] == first and r["status"] == 200 for r in during), during
    assert all(r["status"] == 200 for r in api_requests(ksim))
    assert d.find_logs("rollguard-api-error") == [] and d.running


def test_metadata_outage_during_refresh_keeps_the_old_token_then_recovers(ksim, tmp_path, start_daemon):
    """The refresh (80% into a 30 s lifetime) fails: the daemon keeps calling
    with the still-valid credentials, retries the metadata service, and picks
    up new credentials once it answers again - before the old ones expire."""
    ksim.metadata(expiry_seconds=30)
    co = healthy_order(steps=10_000, step_seconds=1)
    app = sae_app(orders=[co], name="outage")
    ksim.set_apps([app])
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    wait_for(lambda: len(issued(ksim)) >= 1, timeout=15, what="the first fetch")
    old = issued(ksim)[0]
    ksim.add_fault(kind="http_status", status=500, count=-1, match={"kind": "metadata"})

    failed = lambda: [m for m in metadata_requests(ksim) if m["fault"] == "http_status"]
    wait_for(lambda: len(failed()) >= 2, timeout=40, what="two failed refresh attempts")
    d.wait_for_log(re.compile(r"^warning rollguard-credentials: ECS RAM role rollguard-test-role: "
                              r"PUT /latest/api/token at .*: HTTP 500; retrying in .*\(the current credentials "
                              r"stay in use until they expire\)"))
    t_fail = failed()[0]["t"]
    # polling goes on with the old credentials during the outage
    wait_for(lambda: [r for r in api_requests(ksim) if r["t"] > t_fail and r["action"] in LOOKS],
             timeout=10, what="a poll during the outage")
    during = [r for r in api_requests(ksim) if r["t"] > t_fail]
    assert all(r["access_key_id"] == old and r["status"] == 200 for r in during), during

    ksim.clear_faults()
    wait_for(lambda: len(issued(ksim)) >= 2, timeout=15, what="the refresh after the outage")
    new = issued(ksim)[1]
    ksim.wait_for_requests(None, n=2, timeout=10, access_key_id=new)
    assert all(r["status"] == 200 and r["signature_ok"] for r in api_requests(ksim))
    # recovered before the old credentials ran out: there was no gap
    assert d.find_logs("have expired") == []
    assert max(r["t"] for r in api_requests(ksim) if r["access_key_id"] == old) < key_expiry(ksim, old)


def test_expired_credentials_are_never_used_and_the_daemon_recovers(ksim, tmp_path, start_daemon):
    """The metadata service stays down past Expiration: the daemon stops
    calling (a call with a dead token is refused anyway), says so, keeps
    retrying, and resumes as soon as new credentials arrive."""
    ksim.metadata(expiry_seconds=6)
    co = healthy_order(steps=10_000, step_seconds=1)
    app = sae_app(orders=[co], name="expired")
    ksim.set_apps([app])
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    wait_for(lambda: len(issued(ksim)) >= 1, timeout=15, what="the first fetch")
    old = issued(ksim)[0]
    ksim.add_fault(kind="reset", count=-1, match={"kind": "metadata"})

    d.wait_for_log(re.compile(r"^err rollguard-credentials: credentials from ecs-ram-role \(rollguard-test-role\) "
                              r"have expired and could not be refreshed"), timeout=20)
    expired_at = key_expiry(ksim, old)
    # it keeps trying the metadata service...
    n = len(metadata_requests(ksim))
    wait_for(lambda: len(metadata_requests(ksim)) >= n + 1, timeout=40, what="another attempt after expiry")
    # ...and sends nothing with the dead credentials meanwhile. (The daemon
    # reads Expiration in whole seconds, so it stops at or before the
    # simulator's instant; half a second covers a call signed just before
    # and still on the wire.)
    late = [r for r in api_requests(ksim) if r["t"] >= expired_at + 0.5]
    assert late == [], late
    assert d.running

    ksim.clear_faults()
    wait_for(lambda: len(issued(ksim)) >= 2, timeout=70, what="new credentials after the outage")
    new = issued(ksim)[1]
    ksim.wait_for_requests(None, n=2, timeout=15, access_key_id=new)
    assert all(r["status"] == 200 for r in api_requests(ksim) if r["access_key_id"] == new)
    assert [r for r in api_requests(ksim)
            if r["error_code"] == "InvalidSecurityToken.Expired" and r["t"] >= expired_at + 0.5] == []


def test_ram_role_rollback_is_signed_with_the_sts_token(ksim, tmp_path, start_daemon):
    """The action path uses the same credentials: a stuck release is rolled
    back with an STS-signed call."""
    co = stuck_order()
    app = sae_app(orders=[co], name="sts-rollback")
    ksim.set_apps([app])
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    rb = ksim.wait_for_rollback(co["id"], timeout=20)
    assert rb["result"] == "accepted"
    d.wait_for_log("rollguard-action-done")
    put = [r for r in api_requests(ksim) if r["method"] == "PUT"]
    assert len(put) == 1 and put[0]["security_token_present"] and put[0]["access_key_id"].startswith("STS.")
    assert d.stop() == 0
    assert_no_secret_in_state(tmp_path)


# --------------------------------------------------------------------------
# Replaced secrets do not linger in the daemon's memory


# Bigger writable mappings are address-space reservations (ASan's shadow
# memory is terabytes, nearly all never touched), not where the daemon keeps
# data; reading them would take forever. The positive control below (the live
# key must be found) shows the scan still covers the heap.
SCAN_REGION_LIMIT = 1 << 30
SCAN_CHUNK = 16 << 20


def scan_memory(pid, needles):
    """{needle: count} over the writable mappings of a (stopped) process."""
    found = {}
    raw = [n.encode() for n in needles]
    overlap = max(len(n) for n in raw) - 1
    with open(f"/proc/{pid}/maps") as maps:
        regions = [line.split() for line in maps]
    with open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for r in regions:
            if "rw" not in r[1]:
                continue
            lo, hi = (int(x, 16) for x in r[0].split("-"))
            if hi - lo > SCAN_REGION_LIMIT:
                continue
            tail = b""
            for at in range(lo, hi, SCAN_CHUNK):
                try:
                    mem.seek(at)
                    data = tail + mem.read(min(SCAN_CHUNK, hi - at))
                except (OSError, ValueError, OverflowError):
                    break
                for n, b in zip(needles, raw):
                    # a match wholly inside the carried-over tail was counted
                    c = data.count(b) - (tail.count(b) if tail else 0)
                    if c:
                        found[n] = found.get(n, 0) + c
                tail = data[-overlap:] if overlap else b""
    return found


def replaced_sts_keys_in_memory(ksim, tmp_path, start_daemon):
    """Rotates STS credentials a few times, freezes the daemon and looks for
    the keys it replaced. Returns (replaced key records, {value: count})."""
    ksim.metadata(expiry_seconds=5)
    co = healthy_order(steps=10_000, step_seconds=1)
    app = sae_app(orders=[co], name="wipe")
    ksim.set_apps([app])
    d = start_daemon(ram_role_config(tmp_path, ksim, [app]), env=NO_ENV_KEYS)
    wait_for(lambda: len(issued(ksim)) >= 5, timeout=40, what="five STS credential fetches")
    d.send_signal(signal.SIGSTOP)
    try:
        ids = issued(ksim)
        # the newest may still be on its way to the daemon: the one before
        # it may be the live one; everything older has been replaced
        replaced = [k for k in ksim.keys() if k["access_key_id"] in ids[:-2]]
        live = [k for k in ksim.keys() if k["access_key_id"] in ids[-2:]]
        assert len(replaced) >= 3
        try:
            found = scan_memory(d.pid, [v for k in replaced + live
                                        for v in (k["access_key_secret"], k["security_token"])])
        except PermissionError:
            pytest.skip("cannot read the daemon's memory here")
    finally:
        d.send_signal(signal.SIGCONT)
    # Positive control: the key in use is in memory, so the scan did reach
    # the daemon's heap and "not found" below means wiped, not missed.
    assert any(k["access_key_secret"] in found for k in live), "scan did not find the live key"
    return replaced, found


def test_replaced_sts_secrets_are_wiped_from_memory(ksim, tmp_path, start_daemon):
    replaced, found = replaced_sts_keys_in_memory(ksim, tmp_path, start_daemon)
    lingering = [k["access_key_id"] for k in replaced if k["access_key_secret"] in found]
    assert lingering == [], f"AccessKeySecret of replaced keys still in memory: {lingering}"


def test_replaced_sts_tokens_are_wiped_from_memory(ksim, tmp_path, start_daemon):
    replaced, found = replaced_sts_keys_in_memory(ksim, tmp_path, start_daemon)
    lingering = [k["access_key_id"] for k in replaced if k["security_token"] in found]
    assert lingering == [], f"SecurityToken of replaced keys still in memory: {lingering}"
