"""Constants and helpers shared by the test modules (fixtures live in
tests/fixtures/, registered by tests/conftest.py)."""
from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

import ldap3

ROOT = Path(__file__).resolve().parents[1]
BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
REQUESTS = f"ou=requests,{BASE_DN}"
MAIN_GROUP = f"cn=members,ou=groups,{BASE_DN}"
URL_RE = re.compile(r"https?://[^\s<>\"]+")
STRONG_PASSWORD = "Glacier-lantern-orbit-42"


def root_connection(slapd) -> ldap3.Connection:
    """A rootdn connection; with the schema, values come back typed (int, datetime)."""
    return ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.SCHEMA),
                            slapd.settings.root_dn, slapd.settings.root_password,
                            auto_bind=True, raise_exceptions=True)


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


# -- pages and forms ------------------------------------------------------------------------

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


# -- mail -------------------------------------------------------------------------------------

def links_in(message) -> list[str]:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return URL_RE.findall(body)


def local_path(url: str) -> str:
    return url.replace("http://portal.test", "")


def mails_to(smtp, address: str) -> list:
    return [m for m in smtp.messages if address in str(m["To"])]


def wait_until(condition, timeout: float = 5, message: str = "the condition never held"):
    """Poll ``condition`` until it returns something true (returned) or fail
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, message
        time.sleep(0.02)


def mails_with(smtp, subject_part: str, before: int = 0) -> list:
    """The mails since the ``before``-th whose subject contains ``subject_part``."""
    return [m for m in smtp.messages[before:] if subject_part in str(m["Subject"])]


def wait_for_mail(smtp, subject_part: str, before: int = 0, timeout: float = 5):
    """The newest mail since the ``before``-th with ``subject_part`` in its
    subject, once it has arrived."""
    return wait_until(lambda: mails_with(smtp, subject_part, before), timeout,
                      f"no mail with {subject_part!r}")[-1]


# -- the directory ----------------------------------------------------------------------------

def read_entry(conn: ldap3.Connection, dn: str, attributes=("*", "+")):
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:
        return None
    return conn.entries[0] if conn.entries else None
