"""The helpdesk console: search by any name (folded as the duplicate check
folds), the entry pages with history and LDIF (no secrets), actions on
behalf with reasons, the approval preview, and who may reach any of it."""
from __future__ import annotations

import ldap3
import pytest

from app.devstack.slapd import DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD, DEMO_IR_PASSWORD
from helpers import (
    BASE_DN,
    NEW_PASSWORD,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    binds,
    change_password,
    csrf_token,
    decide,
    links_in,
    local_path,
    login,
    mails_to,
    post_registration,
    read_entry,
    root_connection,
)

MULLER = {"given_name": "Jürgen", "family_name": "Müller", "account_name": "jmuller",
          "email": "juergen.mueller@desy.example", "institution": "desy"}
KEK = f"portalInstitutionId=kek,ou=institutions,{BASE_DN}"


def accept_conditions(client) -> None:
    page = client.get("/account/conditions").get_data(as_text=True)
    client.post("/account/conditions", data={"csrf_token": csrf_token(page),
                                             "accept_conditions": "y"})


def logged_in(app, account: str, password: str):
    """A client logged in as ``account``, conditions accepted."""
    client = app.test_client()
    response = login(client, account, password)
    assert response.status_code == 302, response.get_data(as_text=True)
    accept_conditions(client)
    assert client.get("/account").status_code == 200
    return client


DEMO_ACCOUNTS = (DEMO_HELPDESK, "irkek", "irdesy", "irinfn")
# What logging in and accepting the conditions change on a demo account.
SESSION_ATTRIBUTES = ("portalConditionsVersion", "portalAuditEvent", "portalSessionEpoch")


@pytest.fixture(autouse=True)
def demo_accounts_restored(slapd, root):
    """The demo accounts this module logs in with are as before afterwards
    (later modules expect them never to have accepted the conditions)."""
    before = {uid: read_entry(root, f"uid={uid},{PEOPLE}", list(SESSION_ATTRIBUTES))
              for uid in DEMO_ACCOUNTS}
    yield
    conn = root_connection(slapd)
    for uid, entry in before.items():
        conn.modify(f"uid={uid},{PEOPLE}", {
            name: [(ldap3.MODIFY_REPLACE, list(entry[name].values)
                    if name in entry.entry_attributes else [])]
            for name in SESSION_ATTRIBUTES})
    conn.unbind()


@pytest.fixture
def keep(slapd, root):
    """``keep(dn, attribute)``: the attribute's values are put back after the
    test (the root fixture removes added entries, not changed values)."""
    kept = []

    def run(dn: str, attribute: str) -> None:
        kept.append((dn, attribute, list(read_entry(root, dn, [attribute])[attribute].values)))
    yield run
    conn = root_connection(slapd)
    for dn, attribute, values in kept:
        conn.modify(dn, {attribute: [(ldap3.MODIFY_REPLACE, values)]})
    conn.unbind()


@pytest.fixture
def helpdesk(app):
    return logged_in(app, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)


@pytest.fixture
def muller(client, register_and_verify):
    """An approved member Jürgen Müller (jmuller, DESY), initial password STRONG_PASSWORD."""
    response = decide(client, register_and_verify(**MULLER))
    assert response.status_code == 200
    return "jmuller"


def post_action(client, path: str, **data):
    page = client.get(path.rsplit("/", 1)[0]).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(page), **data})


# -- search -------------------------------------------------------------------------------------

@pytest.mark.parametrize("query", ["Juergen Mueller", "Jurgen Muller", "MÜLLER", "mueller",
                                   "Mueller Juergen", "jmul", "juergen.mueller@desy.example",
                                   "jurgen.muller@example.org"])
def test_the_helpdesk_finds_a_member_by_any_name_account_or_address(helpdesk, muller, query):
    page = helpdesk.get("/helpdesk", query_string={"q": query}).get_data(as_text=True)
    assert 'href="/helpdesk/people/jmuller"' in page, query


def test_search_finds_requests_and_filters_by_status_and_institution(helpdesk, muller,
                                                                     register_and_verify):
    register_and_verify()  # Toru Iijima at KEK, waiting for approval
    page = helpdesk.get("/helpdesk", query_string={"q": "iijima"}).get_data(as_text=True)
    assert 'href="/helpdesk/requests/tiijima"' in page
    page = helpdesk.get("/helpdesk", query_string={
        "status": "pending-approval"}).get_data(as_text=True)
    assert 'href="/helpdesk/requests/tiijima"' in page and "/helpdesk/people/jmuller" not in page
    page = helpdesk.get("/helpdesk", query_string={
        "q": "muller", "institution": "kek"}).get_data(as_text=True)
    assert "/helpdesk/people/jmuller" not in page
    page = helpdesk.get("/helpdesk", query_string={
        "q": "muller", "institution": "desy", "status": "active"}).get_data(as_text=True)
    assert "/helpdesk/people/jmuller" in page
    # The institution named in the text: its people and requests.
    page = helpdesk.get("/helpdesk", query_string={"q": "KEK"}).get_data(as_text=True)
    assert 'href="/helpdesk/requests/tiijima"' in page and "/helpdesk/people/irkek" in page
    assert "/helpdesk/people/jmuller" not in page


@pytest.mark.parametrize("query", ["*", "*)(uid=*", "jmuller)(|(uid=*", "\\2a", "a", "<b>x</b>"])
def test_search_values_are_escaped_and_nothing_leaks(helpdesk, muller, query):
    response = helpdesk.get("/helpdesk", query_string={"q": query})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "/helpdesk/people/jmuller" not in page and "/helpdesk/people/irkek" not in page
    assert "<b>x</b>" not in page


def test_too_many_results_say_refine(helpdesk, root):
    for n in range(55):
        assert root.add(f"uid=tanaka{n:02d},{PEOPLE}", ["inetOrgPerson"], {
            "cn": f"Kenji Tanaka{n:02d}", "sn": "Tanaka", "givenName": "Kenji"}), root.result
    page = helpdesk.get("/helpdesk", query_string={"q": "tanaka"}).get_data(as_text=True)
    assert 'id="more-results"' in page
    assert page.count('href="/helpdesk/people/tanaka') == 50


# -- the entry pages ---------------------------------------------------------------------------

def test_person_page_shows_record_history_and_ldif_without_secrets(app, helpdesk, muller, root,
                                                                   client):
    # A reset link's nonce and a session epoch are stored with the member.
    assert root.modify(f"uid=jmuller,{PEOPLE}", {
        "portalResetNonce": [(ldap3.MODIFY_REPLACE, ["f00dfeedcafe0123"])],
        "portalSessionEpoch": [(ldap3.MODIFY_REPLACE, ["epochsecret42"])]}), root.result
    page = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    assert "juergen.mueller@desy.example" in page and "Müller" in page
    assert "Account created: membership approved" in page  # the history in words
    assert "dn: uid=jmuller,ou=people,dc=example,dc=org" in page
    assert "portalStatus: active" in page and "portalAuditEvent" in page
    for secret in ("userPassword", "pwdHistory", "portalResetNonce", "portalSessionEpoch",
                   "portalPasswordHash", "$argon2", "f00dfeedcafe0123", "epochsecret42"):
        assert secret not in page, secret


def test_request_page_shows_no_password_hash_and_previews_the_member_entry(
        app, helpdesk, register_and_verify, root, client):
    review = register_and_verify()
    stored = read_entry(root, f"uid=tiijima,{REQUESTS}", ["portalPasswordHash"])
    assert stored.portalPasswordHash.value
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert "portalPasswordHash" not in page and "$argon2" not in page
    assert "Registration submitted" in page and "Address confirmed" in page
    preview = page.split('id="preview"', 1)[1].split("</pre>", 1)[0]
    assert "dn: uid=tiijima,ou=people,dc=example,dc=org" in preview
    # The preview is what approval writes: every attribute of the new entry
    # (but the password, times and the uidNumber taken then) is in it.
    decide(client, review)
    created = read_entry(root, f"uid=tiijima,{PEOPLE}", ["*"])
    for name in created.entry_attributes:
        if name in ("userPassword",):
            assert name not in preview
            continue
        assert f"\n{name}:" in preview, name
        if name in ("uid", "mail", "portalContactMail", "portalHomeInstitution",
                    "portalCategory", "gidNumber", "homeDirectory", "portalStatus"):
            assert f"\n{name}: {created[name].value}\n" in preview, name


# -- acting on behalf --------------------------------------------------------------------------

def test_suspend_and_unsuspend_with_reasons_in_the_history(helpdesk, muller, slapd, root):
    assert binds(slapd, f"uid=jmuller,{PEOPLE}", STRONG_PASSWORD)
    response = post_action(helpdesk, "/helpdesk/people/jmuller/suspend", reason="")
    assert response.status_code == 400
    assert read_entry(root, f"uid=jmuller,{PEOPLE}", ["portalStatus"]).portalStatus == "active"
    response = post_action(helpdesk, "/helpdesk/people/jmuller/suspend",
                           reason="Shared the password with a student")
    assert response.status_code == 302
    assert read_entry(root, f"uid=jmuller,{PEOPLE}",
                      ["portalStatus"]).portalStatus == "suspended"
    assert not binds(slapd, f"uid=jmuller,{PEOPLE}", STRONG_PASSWORD)
    response = post_action(helpdesk, "/helpdesk/people/jmuller/unsuspend",
                           reason="Password changed, talked to the IR")
    assert response.status_code == 302
    assert binds(slapd, f"uid=jmuller,{PEOPLE}", STRONG_PASSWORD)
    page = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    history = page.split('id="history"', 1)[1].split("</table>", 1)[0]
    assert "Membership suspended" in history and "Shared the password with a student" in history
    assert "Suspension lifted" in history and "Password changed, talked to the IR" in history
    assert history.count("Hanna Berg") == 2  # the demo helpdesk member is the actor
    # Twice is refused, nothing changes.
    response = post_action(helpdesk, "/helpdesk/people/jmuller/unsuspend", reason="again")
    assert response.status_code == 409


def test_end_undo_and_extend_a_membership_on_behalf(helpdesk, muller, root, smtp):
    dn = f"uid=jmuller,{PEOPLE}"
    attributes = ["portalMemberUntil", "portalMembershipEndedAt", "portalStatus"]
    assert post_action(helpdesk, "/helpdesk/people/jmuller/end", reason="").status_code == 400
    assert not read_entry(root, dn, attributes).portalMembershipEndedAt.values
    before = len(smtp.messages)
    response = post_action(helpdesk, "/helpdesk/people/jmuller/end",
                           reason="Left DESY for industry")
    assert response.status_code == 302
    entry = read_entry(root, dn, attributes)
    assert entry.portalMembershipEndedAt.value and entry.portalMemberUntil.value
    assert entry.portalStatus.value == "active"  # access until the grace period ends
    assert [m for m in smtp.messages[before:] if "your membership ends" in m["Subject"]]
    page = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    assert "Undo: the membership goes on" in page and "Left DESY for industry" in page
    assert post_action(helpdesk, "/helpdesk/people/jmuller/undo-end",
                       reason="Stays after all").status_code == 302
    entry = read_entry(root, dn, attributes)
    assert not entry.portalMembershipEndedAt.values and not entry.portalMemberUntil.values
    assert post_action(helpdesk, "/helpdesk/people/jmuller/undo-end",
                       reason="again").status_code == 409
    assert post_action(helpdesk, "/helpdesk/people/jmuller/member-until", until="2001-01-01",
                       reason="typo").status_code == 400
    assert not read_entry(root, dn, attributes).portalMemberUntil.values
    assert post_action(helpdesk, "/helpdesk/people/jmuller/member-until", until="2030-06-30",
                       reason="Contract until June 2030").status_code == 302
    assert read_entry(root, dn, attributes).portalMemberUntil.value.date().isoformat() == \
        "2030-06-30"


def test_change_category_and_institution_and_unlock(helpdesk, muller, root, slapd):
    dn = f"uid=jmuller,{PEOPLE}"
    assert post_action(helpdesk, "/helpdesk/people/jmuller/category", category="student",
                       reason="Form B").status_code == 302
    assert read_entry(root, dn, ["portalCategory"]).portalCategory == "student"
    assert post_action(helpdesk, "/helpdesk/people/jmuller/institution", institution="kek",
                       reason="Moved in May").status_code == 302
    assert read_entry(root, dn, ["portalHomeInstitution"]).portalHomeInstitution == "kek"
    assert post_action(helpdesk, "/helpdesk/people/jmuller/institution",
                       institution="nowhere", reason="x").status_code == 409
    # An active member's account locked in the directory is unlocked.
    assert root.modify(dn, {"pwdAccountLockedTime": [(ldap3.MODIFY_REPLACE,
                                                      ["000001010000Z"])]}), root.result
    assert not binds(slapd, dn, STRONG_PASSWORD)
    assert post_action(helpdesk, "/helpdesk/people/jmuller/unlock",
                       reason="Locked by mistake").status_code == 302
    assert binds(slapd, dn, STRONG_PASSWORD)
    page = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    for words in ("Category changed", "Institution changed", "Account unlocked", "Form B",
                  "Moved in May", "Locked by mistake"):
        assert words in page, words


def test_a_stuck_request_is_approved_by_the_helpdesk_as_last_resort(
        helpdesk, client, root, smtp, keep):
    keep(KEK, "portalRepresentative")
    # KEK has no representative: the request stalls.
    assert root.modify(KEK, {"portalRepresentative": [(ldap3.MODIFY_DELETE, [])]}), root.result
    assert post_registration(client).status_code == 302
    verify = local_path(links_in(mails_to(smtp, "toru.iijima@kek.example")[-1])[0])
    page = client.get(verify).get_data(as_text=True)
    client.post(verify, data={"csrf_token": csrf_token(page)})
    front = helpdesk.get("/helpdesk").get_data(as_text=True)
    assert 'id="without-ir"' in front and "KEK" in front.split('id="without-ir"')[1][:400]
    response = post_action(helpdesk, "/helpdesk/requests/tiijima/approve",
                           reason="IR on leave; the spokesperson confirmed by phone")
    assert response.status_code == 302, response.get_data(as_text=True)
    assert read_entry(root, f"uid=tiijima,{PEOPLE}", ["portalStatus"]).portalStatus == "active"
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert "Decided by the helpdesk as the approver of last resort" in page
    assert "IR on leave; the spokesperson confirmed by phone" in page


def test_a_request_that_is_not_stuck_is_left_to_its_approvers(helpdesk, register_and_verify,
                                                              root):
    register_and_verify()
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert 'id="no-decision"' in page
    response = post_action(helpdesk, "/helpdesk/requests/tiijima/approve", reason="hurry")
    assert response.status_code == 409
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None
    # Fresh links to the IR, and a rejection with a reason, are the helpdesk's to give.
    assert post_action(helpdesk, "/helpdesk/requests/tiijima/resend",
                       reason="IR lost the mail").status_code == 302
    assert post_action(helpdesk, "/helpdesk/requests/tiijima/reject",
                       reason="Not a member of KEK").status_code == 302
    stored = read_entry(root, f"uid=tiijima,{REQUESTS}", ["portalRequestStatus"])
    assert stored.portalRequestStatus == "rejected"


# -- who may reach it --------------------------------------------------------------------------

GETS = ["/helpdesk", "/helpdesk?q=muller", "/helpdesk/people/jmuller",
        "/helpdesk/requests/tiijima", "/helpdesk/requests/new", "/helpdesk/institutions",
        "/helpdesk/institutions/kek", "/helpdesk/members.csv",
        "/helpdesk/members.csv?institution=desy"]
POSTS = [("/helpdesk/people/jmuller/suspend", {"reason": "x"}),
         ("/helpdesk/people/jmuller/unlock", {"reason": "x"}),
         ("/helpdesk/people/jmuller/category", {"reason": "x", "category": "student"}),
         ("/helpdesk/people/jmuller/institution", {"reason": "x", "institution": "kek"}),
         ("/helpdesk/requests/tiijima/approve", {"reason": "x"}),
         ("/helpdesk/requests/tiijima/reject", {"reason": "x"}),
         ("/helpdesk/requests/tiijima/resend", {"reason": "x"}),
         ("/helpdesk/requests/tiijima/release", {"reason": "x"}),
         ("/helpdesk/people/jmuller/initial-link", {"reason": "x"}),
         ("/helpdesk/institutions", {"institution_id": "evil", "name": "Evil", "reason": "x"}),
         ("/helpdesk/institutions/import", {"lines": "evil,Evil,XX", "reason": "x",
                                            "action": "import"}),
         ("/helpdesk/institutions/kek/edit", {"name": "Evil", "reason": "x"}),
         ("/helpdesk/institutions/kek/add-representative", {"account_name": "jmuller",
                                                            "reason": "x"}),
         ("/helpdesk/institutions/kek/remove-representative", {"account_name": "irkek",
                                                               "reason": "x"}),
         ("/helpdesk/requests/new", {"given_name": "Eve", "family_name": "Spy",
                                     "account_name": "evespy", "email": "eve@kek.example",
                                     "institution": "kek", "category": "phd-student",
                                     "verified_by": "x"})]


def _state(root) -> tuple:
    person = read_entry(root, f"uid=jmuller,{PEOPLE}", ["portalStatus", "portalCategory",
                                                        "portalHomeInstitution",
                                                        "portalAuditEvent"])
    request = read_entry(root, f"uid=tiijima,{REQUESTS}", ["portalRequestStatus",
                                                           "portalAuditEvent"])
    kek = read_entry(root, KEK, ["o", "portalRepresentative", "portalAuditEvent"])
    return (str(kek.o), sorted(kek.portalRepresentative.values), len(kek.portalAuditEvent),
            read_entry(root, f"portalInstitutionId=evil,ou=institutions,{BASE_DN}") is None,
            str(person.portalStatus), str(person.portalCategory),
            str(person.portalHomeInstitution), len(person.portalAuditEvent),
            str(request.portalRequestStatus), len(request.portalAuditEvent),
            read_entry(root, f"uid=evespy,{REQUESTS}") is None)


def test_nobody_but_the_helpdesk_reaches_any_url_or_action(app, muller, register_and_verify,
                                                           root, client, keep):
    keep(f"cn=naf-managers,ou=groups,{BASE_DN}", "member")
    register_and_verify()  # tiijima waits for KEK's approval
    # A plain member (password changed, conditions accepted) who also
    # manages an extra group, and the IR of another institution.
    plain = app.test_client()
    login(plain, "jmuller", STRONG_PASSWORD)
    assert change_password(plain, STRONG_PASSWORD, NEW_PASSWORD).status_code == 302
    plain = logged_in(app, "jmuller", NEW_PASSWORD)
    manager = logged_in(app, "irinfn", DEMO_IR_PASSWORD)
    assert root.modify(f"cn=naf-managers,ou=groups,{BASE_DN}", {"member": [
        (ldap3.MODIFY_ADD, [f"uid=irinfn,{PEOPLE}"])]}), root.result
    other_ir = logged_in(app, "irdesy", DEMO_IR_PASSWORD)  # tiijima is KEK's
    before = _state(root)
    anonymous = app.test_client()
    token = csrf_token(anonymous.get("/login").get_data(as_text=True))
    for path in GETS:
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
        for who in (plain, manager, other_ir):
            assert who.get(path).status_code == 403, path
    for path, data in POSTS:
        response = anonymous.post(path, data={"csrf_token": token, **data})
        assert response.status_code in (302, 400), path
        if response.status_code == 302:
            assert "/login" in response.headers["Location"], path
        for who in (plain, manager, other_ir):
            own = csrf_token(who.get("/account").get_data(as_text=True))
            assert who.post(path, data={"csrf_token": own, **data}).status_code == 403, path
    assert _state(root) == before


def test_the_helpdesk_without_or_with_a_foreign_csrf_token_changes_nothing(
        app, helpdesk, muller, register_and_verify, root):
    register_and_verify()
    foreign = csrf_token(app.test_client().get("/login").get_data(as_text=True))
    before = _state(root)
    for path, data in POSTS:
        assert helpdesk.post(path, data=data).status_code == 400, path
        assert helpdesk.post(path, data={"csrf_token": foreign, **data}).status_code == 400, path
    assert _state(root) == before


def test_a_removed_helpdesk_member_loses_the_console_at_once(helpdesk, root, keep):
    keep(f"cn=helpdesk,ou=groups,{BASE_DN}", "member")
    assert helpdesk.get("/helpdesk").status_code == 200
    assert root.modify(f"cn=helpdesk,ou=groups,{BASE_DN}", {"member": [
        (ldap3.MODIFY_DELETE, [f"uid={DEMO_HELPDESK},{PEOPLE}"])]}), root.result
    assert helpdesk.get("/helpdesk").status_code == 403


def test_the_header_links_the_console_for_the_helpdesk_only(app, helpdesk):
    assert 'href="/helpdesk"' in helpdesk.get("/account").get_data(as_text=True)
    ir = logged_in(app, "irkek", DEMO_IR_PASSWORD)
    assert 'href="/helpdesk"' not in ir.get("/account").get_data(as_text=True)


# -- languages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("language, words", [("de", "Personen und Anträge suchen"),
                                             ("ja", "人と申請を検索")])
def test_console_pages_in_german_and_japanese(helpdesk, muller, language, words):
    helpdesk.set_cookie("lang", language)
    page = helpdesk.get("/helpdesk", query_string={"q": "mueller"}).get_data(as_text=True)
    assert words in page and f'lang="{language}"' in page
    person = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    assert "Suspend the member" not in person
    paper = helpdesk.get("/helpdesk/requests/new").get_data(as_text=True)
    assert "Signed form checked by" not in paper



# -- institutions, the member list, requests left behind ---------------------------------------

@pytest.fixture
def new_institution(slapd):
    """The institution ihep a test creates is removed afterwards."""
    yield f"portalInstitutionId=ihep,ou=institutions,{BASE_DN}"
    conn = root_connection(slapd)
    try:
        conn.delete(f"portalInstitutionId=ihep,ou=institutions,{BASE_DN}")
    except ldap3.core.exceptions.LDAPNoSuchObjectResult:
        pass
    conn.unbind()


def test_institutions_are_created_edited_and_given_representatives(app, helpdesk, muller,
                                                                   root, keep, new_institution,
                                                                   slapd):
    keep(f"portalInstitutionId=desy,ou=institutions,{BASE_DN}", "portalRepresentative")
    page = helpdesk.get("/helpdesk/institutions").get_data(as_text=True)
    response = helpdesk.post("/helpdesk/institutions", data={
        "csrf_token": csrf_token(page), "institution_id": "ihep", "name": "IHEP Beijing",
        "country": "cn", "reason": "Joined in 2027"})
    assert response.status_code == 302
    dn = f"portalInstitutionId=ihep,ou=institutions,{BASE_DN}"
    stored = read_entry(root, dn, ["o", "c", "portalAuditEvent"])
    assert stored.o == "IHEP Beijing" and stored.c == "CN" and stored.portalAuditEvent
    # Members and services read the institution, never its audit records.
    as_member = ldap3.Connection(ldap3.Server(slapd.url), f"uid=jmuller,{PEOPLE}",
                                 STRONG_PASSWORD, auto_bind=True)
    as_member.search(dn, "(objectClass=*)", ldap3.BASE, attributes=["*"])
    assert as_member.entries[0].o == "IHEP Beijing"
    assert "portalAuditEvent" not in as_member.entries[0].entry_attributes
    assert not as_member.search(dn, "(portalAuditEvent=*)", ldap3.BASE)
    as_member.unbind()
    # At once in this process's institution lists (the cache is emptied).
    assert "IHEP Beijing" in helpdesk.get("/register").get_data(as_text=True)
    front = helpdesk.get("/helpdesk").get_data(as_text=True)
    assert "/helpdesk/institutions/ihep" in front.split('id="without-ir"')[1]
    assert post_action(helpdesk, "/helpdesk/institutions/ihep/edit", name="IHEP",
                       country="CN", reason="Short name").status_code == 302
    assert read_entry(root, dn, ["o"]).o == "IHEP"
    assert post_action(helpdesk, "/helpdesk/institutions/ihep/add-representative",
                       account_name="jmuller", reason="Appointed by the board").status_code == 302
    assert roles_of(app, "jmuller").represents("ihep")
    assert post_action(helpdesk, "/helpdesk/institutions/ihep/add-representative",
                       account_name="nosuch", reason="x").status_code == 409
    page = helpdesk.get("/helpdesk/institutions/ihep").get_data(as_text=True)
    assert "Representative added" in page and "Appointed by the board" in page
    assert post_action(helpdesk, "/helpdesk/institutions/ihep/remove-representative",
                       account_name="jmuller", reason="Term ended").status_code == 302
    assert not roles_of(app, "jmuller").is_representative
    person = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    assert "Named institute representative" in person and "Term ended" in person
    # The same id twice is refused.
    page = helpdesk.get("/helpdesk/institutions").get_data(as_text=True)
    assert helpdesk.post("/helpdesk/institutions", data={
        "csrf_token": csrf_token(page), "institution_id": "ihep", "name": "Again",
        "country": "", "reason": "x"}).status_code == 409


def test_deputies_are_named_and_removed_with_reasons(helpdesk, muller, root):
    kek = f"portalInstitutionId=kek,ou=institutions,{BASE_DN}"
    assert post_action(helpdesk, "/helpdesk/institutions/kek/add-deputy", account_name="jmuller",
                       reason="").status_code == 400
    assert post_action(helpdesk, "/helpdesk/institutions/kek/add-deputy", account_name="nosuch",
                       reason="x").status_code == 409
    assert not read_entry(root, kek, ["portalDeputy"]).portalDeputy.values
    assert post_action(helpdesk, "/helpdesk/institutions/kek/add-deputy", account_name="jmuller",
                       reason="Stands in for Toru Sato").status_code == 302
    stored = read_entry(root, kek, ["portalDeputy", "objectClass"])
    assert stored.portalDeputy.values == [f"uid=jmuller,{PEOPLE}"]
    assert "portalFollowUp" in stored.objectClass.values
    page = helpdesk.get("/helpdesk/institutions/kek").get_data(as_text=True)
    assert "Deputy added" in page and "Stands in for Toru Sato" in page
    assert "jmuller" in page.split('id="deputies"')[1].split("</ul>")[0]
    assert post_action(helpdesk, "/helpdesk/institutions/kek/remove-deputy",
                       account_name="jmuller", reason="Back from leave").status_code == 302
    assert not read_entry(root, kek, ["portalDeputy"]).portalDeputy.values
    assert post_action(helpdesk, "/helpdesk/institutions/kek/remove-deputy",
                       account_name="jmuller", reason="again").status_code == 409
    person = helpdesk.get("/helpdesk/people/jmuller").get_data(as_text=True)
    assert "Named deputy of the institute representatives" in person
    assert "No longer deputy of the institute representatives" in person


def roles_of(app, account):
    with app.app_context():
        return app.extensions["portal"].roles.roles_of(account)


def test_csv_import_reports_each_line_before_writing(helpdesk, root, keep, new_institution):
    keep(KEK, "o")
    page = helpdesk.get("/helpdesk/institutions").get_data(as_text=True)
    lines = ("id,name,country\nihep,IHEP Beijing,CN\nkek,KEK Tsukuba,JP\n"
             "Bad Id,Somewhere,XX\nihep,Again,CN\nonlyone\n")
    response = helpdesk.post("/helpdesk/institutions/import", data={
        "csrf_token": csrf_token(page), "lines": lines, "reason": "", "action": "check"})
    assert response.status_code == 200
    report = response.get_data(as_text=True).split('id="report"', 1)[1]
    assert "create" in report and "update" in report
    assert "lowercase letters" in report and "earlier line" in report
    assert "Expected: id, name, country." in report
    assert read_entry(root, f"portalInstitutionId=ihep,ou=institutions,{BASE_DN}") is None
    # With a broken line nothing is written, even when asked to import.
    response = helpdesk.post("/helpdesk/institutions/import", data={
        "csrf_token": csrf_token(page), "lines": lines, "reason": "Board list",
        "action": "import"})
    assert response.status_code == 409
    assert read_entry(root, f"portalInstitutionId=ihep,ou=institutions,{BASE_DN}") is None
    clean = "ihep,IHEP Beijing,CN\nkek,High Energy Accelerator Research Organization,JP\n"
    response = helpdesk.post("/helpdesk/institutions/import", data={
        "csrf_token": csrf_token(page), "lines": clean, "reason": "Board list",
        "action": "import"})
    assert response.status_code == 200
    assert read_entry(root, f"portalInstitutionId=ihep,ou=institutions,{BASE_DN}", ["o"]).o \
        == "IHEP Beijing"
    kek = read_entry(root, KEK, ["o"])
    assert kek.o == "High Energy Accelerator Research Organization"


def test_the_member_list_is_exported_with_filters_and_safe_for_spreadsheets(
        helpdesk, client, register_and_verify):
    decide(client, register_and_verify(**MULLER))
    decide(client, register_and_verify(given_name="Toru", family_name="Iijima",
                                       account_name="tiijima"))
    import csv
    import io
    # A name a spreadsheet would run as a formula (names cannot start so; an
    # operator could still write one into the directory).
    response = helpdesk.get("/helpdesk/members.csv", query_string={"institution": "desy"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0][0] == "account_name"
    accounts = {r[0] for r in rows[1:]}
    assert "jmuller" in accounts and "tiijima" not in accounts and "irdesy" in accounts
    from app.services.helpdesk import safe_cell
    assert safe_cell("=HYPERLINK(\"x\")") == "'=HYPERLINK(\"x\")"
    assert safe_cell("+1") == "'+1" and safe_cell("@x") == "'@x" and safe_cell("Anna") == "Anna"


def test_the_export_neutralises_formulas_stored_in_the_directory(helpdesk, muller, root):
    assert root.modify(f"uid=jmuller,{PEOPLE}", {
        "sn": [(ldap3.MODIFY_REPLACE, ["=cmd|' /C calc'!A0"])]}), root.result
    text = helpdesk.get("/helpdesk/members.csv").get_data(as_text=True)
    assert "'=cmd|' /C calc'!A0" in text and ",=cmd" not in text


def test_an_abandoned_request_is_released_and_a_confirmation_resent(helpdesk, client, smtp,
                                                                    root):
    assert post_registration(client).status_code == 302  # never confirmed
    before = len(mails_to(smtp, "toru.iijima@kek.example"))
    assert post_action(helpdesk, "/helpdesk/requests/tiijima/resend",
                       reason="Applicant phoned: mail lost").status_code == 302
    assert len(mails_to(smtp, "toru.iijima@kek.example")) == before + 1
    assert post_action(helpdesk, "/helpdesk/requests/tiijima/release",
                       reason="Applicant gave up").status_code == 302
    stored = read_entry(root, f"uid=tiijima,{REQUESTS}", ["portalRequestStatus"])
    assert stored.portalRequestStatus == "withdrawn"
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert "Released by the helpdesk" in page and "Applicant gave up" in page
    # The name is free: the same person registers again.
    assert post_registration(client).status_code == 302
    assert post_action(helpdesk, "/helpdesk/requests/tiijima/release",
                       reason="again").status_code in (302, 409)
