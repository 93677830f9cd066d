"""Expired members log in to see their status and ask for reactivation:
the expired password policy (cn=expired) refuses every bind, and only for
the right password does slapd say passwordExpired, so only the portal lets
them in, to a session that reaches the status page and nothing else."""
from __future__ import annotations

import json
import statistics
import time

import ldap3
import pytest

from app.directory import ppolicy
from app.services.errors import PasswordRefused
from app.web.sessions import ALLOWED_WHILE_EXPIRED
from helpers import (
    BASE_DN,
    NEW_PASSWORD,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    assert_accessible,
    binds,
    change_password,
    csrf_token,
    decide,
    links_in,
    local_path,
    login,
    mails_with,
    read_entry,
    wait_for_mail,
    wait_until,
)

DN = f"uid=tiijima,{PEOPLE}"
WRONG = "Wrong-password-4711x"
EXPIRED_POLICY = f"cn=expired,ou=policies,{BASE_DN}"
LOCK = "000001010000Z"


def cli(app, *args) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output


def expire(app, root, dn: str = DN, released: bool = True) -> None:
    """`flask members expire` past the member-until date; with ``released``,
    run again until the lock gives way to the expired policy (the password
    must be a few seconds old first: passwords.EXPIRED_POLICY_MARGIN)."""
    assert "expired 1 member(s)" in cli(app, "members", "expire", "--now", "2099-01-01T00:00:00Z")
    if released:
        wait_until(lambda: "status page opened to 1" in cli(app, "members", "expire"),
                   timeout=15, message="the lock was never released")
    entry = read_entry(root, dn)
    assert entry.portalStatus.value == "expired"
    assert entry.pwdPolicySubentry.value == EXPIRED_POLICY


def values(entry, name: str) -> list:
    return list(entry[name].values) if name in entry.entry_attributes else []


def policy_bind(slapd, dn: str, password: str):
    """A bind as another service does it, with the policy control asked for:
    (succeeded, what the policy said)."""
    conn = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE), dn,
                            password.encode())
    ok = conn.bind(controls=[ppolicy.REQUEST_CONTROL])
    control = ((conn.result.get("controls") or {}).get(ppolicy.OID) or {}).get("value")
    conn.unbind()
    return ok, ppolicy.decode(control).error


@pytest.fixture
def expired(app, client, register_and_verify, root):
    """'tiijima' (student, KEK) approved, then past the membership period."""
    decide(client, register_and_verify(category="student"))
    expire(app, root)
    return "tiijima"


def test_the_directory_answers_right_and_wrong_passwords_of_an_expired_member(expired, slapd):
    # Every service's bind fails either way; the right password alone is
    # reported as expired (the portal's only way to tell).
    assert policy_bind(slapd, DN, STRONG_PASSWORD) == (False, "passwordExpired")
    assert policy_bind(slapd, DN, WRONG) == (False, None)
    assert not binds(slapd, DN, STRONG_PASSWORD)


def test_right_password_shows_the_status_and_files_a_reactivation(client, expired, root, smtp):
    response = login(client)
    assert response.headers["Location"].endswith("/account")
    html = client.get("/account").get_data(as_text=True)
    assert "Your membership has expired: your account works for no service" in html
    assert "Your membership expired on" in html
    assert "The membership period of your category ended." in html
    assert "Correct your names" in html and "Change your institutional address" in html
    # No password change, no category change, no groups, no move.
    for absent in ("/account/password", "/account/category", "/account/institution",
                   "Extra groups"):
        assert absent not in html, absent

    before = len(smtp.messages)
    response = client.post("/account/reactivation", data={
        "csrf_token": csrf_token(html), "institution": "kek", "category": "phd-student"})
    assert response.headers["Location"].endswith("/account")
    root.search(REQUESTS, "(&(portalRequestType=reactivation)(uid=tiijima))",
                attributes=["portalRequestStatus", "portalHomeInstitution", "portalCategory"])
    [request] = root.entries
    assert (request.portalRequestStatus.value, request.portalHomeInstitution.value,
            request.portalCategory.value) == ("pending-approval", "kek", "phd-student")
    review = wait_for_mail(smtp, "reactivation request from Toru Iijima", before)
    assert review["To"] == "toru.sato@kek.example"  # KEK's representative
    html = client.get("/account").get_data(as_text=True)
    assert "Your request for reactivation waits for approval" in html

    # A second click files nothing more.
    client.post("/account/reactivation", data={
        "csrf_token": csrf_token(html), "institution": "kek", "category": "phd-student"})
    root.search(REQUESTS, "(&(portalRequestType=reactivation)(uid=tiijima))", attributes=["uid"])
    assert len(root.entries) == 1


def test_names_can_be_corrected_after_expiry(client, expired, root):
    login(client)
    html = client.get("/account").get_data(as_text=True)
    client.post("/account/names", data={"csrf_token": csrf_token(html), "given_name": "Tooru",
                                        "middle_name": "", "family_name": "Iijima"})
    entry = read_entry(root, DN)
    assert entry.givenName.value == "Tooru"
    assert entry.portalStatus.value == "expired"


def test_the_institutional_address_can_be_changed_after_expiry(client, expired, root, smtp):
    login(client)
    html = client.get("/account").get_data(as_text=True)
    client.post("/account/address", data={"csrf_token": csrf_token(html),
                                          "email": "t.iijima@desy.example"})
    [mail] = [m for m in smtp.messages if "t.iijima@desy.example" in str(m["To"])
              and "confirm your new address" in str(m["Subject"])]
    path = local_path(links_in(mail)[0])
    page = client.get(path).get_data(as_text=True)  # reached from the expired session too
    response = client.post(path, data={"csrf_token": csrf_token(page)})
    assert "Address changed" in response.get_data(as_text=True)
    entry = read_entry(root, DN)
    assert entry.portalContactMail.value == "t.iijima@desy.example"
    assert entry.portalStatus.value == "expired"


def test_wrong_password_gets_the_one_generic_message(client, expired):
    html = login(client, password=WRONG).get_data(as_text=True)
    assert "The account name or password is not right." in html
    assert client.get("/account").headers["Location"].endswith("/login")
    html = login(client, account_name="nobody9", password=WRONG).get_data(as_text=True)
    assert "The account name or password is not right." in html


def _median_login_seconds(app, account: str, password: str) -> float:
    accounts = app.extensions["portal"].accounts
    times = []
    for _ in range(5):
        started = time.perf_counter()
        with app.app_context():
            outcome = accounts.login(account, password).outcome.value
        times.append(time.perf_counter() - started)
        assert outcome == "failed"
    return statistics.median(times)


def test_a_wrong_password_takes_as_long_whether_active_suspended_or_expired(app, client, root,
                                                                         register_and_verify):
    decide(client, register_and_verify(category="student"))
    active = _median_login_seconds(app, "tiijima", WRONG)
    cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    suspended = _median_login_seconds(app, "tiijima", WRONG)
    cli(app, "members", "unsuspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    expire(app, root)
    after_expiry = _median_login_seconds(app, "tiijima", WRONG)
    # slapd answers a locked account without a hash check (~2 ms against
    # ~50 ms); the portal spends the same work for it. The lower bound
    # leaves room for the wrong password's bind on a loaded machine (slapd
    # records the failure: a durable write, 60-150 ms measured under load).
    for seconds in (suspended, after_expiry):
        assert 0.2 * active < seconds < 3 * active, (active, suspended, after_expiry)


def test_suspended_members_get_the_generic_message_even_with_the_right_password(
        app, client, member, slapd):
    cli(app, "members", "suspend", "tiijima", "--reason", "test", "--by", "helpdesk")
    html = login(client).get_data(as_text=True)
    assert "The account name or password is not right." in html
    assert policy_bind(slapd, DN, STRONG_PASSWORD) == (False, None)  # the lock: no control


def test_services_refuse_an_expired_member_with_either_password(expired, slapd, apache, dovecot):
    for password in (STRONG_PASSWORD, WRONG):
        assert not binds(slapd, DN, password)
        assert apache.get("/members/index.txt", "tiijima", password) == 401
        assert not dovecot.auth("tiijima", password)


def test_services_refuse_while_the_lock_is_still_there(app, client, register_and_verify, root,
                                                        slapd, apache):
    """Expired a moment after the password was set: the lock holds until the
    password is old enough for the expired policy; the login is the generic one."""
    decide(client, register_and_verify(category="student"))
    expire(app, root, released=False)
    assert values(read_entry(root, DN), "pwdAccountLockedTime")  # still locked
    assert policy_bind(slapd, DN, STRONG_PASSWORD) == (False, None)
    assert apache.get("/members/index.txt", "tiijima", STRONG_PASSWORD) == 401
    assert "The account name or password is not right." in \
        login(client).get_data(as_text=True)


def test_no_password_set_by_the_portal_reopens_an_expired_account(app, expired, root, slapd):
    directory = app.extensions["portal"].directory
    with pytest.raises(PasswordRefused) as refused:
        directory.set_password("tiijima", NEW_PASSWORD)  # Password Modify as the service
    assert refused.value.reason == "passwordTooShort"
    assert not binds(slapd, DN, NEW_PASSWORD)
    # Nor a userPassword written by the service, cleartext or hashed.
    service = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE),
                               slapd.settings.service_dn, slapd.settings.service_password,
                               auto_bind=True)
    for value in (NEW_PASSWORD, "{SSHA}aGVsbG8gd29ybGQxMjM0NTY3OA=="):
        service.modify(DN, {"userPassword": [(ldap3.MODIFY_REPLACE, [value])]})
        assert service.result["description"] == "constraintViolation"
    assert not binds(slapd, DN, NEW_PASSWORD)
    assert policy_bind(slapd, DN, STRONG_PASSWORD) == (False, "passwordExpired")


def test_the_expired_policy_expires_even_a_fresh_password(member, slapd, root):
    """pwdMaxAge 1 s: a password set a moment ago (by the rootdn, which
    passes the quality checks) is refused once it is two seconds old."""
    root.modify(DN, {"pwdPolicySubentry": [(ldap3.MODIFY_REPLACE, [EXPIRED_POLICY])]})
    assert root.extend.standard.modify_password(DN, None, NEW_PASSWORD)
    wait_until(lambda: policy_bind(slapd, DN, NEW_PASSWORD) == (False, "passwordExpired"),
               timeout=5, message="the fresh password never expired")
    assert policy_bind(slapd, DN, WRONG) == (False, None)


def test_reactivation_approval_restores_the_login(app, client, expired, root, slapd, smtp,
                                                  apache):
    login(client)
    html = client.get("/account").get_data(as_text=True)
    before = len(smtp.messages)
    client.post("/account/reactivation", data={
        "csrf_token": csrf_token(html), "institution": "kek", "category": "phd-student"})
    review = local_path(links_in(wait_for_mail(smtp, "reactivation request from", before))[0])
    before = len(smtp.messages)
    assert client.get(review).headers["Location"].endswith("/account")  # not in this session
    decide(app.test_client(), review)  # the representative, in their own browser
    entry = read_entry(root, DN)
    assert entry.portalStatus.value == "active"
    assert not values(entry, "pwdPolicySubentry")  # the default policy again
    assert not values(entry, "pwdAccountLockedTime")
    assert not binds(slapd, DN, STRONG_PASSWORD)  # the old password never works again
    # The restricted session ended with the expiry of the status.
    assert client.get("/account").headers["Location"].endswith("/login")

    mail = wait_for_mail(smtp, "your membership is active again", before)
    path = local_path(links_in(mail)[0])
    html = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": csrf_token(html), "password": NEW_PASSWORD,
                            "password_confirm": NEW_PASSWORD})
    assert binds(slapd, DN, NEW_PASSWORD)
    assert apache.get("/members/index.txt", "tiijima", NEW_PASSWORD) == 200
    response = login(client, password=NEW_PASSWORD)
    assert response.headers["Location"].endswith("/account")
    assert "Change password" in client.get("/account").get_data(as_text=True)


def test_the_expired_session_reaches_nothing_else(app, client, expired, root):
    login(client)
    html = client.get("/account").get_data(as_text=True)
    token = csrf_token(html)
    pages = sorted({rule.rule for rule in app.url_map.iter_rules()
                    if "GET" in rule.methods and not rule.arguments
                    and rule.endpoint not in ALLOWED_WHILE_EXPIRED})
    assert "/account/password" in pages and "/register" in pages
    for page in pages:
        response = client.get(page)
        assert response.status_code == 302 and response.headers["Location"].endswith("/account"), \
            page
    before = read_entry(root, DN).entry_attributes_as_dict
    for action, data in (("/account/password", {"current_password": STRONG_PASSWORD,
                                                 "password": NEW_PASSWORD,
                                                 "password_confirm": NEW_PASSWORD}),
                         ("/account/groups/naf/apply", {}), ("/account/category",
                                                             {"category": "phd-student"}),
                         ("/account/institution", {"institution": "desy"}),
                         ("/account/language", {"language": "de"}),
                         ("/account/conditions", {"accept": "y"})):
        response = client.post(action, data={"csrf_token": token, **data})
        assert response.status_code in (302, 403), action
        if response.status_code == 302:
            assert response.headers["Location"].endswith("/account"), action
    assert read_entry(root, DN).entry_attributes_as_dict == before
    root.search(REQUESTS, "(uid=tiijima)", attributes=["portalRequestType"])
    assert {e.portalRequestType.value for e in root.entries} <= {"registration", None}


def test_the_reactivation_action_is_for_expired_sessions_only(client, member, root):
    html = client.get("/login").get_data(as_text=True)
    response = client.post("/account/reactivation", data={"csrf_token": csrf_token(html),
                                                          "institution": "kek",
                                                          "category": "phd-student"})
    assert response.headers["Location"].endswith("/login")  # anonymous
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)  # an active member's own session
    html = client.get("/account").get_data(as_text=True)
    response = client.post("/account/reactivation", data={"csrf_token": csrf_token(html),
                                                          "institution": "kek",
                                                          "category": "phd-student"})
    assert response.status_code == 403
    root.search(REQUESTS, "(portalRequestType=reactivation)", attributes=["uid"])
    assert root.entries == []


def test_reactivation_without_a_csrf_token_files_nothing(client, expired, root):
    login(client)
    response = client.post("/account/reactivation",
                           data={"institution": "kek", "category": "phd-student"})
    assert response.status_code == 400
    root.search(REQUESTS, "(&(portalRequestType=reactivation)(uid=tiijima))", attributes=["uid"])
    assert root.entries == []


def test_members_expired_behind_the_old_lock_are_migrated(app, client, register_and_verify,
                                                          root, slapd):
    """A directory expired by an older portal: status expired, the lock,
    no expired policy. `flask members expire` moves them to the policy
    (once), and they can log in to the status page."""
    decide(client, register_and_verify(category="student"))
    root.modify(DN, {"portalStatus": [(ldap3.MODIFY_REPLACE, ["expired"])],
                     "pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE, [LOCK])],
                     "shadowExpire": [(ldap3.MODIFY_REPLACE, ["1"])]})
    assert policy_bind(slapd, DN, STRONG_PASSWORD) == (False, None)
    wait_until(lambda: "status page opened to 1" in cli(app, "members", "expire"),
               timeout=15, message="never migrated")
    entry = read_entry(root, DN)
    assert entry.pwdPolicySubentry.value == EXPIRED_POLICY
    assert not values(entry, "pwdAccountLockedTime")
    assert "status page opened to 0" in cli(app, "members", "expire")  # idempotent
    assert not binds(slapd, DN, STRONG_PASSWORD)
    assert login(client).headers["Location"].endswith("/account")


def test_accounts_without_pwdchangedtime_stay_locked(app, client, root, slapd):
    """ppolicy never expires a password without pwdChangedTime (a slapadded
    host-lab account): such an expired member keeps the lock, and with it
    the generic answer."""
    dn = f"uid=hlab,{PEOPLE}"
    root.add(dn, ["inetOrgPerson", "posixAccount", "portalMember"], {
        "uid": "hlab", "cn": "Hana Lab", "sn": "Lab", "givenName": "Hana",
        "mail": "hana.lab@example.org", "portalContactMail": "hana.lab@kek.example",
        "portalHomeInstitution": "kek", "portalCategory": "student", "portalStatus": "active",
        "portalMemberSince": "20200101000000Z", "portalMemberUntil": "20210101000000Z",
        "uidNumber": "20999", "gidNumber": "30000", "homeDirectory": "/home/hlab",
        "loginShell": "/bin/bash", "userPassword": STRONG_PASSWORD,
        # No aging under this policy, so ppolicy records no pwdChangedTime.
        "pwdPolicySubentry": f"cn=services,ou=policies,{BASE_DN}"})
    assert not values(read_entry(root, dn), "pwdChangedTime")
    assert binds(slapd, dn, STRONG_PASSWORD)
    expire(app, root, dn=dn, released=False)
    assert "status page opened to 0" in cli(app, "members", "expire")
    assert values(read_entry(root, dn), "pwdAccountLockedTime")
    assert policy_bind(slapd, dn, STRONG_PASSWORD) == (False, None)
    assert "The account name or password is not right." in \
        login(client, account_name="hlab").get_data(as_text=True)


def test_expiry_is_recorded_once_and_mailed_once(app, expired, root, smtp):
    cli(app, "members", "expire", "--now", "2099-02-01T00:00:00Z")
    events = [json.loads(e) for e in read_entry(root, DN).portalAuditEvent.values]
    assert [e["action"] for e in events].count("member.expired") == 1
    assert len(mails_with(smtp, "membership has expired")) == 1


@pytest.mark.browser
def test_the_status_page_in_a_phone_browser(phone, expired, live_server, root):
    from playwright.sync_api import expect

    assert phone.goto("/login").ok
    phone.locator("#account_name").fill("tiijima")
    phone.locator("#password").fill(STRONG_PASSWORD)
    with phone.expect_navigation():
        phone.get_by_role("button", name="Log in").click()
    assert phone.url == f"{live_server}/account"
    expect(phone.locator("main")).to_contain_text("Your membership expired on")
    assert_accessible(phone, "an expired member's status page on a phone")
    with phone.expect_navigation():
        phone.get_by_role("button", name="Ask for reactivation").click()
    expect(phone.locator("main")).to_contain_text("Your request for reactivation waits")
    assert_accessible(phone, "the status page with the reactivation waiting")


def test_every_bootstrap_tree_has_the_expired_policy(tmp_path):
    """The dev stack, the tests, the directory image (its templates come
    from the same generator) and production (bootstrap.ldif) get cn=expired."""
    from app.devstack.slapd import SlapdSettings, render_bootstrap_ldif

    for demo in (True, False):
        tree = render_bootstrap_ldif(SlapdSettings(workdir=tmp_path, demo=demo))
        entry = tree.split(f"dn: {EXPIRED_POLICY}\n", 1)[1].split("\n\n", 1)[0].splitlines()
        for line in ("objectClass: pwdPolicy", "pwdMaxAge: 1", "pwdGraceAuthNLimit: 0",
                     "pwdCheckQuality: 2", "pwdMinLength: 4096", "pwdLockout: TRUE",
                     "pwdMaxFailure: 0"):
            assert line in entry, line


def test_portal_check_fails_without_the_expired_policy(app, root):
    assert "policies   OK" in cli(app, "portal", "check")
    root.search(EXPIRED_POLICY, "(objectClass=*)", ldap3.BASE, attributes=["*"])
    saved = root.entries[0].entry_attributes_as_dict
    root.delete(EXPIRED_POLICY)
    try:
        result = app.test_cli_runner().invoke(args=["portal", "check"])
        assert result.exit_code == 1 and "policies   FAILED" in result.output
    finally:
        root.add(EXPIRED_POLICY, attributes=saved)
    assert "policies   OK" in cli(app, "portal", "check")
