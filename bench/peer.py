"""PEER=ssp: the PHP peer of ../shared/peers/ssp/ (LTB Self Service Password
1.8 under Apache prefork + mod_php 8.2) in the same run as the portal.

It runs on the peer's own {SSHA} lab slapd (ssp/slapd-lab.sh: 2,000 users
who may write their own userPassword), not on the portal's directory: there
members cannot write a password at all (by self =x), so the peer's change,
a modify as the user, is refused by design. The floor app
(../shared/peers/floor/) is measured on the same lab (login, and its
change: a Password Modify as the user) so the peer has its floor beside it.
The peer's scripts are used as they are; their inputs (bare clones of
self-service-password, ltb-common and zxcvbn-php) come from SSP_REPO,
LTB_REPO and ZXCVBN_REPO."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from app.devstack.slapd import free_port
from bench import driver

PEERS = Path(__file__).resolve().parents[2] / "shared" / "peers"
LAB_BASE, LAB_ADMIN, LAB_PASSWORD = "dc=example,dc=org", "cn=admin,dc=example,dc=org", \
    "admin-secret"


# Where this machine's fetched mirrors are, when the variables are not set.
MIRRORS = {"SSP_REPO": "/work/.mirror/ltb-project+self-service-password/repo",
           "LTB_REPO": "/work/.mirror/ltb-project+ltb-common/repo",
           "ZXCVBN_REPO": "/work/.mirror/bjeavons+zxcvbn-php/repo"}


def _user(i: int) -> str:
    return f"user{i:05d}"


def _old(i: int) -> str:
    return f"Old-Pass-{i:05d}!"


def _new(i: int) -> str:
    return f"New-Pass-{i:05d}!x"


def ssp_change(client, i):
    seconds, (status, _, page) = client.timed("POST", "/index.php?action=change", {
        "login": _user(i), "oldpassword": _old(i), "newpassword": _new(i),
        "confirmpassword": _new(i)})
    return seconds, status == 200 and "Your password was changed" in page


def floor_login(client, i):
    seconds, (status, _, _) = client.timed("POST", "/login", {
        "login": _user(1 + i % 100), "password": _old(1 + i % 100)})
    return seconds, status == 302


def floor_change(client, i):
    seconds, (status, _, _) = client.timed("POST", "/change", {
        "login": _user(i), "old": _old(i), "new": _new(i)})
    return seconds, status == 302


def form_floor_login(client, i):
    client.cookies.clear()
    token = client.csrf("/login")
    seconds, (status, _, _) = client.timed("POST", "/login", {
        "csrf_token": token, "login": _user(1 + i % 100), "password": _old(1 + i % 100)})
    return seconds, status == 302


def form_floor_change(client, i):
    """The form, then the POST: CSRF, zxcvbn, bind and Password Modify as
    the user; the peer's new password (zxcvbn scores it 4)."""
    client.cookies.clear()
    token = client.csrf("/change")
    seconds, (status, _, _) = client.timed("POST", "/change", {
        "csrf_token": token, "login": _user(i), "old": _old(i),
        "new": _new(i)})
    return seconds, status == 302


def ssp_change_as_browser(client, i):
    """The peer's change as a browser (and the portal's flow) does it: the
    page with the form (untimed), then the POST."""
    client.request("GET", "/index.php?action=change")
    return ssp_change(client, i)


def _wait_strength_check(port: int, timeout: float = 20) -> bool:
    """Until the peer refuses a weak new password for its entropy (PHP's
    opcache notices a changed file only every few seconds), probing with
    users outside the measured ranges (1999 down: one that the old
    configuration let through is used up). False if it never does."""
    client = driver.Client("127.0.0.1", port)
    deadline, user = time.monotonic() + timeout, 1999
    while time.monotonic() < deadline:
        _, _, page = client.request("POST", "/index.php?action=change", {
            "login": _user(user), "oldpassword": _old(user), "newpassword": "password1234",
            "confirmpassword": "password1234"})
        if "Insufficient entropy" in page:
            return True
        if "Your password was changed" in page:
            user -= 1
        time.sleep(0.5)
    return False


def _lab(work: Path, port: int) -> None:
    subprocess.run([str(PEERS / "ssp" / "slapd-lab.sh"), "start", str(work / "slapd"),
                    str(port), "2000"], check=True, capture_output=True)


def _lab_stop(work: Path) -> None:
    subprocess.run([str(PEERS / "ssp" / "slapd-lab.sh"), "stop", str(work / "slapd")],
                   capture_output=True)


def run_ssp(work: Path, n: int, levels=(4, 16), workers: int = 2, threads: int = 8) -> dict:
    """The peer's, the floor's and the form floor's change (users 1..n at
    c=4, 1001.. at c=16, a fresh lab for each app), and the floors' logins
    on the lab."""
    work = work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: dict = {"lab": "ssp/slapd-lab.sh: {SSHA}, 2,000 users, no ppolicy"}
    starts = dict(zip(levels, (1, 1001), strict=False))
    # The peer.
    lab_port, web_port = free_port(), free_port()
    _lab(work, lab_port)
    env = {**os.environ, "SSP_STATE": str(work / "ssp-state")}
    for key, repo in MIRRORS.items():
        env.setdefault(key, repo)
    try:
        up = subprocess.run([str(PEERS / "ssp" / "up.sh"), str(web_port),
                             f"ldap://127.0.0.1:{lab_port}", LAB_BASE, LAB_ADMIN, LAB_PASSWORD],
                            env=env, capture_output=True, text=True)
        if up.returncode != 0:
            results["error"] = (up.stdout + up.stderr)[-800:]
            return results
        try:
            results["ssp_change"] = [driver.run("127.0.0.1", web_port, ssp_change, n, c,
                                                start=starts[c]) for c in levels]
            # Again with its strength check on (zxcvbn-php, score 3 or
            # more, as the portal asks) and its page fetched first, as the
            # portal's change is measured: on a fresh lab at the same address.
            _lab_stop(work)
            _lab(work, lab_port)
            with open(work / "ssp-state" / "ssp" / "conf" / "config.inc.local.php", "a") as conf:
                # Still in the file's PHP block (no closing tag).
                conf.write("$pwd_check_entropy = true; $pwd_min_entropy = 3;\n")
            if _wait_strength_check(web_port):
                results["ssp_change_checked"] = [
                    driver.run("127.0.0.1", web_port, ssp_change_as_browser, n, c,
                               start=starts[c]) for c in levels]
            else:
                results["checked_error"] = "the peer's strength check did not come on"
        finally:
            subprocess.run([str(PEERS / "ssp" / "down.sh"), str(web_port)], env=env,
                           capture_output=True)
    finally:
        _lab_stop(work)
    # The floor, then the form floor, each on a fresh lab.
    for name, module, flows in (
            ("floor", "bench.floor_wsgi:app", (("floor_login", floor_login, False),
                                               ("floor_change", floor_change, True))),
            ("form_floor", "bench.form_floor_wsgi:app",
             (("form_floor_login", form_floor_login, False),
              ("form_floor_change", form_floor_change, True)))):
        lab_port, port = free_port(), free_port()
        _lab(work, lab_port)
        log = open(work / f"{name}.log", "wb")
        try:
            app = driver.serve_floor(module, f"ldap://127.0.0.1:{lab_port}", port, workers,
                                     threads, log)
            try:
                for key, flow, changes in flows:
                    results[key] = [driver.run("127.0.0.1", port, flow, n, c,
                                               start=starts[c] if changes else 0)
                                    for c in levels]
            finally:
                app.terminate()
                app.wait(timeout=30)
        finally:
            log.close()
            _lab_stop(work)
    return results
