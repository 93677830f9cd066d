"""Fixtures: a real slapd and a real SMTP server per test session, a clean
directory and mailbox per test."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import ldap3
import pytest

from app import create_app
from app.devstack.mailcatcher import MailCatcher
from app.devstack.slapd import SlapdProcess, SlapdSettings, free_port

ROOT = Path(__file__).resolve().parents[1]
BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
REQUESTS = f"ou=requests,{BASE_DN}"
MAIN_GROUP = f"cn=members,ou=groups,{BASE_DN}"
# Subtrees whose entries each test may add; anything new there is removed.
MUTABLE_SUBTREES = (PEOPLE, REQUESTS, f"ou=outbox,{BASE_DN}")
URL_RE = re.compile(r"https?://[^\s<>\"]+")
STRONG_PASSWORD = "Glacier-lantern-orbit-42"


@pytest.fixture(scope="session")
def slapd(tmp_path_factory):
    settings = SlapdSettings(workdir=tmp_path_factory.mktemp("slapd"))
    process = SlapdProcess(settings)
    process.initialise()
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def smtp():
    catcher = MailCatcher(free_port())
    catcher.start()
    yield catcher
    catcher.stop()


def root_connection(slapd) -> ldap3.Connection:
    # With the schema, values come back typed (int, datetime).
    return ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.SCHEMA),
                            slapd.settings.root_dn, slapd.settings.root_password,
                            auto_bind=True, raise_exceptions=True)


def _snapshot(conn: ldap3.Connection) -> dict:
    dns = set()
    for subtree in MUTABLE_SUBTREES:
        conn.search(subtree, "(objectClass=*)", attributes=[])
        dns |= {e.entry_dn for e in conn.entries}
    conn.search(MAIN_GROUP, "(objectClass=*)", ldap3.BASE, attributes=["member", "memberUid"])
    members = list(conn.entries[0].member.values)
    member_uids = list(conn.entries[0].memberUid.values)
    conn.search(f"cn=uidnumber,ou=counters,{BASE_DN}", "(objectClass=*)", ldap3.BASE,
                attributes=["uidNumber"])
    return {"dns": dns, "members": members, "member_uids": member_uids,
            "uid": str(conn.entries[0].uidNumber.value)}


@pytest.fixture(scope="session")
def directory_snapshot(slapd):
    conn = root_connection(slapd)
    snapshot = _snapshot(conn)
    conn.unbind()
    return snapshot


@pytest.fixture
def root(slapd, directory_snapshot):
    """A rootdn connection for checking the directory; restores it afterwards."""
    yield root_connection(slapd)
    # A fresh connection: the test may have restarted slapd.
    conn = root_connection(slapd)
    for subtree in MUTABLE_SUBTREES:
        conn.search(subtree, "(objectClass=*)", attributes=[])
        extra = {e.entry_dn for e in conn.entries} - directory_snapshot["dns"]
        for dn in sorted(extra, key=lambda d: -d.count(",")):
            conn.delete(dn)
    conn.modify(MAIN_GROUP, {"member": [(ldap3.MODIFY_REPLACE, directory_snapshot["members"])],
                             "memberUid": [(ldap3.MODIFY_REPLACE, directory_snapshot["member_uids"])]})
    conn.unbind()


def portal_environment(slapd, smtp, **extra) -> dict[str, str]:
    return {
        "PORTAL_ENV": "test",
        "PORTAL_SECRET_KEY": "test-" + secrets.token_urlsafe(32),
        "PORTAL_BASE_URL": "http://portal.test",
        "PORTAL_LDAP_URLS": slapd.url,
        "PORTAL_LDAP_BASE_DN": BASE_DN,
        "PORTAL_LDAP_BIND_DN": slapd.settings.service_dn,
        "PORTAL_LDAP_BIND_PASSWORD": slapd.settings.service_password,
        "PORTAL_LDAP_CONNECT_TIMEOUT": "2",
        "PORTAL_LDAP_RECEIVE_TIMEOUT": "5",
        "PORTAL_SMTP_HOST": "127.0.0.1",
        "PORTAL_SMTP_PORT": str(smtp.port),
        "PORTAL_SMTP_TIMEOUT": "5",
        "PORTAL_MAIL_FROM": "Registry <registry@example.org>",
        "PORTAL_COLLABORATION_NAME": "Example Collaboration",
        "PORTAL_MAIL_DOMAIN": "example.org",
        "PORTAL_HELPDESK_EMAIL": "helpdesk@example.org",
        **extra,
    }


@pytest.fixture
def app(slapd, smtp, root):
    smtp.clear()
    smtp.refuse_with = None
    application = create_app(portal_environment(slapd, smtp))
    yield application
    smtp.refuse_with = None


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def gunicorn(slapd, smtp, tmp_path_factory):
    """The portal under gunicorn (3 workers, the production gunicorn
    settings) with its logs in files, for tests across processes."""
    logs = tmp_path_factory.mktemp("gunicorn")
    port = free_port()
    env = {**os.environ, **portal_environment(slapd, smtp),
           "PORTAL_SECRET_KEY": "gunicorn-" + secrets.token_urlsafe(32),
           "PORTAL_BASE_URL": f"http://127.0.0.1:{port}",
           # Throttling counts per worker here; tests of it use the test client.
           "PORTAL_RATE_LIMIT_LOGIN_ADDRESS": "10000 per minute",
           "PORTAL_RATE_LIMIT_RESET": "10000 per minute",
           "PORTAL_RATE_LIMIT_REGISTER": "10000 per minute"}
    log_file = open(logs / "gunicorn.log", "wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", "3", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError((logs / "gunicorn.log").read_text()) from None
            time.sleep(0.1)
    yield type("Gunicorn", (), {"url": base, "log": logs / "gunicorn.log", "process": process})
    process.terminate()
    process.wait(timeout=20)
    log_file.close()


# -- helpers used by several test modules ----------------------------------------------

def csrf_token(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def form_errors(html: str) -> list[str]:
    return [re.sub(r"\s+", " ", e).strip()
            for e in re.findall(r'<p class="error"[^>]*>(.*?)</p>', html, re.S)]


def valid_form(**changes) -> dict[str, str]:
    data = {
        "given_name": "Toru", "middle_name": "", "family_name": "Iijima",
        "account_name": "tiijima", "email": "toru.iijima@kek.example",
        "institution": "kek", "category": "phd-student", "password": STRONG_PASSWORD,
        "password_confirm": STRONG_PASSWORD, "accept_conditions": "y",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def post_registration(client, **changes):
    page = client.get("/register")
    return client.post("/register", data={"csrf_token": csrf_token(page.get_data(as_text=True)),
                                          **valid_form(**changes)})


def links_in(message) -> list[str]:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return URL_RE.findall(body)


def local_path(url: str) -> str:
    return url.replace("http://portal.test", "")


def mails_to(smtp, address: str) -> list:
    return [m for m in smtp.messages if address in str(m["To"])]


def read_entry(conn: ldap3.Connection, dn: str, attributes=("*", "+")):
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:
        return None
    return conn.entries[0] if conn.entries else None


@pytest.fixture
def register_and_verify(client, smtp):
    """Submit a registration and confirm the address; returns the IR's review path."""
    def run(**changes) -> str:
        response = post_registration(client, **changes)
        assert response.status_code == 302, form_errors(response.get_data(as_text=True))
        email = valid_form(**changes)["email"]
        verify_path = local_path(links_in(mails_to(smtp, email)[-1])[0])
        page = client.get(verify_path)
        client.post(verify_path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
        review_mail = [m for m in smtp.messages if "membership request from" in str(m["Subject"])][-1]
        return local_path(links_in(review_mail)[0])
    return run

