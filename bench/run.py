"""make bench: the portal under load beside raw slapd, in one run.

For each population (1,000 members, then BENCH_MEMBERS) it builds its own
slapd with the production configuration (app/devstack/slapd.py, durable
writes), loads the LDIF of bench/ldif.py with slapadd, starts gunicorn with
the production settings and drives the real flows (CSRF like a browser) at
several concurrencies; for the big population it also measures the raw
ldap3 rates underneath, the periodic commands (time, peak RSS) and the
approval -> bind latency. One table on stdout, bench/results/latest.json
and latest.md.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ldap3 import NONE, Connection, Server, Tls  # noqa: E402

from app.devstack.mailcatcher import MailCatcher  # noqa: E402
from app.devstack.ratestore import RateStore  # noqa: E402
from app.devstack.slapd import SLAPADD, SlapdProcess, SlapdSettings, _run, free_port  # noqa: E402

SLAPCAT = shutil.which("slapcat") or "/usr/sbin/slapcat"
from app.services.links import Links, ResetLink, ReviewLink  # noqa: E402
from bench import driver, ldif, peer, raw  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work"
NEW_PASSWORD = "Kq7#vLp2-{i}-zRwT9m"
# gunicorn on 2 cores: one process per core (Python runs one thread at a
# time per process) and threads to cover the waits on slapd (an argon2 bind
# takes ~25 ms of slapd's CPU, not the worker's).
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
THREADS = int(os.environ.get("BENCH_THREADS", "8"))
RAISED = "1000000 per minute"
# requests remind runs this long after the pending requests were submitted
# (2 hours before the load): past PORTAL_REMINDER_DAYS (3), before escalation (10).
REMIND_AFTER_DAYS = 3.5
# Members with a recent password (never expired, never in a warning
# window): the flows' (up to 700), raw.py's pass (701 on, three levels of 16
# processes x 20 x 2) and the raw windows paired with the flows (from
# PAIRED_FIRST_MEMBER, two such blocks per level).
RAW_PER_PROCESS = 20
RAW_BLOCK = RAW_PER_PROCESS * 16 * 2  # one level's members: 16 processes, x 2 (self_members)
RAW_FIRST_MEMBER = 701
PAIRED_FIRST_MEMBER = RAW_FIRST_MEMBER + 3 * RAW_BLOCK
FRESH_MEMBERS = 6500
assert FRESH_MEMBERS >= PAIRED_FIRST_MEMBER + 3 * 2 * RAW_BLOCK
# The raw operation measured again right after each level of the flow it
# underlies, on members of its own: the machine's load moves within
# minutes, so the ratio compares two adjacent windows, not a flow with the
# raw pass minutes later.
PAIRED_RAW = {"login": ("bind_new",), "floor_login": ("bind_persistent",),
              "form_floor_login": ("bind_persistent",), "change": ("bind_pm_self",),
              "reset": ("pm_service",), "approve": ("add", "approval_writes")}
FLOOR_APP = Path(os.environ.get("BENCH_FLOOR_APP", str(
    Path(__file__).resolve().parents[2] / "shared" / "peers" / "floor" / "app.py")))


class Stack:
    """slapd + mail catcher + gunicorn for one population."""

    def __init__(self, members: int, requests: int, flow_members: int, maxsize: int,
                 replica: bool = False, password_hash: str = "{ARGON2}"):
        self.members = members
        self.work = WORK / (f"n{members}" + ("" if password_hash == "{ARGON2}" else "-ssha"))
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.now = datetime.now(timezone.utc).replace(microsecond=0)
        self.settings = SlapdSettings(workdir=self.work, demo=False, nosync=False,
                                      mdb_maxsize=maxsize, syncprov=replica,
                                      password_hash=password_hash)
        # A consumer needs the provider's URL before the provider starts.
        self.slapd = SlapdProcess(self.settings, *((free_port(), free_port()) if replica else ()))
        self.secret = secrets.token_urlsafe(48)
        self.links = Links(self.secret, (), 14, build_url=lambda kind, token: token)
        self.timings: dict = {}
        t0 = time.perf_counter()
        self.facts = ldif.write(self.work / "bench.ldif", self.settings, members, requests,
                                flow_members, self.now)
        self.reviews = self.facts.pop("reviews")
        self.timings["ldif_s"] = round(time.perf_counter() - t0, 2)
        self.slapd.initialise(load=False)
        t0 = time.perf_counter()
        _run([SLAPADD, "-q", *(["-w"] if replica else []), "-f", str(self.settings.conf_path),
              "-l", str(self.work / "bench.ldif")])
        self.timings["slapadd_s"] = round(time.perf_counter() - t0, 2)
        self.consumer = None
        if replica:
            self._start_consumer(maxsize)
        self.slapd.start()
        if replica:
            self._wait_consumer()
        self.smtp_port = free_port()
        self.catcher = MailCatcher(self.smtp_port)
        self.catcher.start()
        # Production refuses memory:// for the rate limits: a redis-server.
        self.ratestore = RateStore(self.work / "redis")
        self.ratestore.start()
        self.web_port = free_port()
        self.env = {**os.environ, **self.portal_env()}
        self.log = open(self.work / "gunicorn.log", "wb")
        self.gunicorn = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{self.web_port}", "--workers", str(WORKERS),
             "--threads", str(THREADS), "--worker-class", "gthread", "wsgi:app"],
            cwd=ROOT, env=self.env, stdout=self.log, stderr=self.log, start_new_session=True)
        self._wait_web()
        self.floor = self.form_floor = None
        if FLOOR_APP.exists() and os.environ.get("BENCH_FLOOR", "1") not in ("", "0"):
            # The floor app and the form floor beside the portal, same
            # workers and threads.
            self.floor_port, self.form_floor_port = free_port(), free_port()
            self.floor_log = open(self.work / "floor.log", "wb")
            self.floor = driver.serve_floor("bench.floor_wsgi:app", self.slapd.url,
                                            self.floor_port, WORKERS, THREADS, self.floor_log,
                                            floor_app=str(FLOOR_APP))
            self.form_floor = driver.serve_floor("bench.form_floor_wsgi:app", self.slapd.url,
                                                 self.form_floor_port, WORKERS, THREADS,
                                                 self.floor_log, floor_app=str(FLOOR_APP))

    def _start_consumer(self, maxsize: int) -> None:
        """A read-only consumer (syncrepl refreshAndPersist) filled from
        the provider over the network, with the provider's certificate."""
        s = self.settings
        settings = SlapdSettings(workdir=self.work / "consumer", demo=False, nosync=False,
                                 mdb_maxsize=maxsize, root_password=s.root_password,
                                 service_password=s.service_password, consumer_of=self.slapd.url)
        shutil.copytree(s.tls_dir, settings.tls_dir)
        self.consumer = SlapdProcess(settings)
        self.consumer.initialise(load=False)
        # Seeded as consumers are: the provider's slapcat (entryUUIDs,
        # entryCSNs, contextCSN) loaded with slapadd; syncrepl then brings
        # only what changed. (Replicating 100,000 entries one durable write
        # at a time ran at ~45 entries/s here.)
        t0 = time.perf_counter()
        dump = self.work / "provider.ldif"
        _run([SLAPCAT, "-f", str(self.settings.conf_path), "-l", str(dump)])
        _run([SLAPADD, "-q", "-f", str(settings.conf_path), "-l", str(dump)])
        dump.unlink()
        self.timings["consumer_seed_s"] = round(time.perf_counter() - t0, 2)
        self.consumer.start()

    def _wait_consumer(self) -> None:
        waited = self.wait_for_consumer(900, 0.5)
        if waited >= 900:
            raise RuntimeError("the consumer did not catch up in 15 minutes")
        self.timings["consumer_refresh_s"] = round(waited, 2)

    def wait_for_consumer(self, timeout: float, poll: float) -> float:
        """Seconds until the consumer has what the provider has now (at most
        ``timeout``)."""
        t0, target = time.perf_counter(), context_csn(self.slapd)
        while context_csn(self.consumer) < target and time.perf_counter() - t0 < timeout:
            time.sleep(poll)
        return time.perf_counter() - t0

    def settle(self) -> None:
        """Before a raw window whose set-up wrote entries: until the consumer
        has them (applying them would load the window)."""
        if self.consumer is not None:
            self.wait_for_consumer(300, 0.05)

    def start_consumer_portal(self) -> int:
        """A second portal (same settings) reading the consumer only: login
        writes nothing, so it can be served from a consumer."""
        port = free_port()
        self.consumer_log = open(self.work / "gunicorn-consumer.log", "wb")
        self.consumer_web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
             "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
             "--threads", str(THREADS), "--worker-class", "gthread", "wsgi:app"],
            cwd=ROOT, env={**self.env, "PORTAL_LDAP_URLS": self.consumer.url},
            stdout=self.consumer_log, stderr=self.consumer_log, start_new_session=True)
        self._wait_port(port, self.consumer_web)
        return port

    def _wait_port(self, port: int, process, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{process.args} exited")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"nothing listens on {port}")

    def portal_env(self) -> dict:
        s = self.settings
        return {
            "PORTAL_ENV": "production",
            "PORTAL_SECRET_KEY": self.secret,
            "PORTAL_BASE_URL": "https://portal.bench.example",
            "PORTAL_LDAP_URLS": self.slapd.url,
            "PORTAL_LDAP_START_TLS": "true",
            "PORTAL_LDAP_CA_FILE": str(s.ca_file),
            "PORTAL_LDAP_BASE_DN": s.base_dn,
            "PORTAL_LDAP_BIND_DN": s.service_dn,
            "PORTAL_LDAP_BIND_PASSWORD": s.service_password,
            "PORTAL_SMTP_HOST": "127.0.0.1",
            "PORTAL_SMTP_PORT": str(self.smtp_port),
            "PORTAL_MAIL_FROM": f"Membership registry <registry@{s.mail_domain}>",
            "PORTAL_COLLABORATION_NAME": s.organisation,
            "PORTAL_MAIL_DOMAIN": s.mail_domain,
            "PORTAL_MAIN_GROUP": s.main_group,
            "PORTAL_HELPDESK_EMAIL": f"helpdesk@{s.mail_domain}",
            "PORTAL_RATELIMIT_STORAGE_URI": self.ratestore.url,
            # Raised for the run only (the driver is one address).
            "PORTAL_RATE_LIMIT_LOGIN_ACCOUNT": RAISED,
            "PORTAL_RATE_LIMIT_LOGIN_ADDRESS": RAISED,
            "PORTAL_RATE_LIMIT_RESET": RAISED,
            "PORTAL_RATE_LIMIT_REGISTER": RAISED,
        }

    def _wait_web(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.gunicorn.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.work / 'gunicorn.log'}")
            try:
                if driver.Client("127.0.0.1", self.web_port).request("GET", "/login")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("gunicorn did not answer")

    def worker_rss_mb(self) -> float:
        """Peak RSS (VmHWM) of the biggest gunicorn worker."""
        peak = 0
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                stat = (proc / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) != self.gunicorn.pid:
                    continue
                for line in (proc / "status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]))
            except (OSError, ValueError, IndexError):
                continue
        return round(peak / 1024, 1)

    def command(self, *args: str) -> dict:
        """A flask command's wall time and peak RSS."""
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", *args],
                                cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        output = proc.stdout.read().decode("utf-8", "replace")
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        return {"command": " ".join(args), "s": round(time.perf_counter() - t0, 2),
                "peak_rss_mb": round(usage.ru_maxrss / 1024, 1), "rc": proc.returncode,
                "output": output.strip()[-300:]}

    def raw_config(self, first_member: int, per_process: int, processes: int) -> dict:
        s = self.settings
        return {"url": self.slapd.url, "ca": str(s.ca_file), "base": s.base_dn,
                "service_dn": s.service_dn, "service_password": s.service_password,
                "password": ldif.MEMBER_PASSWORD, "hash": ldif._hash(ldif.REQUEST_PASSWORD),
                "main_group_dn": f"cn={s.main_group},ou=groups,{s.base_dn}",
                "main_gid_number": s.main_gid_number, "mail_domain": s.mail_domain,
                "min_members": self.members // 2,
                "members": [[ldif.member_name(first_member + p * per_process + k)
                             for k in range(per_process)] for p in range(processes)],
                "self_members": [[ldif.member_name(first_member + (processes + p) * per_process + k)
                                  for k in range(per_process)] for p in range(processes)]}

    def stop(self) -> None:
        web = getattr(self, "consumer_web", None)
        if web is not None and web.poll() is None:
            web.terminate()
            web.wait(timeout=30)
        if getattr(self, "consumer", None) is not None:
            self.consumer.stop()
        for floor in (self.floor, self.form_floor):
            if floor is not None and floor.poll() is None:
                floor.terminate()
                floor.wait(timeout=30)
        if self.gunicorn.poll() is None:
            self.gunicorn.terminate()
            self.gunicorn.wait(timeout=30)
        self.catcher.stop()
        self.ratestore.stop()
        self.slapd.stop()
        self.log.close()


# -- the flows: iteration(client, i) -> (seconds, ok) ----------------------------------------

def _login(client, account, password, name_field="account_name"):
    """A login as a browser does it: the form (its CSRF token), then the POST."""
    client.cookies.clear()
    token = client.csrf("/login")
    return client.timed("POST", "/login", {"csrf_token": token, name_field: account,
                                           "password": password})


def flow_login(stack, login_range):
    def iteration(client, i):
        seconds, (status, location, _) = _login(
            client, ldif.member_name(1 + i % login_range), ldif.MEMBER_PASSWORD)
        return seconds, status == 302 and location.endswith("/account")
    return iteration


def flow_floor_login(stack, login_range):
    """The floor app's login (../shared/peers/floor/): the same members and
    password on the same slapd."""
    def iteration(client, i):
        seconds, (status, _, _) = client.timed("POST", "/login", {
            "login": ldif.member_name(1 + i % login_range), "password": ldif.MEMBER_PASSWORD})
        return seconds, status == 302
    return iteration


def flow_form_floor_login(login_range):
    """The form floor's login, as the portal's is driven."""
    def iteration(client, i):
        seconds, (status, _, _) = _login(client, ldif.member_name(1 + i % login_range),
                                         ldif.MEMBER_PASSWORD, name_field="login")
        return seconds, status == 302
    return iteration


def flow_change(stack, start: int, n: int, c: int):
    """The password change of a logged-in member: the form and its POST.
    Every member changes once (a Password Modify checks the history with
    argon2, as the raw figure's members do); the clients log those members
    in before the clock starts (member start+j by client j mod c), as GET
    /account's clients do, so that the rate is the change's and not that
    of a login (measured on its own row) plus a change. Returns
    (iteration, prepare)."""
    sessions: dict[int, dict] = {}

    def prepare(client, k):
        for j in range(k, n, c):
            client.cookies.clear()
            _, (status, _, _) = _login(client, ldif.member_name(start + j), ldif.MEMBER_PASSWORD)
            assert status == 302, status
            sessions[start + j] = dict(client.cookies)

    def iteration(client, i):
        client.cookies = dict(sessions[i])
        token = client.csrf("/account/password")
        new = NEW_PASSWORD.format(i=i)
        seconds, (status, location, page) = client.timed("POST", "/account/password", {
            "csrf_token": token, "current_password": ldif.MEMBER_PASSWORD, "password": new,
            "password_confirm": new})
        return seconds, status == 302
    return iteration, prepare


def flow_reset(stack):
    changed = ldif._t(ldif.password_changed(stack.now))

    def iteration(client, i):
        client.cookies.clear()
        path = "/password/reset/" + stack.links.token(
            ResetLink(ldif.member_name(i), ldif.RESET_NONCE, changed))
        token = client.csrf(path)
        new = NEW_PASSWORD.format(i=i)
        seconds, (status, _, page) = client.timed("POST", path, {
            "csrf_token": token, "password": new, "password_confirm": new})
        return seconds, status == 200 and "csrf_token" not in page
    return iteration


def flow_approve(stack, latencies: list | None = None):
    def iteration(client, i):
        request_id, approver = stack.reviews[i]
        client.cookies.clear()
        path = "/review/" + stack.links.token(ReviewLink(request_id, approver, 0))
        token = client.csrf(path)
        t0 = time.perf_counter()
        seconds, (status, _, page) = client.timed("POST", path, {
            "csrf_token": token, "decision": "approve"})
        ok = status == 200
        if ok and latencies is not None:
            latencies.append(_bind_latency(stack, request_id, t0))
        return seconds, ok
    return iteration


def context_csn(server) -> str:
    """The highest contextCSN of the base entry (what a consumer has of its
    provider's changes)."""
    s = server.settings
    conn = Connection(Server(server.url, get_info=NONE), s.root_dn, s.root_password,
                      auto_bind=True)
    conn.search(s.base_dn, "(objectClass=*)", "BASE", attributes=["contextCSN"])
    values = conn.entries[0].contextCSN.values if conn.entries and \
        "contextCSN" in conn.entries[0] else []
    conn.unbind()
    return max(values, default="")


class LagSampler(threading.Thread):
    """While the approvals run: every 100 ms take the provider's contextCSN
    and time how long until the consumer has it (replication lag under the
    write load)."""

    def __init__(self, stack):
        super().__init__(daemon=True)
        self.stack, self.samples, self.stop_event = stack, [], threading.Event()

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.samples.append(round(self.stack.wait_for_consumer(30, 0.002) * 1000, 1))
            self.stop_event.wait(0.1)

    def result(self) -> dict:
        ok = sorted(self.samples)
        return {"n": len(ok), "p50_ms": ok[len(ok) // 2] if ok else None,
                "p95_ms": ok[int(len(ok) * 0.95)] if ok else None, "max_ms": ok[-1] if ok else None}


def _bind_latency(stack, account: str, t0: float, timeout: float = 10) -> float | None:
    """From the approval POST to the new member's first successful bind."""
    s = stack.settings
    server = Server(stack.slapd.url, get_info=NONE, tls=Tls(ca_certs_file=str(s.ca_file)))
    dn = f"uid={account},ou=people,{s.base_dn}"
    while time.perf_counter() - t0 < timeout:
        conn = Connection(server, dn, ldif.REQUEST_PASSWORD.encode())
        conn.open()
        conn.start_tls()
        ok = conn.bind()
        conn.unbind()
        if ok:
            return round((time.perf_counter() - t0) * 1000, 1)
    return None


def flow_get(path: str, logged_in: bool, login_range: int):
    def iteration(client, i):
        if logged_in and "session" not in client.cookies:
            _login(client, ldif.member_name(1 + i % login_range), ldif.MEMBER_PASSWORD)
        seconds, (status, _, page) = client.timed("GET", path)
        return seconds, status == 200
    return iteration


def flow_floor_page():
    def iteration(client, i):
        seconds, (status, _, _) = client.timed("GET", "/no-such-page")
        return seconds, status == 404
    return iteration


def login_each(login_range: int):
    """Each client logs in before the clock starts (a page of a logged-in
    member is measured, not the logins of 32 clients)."""
    def prepare(client, k):
        status, _, _ = _login(client, ldif.member_name(1 + k % login_range),
                              ldif.MEMBER_PASSWORD)[1]
        assert status == 302, status
    return prepare


def paired_configs(stack, levels) -> list[tuple[dict, dict]]:
    """Per level: members for the binds and the member's change (their own
    and self_members), and others for the service's Password Modify."""
    return [(stack.raw_config(PAIRED_FIRST_MEMBER + 2 * n * RAW_BLOCK, RAW_PER_PROCESS,
                              max(levels)),
             stack.raw_config(PAIRED_FIRST_MEMBER + (2 * n + 1) * RAW_BLOCK, RAW_PER_PROCESS,
                              max(levels)))
            for n in range(len(levels))]


def run_flows(stack, plan: dict, levels_post, levels_get, with_latency: bool,
              only: set | None = None, paired: bool = False) -> dict:
    results: dict = {}
    if only is None:
        only = set(filter(None, os.environ.get("BENCH_FLOWS", "").replace(",", " ").split()))
    configs = paired_configs(stack, levels_post) if paired else []

    def after(flow: str, c: int) -> None:
        """The flow's raw operations right after its level ``c``."""
        if not configs:
            return
        binds_and_change, service_changes = configs[list(levels_post).index(c)]
        for op in PAIRED_RAW.get(flow, ()):
            cfg = service_changes if op == "pm_service" else binds_and_change
            results.setdefault(f"{flow}_raw", {}).setdefault(op, []).append(
                raw.measure(op, cfg, c, plan["raw_s"], settle=stack.settle))
        if stack.consumer is not None:
            # The consumer applies the window's writes one durable write at
            # a time; the next level starts once it has them all, or the
            # backlog would load that level (and its replication lag).
            results.setdefault("paired_catch_up_s", {})[f"{flow} c={c}"] = round(
                stack.wait_for_consumer(300, 0.05), 2)

    def wanted(name):
        return not only or name in only
    host, port = "127.0.0.1", stack.web_port
    n_read, n_write, n_login = plan["n_read"], plan["n_write"], plan["n_login"]
    change_next, reset_next, review_next = plan["change_from"], plan["reset_from"], 0
    latencies: list = []
    for c in levels_post if wanted("login") else ():
        results.setdefault("login", []).append(
            driver.run(host, port, flow_login(stack, plan["login_range"]), n_login, c))
        after("login", c)
    for c in levels_post if wanted("floor_login") and stack.floor is not None else ():
        results.setdefault("floor_login", []).append(
            driver.run(host, stack.floor_port, flow_floor_login(stack, plan["login_range"]),
                       n_login, c))
        after("floor_login", c)
    for c in levels_post if wanted("form_floor_login") and stack.form_floor is not None else ():
        results.setdefault("form_floor_login", []).append(
            driver.run(host, stack.form_floor_port, flow_form_floor_login(plan["login_range"]),
                       n_login, c))
        after("form_floor_login", c)
    for c in levels_post if wanted("change") else ():
        iteration, prepare = flow_change(stack, change_next, n_write, c)
        results.setdefault("change", []).append(
            driver.run(host, port, iteration, n_write, c, start=change_next, prepare=prepare))
        change_next += n_write
        after("change", c)
    for c in levels_post if wanted("reset") else ():
        results.setdefault("reset", []).append(
            driver.run(host, port, flow_reset(stack), n_write, c, start=reset_next))
        reset_next += n_write
        after("reset", c)
    for c in levels_post if wanted("approve") else ():
        sampler = LagSampler(stack) if stack.consumer is not None else None
        if sampler:
            sampler.start()
        results.setdefault("approve", []).append(driver.run(
            host, port, flow_approve(stack), n_write, c, start=review_next))
        review_next += n_write
        if sampler:
            sampler.stop_event.set()
            sampler.join()
            results.setdefault("replication_lag_ms", {})[f"c={c}"] = sampler.result()
        after("approve", c)
    if stack.consumer is not None and wanted("consumer_login"):
        consumer_port = stack.start_consumer_portal()
        for c in levels_post:
            results.setdefault("consumer_login", []).append(
                driver.run(host, consumer_port, flow_login(stack, plan["login_range"]),
                           n_login, c))
        stack.consumer_web.terminate()
        stack.consumer_web.wait(timeout=30)
    for c in levels_get if wanted("get_login") else ():
        results.setdefault("get_login", []).append(
            driver.run(host, port, flow_get("/login", False, plan["login_range"]), n_read, c))
    for c in levels_get if wanted("form_floor_page") and stack.form_floor is not None else ():
        # The smallest form page of this stack: a template, Flask-WTF's
        # CSRF token, the session cookie; no layout or translations.
        results.setdefault("form_floor_page", []).append(
            driver.run(host, stack.form_floor_port, flow_get("/login", False, 0), n_read, c))
    for c in levels_get if wanted("floor_page") and stack.floor is not None else ():
        # The floor app's answer to a path it has no route for: routing, a
        # 404 page, no template, session or LDAP. What any Flask page costs
        # at least under this gunicorn on this machine.
        results.setdefault("floor_page", []).append(
            driver.run(host, stack.floor_port, flow_floor_page(), n_read * 3, c))
    for c in levels_get if wanted("get_register") else ():
        results.setdefault("get_register", []).append(
            driver.run(host, port, flow_get("/register", False, plan["login_range"]), n_read, c))
    for c in levels_get if wanted("get_account") else ():
        results.setdefault("get_account", []).append(
            driver.run(host, port, flow_get("/account", True, plan["login_range"]), n_read, c,
                       prepare=login_each(plan["login_range"])))
    if with_latency and wanted("approve"):
        # Approval -> bind in a pass of its own: the polling binds would
        # otherwise count in the approvals' rate.
        driver.run(host, port, flow_approve(stack, latencies), n_write, 1, start=review_next)
        ok = sorted(x for x in latencies if x is not None)
        results["approval_to_bind_ms"] = {
            "n": len(latencies), "failed": len(latencies) - len(ok),
            "p50": ok[len(ok) // 2] if ok else None, "max": ok[-1] if ok else None}
    return results


RAW_OPS = ("bind_new", "bind_persistent", "search", "add", "add_outbox", "modify",
           "approval_writes", "memberof", "compare", "group_read", "pm_service", "bind_pm_self")


def run_raw(stack, levels, duration: float, first_member: int = RAW_FIRST_MEMBER,
            ops=RAW_OPS) -> dict:
    # Members of their own for each level, 20 per process: a Password Modify
    # costs slapd one argon2 verification per value in the history
    # (pwdInHistory 5), so members changed again and again in one run would
    # make the raw figure slower than the portal's flows, which change each
    # member once.
    block = RAW_PER_PROCESS * max(levels) * 2
    configs = [stack.raw_config(first_member + n * block, RAW_PER_PROCESS, max(levels))
               for n in range(len(levels))]
    return {op: [raw.measure(op, cfg, c, duration, settle=stack.settle)
                 for cfg, c in zip(configs, levels, strict=True)]
            for op in ops}


# -- the report ------------------------------------------------------------------------------

FLOWS = [("login", "POST /login", "bind_new", "new-connection bind"),
         ("floor_login", "floor app POST /login (rebind, no TLS)", "bind_persistent",
          "bind on a persistent connection"),
         ("form_floor_login", "form floor POST /login (the floor + its form, CSRF, session)",
          "bind_persistent", "bind on a persistent connection"),
         ("consumer_login", "POST /login, a portal reading the consumer", "bind_new",
          "new-connection bind (provider)"),
         ("change", "password change", "bind_pm_self", "member bind + service Password Modify"),
         ("approve", "approve (creates the member)", "add", "add"),
         ("reset", "reset completion", "pm_service", "Password Modify by the service"),
         ("floor_page", "floor app GET of a page it has not (404, no template)", None, "-"),
         ("form_floor_page", "form floor GET /login (a form, CSRF token, session; no layout)",
          None, "-"),
         ("get_login", "GET /login", None, "-"),
         ("get_register", "GET /register", None, "-"),
         ("get_account", "GET /account", None, "-")]


def _rates(rows):
    return " / ".join(f"{r['rps']:g}" for r in rows)


def _ratio_range(rows, base) -> str:
    """min-max of rows' rates over base's, level by level ("-" when none)."""
    ratios = [r["rps"] / b["rps"] for r, b in zip(rows, base, strict=False) if b["rps"]]
    return f"{min(ratios):.2f}-{max(ratios):.2f}" if ratios else "-"


def _form_floor_ratios(flows: dict) -> list[str]:
    """The portal against the form floor, where both were measured."""
    lines = []
    for portal_key, floor_key, what in (("login", "form_floor_login", "login"),
                                        ("get_login", "form_floor_page", "GET /login")):
        if flows.get(portal_key) and flows.get(floor_key):
            lines.append(f"portal / form floor {what} (same run): "
                         f"{_ratio_range(flows[portal_key], flows[floor_key])}")
    return [""] + lines if lines else []


def _flagged_raw(run: dict) -> list[str]:
    """Raw measurements with errors, or with a process whose set-up ran
    past the start (its window was shorter: the rate is understated)."""
    places = [("raw pass", run.get("raw", {}))] + [
        (f"paired ({key.removesuffix('_raw')})", value)
        for key, value in run["flows"].items() if key.endswith("_raw")]
    flagged = []
    for where, measured in places:
        for op, rows in measured.items():
            for r in rows:
                notes = ([f"{r['errors']} errors"] if r["errors"] else []) + (
                    [f"a process started {r['late_s']} s late"] if r.get("late_s") else [])
                if notes:
                    flagged.append(f"{where} {op} c={r['c']}: {', '.join(notes)}")
    return flagged


def table(result: dict) -> str:
    big, small = result["runs"][-1], result["runs"][0]
    raw_rates = big.get("raw", {})
    first = next((rows for key, rows in big["flows"].items() if isinstance(rows, list)), [])
    levels = "/".join(str(r["c"]) for r in first)
    lines = [f"| flow ({big['members']:,} members) | portal req/s c={levels} (GET: +32) |"
             f" p95 ms at top c | errors | raw LDAP underneath, right after each level | ratio |"
             f" ratio to the raw pass | {small['members']:,} members req/s |",
             "|---|---|---|---|---|---|---|---|"]
    for key, label, raw_op, raw_label in FLOWS:
        rows = big["flows"].get(key)
        if not rows:
            continue
        errors = sum(r["errors"] for r in rows)
        raw_rows = raw_rates.get(raw_op) if raw_op else None
        paired = big["flows"].get(f"{key}_raw", {}).get(raw_op) if raw_op else None
        ratio, raw_text = "-", raw_label
        if paired:
            raw_text, ratio = f"{raw_label} {_rates(paired)}", _ratio_range(rows, paired)
        elif raw_rows:
            raw_text = f"{raw_label} (the raw pass)"
        separate = _ratio_range(rows, raw_rows) if raw_rows else "-"
        lines.append(f"| {label} | {_rates(rows)} | {rows[-1]['p95_ms']} | {errors} | {raw_text} "
                     f"| {ratio} | {separate} | {_rates(small['flows'].get(key, []))} |")
    approve = big["flows"].get("approve")
    writes = big["flows"].get("approve_raw", {}).get("approval_writes")
    if approve and writes:
        lines.append("")
        lines.append(f"approve / the approval's own writes done raw right after each level "
                     f"(approval_writes {_rates(writes)}): {_ratio_range(approve, writes)}; "
                     f"those writes / raw add right after: "
                     f"{_ratio_range(writes, big['flows']['approve_raw']['add'])}")
    if approve and raw_rates.get("approval_writes"):
        lines.append(f"approve / approval_writes of the raw pass: "
                     f"{_ratio_range(approve, raw_rates['approval_writes'])}")
    portal_login, floor_login = big["flows"].get("login"), big["flows"].get("floor_login")
    if portal_login and floor_login:
        lines.append("")
        lines.append(f"portal / floor login (same slapd, same run): "
                     f"{_ratio_range(portal_login, floor_login)}")
    lines += _form_floor_ratios(big["flows"])
    lines.append("")
    raw_levels = "/".join(str(r["c"]) for r in raw_rates.get("search", []))
    lines.append(f"| raw ldap3 op | ops/s c={raw_levels} |")
    lines.append("|---|---|")
    for op, rows in raw_rates.items():
        lines.append(f"| {op} | {_rates(rows)} |")
    flagged = _flagged_raw(big)
    if flagged:
        lines.append("")
        lines.append("raw measurements to read with care: " + "; ".join(flagged))
    lines.append("")
    lines.append("| command | s | peak RSS MB | output |")
    lines.append("|---|---|---|---|")
    for cmd in big.get("commands", []):
        out = cmd["output"].replace("\n", " ").replace("|", "/")[-80:]
        lines.append(f"| {cmd['command']} | {cmd['s']} | {cmd['peak_rss_mb']} | {out} |")
    for label, lag in big["flows"].get("replication_lag_ms", {}).items():
        lines.append(f"replication lag under approvals at {label}: p50 {lag['p50_ms']} ms, "
                     f"p95 {lag['p95_ms']} ms, max {lag['max_ms']} ms (n={lag['n']})")
    catch_up = big["flows"].get("paired_catch_up_s")
    if catch_up:
        slowest = max(catch_up, key=catch_up.get)
        lines.append(f"consumer in step again after each paired raw window (before the next "
                     f"level) within {catch_up[slowest]} s (the longest: after {slowest})")
    if "consumer_refresh_s" in big["timings"]:
        lines.append(f"consumer: seeded from the provider's slapcat in "
                     f"{big['timings']['consumer_seed_s']} s, in step "
                     f"{big['timings']['consumer_refresh_s']} s after the provider started")
    side = result.get("ssha")
    if side:
        lines.append("")
        lines.append(f"Side run, slapd on {{SSHA}} ({side['members']:,} members, same machine, "
                     f"right after): req/s c={levels}")
        lines.append("")
        lines.append("| flow | req/s | p95 ms at top c | errors | raw LDAP underneath | ratio |")
        lines.append("|---|---|---|---|---|---|")
        for key, label, raw_op, raw_label in FLOWS:
            rows = side["flows"].get(key)
            raw_rows = side["raw"].get(raw_op) if raw_op else None
            if not rows or not raw_rows:
                continue
            lines.append(f"| {label} | {_rates(rows)} | {rows[-1]['p95_ms']} | "
                         f"{sum(r['errors'] for r in rows)} | {raw_label} {_rates(raw_rows)} | "
                         f"{_ratio_range(rows, raw_rows)} |")
        login, floor_login = side["flows"].get("login"), side["flows"].get("floor_login")
        if login and floor_login:
            lines.append("")
            lines.append(f"portal / floor login on {{SSHA}}: {_ratio_range(login, floor_login)}")
        lines += _form_floor_ratios(side["flows"])
    ssp = result.get("peer")
    if ssp:
        lines.append("")
        lines.append(f"PEER=ssp, on the peer's lab ({ssp['lab']}), c=4/16:")
        if "error" in ssp:
            lines.append(f"the peer did not come up: {ssp['error'][-300:]}")
        if "checked_error" in ssp:
            lines.append(f"- {ssp['checked_error']}")
        for key, label in (("ssp_change", "Self Service Password change ({SSHA} in PHP + "
                            "modify; the POST alone)"),
                           ("ssp_change_checked", "Self Service Password change, its strength "
                            "check on (zxcvbn-php, score 3), its page fetched first"),
                           ("floor_change", "floor change (Password Modify as the user; "
                            "the POST alone)"),
                           ("floor_login", "floor login (the POST alone)"),
                           ("form_floor_change", "form floor change (the form, CSRF, zxcvbn, "
                            "Password Modify as the user)"),
                           ("form_floor_login", "form floor login (the form, CSRF, session)")):
            if ssp.get(key):
                lines.append(f"- {label}: {_rates(ssp[key])} req/s, p95 "
                             f"{ssp[key][-1]['p95_ms']} ms, errors "
                             f"{sum(r['errors'] for r in ssp[key])}")
    lat = big["flows"].get("approval_to_bind_ms", {})
    lines.append("")
    lines.append(f"approval -> bind: p50 {lat.get('p50')} ms, max {lat.get('max')} ms "
                 f"(n={lat.get('n')}, failed {lat.get('failed')}); worker peak RSS "
                 f"{big.get('worker_rss_mb')} MB; slapadd {big['timings']['slapadd_s']} s; "
                 f"mdb used {big.get('mdb_mb')} MB")
    return "\n".join(lines)


def machine() -> dict:
    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return ""
    return {"nproc": out(["nproc"]), "free_g": out(["free", "-g"]),
            "loadavg_before": Path("/proc/loadavg").read_text().strip(),
            "cpu": next((line.split(":", 1)[1].strip() for line in
                         Path("/proc/cpuinfo").read_text().splitlines()
                         if line.startswith("model name")), ""),
            "python": platform.python_version(),
            "slapd": out(["dpkg-query", "-W", "-f=${Version}", "slapd"])}


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py")
    parser.add_argument("--quick", action="store_true",
                        default=os.environ.get("BENCH_QUICK", "") not in ("", "0"))
    parser.add_argument("--members", type=int,
                        default=int(os.environ.get("BENCH_MEMBERS", "100000")))
    parser.add_argument("--label", default=os.environ.get("BENCH_LABEL", "latest"))
    args = parser.parse_args()
    members = 10000 if args.quick else args.members
    plan = ({"n_login": 30, "n_write": 12, "n_read": 60, "raw_s": 0.8} if args.quick else
            {"n_login": 120, "n_write": 50, "n_read": 300, "raw_s": 2.5})
    plan.update(login_range=100, change_from=101, reset_from=401)
    levels_post, levels_get = (1, 4, 16), (1, 4, 16, 32)
    # 4 KiB per member is ample (100k members + requests took 469 MB); at least 1 GiB.
    maxsize = int(os.environ.get("BENCH_MDB_MAXSIZE", "0")) or max(1 << 30, members * 8192)
    result = {"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "quick": args.quick, "machine": machine(), "workers": WORKERS,
              "threads": THREADS, "plan": plan, "runs": []}
    small = os.environ.get("BENCH_SMALL", "1") not in ("", "0")
    for n in ((1000,) if small else ()) + (members,):
        t0 = time.perf_counter()
        print(f"== {n:,} members: loading", flush=True)
        # Both populations with the consumer (syncprov on the provider), so
        # that writes compare like for like.
        replica = os.environ.get("BENCH_REPLICA", "1") not in ("", "0")
        stack = Stack(n, 1000, FRESH_MEMBERS, maxsize, replica=replica)
        try:
            run = {"members": n, "timings": stack.timings, "facts": stack.facts}
            big = n == members
            print(f"== {n:,} members: flows", flush=True)
            # Left out of --quick, which must end in 3 minutes (BENCH_PAIRED=1 forces it).
            paired = big and os.environ.get("BENCH_RAW", "1") not in ("", "0") and \
                os.environ.get("BENCH_PAIRED", "0" if args.quick else "1") not in ("", "0")
            run["flows"] = run_flows(stack, plan, levels_post, levels_get, with_latency=big,
                                     paired=paired)
            run["worker_rss_mb"] = stack.worker_rss_mb()
            if big and os.environ.get("BENCH_RAW", "1") not in ("", "0"):
                print(f"== {n:,} members: raw ldap3", flush=True)
                run["raw"] = run_raw(stack, levels_post, plan["raw_s"])
            commands = os.environ.get("BENCH_COMMANDS",
                                      "notify,expire,remind,unconfirmed").replace(",", " ")
            if big and commands.split() != ["0"]:
                print(f"== {n:,} members: commands", flush=True)
                run["commands"] = []
                if "notify" in commands.split():  # mails due, then none due
                    run["commands"] += [stack.command("accounts", "notify-expiring"),
                                        stack.command("accounts", "notify-expiring")]
                if "expire" in commands.split():  # memberships due, then none due
                    run["commands"] += [stack.command("members", "expire"),
                                        stack.command("members", "expire")]
                if "remind" in commands.split():  # reminders due, then none due
                    later = (stack.now + timedelta(days=REMIND_AFTER_DAYS)).strftime(
                        "%Y-%m-%dT%H:%M:%SZ")
                    run["commands"] += [stack.command("requests", "remind", "--now", later),
                                        stack.command("requests", "remind", "--now", later)]
                if "unconfirmed" in commands.split():
                    run["commands"].append(stack.command("requests", "expire-unconfirmed"))
            run["mdb_mb"] = round((stack.settings.data_dir / "data.mdb").stat().st_blocks
                                  * 512 / 1e6, 1)
            run["wall_s"] = round(time.perf_counter() - t0, 1)
        finally:
            stack.stop()
        result["runs"].append(run)
    # The side run is left out of --quick (it loads the population again).
    if os.environ.get("BENCH_SSHA", "0" if args.quick else "1") not in ("", "0"):
        # The side run with cheap hashing: the same population, slapd on
        # {SSHA}, so the portal's own cost per login and change shows (with
        # argon2 slapd's hashing is the ceiling). Login, the floor's login
        # and the change, beside the raw binds and bind + Password Modify.
        print(f"== {members:,} members, slapd on {{SSHA}}: flows and raw ldap3", flush=True)
        stack = Stack(members, 1000, FRESH_MEMBERS, maxsize, password_hash="{SSHA}")
        try:
            result["ssha"] = {
                "members": members,
                "flows": run_flows(stack, plan, levels_post, levels_get, with_latency=False,
                                   only={"login", "floor_login", "form_floor_login",
                                         "change"}),
                "raw": run_raw(stack, levels_post, plan["raw_s"],
                               ops=("bind_new", "bind_persistent", "bind_pm_self"))}
        finally:
            stack.stop()
    if os.environ.get("PEER", "") == "ssp":
        print("== PEER=ssp: the PHP peer and the floor on the peer's {SSHA} lab", flush=True)
        result["peer"] = peer.run_ssp(WORK / "ssp", n=100 if args.quick else 300,
                                      workers=WORKERS, threads=THREADS)
    result["machine"]["loadavg_after"] = Path("/proc/loadavg").read_text().strip()
    result["bench_peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.label}.json").write_text(json.dumps(result, indent=1, default=str))
    text = table(result)
    print(text)
    m = result["machine"]
    (RESULTS / f"{args.label}.md").write_text(
        f"# make bench {'--quick ' if args.quick else ''}({result['started']})\n\n"
        f"Machine: {m['nproc']} cores ({m['cpu']}), load before {m['loadavg_before']}, "
        f"after {m['loadavg_after']}; slapd {m['slapd']}, Python {m['python']}; gunicorn "
        f"{WORKERS} workers x {THREADS} threads (gthread).\n\n```\n{m['free_g']}\n```\n\n"
        + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
