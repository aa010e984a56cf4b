#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The man pages against the code.

Everything an operator can type or grep for must be documented, and only as
the code spells it: event names with their MESSAGE_IDs, journal fields,
config keys and choices, status names with their numbers, actions, CLI
options and commands, exit codes, environment variables and the systemd
credential names. The example configurations must pass `rollguard check`.

Usage: check_docs.py --srcdir DIR [--rollguard BIN]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path


def read(path):
    return Path(path).read_text(encoding="utf-8")


def module(src, folder):
    """Every .c and .h of one folder under src/, as one text: a module may be
    split over several files, and a check must not care how."""
    return "\n".join(read(f) for f in sorted((src / "src" / folder).glob("*.[ch]")))


def c_string_arrays(text, name_re):
    """String literals of every `static const char *const NAME[] = {...};`."""
    out = {}
    for m in re.finditer(r"static const char \*const (" + name_re + r")\[\w*\]\s*=\s*\{(.*?)\};", text, re.S):
        out.setdefault(m.group(1), []).append(re.findall(r'"([^"]*)"', m.group(2)))
    return out


class Checker:
    def __init__(self):
        self.failures = []
        self.checked = 0

    def expect(self, ok, what):
        self.checked += 1
        if not ok:
            self.failures.append(what)


def term(page, word):
    """`word` as a bold term at the start of a line (scdoc definition lists)
    or anywhere in bold."""
    return re.search(r"(^|[\s(\[,])\*" + re.escape(word) + r"\*", page, re.M) is not None


def check_events(c, src, man8, catalog):
    log_c = module(src, "tell")
    events = re.findall(r'\[EV_(\w+)\]\s*=\s*\{\s*"([a-z-]+)",\s*"([0-9a-f]{32})"\s*\}', log_c)
    c.expect(len(events) >= 20, f"src/log.c: found only {len(events)} events; the pattern is stale")
    for _, name, mid in events:
        c.expect(re.search(r"\*" + re.escape(name) + r"\* \(" + mid + r"\)", man8) is not None,
                 f"rollguard.8: event {name} ({mid}) is not listed under Events")
        c.expect(f"-- {mid}" in catalog, f"rollguard.catalog: no entry for {name} ({mid})")
    for field in sorted(set(re.findall(r'"(ROLLGUARD_[A-Z_]+)"', log_c))):
        c.expect(term(man8, field), f"rollguard.8: journal field {field} is not documented")
    for field in ("MESSAGE_ID", "PRIORITY", "MESSAGE"):
        c.expect(term(man8, field), f"rollguard.8: journal field {field} is not documented")


def check_config(c, src, man5):
    config_c = module(src, "config")
    arrays = c_string_arrays(config_c, r"keys|kinds|platforms|sub_names")
    keys = [k for group in arrays.get("keys", []) for k in group]
    # the top-level keys: the names in config.c's table of sections
    for m in re.finditer(r"static const cfg_section sections\[\w*\]\s*=\s*\{(.*?)\n\};", config_c, re.S):
        keys += re.findall(r'\{\s*"(\w+)",', m.group(1))
    c.expect(len(keys) >= 30, f"src/config.c: found only {len(keys)} keys; the pattern is stale")
    top = {"defaults", "credentials", "endpoints", "alerts", "state_directory", "apps"}
    for k in sorted(set(keys)):
        if k in top and k != "state_directory":
            c.expect(re.search(r"^# " + k.upper() + r"$", man5, re.M) is not None,
                     f"rollguard.yaml.5: no section for top-level key {k}")
        else:
            c.expect(term(man5, k), f"rollguard.yaml.5: config key {k} is not documented")
    for group in ("kinds", "platforms", "sub_names"):
        for choices in arrays.get(group, []):
            for v in choices:
                c.expect(term(man5, v), f"rollguard.yaml.5: value {v} ({group}) is not documented")

    co_h = module(src, "decide")
    numbers = {m.group(1): int(m.group(2)) for m in re.finditer(r"\bCO_(\w+)\s*=\s*(-?\d+)", co_h)}
    names = re.findall(r'\[CO_(\w+)\]\s*=\s*"(\w+)"', module(src, "decide"))
    c.expect(len(names) >= 11, f"src/change_order.c: found only {len(names)} status names")
    for const, name in names:
        c.expect(re.search(r"\*" + name + r"\* \(" + str(numbers[const]) + r"\b", man5) is not None,
                 f"rollguard.yaml.5: status {name} ({numbers[const]}) is not listed")
    for action in re.findall(r'return "(\w+)";', read(src / "src/decide/rules.c").split("rule_action_from_string")[0]):
        c.expect(term(man5, action), f"rollguard.yaml.5: action {action} is not documented")
    default_types = re.search(r"rule_default_co_types\[\]\s*=\s*\{([^}]*)\}", read(src / "src/decide/rules.c"))
    for t in re.findall(r'"(\w+)"', default_types.group(1)):
        c.expect(f"[{t}]" in man5, f"rollguard.yaml.5: default co_type {t} is not stated")


def check_cli(c, src, man8):
    main_c = read(src / "src/main.c") + "\n" + module(src, "cli")  # the commands and exit codes live in src/cli
    for long_opt, short in re.findall(r'\{ "([a-z-]+)", \w+_argument, NULL, \'(\w)\' \}', main_c):
        c.expect(term(man8, f"-{short}") and term(man8, f"--{long_opt}"),
                 f"rollguard.8: option -{short}, --{long_opt} is not documented")
    for cmd in sorted({"run", "check", "once", "status"} | set(re.findall(r'^\s*\{ "([a-z-]+)", "[^"]*", cmd_\w+ \},$', main_c, re.M))):
        c.expect(re.search(r"^\*" + cmd + r"\*$", man8, re.M) is not None,
                 f"rollguard.8: command {cmd} is not documented")
    for name, value in re.findall(r"EXIT_(\w+) = (\d+)", main_c):
        c.expect(re.search(r"^\*" + value + r"\*$", man8, re.M) is not None,
                 f"rollguard.8: exit status {value} ({name}) is not documented")
    for sig in ("SIGHUP", "SIGTERM", "SIGINT"):
        c.expect(term(man8, sig), f"rollguard.8: signal {sig} is not documented")


def check_environment(c, src, man8):
    env = set()
    for f in (src / "src").rglob("*.c"):
        text = read(f)
        env |= set(re.findall(r'getenv\("([A-Z_]+)"\)', text))
        env |= set(re.findall(r'env_get\(env, "([A-Z_]+)"\)', text))
        env |= set(re.findall(r'#define ENV_\w+ "([A-Z_]+)"', text))
    env |= {"NOTIFY_SOCKET", "WATCHDOG_USEC"}  # read by libsystemd for us
    c.expect(len(env) >= 8, f"src: found only {len(env)} environment variables")
    for var in sorted(env):
        c.expect(term(man8, var), f"rollguard.8: environment variable {var} is not documented")


def check_credentials(c, src, man8, man5, unit):
    creds = set(re.findall(r'"%s/([a-z-]+)"', module(src, "cloud") + module(src, "serve")))
    c.expect(creds >= {"aliyun", "alert-token"}, f"src: credential names changed: {sorted(creds)}")
    for name in creds:
        c.expect(f"LoadCredential={name}:" in man8, f"rollguard.8: credential {name} has no LoadCredential= example")
        c.expect(f"$CREDENTIALS_DIRECTORY/{name}" in man5, f"rollguard.yaml.5: credential {name} is not named")
    c.expect("LoadCredential=aliyun:/etc/rollguard/credentials" in unit,
             "rollguard.service.in: LoadCredential=aliyun:/etc/rollguard/credentials is missing")
    default = re.search(r"ROLLGUARD_DEFAULT_CONFIG', '([^']+)'", read(src / "meson.build"))
    c.expect(default is not None and default.group(1) == "/etc/rollguard/rollguard.yaml",
             "meson.build: the default config is not /etc/rollguard/rollguard.yaml (SPEC 8)")
    c.expect("${CONFIGURATION_DIRECTORY}/rollguard.yaml" in unit and "ConfigurationDirectory=rollguard" in unit,
             "rollguard.service.in: the config does not come from ConfigurationDirectory=")


def run_check(binary, config, tmp):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ALIBABA_CLOUD_") and k not in ("CREDENTIALS_DIRECTORY", "STATE_DIRECTORY")}
    env.update(HOME=tmp, ALIBABA_CLOUD_ACCESS_KEY_ID="testid", ALIBABA_CLOUD_ACCESS_KEY_SECRET="testsecret")
    return subprocess.run([binary, "--config", str(config), "check"], capture_output=True, text=True,
                          env=env, timeout=30, stdin=subprocess.DEVNULL)


def check_examples(c, src, man5, binary):
    with tempfile.TemporaryDirectory() as tmp:
        m = re.search(r"^# EXAMPLE\n```\n(.*?)```", man5, re.S | re.M)
        c.expect(m is not None, "rollguard.yaml.5: no EXAMPLE block")
        if m:
            path = Path(tmp) / "example.yaml"
            path.write_text(m.group(1))
            r = run_check(binary, path, tmp)
            c.expect(r.returncode == 0, f"rollguard.yaml.5 EXAMPLE fails `rollguard check`: {r.stderr.strip()}")
        # The shipped example names credential files that do not exist here:
        # only the configuration's validity (the first line) is asserted.
        example = src / "conf" / "rollguard.yaml"
        r = run_check(binary, example, tmp)
        c.expect(r.stdout.startswith(f"{example}: OK"),
                 f"conf/rollguard.yaml fails `rollguard check`: {r.stderr.strip()}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--srcdir", required=True, type=Path)
    ap.add_argument("--rollguard", help="the built binary, to validate the examples")
    a = ap.parse_args()
    src = a.srcdir
    man8 = read(src / "man/rollguard.8.scd")
    man5 = read(src / "man/rollguard.yaml.5.scd")
    unit = read(src / "systemd/rollguard.service.in")
    catalog = read(src / "systemd/rollguard.catalog")

    c = Checker()
    check_events(c, src, man8, catalog)
    check_config(c, src, man5)
    check_cli(c, src, man8)
    check_environment(c, src, man8)
    check_credentials(c, src, man8, man5, unit)
    if a.rollguard:
        check_examples(c, src, man5, a.rollguard)

    for f in c.failures:
        print(f"FAIL: {f}")
    print(f"{c.checked - len(c.failures)}/{c.checked} documentation checks passed")
    return 1 if c.failures else 0


if __name__ == "__main__":
    sys.exit(main())
