"""Login, password change, reset, initial-password deadline and expiry,
enforced by the real slapd (ppolicy) and checked the way other services bind."""
from __future__ import annotations

import json
import re
import statistics
import time
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import ldap3
import pytest
from itsdangerous import URLSafeTimedSerializer

from app import create_app
from app.devstack.slapd import SCHEMA_DIR, SlapdProcess, SlapdSettings
from app.directory import PasswordRefused
from app.services.links import ResetLink
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    STRONG_PASSWORD,
    binds,
    change_password,
    csrf_token,
    forge_link,
    form_errors,
    links_in,
    local_path,
    login,
    mails_to,
    mails_with,
    portal_environment,
    race,
    read_entry,
    wait_for_mail,
    wait_until,
)

MEMBER_DN = f"uid=tiijima,{PEOPLE}"
CONTACT = "toru.iijima@kek.example"
RELAX = ("1.3.6.1.4.1.4203.666.5.12", True, None)


def age_password(root, days: float, dn=MEMBER_DN) -> None:
    """Move pwdChangedTime into the past (rootdn with the relax control)."""
    root.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["pwdChangedTime"])
    changed = root.entries[0].pwdChangedTime.value
    past = (changed - timedelta(days=days)).astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")
    assert root.modify(dn, {"pwdChangedTime": [(ldap3.MODIFY_REPLACE, [past])]},
                       controls=[RELAX]), root.result


def logout(client):
    html = client.get("/account").get_data(as_text=True)
    return client.post("/logout", data={"csrf_token": csrf_token(html)})


def logged_in_member(client, member):
    """Log in with the initial password and choose NEW_PASSWORD."""
    login(client)
    response = change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))


# -- login ----------------------------------------------------------------------------------

def test_initial_password_leads_straight_to_the_change_page(client, member, root, slapd, smtp):
    response = login(client, account_name="TIIJIMA")  # case-insensitive
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/account/password")
    # Nothing else works until the password is changed.
    assert client.get("/account").headers["Location"].endswith("/account/password")

    response = change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/account")
    person = read_entry(root, MEMBER_DN)
    assert "pwdPolicySubentry" not in person.entry_attributes  # default policy from now on
    assert binds(slapd, MEMBER_DN, NEW_PASSWORD) and not binds(slapd, MEMBER_DN, STRONG_PASSWORD)
    [mail] = mails_to(smtp, CONTACT, "password was changed")
    assert NEW_PASSWORD not in mail.as_string()

    page = client.get("/account")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    for shown in ("Toru Iijima", "tiijima", "toru.iijima@example.org", CONTACT,
                  "High Energy Accelerator Research Organization (KEK)", "PhD student",
                  "active", "members", "Password expires on", "days left",
                  "History", "Account created: membership approved", "Password changed"):
        assert shown in html, shown
    assert "179 days left" in html or "180 days left" in html


def test_wrong_password_and_unknown_account_get_the_same_answer(client, member):
    wrong = login(client, password="Not-the-password-1")
    unknown = login(client, account_name="nobody1", password="Not-the-password-1")
    assert wrong.status_code == unknown.status_code == 200
    # Only the CSRF token and the typed account name may differ.
    def strip(response):
        return re.sub(r'value="[^"]*"', "", response.get_data(as_text=True))
    assert strip(wrong) == strip(unknown)
    assert "The account name or password is not right." in strip(wrong)
    assert client.get("/account").headers["Location"].endswith("/login")


# Tries per kind: below the account's throttle and the directory's lockout (10 each).
TIMING_TRIES = 7
# How far apart the two medians may be. The answer for an unknown account takes
# about as long as a wrong password for a known one (a ratio near 1); without the
# dummy password check it is 5 to 10 times faster.
TIMING_MAX_RATIO = 2.5


def test_login_timing_does_not_tell_whether_the_account_exists(client, member):
    def timed(name):
        started = time.perf_counter()
        response = login(client, account_name=name, password="Not-the-password-1")
        elapsed = time.perf_counter() - started
        assert response.status_code == 200  # refused, not throttled
        return elapsed
    known, unknown = [], []
    for n in range(TIMING_TRIES):  # alternating, so that a busy machine slows both alike
        known.append(timed("tiijima"))
        unknown.append(timed(f"nobody{n}"))
    known_median, unknown_median = statistics.median(known), statistics.median(unknown)
    ratio = max(known_median, unknown_median) / min(known_median, unknown_median)
    assert ratio < TIMING_MAX_RATIO, (
        f"median {known_median * 1000:.0f} ms for a known account, "
        f"{unknown_median * 1000:.0f} ms for an unknown one")


def test_session_cookie_flags_and_a_new_session_at_login(client, member):
    client.get("/login")
    before = client.get_cookie("session")
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert client.get_cookie("session").value != (before.value if before else None)


def test_idle_sessions_end(client, member):
    logged_in_member(client, member)
    assert client.get("/account").status_code == 200
    with client.session_transaction() as session:
        session["seen_at"] = time.time() - 31 * 60
    response = client.get("/account")
    assert response.headers["Location"].endswith("/login")


def test_logout_is_a_post_and_ends_the_session(client, member):
    logged_in_member(client, member)
    assert client.get("/logout").status_code == 405
    html = client.get("/account").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(html)})
    assert client.get("/account").headers["Location"].endswith("/login")


def test_repeated_failed_logins_are_throttled_per_account(client, member):
    statuses = [login(client, password=f"Wrong-password-{n}").status_code for n in range(11)]
    assert statuses[:10] == [200] * 10
    assert statuses[10] == 429
    page = login(client)
    assert page.status_code == 429 and "Too many attempts" in page.get_data(as_text=True)
    # When to try again: the limit's window (10 per 15 minutes in the tests' settings).
    assert page.headers["Retry-After"] == "900"
    # Another account from the same address is not blocked by this limit.
    assert login(client, account_name="irkek", password="x").status_code == 200


def test_failed_logins_from_another_client_do_not_lock_the_owner_out(client, member):
    """The login throttle counts per account and client together."""
    elsewhere = {"REMOTE_ADDR": "203.0.113.9"}
    statuses = [login(client, password=f"Wrong-password-{n}", environ_base=elsewhere).status_code
                for n in range(11)]
    assert statuses[10] == 429
    assert login(client, environ_base=elsewhere).status_code == 429
    # The owner, from their own address, is not slowed down.
    assert login(client).status_code == 302


def test_a_successful_reset_clears_the_login_throttle_of_the_account(client, member, smtp):
    other = {"REMOTE_ADDR": "198.51.100.7"}
    for environ in ({}, other):
        for n in range(11):
            login(client, password=f"Wrong-password-{n}", environ_base=environ)
        assert login(client, environ_base=environ).status_code == 429
    path = request_reset_link(client, smtp, "tiijima")
    response = set_password_via_link(client, path, "Harbour-lantern-quartz-58")
    assert "Your new password is set" in response.get_data(as_text=True)
    # Every client's count for the account starts again.
    assert login(client, password="Harbour-lantern-quartz-58").status_code == 302
    elsewhere = client.application.test_client()
    assert login(elsewhere, password="Harbour-lantern-quartz-58",
                 environ_base=other).status_code == 302


def test_failed_binds_elsewhere_lock_nobody_out(client, member, slapd, smtp):
    """No directory lockout (README, "Lockout"): another service's failed
    binds do not keep the member out of the portal or of the directory."""
    logged_in_member(client, member)
    for _ in range(12):  # another service's failed binds
        assert not binds(slapd, MEMBER_DN, "Wrong-password-0")
    assert binds(slapd, MEMBER_DN, NEW_PASSWORD)
    logout(client)
    assert login(client, password=NEW_PASSWORD).status_code == 302


# -- password change ----------------------------------------------------------------------------

def test_password_change_rules(client, member, slapd):
    logged_in_member(client, member)
    cases = [
        (("wrong-current-pass", "Velvet-harbour-tide-31"), "Your current password is not right."),
        ((NEW_PASSWORD, "short"), "Use at least 12 characters."),
        ((NEW_PASSWORD, "Tiijima-velvet-harbour"), "must not contain your account name"),
        ((NEW_PASSWORD, "Iijima-velvet-harbour-9"), "must not contain your names"),
        ((NEW_PASSWORD, "Password12345"), "too common"),
        ((NEW_PASSWORD, STRONG_PASSWORD), "You used this password recently"),  # directory history
        ((NEW_PASSWORD, NEW_PASSWORD), "You used this password recently"),
    ]
    for (current, new), message in cases:
        response = change_password(client, current, new)
        assert response.status_code == 200, (new, message)
        assert any(message in e for e in form_errors(response.get_data(as_text=True))), \
            (new, form_errors(response.get_data(as_text=True)))
        assert binds(slapd, MEMBER_DN, NEW_PASSWORD)
    response = change_password(client, NEW_PASSWORD, "Velvet-harbour-tide-31",
                               "Velvet-harbour-tide-32")
    assert "The two passwords are not the same." in form_errors(response.get_data(as_text=True))


# -- initial deadline and expiry, as other services see them -------------------------------

def test_initial_password_stops_working_after_the_deadline(client, member, root, slapd):
    assert binds(slapd, MEMBER_DN, STRONG_PASSWORD)
    age_password(root, 4.9)
    assert binds(slapd, MEMBER_DN, STRONG_PASSWORD)  # still within the 5 days
    age_password(root, 0.2)
    assert not binds(slapd, MEMBER_DN, STRONG_PASSWORD)
    page = login(client).get_data(as_text=True)
    assert "Your initial password has expired" in page
    # With a wrong password nothing is revealed.
    page = login(client, password="Wrong-password-1").get_data(as_text=True)
    assert "initial password has expired" not in page


def test_password_expires_after_180_days_and_the_reset_renews_it(client, member, root, slapd, smtp):
    logged_in_member(client, member)
    age_password(root, 179)
    assert binds(slapd, MEMBER_DN, NEW_PASSWORD)
    age_password(root, 2)
    assert not binds(slapd, MEMBER_DN, NEW_PASSWORD)
    logout(client)
    page = login(client, password=NEW_PASSWORD).get_data(as_text=True)
    assert "Your password has expired" in page and "/password/reset" in page
    reset_path = request_reset_link(client, smtp, CONTACT)
    set_password_via_link(client, reset_path, "Harbour-lantern-quartz-58")
    assert binds(slapd, MEMBER_DN, "Harbour-lantern-quartz-58")
    response = login(client, password="Harbour-lantern-quartz-58")
    assert response.headers["Location"].endswith("/account")


# -- lost password ------------------------------------------------------------------------------

def request_reset_link(client, smtp, login_value: str) -> str:
    html = client.get("/password/reset").get_data(as_text=True)
    before = len(smtp.messages)
    response = client.post("/password/reset", data={"csrf_token": csrf_token(html),
                                                    "login": login_value})
    assert response.status_code == 200
    response.close()  # the mail is sent once the response is done
    wait_for_mail(smtp, "reset your password", before)
    [mail] = mails_with(smtp, "reset your password", before)
    return local_path(links_in(mail)[0])


def without_values(response) -> str:
    """The page without its form values (CSRF token, what was typed)."""
    return re.sub(r'value="[^"]+"', "", response.get_data(as_text=True))


def set_password_via_link(client, path: str, password: str, confirm=None):
    html = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(html), "password": password,
                                   "password_confirm": confirm or password})


def test_reset_answers_the_same_for_known_and_unknown_logins(client, member, smtp):
    html = client.get("/password/reset").get_data(as_text=True)
    answers = []
    for value in ("tiijima", CONTACT, "nobody1", "nobody@nowhere.example"):
        response = client.post("/password/reset", data={"csrf_token": csrf_token(html),
                                                         "login": value})
        answers.append((response.status_code, without_values(response)))
        response.close()  # runs the work left for after the response: the mail, if any
    assert len(set(answers)) == 1
    # The two known logins (account name, contact address) each get a link; the others none.
    wait_until(lambda: len(mails_with(smtp, "reset your password")) >= 2,
               message="the two reset mails did not arrive")
    assert len(mails_with(smtp, "reset your password")) == 2


def test_reset_link_works_once_and_get_changes_nothing(client, member, slapd, smtp):
    path = request_reset_link(client, smtp, "tiijima")
    for _ in range(2):
        assert client.get(path, headers={"User-Agent": "Mail-Scanner"}).status_code == 200
    assert binds(slapd, MEMBER_DN, STRONG_PASSWORD)
    response = set_password_via_link(client, path, "Harbour-lantern-quartz-58")
    assert "Your new password is set" in response.get_data(as_text=True)
    assert binds(slapd, MEMBER_DN, "Harbour-lantern-quartz-58")
    assert not binds(slapd, MEMBER_DN, STRONG_PASSWORD)
    assert client.get(path).status_code == 410  # replay refused: "used"
    [done] = mails_to(smtp, CONTACT, "password was reset")
    assert "Harbour-lantern-quartz-58" not in done.as_string()
    # The reset replaced the initial password: no forced change at login.
    response = login(client, password="Harbour-lantern-quartz-58")
    assert response.headers["Location"].endswith("/account")


def test_reset_refusals_keep_the_link_usable(client, member, slapd, smtp):
    path = request_reset_link(client, smtp, "tiijima")
    response = set_password_via_link(client, path, STRONG_PASSWORD)  # current one: history
    errors = form_errors(response.get_data(as_text=True))
    assert any("used this password recently" in e for e in errors), errors
    response = set_password_via_link(client, path, "short")
    assert "Use at least 12 characters." in form_errors(response.get_data(as_text=True))
    response = set_password_via_link(client, path, "Harbour-lantern-quartz-58")
    assert "Your new password is set" in response.get_data(as_text=True)


def test_a_new_reset_link_replaces_the_older_one(client, member, smtp):
    first = request_reset_link(client, smtp, "tiijima")
    second = request_reset_link(client, smtp, "tiijima")
    assert client.get(first).status_code == 410
    assert client.get(second).status_code == 200


def test_expired_reset_link_is_refused(app, client, member, smtp):
    path = request_reset_link(client, smtp, "tiijima")
    token = path.rsplit("/", 1)[1]
    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"],
                                     salt=f"portal.link.{ResetLink.purpose}").loads(token)
    old = forge_link(app, ResetLink.purpose, payload, age_seconds=3601)
    assert client.get(f"/password/reset/{old}").status_code == 410
    assert client.get(path).status_code == 200


def test_concurrent_posts_of_one_reset_link_set_the_password_once(app, member, smtp, client):
    path = request_reset_link(client, smtp, "tiijima")

    def post(n, prepared):
        if prepared is None:
            c = app.test_client()
            return c, csrf_token(c.get(path).get_data(as_text=True))
        c, token = prepared
        password = f"Harbour-lantern-{n}-quartz"
        return c.post(path, data={"csrf_token": token, "password": password,
                                  "password_confirm": password}).status_code

    results = race(10, post)
    assert results.count(200) == 1 and results.count(410) == 9, results
    assert len([m for m in smtp.messages if "password was reset" in m["Subject"]]) == 1


# -- expiry warnings ----------------------------------------------------------------------------

def test_expiry_warnings_are_sent_once_per_threshold(app, client, member, root, smtp):
    logged_in_member(client, member)
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["pwdChangedTime"])
    expires = root.entries[0].pwdChangedTime.value + timedelta(days=180)
    runner = app.test_cli_runner()

    def run(days_before: float) -> str:
        now = (expires - timedelta(days=days_before)).strftime("%Y-%m-%dT%H:%M:%SZ")
        result = runner.invoke(args=["accounts", "notify-expiring", "--now", now])
        assert result.exit_code == 0, result.output
        return result.output

    def warnings() -> list:
        return mails_to(smtp, CONTACT, "your password expires")

    assert "total: 0" in run(45)
    assert "30-day warnings sent: 1" in run(25)
    assert "total: 0" in run(24)  # idempotent
    assert len(warnings()) == 1 and "expires in 25 days" in warnings()[0]["Subject"]
    assert "7-day warnings sent: 1" in run(6.5)
    assert "1-day warnings sent: 1" in run(0.5)
    assert "total: 0" in run(0.4)
    assert len(warnings()) == 3
    # Each warning sent is in the audit records once (written with its notice).
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["portalAuditEvent"])
    recorded = [json.loads(e) for e in root.entries[0].portalAuditEvent.values]
    assert sorted(e.get("days") for e in recorded
                  if e.get("action") == "account.expiry-warning") == ["1", "30", "7"]
    body = warnings()[-1].get_body(preferencelist=("plain",)).get_content()
    assert "http://portal.test/password/reset" in body
    # A new password starts a new cycle.
    response = change_password(client, NEW_PASSWORD, "Harbour-lantern-quartz-58")
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["pwdChangedTime"])
    new_expiry = root.entries[0].pwdChangedTime.value + timedelta(days=180)
    now = (new_expiry - timedelta(days=20)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "30-day warnings sent: 1" in runner.invoke(
        args=["accounts", "notify-expiring", "--now", now]).output


def test_members_still_on_the_initial_password_get_no_expiry_warning(app, member, smtp):
    now = (datetime.now(timezone.utc) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    result = app.test_cli_runner().invoke(args=["accounts", "notify-expiring", "--now", now])
    assert "total: 0" in result.output


def test_a_directory_whose_schema_cannot_test_notices_gets_no_warning_run(tmp_path, smtp):
    """A slapd with the schema from before portalExpiryNotice had its SUBSTR
    rule: the run is refused with the reason (slapd would answer every
    member due as "warned already"), and `flask portal check` says so."""
    schema = tmp_path / "schema"
    schema.mkdir()
    text = (SCHEMA_DIR / "portal.schema").read_text()
    notice = text.index("NAME 'portalExpiryNotice'")
    rule = text.index("\tSUBSTR caseExactIA5SubstringsMatch\n", notice)
    (schema / "portal.schema").write_text(
        text[:rule] + text[rule + len("\tSUBSTR caseExactIA5SubstringsMatch\n"):])

    class OlderSchema(SlapdSettings):
        @property
        def schema_dir(self):
            return schema

    server = SlapdProcess(OlderSchema(workdir=tmp_path / "slapd"))
    server.initialise()
    server.start()
    try:
        app = create_app(portal_environment(server, smtp))
        assert not app.extensions["portal"].accounts.expiry_notices_searchable()
        result = app.test_cli_runner().invoke(args=["accounts", "notify-expiring"])
        assert result.exit_code == 1
        assert "portalExpiryNotice has no SUBSTR rule" in result.output
        assert "total:" not in result.output
        check = app.test_cli_runner().invoke(args=["portal", "check"])
        assert "schema     FAILED  portalExpiryNotice has no SUBSTR rule" in check.output
    finally:
        server.stop()


def test_the_directory_of_the_tests_can_test_notices(app):
    assert app.extensions["portal"].accounts.expiry_notices_searchable()
    check = app.test_cli_runner().invoke(args=["portal", "check"])
    assert "schema     OK      portalExpiryNotice has its SUBSTR rule" in check.output


def test_a_replayed_cookie_after_logout_is_refused(app, client, member):
    logged_in_member(client, member)
    stolen = client.get_cookie("session").value
    html = client.get("/account").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(html)})
    replay = app.test_client()
    replay.set_cookie("session", stolen)
    assert replay.get("/account").headers["Location"].endswith("/login")


def test_a_password_change_ends_the_other_sessions(app, client, member):
    logged_in_member(client, member)
    other = app.test_client()
    login(other, password=NEW_PASSWORD)
    assert other.get("/account").status_code == 200
    response = change_password(client, NEW_PASSWORD, "Harbour-lantern-quartz-58")
    assert response.status_code == 302
    assert client.get("/account").status_code == 200  # this session goes on
    assert other.get("/account").headers["Location"].endswith("/login")


def test_sessions_end_after_the_absolute_maximum_too(client, member):
    logged_in_member(client, member)
    with client.session_transaction() as session:
        session["auth_at"] = time.time() - 9 * 3600  # active all along, but 9 hours old
    assert client.get("/account").headers["Location"].endswith("/login")


def test_no_open_redirect_after_login(client, member):
    logged_in_member(client, member)
    html = client.get("/account").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_token(html)})
    html = client.get("/login?next=https://evil.example/").get_data(as_text=True)
    response = client.post("/login?next=https://evil.example/", data={
        "csrf_token": csrf_token(html), "account_name": "tiijima", "password": NEW_PASSWORD})
    assert response.headers["Location"] == "/account"


def test_reset_answers_the_same_while_mail_is_failing(client, member, smtp):
    smtp.refuse_with = "451 4.3.0 try again later"
    html = client.get("/password/reset").get_data(as_text=True)
    answers = set()
    for value in ("tiijima", "nobody1"):
        response = client.post("/password/reset", data={"csrf_token": csrf_token(html),
                                                         "login": value})
        answers.add((response.status_code, without_values(response)))
        response.close()
    assert len(answers) == 1


@contextmanager
def directory_work(directory):
    """Record the directory work inside the block: ``calls`` (the operation
    of each call by name), ``writes`` (each modify's and add's kind, DN and
    attributes) and ``binds`` (the DN of each bind as a member)."""
    work = SimpleNamespace(calls=[], writes=[], binds=[])
    call, modify, add, bind_as = (directory._call, directory._modify, directory._add,
                                  directory._bind_as)

    def counting(operation):
        work.calls.append(getattr(operation, "__qualname__", ""))
        return call(operation)

    directory._call = counting
    directory._modify = lambda dn, changes: (work.writes.append(("modify", dn, sorted(changes))),
                                             modify(dn, changes))[1]
    directory._add = lambda dn, attributes: (work.writes.append(("add", dn)),
                                             add(dn, attributes))[1]
    directory._bind_as = lambda dn, *rest: (work.binds.append(dn), bind_as(dn, *rest))[1]
    try:
        yield work
    finally:
        del directory._call, directory._modify, directory._add, directory._bind_as


SEARCH, PASSWORD_MODIFY = "DirectoryConnection._search.<locals>.run", \
    "Passwords.set_password.<locals>.run"
PASSWORD_CYCLE = sorted(["pwdPolicySubentry", "portalExpiryNotice", "portalAuditEvent",
                         "portalSessionEpoch"])


def test_a_reset_writes_the_member_twice_and_ends_the_sessions(app, client, member, smtp, root):
    """The POST of a reset link: the link's check in one read (the page's;
    the workflow consumes the link the page checked), the nonce (once), the
    password, then the new cycle, the audit record and the end of every
    session in one modify (they were three), and the mail: no read of the
    member after the password is set."""
    other = app.test_client()
    logged_in_member(other, member)
    assert other.get("/account").status_code == 200
    path = request_reset_link(client, smtp, "tiijima")
    html = client.get(path).get_data(as_text=True)
    directory = app.extensions["portal"].directory
    with directory_work(directory) as work:
        response = client.post(path, data={"csrf_token": csrf_token(html),
                                           "password": "Harbour-lantern-quartz-58",
                                           "password_confirm": "Harbour-lantern-quartz-58"})
    calls, writes = work.calls, work.writes
    assert "Your new password is set" in response.get_data(as_text=True)
    on_member = [w for w in writes if w[0] == "modify" and w[1] == MEMBER_DN]
    assert [w[2] for w in on_member] == [["portalResetNonce"], PASSWORD_CYCLE], writes
    # The mail (the test app delivers it at once: the sender's claim follows).
    assert [w[0] for w in writes if w[1] != MEMBER_DN][:1] == ["add"], writes
    # One read (the person, the password state and the nonce together), the
    # nonce consumed, the password; no read after.
    assert calls.count(SEARCH) == 1 and calls[0] == SEARCH, calls
    assert calls.index(PASSWORD_MODIFY) == 2, calls
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["portalAuditEvent"])
    assert any(json.loads(e).get("action") == "account.password-reset"
               for e in root.entries[0].portalAuditEvent.values)
    ended = other.get("/account")  # the other session ended
    assert ended.status_code == 302 and ended.location.endswith("/login"), ended.location


def test_a_change_reads_the_member_once_writes_it_once_and_ends_other_sessions(
        app, client, member, smtp, root):
    """The POST of a password change: the member's entry read once (the
    request's session check; the form and the workflow use that read), the
    bind with the current password, Password Modify, then the new cycle, the
    audit record and the end of every other session in one modify (there
    was a second for the sessions), and the mail. The session that changed
    the password goes on."""
    logged_in_member(client, member)
    other = app.test_client()
    assert login(other, password=NEW_PASSWORD).status_code == 302
    assert other.get("/account").status_code == 200
    html = client.get("/account/password").get_data(as_text=True)
    directory = app.extensions["portal"].directory
    with directory_work(directory) as work:
        response = client.post("/account/password", data={
            "csrf_token": csrf_token(html), "current_password": NEW_PASSWORD,
            "password": "Harbour-lantern-quartz-58",
            "password_confirm": "Harbour-lantern-quartz-58"})
    calls, writes, binds = work.calls, work.writes, work.binds
    assert response.status_code == 302, response.get_data(as_text=True)
    assert binds == [MEMBER_DN]
    assert calls.count(SEARCH) == 1 and calls[0] == SEARCH, calls
    assert calls.index(PASSWORD_MODIFY) == 1, calls
    assert [w[2] for w in writes if w[1] == MEMBER_DN] == [PASSWORD_CYCLE], writes
    assert [w[0] for w in writes if w[1] != MEMBER_DN][:1] == ["add"], writes  # the mail
    root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["portalAuditEvent"])
    assert any(json.loads(e).get("action") == "account.password-changed"
               for e in root.entries[0].portalAuditEvent.values)
    assert client.get("/account").status_code == 200  # this session goes on
    ended = other.get("/account")
    assert ended.status_code == 302 and ended.location.endswith("/login"), ended.location


def test_a_password_that_looks_like_a_hash_is_refused_and_password_modify_hashes_it_anyway(
        app, client, member, smtp, root, slapd):
    """A new password typed as "{SSHA}..." is refused by the portal's rules
    with the reason, in a reset and in a change, and nothing is written.
    Below the rules, Password Modify hashes whatever it is given: such a
    value is never stored as typed (a modify's cleartext would be:
    ppolicy_hash_cleartext leaves a value alone that looks hashed already)."""
    reason = "The password cannot start with a word in braces such as {SSHA}"

    def stored() -> bytes:
        root.search(MEMBER_DN, "(objectClass=*)", ldap3.BASE, attributes=["userPassword"])
        return root.entries[0].userPassword.value

    before = stored()
    path = request_reset_link(client, smtp, "tiijima")
    response = set_password_via_link(client, path, "{SSHA}Harbour-lantern-quartz-58")
    assert reason in "".join(form_errors(response.get_data(as_text=True)))
    assert stored() == before
    assert "Your new password is set" in set_password_via_link(
        client, path, "Harbour-lantern-quartz-58").get_data(as_text=True)  # the link still works

    assert login(client, password="Harbour-lantern-quartz-58").status_code == 302
    before = stored()
    response = change_password(client, "Harbour-lantern-quartz-58",
                               "{CLEARTEXT}Velvet-harbour-tide-31")
    assert reason in "".join(form_errors(response.get_data(as_text=True)))
    assert stored() == before

    # The default policy now: slapd hashes a scheme it does not know and
    # refuses ("quality") one it does; neither is ever stored as typed.
    directory = app.extensions["portal"].directory
    typed = "{CLEARTEXT}Velvet-harbour-tide-31"
    directory.set_password("tiijima", typed)
    assert stored().startswith(b"{ARGON2}") and typed.encode() not in stored()
    assert binds(slapd, MEMBER_DN, typed)
    before = stored()
    with pytest.raises(PasswordRefused) as refused:
        directory.set_password("tiijima", "{SSHA}Velvet-harbour-tide-32")
    assert refused.value.reason == "insufficientPasswordQuality"
    assert stored() == before
