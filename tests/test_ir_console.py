"""The IR console (/ir): waiting requests opened and decided from it, the
roster (filters, CSV), ending a membership with a grace period and undo,
member-until, the yearly roster confirmation and the helpdesk's view of it;
every URL and action refused to everyone but the institution's own IR."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import ldap3
import pytest

from app.devstack.slapd import DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD, DEMO_IR_PASSWORD
from helpers import (
    BASE_DN,
    PEOPLE,
    STRONG_PASSWORD,
    csrf_token,
    decide,
    login,
    mails_to,
    read_entry,
    root_connection,
)

DN = f"uid=tiijima,{PEOPLE}"
CONTACT = "toru.iijima@kek.example"
INSTITUTIONS = f"ou=institutions,{BASE_DN}"
NAF_MANAGERS = f"cn=naf-managers,ou=groups,{BASE_DN}"
DEMO_ENTRIES = [f"uid={a},{PEOPLE}" for a in ("irkek", "irdesy", "irinfn", DEMO_HELPDESK)]
KEPT = ("preferredLanguage", "portalConditionsVersion", "portalAuditEvent")
ROSTER_ATTRS = ("portalRosterConfirmedAt", "portalRosterConfirmedBy", "portalAuditEvent")


@pytest.fixture
def console_state(slapd, root):
    yield from restoring_console_state(slapd, root)


def restoring_console_state(slapd, root):
    """The demo IRs' entries (conditions accepted at login) and the
    institutions' roster confirmations put back afterwards."""
    before = {dn: read_entry(root, dn, KEPT) for dn in DEMO_ENTRIES}
    yield
    conn = root_connection(slapd)
    for dn, entry in before.items():
        conn.modify(dn, {name: [(ldap3.MODIFY_REPLACE, list(entry[name].values)
                                 if name in entry.entry_attributes else [])] for name in KEPT})
    conn.search(INSTITUTIONS, "(objectClass=portalRosterRecord)", attributes=["objectClass"])
    for entry in list(conn.entries):
        conn.modify(entry.entry_dn, {
            **{name: [(ldap3.MODIFY_REPLACE, [])] for name in ROSTER_ATTRS},
            "objectClass": [(ldap3.MODIFY_DELETE, ["portalRosterRecord"])]})
    conn.modify(NAF_MANAGERS, {"member": [(ldap3.MODIFY_REPLACE, [f"uid=irdesy,{PEOPLE}"])],
                               "memberUid": [(ldap3.MODIFY_REPLACE, ["irdesy"])]})
    conn.unbind()


def log_in(client, account: str, password: str = DEMO_IR_PASSWORD):
    """Log in and accept the conditions if asked (demo accounts are)."""
    response = login(client, account, password)
    assert response.status_code == 302, account
    page = client.get("/account", follow_redirects=True).get_data(as_text=True)
    if 'name="accept_conditions"' in page:
        client.post("/account/conditions", data={"csrf_token": csrf_token(page),
                                                 "accept_conditions": "y"})
    return client


@pytest.fixture
def irkek(app, console_state):
    return log_in(app.test_client(), "irkek")


@pytest.fixture
def irdesy(app, console_state):
    return log_in(app.test_client(), "irdesy")


def events(root, dn: str = DN) -> list[dict]:
    entry = read_entry(root, dn, ("portalAuditEvent",))
    return [json.loads(v) for v in entry.portalAuditEvent.values] if entry else []


def page_of(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, (path, response.status_code)
    return response.get_data(as_text=True)


def post_form(client, page_path: str, action: str, **data):
    token = csrf_token(page_of(client, page_path))
    return client.post(action, data={"csrf_token": token, **data})


# -- Done means: a newcomer approved from the console ----------------------------------------

def test_an_ir_approves_a_newcomer_from_the_console_and_another_ir_sees_nothing(
        register_and_verify, irkek, irdesy, root):
    register_and_verify()
    page = page_of(irkek, "/ir")
    assert "Toru Iijima" in page and 'href="/ir/requests/tiijima"' in page
    assert "registration" in page and "0 days" in page

    # Nothing of it for the IR of DESY: not listed, not to be opened.
    assert "tiijima" not in page_of(irdesy, "/ir")
    assert irdesy.get("/ir/requests/tiijima").status_code == 403

    # The console mints a fresh review link for this IR: the same page as the mail's.
    response = irkek.get("/ir/requests/tiijima")
    assert response.status_code == 302 and "/review/" in response.headers["Location"]
    review_path = response.headers["Location"].replace("http://localhost", "")
    review = page_of(irkek, review_path)
    assert "Membership request for" in review and "Approve" in review
    approved = decide(irkek, review_path)
    assert approved.status_code == 200 and "was created" in approved.get_data(as_text=True)
    assert read_entry(root, DN).portalStatus.value == "active"
    assert [e for e in events(root, f"uid=tiijima,ou=requests,{BASE_DN}")
            if e["action"] == "request.approved"][0]["actor"] == "irkek"

    assert "No request waits for you." in page_of(irkek, "/ir")
    roster = page_of(irkek, "/ir/members")
    assert 'href="/ir/members/tiijima"' in roster and "Toru Iijima" in roster
    assert "tiijima" not in page_of(irdesy, "/ir/members")


def test_waiting_requests_oldest_first_with_their_age(register_and_verify, irkek, root):
    register_and_verify(given_name="Hana", family_name="Mori", account_name="hmori",
                        email="hana.mori@kek.example")
    register_and_verify()
    older = (datetime.now(timezone.utc) - timedelta(days=5, hours=1)).strftime("%Y%m%d%H%M%SZ")
    assert root.modify(f"uid=tiijima,ou=requests,{BASE_DN}", {
        "portalSubmittedAt": [(ldap3.MODIFY_REPLACE, [older])]})
    page = page_of(irkek, "/ir")
    assert page.index("/ir/requests/tiijima") < page.index("/ir/requests/hmori")
    assert "5 days" in page and "0 days" in page


def test_an_ir_rejects_from_the_console(register_and_verify, irkek, root, smtp):
    register_and_verify()
    review_path = irkek.get("/ir/requests/tiijima").headers["Location"].replace(
        "http://localhost", "")
    response = decide(irkek, review_path, "reject", "Not from our institute")
    assert response.status_code == 200
    request = read_entry(root, f"uid=tiijima,ou=requests,{BASE_DN}", ("portalRequestStatus",))
    assert request.portalRequestStatus.value == "rejected"
    [mail] = mails_to(smtp, CONTACT, "was not approved")
    assert "Not from our institute" in mail.get_body(("plain",)).get_content()
    assert "No request waits for you." in page_of(irkek, "/ir")
    assert irkek.get("/ir/requests/tiijima").status_code == 403


def test_an_expired_mail_link_is_no_obstacle_from_the_console(app, register_and_verify, irkek):
    from helpers import forge_link
    register_and_verify()
    old = forge_link(app, "review-request", {"r": "tiijima", "ir": "irkek", "st": 0},
                     age_seconds=30 * 86400)
    assert irkek.get(f"/review/{old}").status_code == 410
    fresh = irkek.get("/ir/requests/tiijima").headers["Location"]
    assert irkek.get(fresh.replace("http://localhost", "")).status_code == 200


def test_group_applications_are_not_the_irs_business(client, member, irkek, root):
    log_in(client, "tiijima", STRONG_PASSWORD)
    # tiijima applies for the NAF group: its managers decide, not the IR.
    from helpers import NEW_PASSWORD, change_password
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    page = page_of(client, "/account")
    response = client.post("/account/groups/naf/apply", data={"csrf_token": csrf_token(page)})
    assert response.status_code in (200, 302)
    root.search(f"ou=requests,{BASE_DN}", "(portalRequestType=group)", attributes=["uid"])
    assert root.entries, "the group application was not filed"
    assert "No request waits for you." in page_of(irkek, "/ir")


# -- the roster -------------------------------------------------------------------------------

def test_the_roster_filters_and_exports_csv_safely(member, irkek, root):
    page = page_of(irkek, "/ir/members?status=active&category=phd-student")
    assert "tiijima" in page and "PhD student" in page
    assert "tiijima" not in page_of(irkek, "/ir/members?status=expired")
    assert "tiijima" not in page_of(irkek, "/ir/members?category=student")
    assert irkek.get("/ir/members?status=nonsense").status_code == 400
    # A directory value that a spreadsheet would run as a formula.
    assert root.modify(DN, {"cn": [(ldap3.MODIFY_REPLACE, ['=HYPERLINK("http://x")'])]})
    response = irkek.get("/ir/members.csv?status=active")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    [row] = [r for r in rows if r["account"] == "tiijima"]
    assert row["name"] == "'=HYPERLINK(\"http://x\")"
    assert row["status"] == "active" and row["category"] == "phd-student"
    assert row["member_since"] == datetime.now(timezone.utc).date().isoformat()
    assert row["password_expires"]  # the initial password's
    empty = irkek.get("/ir/members.csv?status=suspended").get_data(as_text=True)
    assert "tiijima" not in empty


# -- ending a membership, undo, member-until ----------------------------------------------------

def test_end_a_membership_with_grace_then_undo(app, member, irkek, root, smtp):
    response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/end", reason="")
    assert response.status_code == 400
    assert "portalMembershipEndedAt" not in read_entry(root, DN).entry_attributes

    response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/end",
                         reason="Left KEK in March")
    assert response.status_code == 302
    entry = read_entry(root, DN)
    until = entry.portalMemberUntil.value
    grace = until - datetime.now(timezone.utc)
    assert timedelta(days=29, hours=23) < grace <= timedelta(days=30)
    assert entry.portalStatus.value == "active"
    [mail] = mails_to(smtp, CONTACT, "your membership ends")
    assert "Left KEK in March" in mail.get_body(("plain",)).get_content()
    [ended] = [e for e in events(root) if e["action"] == "member.ending"]
    assert ended["actor"] == "irkek" and ended["reason"] == "Left KEK in March" and ended["from"]
    assert "leaving" in page_of(irkek, "/ir/members")
    # Twice is refused, nothing changes.
    response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/end", reason="x")
    assert response.status_code == 409
    assert [e["action"] for e in events(root)].count("member.ending") == 1

    # Undo while in grace: open-ended again, as the category had it.
    response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/undo",
                         reason="Stays after all")
    assert response.status_code == 302
    entry = read_entry(root, DN)
    assert "portalMemberUntil" not in entry.entry_attributes
    assert "portalMembershipEndedAt" not in entry.entry_attributes
    assert mails_to(smtp, CONTACT, "membership goes on")
    assert events(root)[-1]["action"] == "member.ending-undone"


def test_an_ended_membership_expires_after_the_grace_period(app, member, irkek, root):
    post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/end", reason="Left")
    until = read_entry(root, DN).portalMemberUntil.value
    runner = app.test_cli_runner()
    early = (until - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "expired 0" in runner.invoke(args=["members", "expire", "--now", early]).output
    late = (until + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "expired 1" in runner.invoke(args=["members", "expire", "--now", late]).output
    entry = read_entry(root, DN)
    assert entry.portalStatus.value == "expired"
    assert "portalMembershipEndedAt" not in entry.entry_attributes
    # Nothing left to undo.
    response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/undo", reason="")
    assert response.status_code == 409


def test_an_earlier_member_until_is_kept_when_the_membership_ends(app, approve_student, irkek,
                                                                   root):
    soon = datetime.now(timezone.utc) + timedelta(days=3)
    assert root.modify(DN, {"portalMemberUntil": [(ldap3.MODIFY_REPLACE,
                                                   [soon.strftime("%Y%m%d%H%M%SZ")])]})
    post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/end", reason="Left")
    entry = read_entry(root, DN)
    assert entry.portalMemberUntil.value.strftime("%Y%m%d%H%M%S") == soon.strftime("%Y%m%d%H%M%S")
    post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/undo", reason="")
    assert read_entry(root, DN).portalMemberUntil.value.strftime("%Y%m%d") == \
        soon.strftime("%Y%m%d")


@pytest.fixture
def approve_student(client, register_and_verify):
    decide(client, register_and_verify(category="student"))
    return "tiijima"


def test_member_until_is_validated_and_audited(member, irkek, root):
    today = datetime.now(timezone.utc).date()
    for bad in ((today - timedelta(days=1)).isoformat(),
                (today + timedelta(days=366 * 10 + 1)).isoformat(), "not-a-date", ""):
        response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/until",
                             until=bad)
        assert response.status_code == 400, bad
    assert "portalMemberUntil" not in read_entry(root, DN).entry_attributes
    wanted = today + timedelta(days=400)
    response = post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/until",
                         until=wanted.isoformat(), reason="Contract extended")
    assert response.status_code == 302
    assert read_entry(root, DN).portalMemberUntil.value.date() == wanted
    last = events(root)[-1]
    assert last["action"] == "member.until-set" and last["previous"] == "open-ended"
    assert last["actor"] == "irkek" and last["reason"] == "Contract extended"


# -- the yearly roster confirmation --------------------------------------------------------------

def confirmation(client, institution: str = "") -> str:
    return page_of(client, "/ir/confirm" + (f"?institution={institution}" if institution else ""))


def test_roster_confirmation_in_one_pass_and_the_helpdesk_sees_who_is_overdue(
        app, member, irkek, root, smtp):
    helpdesk = log_in(app.test_client(), DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)
    rosters = page_of(helpdesk, "/ir/rosters")
    assert rosters.count("overdue") >= 3  # never confirmed: every institution
    assert "The roster of" in page_of(irkek, "/ir")

    page = confirmation(irkek)
    assert 'name="m-tiijima"' in page and 'name="m-irkek"' in page
    # Leaving without a reason: the form comes back, nothing is done.
    response = irkek.post("/ir/confirm", data={"csrf_token": csrf_token(page), "m-tiijima":
                                               "leaves", "m-irkek": "stays"})
    assert response.status_code == 400
    assert "portalMembershipEndedAt" not in read_entry(root, DN).entry_attributes
    response = irkek.post("/ir/confirm", data={
        "csrf_token": csrf_token(page), "m-tiijima": "leaves", "m-irkek": "stays",
        "reason": "Moved to industry"})
    assert response.status_code == 302
    assert "portalMembershipEndedAt" in read_entry(root, DN).entry_attributes
    assert mails_to(smtp, CONTACT, "your membership ends")
    kek = read_entry(root, f"portalInstitutionId=kek,{INSTITUTIONS}",
                     ROSTER_ATTRS + ("objectClass",))
    assert kek.portalRosterConfirmedBy.value == "irkek"
    [audit] = [json.loads(v) for v in kek.portalAuditEvent.values]
    assert audit["action"] == "institution.roster-confirmed" and audit["leaving"] == "tiijima"
    assert audit["members"] == "2" and audit["from"]
    assert "The roster of" not in page_of(irkek, "/ir")

    rows = {line.split("\t")[0]: line for line in app.test_cli_runner().invoke(
        args=["members", "roster-status"]).output.splitlines() if "\t" in line}
    assert "OVERDUE" in rows["desy"] and "OVERDUE" not in rows["kek"] and "irkek" in rows["kek"]
    later = (datetime.now(timezone.utc) + timedelta(days=366)).strftime("%Y-%m-%dT%H:%M:%SZ")
    output = app.test_cli_runner().invoke(args=["members", "roster-status", "--now", later]).output
    assert "3 of 3 institution(s) overdue" in output
    rosters = page_of(helpdesk, "/ir/rosters")
    assert rosters.index("desy") < rosters.index("kek")  # overdue first
    assert irkek.get("/ir/rosters").status_code == 403


# -- access control: everyone but the institution's IR ------------------------------------------

GETS = ["/ir", "/ir/members", "/ir/members.csv", "/ir/members/tiijima", "/ir/confirm",
        "/ir/requests/tiijima", "/ir/members?institution=kek", "/ir/confirm?institution=kek",
        "/ir/members.csv?institution=kek", "/ir/requests/hmori"]
POSTS = {"/ir/members/tiijima/end": {"reason": "Gone"},
         "/ir/members/tiijima/undo": {"reason": ""},
         "/ir/members/tiijima/until": {"until": "2030-01-01"},
         "/ir/confirm": {"institution": "kek", "m-tiijima": "leaves", "reason": "Gone"}}


def snapshot(root) -> tuple:
    entry = read_entry(root, DN, ("portalMemberUntil", "portalAuditEvent",
                                  "portalMembershipEndedAt"))
    kek = read_entry(root, f"portalInstitutionId=kek,{INSTITUTIONS}", ROSTER_ATTRS)
    return (entry.entry_to_json(), kek.entry_to_json())


def refused(response) -> bool:
    location = response.headers.get("Location", "")
    return response.status_code in (400, 403) or (
        response.status_code == 302 and location.endswith(("/login", "/account/conditions")))


@pytest.fixture
def naf_manager(app, client, member, root, console_state):
    """A plain KEK member who manages the NAF group (no IR)."""
    from helpers import NEW_PASSWORD, change_password
    log_in(client, "tiijima", STRONG_PASSWORD)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert root.modify(NAF_MANAGERS, {"member": [(ldap3.MODIFY_ADD, [DN])],
                                      "memberUid": [(ldap3.MODIFY_ADD, ["tiijima"])]})
    return log_in(app.test_client(), "tiijima", NEW_PASSWORD)


def test_nobody_but_the_institutions_ir_gets_anything(app, register_and_verify, irkek, irdesy,
                                                     naf_manager, root):
    # A request waits for irkek, so that /ir/requests/... has something to leak.
    register_and_verify(given_name="Hana", family_name="Mori", account_name="hmori",
                        email="hana.mori@kek.example")
    assert "hmori" in page_of(irkek, "/ir")
    anonymous = app.test_client()
    before = snapshot(root)
    for who, client in (("anonymous", anonymous), ("naf manager, plain member", naf_manager),
                        ("IR of another institution", irdesy)):
        for path in GETS:
            response = client.get(path)
            body = response.get_data(as_text=True)
            if who == "IR of another institution" and response.status_code == 200:
                # Their own console, with nothing of KEK's people in it.
                assert path in ("/ir", "/ir/members", "/ir/members.csv", "/ir/confirm"), path
                assert "tiijima" not in body and "Mori" not in body, (who, path)
            else:
                assert refused(response), (who, path, response.status_code)
                assert "Iijima" not in body and "Mori" not in body, (who, path)
        for path, data in POSTS.items():
            page = client.get("/account" if client is not anonymous else "/login",
                              follow_redirects=True).get_data(as_text=True)
            token = csrf_token(page)
            response = client.post(path, data={"csrf_token": token, **data})
            assert refused(response), (who, path, response.status_code)
    # The foreign IR with its own institution named and a KEK account in the form.
    page = irdesy.get("/ir/confirm").get_data(as_text=True)
    response = irdesy.post("/ir/confirm", data={"csrf_token": csrf_token(page),
                                                "institution": "desy", "m-tiijima": "leaves",
                                                "m-irdesy": "stays", "reason": "Gone"})
    assert response.status_code == 403
    # The helpdesk console page is the helpdesk's only.
    for client in (anonymous, naf_manager, irdesy):
        assert refused(client.get("/ir/rosters"))
    assert snapshot(root) == before


def test_the_own_ir_without_or_with_a_foreign_csrf_token_changes_nothing(app, member, irkek,
                                                                         irdesy, root):
    before = snapshot(root)
    foreign = csrf_token(irdesy.get("/ir").get_data(as_text=True))
    for path, data in POSTS.items():
        assert irkek.post(path, data=data).status_code == 400, path
        response = irkek.post(path, data={"csrf_token": foreign, **data})
        assert response.status_code == 400, path
    assert snapshot(root) == before


# -- the roster at size, and who may read what the console writes ------------------------------

def add_people(root, count: int, institution: str = "kek") -> None:
    for n in range(count):
        uid = f"pg{n:03d}"
        assert root.add(f"uid={uid},{PEOPLE}", ["inetOrgPerson", "portalMember"], {
            "uid": uid, "cn": f"Paged Person {n:03d}", "sn": "Person",
            "portalStatus": "active" if n % 10 else "expired",
            "portalHomeInstitution": institution,
            "portalCategory": "student" if n % 2 else "phd-student"})


def test_the_roster_pages_through_a_large_institution(irkek, irdesy, root):
    add_people(root, 230)
    first = page_of(irkek, "/ir/members")
    # The IR first (the directory's order), then 99 of the others.
    assert first.count('href="/ir/members/') == 100 and "Next page" in first
    assert "Previous page" not in first
    third = page_of(irkek, "/ir/members?page=3")
    # 230 people and the IR: 31 on the third page, no fourth.
    assert third.count('href="/ir/members/') == 31 and "Next page" not in third
    # slapd filters: 230 / 2 students, a tenth of them expired.
    students = irkek.get("/ir/members.csv?category=student&status=active").get_data(as_text=True)
    # Odd numbers are never a multiple of ten: every student is active.
    assert len(students.strip().splitlines()) == 1 + 115
    expired = irkek.get("/ir/members.csv?status=expired").get_data(as_text=True)
    assert len(expired.strip().splitlines()) == 1 + 23
    assert "pg0" not in page_of(irdesy, "/ir/members")
    assert irkek.get("/ir/members?page=x").status_code == 400


def test_what_the_console_writes_is_the_portals_only(slapd, member, irkek, root):
    post_form(irkek, "/ir/members/tiijima", "/ir/members/tiijima/end", reason="Left")
    page = confirmation(irkek)
    irkek.post("/ir/confirm", data={"csrf_token": csrf_token(page), "m-tiijima": "stays",
                                    "m-irkek": "stays"})
    kek = f"portalInstitutionId=kek,{INSTITUTIONS}"
    assert read_entry(root, kek, ("portalRosterConfirmedAt",)).portalRosterConfirmedAt.value
    conn = ldap3.Connection(ldap3.Server(slapd.url), DN, STRONG_PASSWORD, auto_bind=True)
    try:
        conn.search(kek, "(objectClass=*)", ldap3.BASE, attributes=list(ROSTER_ATTRS) + ["o"])
        [entry] = conn.entries
        readable = {k for k, v in entry.entry_attributes_as_dict.items() if v}
        assert readable == {"o"}
        conn.search(PEOPLE, "(portalMembershipEndedAt=*)", attributes=["uid"])
        assert conn.entries == []
        conn.search(DN, "(objectClass=*)", ldap3.BASE, attributes=[
            "portalMembershipEndedAt", "portalPreviousMemberUntil", "uid"])
        assert {k for k, v in conn.entries[0].entry_attributes_as_dict.items() if v} == {"uid"}
    finally:
        conn.unbind()
