"""Constants and helpers shared by the test modules (fixtures live in
tests/fixtures/, registered by tests/conftest.py)."""
from __future__ import annotations

import re
import secrets
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import ldap3
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from app.vocabulary import RequestStatus

ROOT = Path(__file__).resolve().parents[1]
BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
REQUESTS = f"ou=requests,{BASE_DN}"
MAIN_GROUP = f"cn=members,ou=groups,{BASE_DN}"
URL_RE = re.compile(r"https?://[^\s<>\"]+")
STRONG_PASSWORD = "Glacier-lantern-orbit-42"  # the registration's (initial) password
NEW_PASSWORD = "Copper-meadow-violin-73"      # the one a member chooses at first login


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
        # The test app delivers what it queued at once, through the sender's
        # own code (app/mail.py): a test reads the catcher right after an
        # action. gunicorn in the tests runs the sender process instead.
        "PORTAL_MAIL_DELIVERY": "inline",
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


def decide(client, path: str, decision: str = "approve", reason: str = ""):
    """Open a review (or objection) link and post a decision from its page."""
    html = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(html), "decision": decision,
                                   "reason": reason})


def login(client, account_name: str = "tiijima", password: str = STRONG_PASSWORD, **kwargs):
    html = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"csrf_token": csrf_token(html),
                                       "account_name": account_name, "password": password},
                       **kwargs)


def change_password(client, current: str, new: str, confirm: str | None = None):
    html = client.get("/account/password").get_data(as_text=True)
    return client.post("/account/password", data={
        "csrf_token": csrf_token(html), "current_password": current, "password": new,
        "password_confirm": confirm if confirm is not None else new})


def forge_link(app, purpose: str, payload: dict, age_seconds: int = 0) -> str:
    """A link token signed with the app's key as the portal issues it, made
    ``age_seconds`` ago."""
    class AgedSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - age_seconds

    return URLSafeTimedSerializer(app.config["SECRET_KEY"], salt=f"portal.link.{purpose}",
                                  signer=AgedSigner).dumps(payload)


def race(count: int, action) -> list:
    """Run ``action(n, None)`` in ``count`` threads to prepare, then, all at
    once, ``action(n, prepared)``; the second results, in finishing order."""
    results: list = []
    barrier = threading.Barrier(count)

    def run(n):
        prepared = action(n, None)
        barrier.wait()
        results.append(action(n, prepared))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# -- mail -------------------------------------------------------------------------------------

def links_in(message) -> list[str]:
    body = message.get_body(preferencelist=("plain",)).get_content()
    return URL_RE.findall(body)


def local_path(url: str) -> str:
    return url.replace("http://portal.test", "")


def mails_to(smtp, address: str, about: str = "") -> list:
    """The mails to ``address``; with ``about``, only those with it in the subject."""
    return [m for m in smtp.messages if address in str(m["To"]) and about in str(m["Subject"])]


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


def outbox_entries(conn: ldap3.Connection) -> list:
    """The outbox's messages, with what the sender wrote on them."""
    conn.search(f"ou=outbox,{BASE_DN}", "(objectClass=portalOutboxEntry)", attributes=[
        "portalOutboxId", "portalOutboxRecipient", "portalOutboxAttempts",
        "portalOutboxLastError", "portalOutboxClaim", "portalOutboxNotBefore"])
    return list(conn.entries)


def wait_for_empty_outbox(conn: ldap3.Connection, timeout: float = 10) -> None:
    """Until the sender has delivered everything waiting."""
    wait_until(lambda: not outbox_entries(conn), timeout, "the outbox was not emptied")


# -- the directory ----------------------------------------------------------------------------

def binds(slapd, dn: str, password: str) -> bool:
    """Does a simple bind succeed, as another service of the collaboration does it?"""
    conn = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE), dn, password)
    ok = conn.bind()
    conn.unbind()
    return ok


def read_entry(conn: ldap3.Connection, dn: str, attributes=("*", "+")):
    try:
        conn.search(dn, "(objectClass=*)", ldap3.BASE, attributes=list(attributes))
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:
        return None
    return conn.entries[0] if conn.entries else None


def record_approval_only(portal, request_id: str) -> None:
    """The decision alone, as if the process died right after recording it."""
    portal.directory.record_decision(
        request_id, 0, RequestStatus.APPROVED, approver="irkek",
        approver_label="Toru Sato (irkek)", at=datetime.now(timezone.utc), from_="127.0.0.1",
        audit_event='{"action": "request.approved"}')


AXE_SCRIPT = ROOT / "tests" / "node_modules" / "axe-core" / "axe.min.js"


def assert_accessible(page, state: str) -> None:
    """axe-core on the page as it is now: no serious or critical violation.

    Evaluated through the DevTools protocol, so the portal's CSP (no inline
    scripts) stays in force for the page itself."""
    assert AXE_SCRIPT.exists(), f"{AXE_SCRIPT} is missing: make test installs it (npm ci)"
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    violations = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ["violations"]});
        return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}));
    }""")
    bad = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert not bad, f"axe-core at {state} ({page.url}): {bad}"


def fill_registration(page, **values) -> None:
    """The registration form in the browser, filled as Toru Iijima of KEK
    (``values``: other field values; None leaves a field as the page has it)."""
    institution = values.pop("institution", "kek")
    fields = {"given_name": "Toru", "family_name": "Iijima", "account_name": "tiijima",
              "email": "toru.iijima@kek.example", "password": STRONG_PASSWORD,
              "password_confirm": STRONG_PASSWORD, **values}
    for name, value in fields.items():
        if value is not None:
            page.locator(f"#{name}").fill(value)
    page.locator("#institution").select_option(institution)
    page.locator("#category").select_option("phd-student")
    page.locator("#accept_conditions").check()


def send_registration(page, button: str = "Send registration request") -> None:
    with page.expect_navigation():
        page.get_by_role("button", name=button).click()
