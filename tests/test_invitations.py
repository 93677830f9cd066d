"""Invitation by the IR: the console at /invitations (a list or CSV,
checked line by line, a preview, then the mails), the invitee's
registration from the personal link (/register/invited/<token>) with the
address and institution fixed, approval, and every link that no longer
works; access control of every URL and action; PORTAL_OPEN_REGISTRATION."""
from __future__ import annotations

import io
import json
import re

import ldap3
import pytest

from app import create_app
from app.devstack.slapd import DEMO_IR_PASSWORD
from app.settings import DEFAULT_COLLABORATION_FILE
from helpers import (
    BASE_DN,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    binds,
    csrf_token,
    decide,
    forge_link,
    form_errors,
    links_in,
    local_path,
    login,
    mails_to,
    mails_with,
    portal_environment,
    read_entry,
    root_connection,
    valid_form,
)

INVITATIONS = f"ou=invitations,{BASE_DN}"
KEK = f"portalInstitutionId=kek,ou=institutions,{BASE_DN}"
DEMO_IRS = ("irkek", "irdesy", "irinfn")
KEPT = ("preferredLanguage", "portalConditionsVersion", "portalAuditEvent", "portalStatus")
INVITEE = "toru.iijima@kek.example"


@pytest.fixture(autouse=True)
def demo_restored(slapd, root):
    """The demo IRs' entries (language, conditions, history, status) and
    the institutions' representatives put back after each test."""
    people = {uid: read_entry(root, f"uid={uid},{PEOPLE}", KEPT) for uid in DEMO_IRS}
    institutions = {i: read_entry(root, f"portalInstitutionId={i},ou=institutions,{BASE_DN}",
                                  ["portalRepresentative"]) for i in ("kek", "desy", "infn")}
    yield
    conn = root_connection(slapd)
    for uid, before in people.items():
        conn.modify(f"uid={uid},{PEOPLE}", {
            name: [(ldap3.MODIFY_REPLACE, list(before[name].values) if name in before else [])]
            for name in KEPT})
    for i, before in institutions.items():
        conn.modify(f"portalInstitutionId={i},ou=institutions,{BASE_DN}", {
            "portalRepresentative": [(ldap3.MODIFY_REPLACE,
                                      list(before["portalRepresentative"].values))]})
    conn.unbind()


def logged_in(app, account: str, password: str = DEMO_IR_PASSWORD):
    """A client logged in as ``account``, the conditions accepted."""
    client = app.test_client()
    response = login(client, account, password)
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    page = client.get("/account/conditions")
    if page.status_code == 200:
        client.post("/account/conditions", data={
            "csrf_token": csrf_token(page.get_data(as_text=True)), "accept_conditions": "y"})
    assert client.get("/account").status_code == 200
    return client


def preview(client, emails: str = INVITEE, category: str = "", institution: str = "kek",
            csv_file: tuple[bytes, str] | None = None):
    page = client.get("/invitations").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "emails": emails, "category": category,
            "institution": institution}
    if csv_file is not None:
        data["csv_file"] = (io.BytesIO(csv_file[0]), csv_file[1])
    return client.post("/invitations/preview", data=data, content_type="multipart/form-data")


def confirm(client, preview_response):
    html = preview_response.get_data(as_text=True)
    fields = dict(re.findall(r'<input[^>]*name="(\w+)"[^>]*value="([^"]*)"', html))
    emails = re.search(r'<input[^>]*name="emails"[^>]*value="([^"]*)"', html, re.S)
    import html as html_module
    fields["emails"] = html_module.unescape(emails.group(1)) if emails else ""
    fields["category"] = html_module.unescape(fields.get("category", ""))
    return client.post("/invitations/send", data=fields)


def invite(client, emails: str = INVITEE, **kwargs):
    response = confirm(client, preview(client, emails, **kwargs))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def invitation_link(smtp, address: str = INVITEE) -> str:
    mail = mails_to(smtp, address, "invited to register")[-1]
    return local_path(next(u for u in links_in(mail) if "/register/invited/" in u))


def invitations(root) -> list:
    root.search(INVITATIONS, "(objectClass=portalInvitation)", attributes=["*"])
    return list(root.entries)


def register_invited(client, path: str, **changes):
    page = client.get(path)
    assert page.status_code == 200, page.get_data(as_text=True)
    data = {"csrf_token": csrf_token(page.get_data(as_text=True)), **valid_form(**changes)}
    return client.post(path, data=data)


# -- the whole route ---------------------------------------------------------------------

def test_invite_register_approve_and_bind(app, client, root, smtp, slapd):
    ir = logged_in(app, "irkek")
    page = ir.get("/invitations")
    assert page.status_code == 200 and "Invitations" in page.get_data(as_text=True)
    shown = preview(ir, f"{INVITEE}, toru, iijima, phd-student")
    html = shown.get_data(as_text=True)
    assert shown.status_code == 200 and "Will be invited" in html
    assert not mails_to(smtp, INVITEE) and not invitations(root)  # nothing sent on preview
    sent = confirm(ir, shown)
    assert "1 invitation sent" in sent.get_data(as_text=True)
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == "open" and entry.portalInvitedBy.value == "irkek"
    assert entry.portalContactMail.value == INVITEE
    assert json.loads(entry.portalAuditEvent.values[0])["action"] == "invitation.created"
    mail = mails_to(smtp, INVITEE)[-1]
    assert "invited to register" in str(mail["Subject"])
    path = invitation_link(smtp)

    # The form: the address and institution shown, not editable; names prefilled.
    form = client.get(path).get_data(as_text=True)
    assert 'name="email"' not in form and 'name="institution"' not in form
    assert INVITEE in form and "KEK" in form and 'value="Toru"' in form
    # A forged POST cannot change the fixed fields.
    before = len(smtp.messages)
    response = register_invited(client, path, email="someone@desy.example",
                                institution="desy")
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    request = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert request.portalContactMail.value == INVITEE
    assert request.portalHomeInstitution.value == "kek"
    assert request.portalRequestStatus.value == "pending-approval"  # no confirmation mail
    assert request.portalEmailVerifiedAt.value is not None
    verified = [json.loads(r) for r in request.portalAuditEvent.values
                if json.loads(r)["action"] == "request.email-verified"]
    assert verified and verified[0]["by"] == "invitation"
    submitted = next(json.loads(r) for r in request.portalAuditEvent.values
                     if json.loads(r)["action"] == "request.submitted")
    assert submitted["route"] == "invitation" and submitted["invited_by"] == "irkek"
    assert not mails_with(smtp, "confirm your e-mail", before)
    review = mails_with(smtp, "membership request from", before)[-1]
    assert "irkek" in str(review["To"]) or "kek" in str(review["To"])
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == "used"
    assert entry.portalInvitationRequest.value == "tiijima"
    # The link worked once.
    again = client.get(path)
    assert again.status_code == 410 and "used already" in again.get_data(as_text=True)

    # The IR approves from the review mail; the member binds.
    decided = decide(ir, local_path(links_in(review)[0]))
    assert "was created" in decided.get_data(as_text=True)
    assert binds(slapd, f"uid=tiijima,{PEOPLE}", STRONG_PASSWORD)
    listing = ir.get("/invitations").get_data(as_text=True)
    assert "Used: the registration was sent" in listing


# -- the list, line by line ----------------------------------------------------------------

def line_reports(html: str) -> dict:
    """Line number (typed) or "file-N" -> the text of its report on the page."""
    found = re.findall(r'<li class="panel[^"]*" data-line="([\w-]+)">(.*?)</li>', html, re.S)
    return {int(n) if n.isdigit() else n: re.sub(r"\s+", " ",
                                                 re.sub(r"<[^>]+>", " ", body)).strip()
            for n, body in found}


def test_each_line_is_checked_and_reported_before_anything_is_sent(app, root, smtp,
                                                                  member):
    ir = logged_in(app, "irkek")
    invite(ir, "already@kek.example")
    before = len(smtp.messages)
    typed = "\n".join([
        "email, given, family, category",           # a header line: skipped
        "new.person@kek.example",                   # 2: fine
        "not-an-address",                           # 3: format
        "someone@gmail.com",                        # 4: webmail
        "toru.iijima@kek.example",                  # 5: a member of KEK (the fixture's)
        "already@kek.example",                      # 6: invited already
        "new.person@kek.example",                   # 7: repeated
        "two@kek.example, Only",                    # 8: broken columns
        "three@kek.example, Ann, Lee, no-such-cat",  # 9: unknown category
        "four@kek.example, Ann2, Lee, student",     # 10: a name with a digit
        "",
        "# a comment",
    ])
    uploaded = b"five@kek.example,Kenji,Sato,phd-student\nsix@kek\n\xef\xbb\xbf\n"
    response = preview(ir, typed, category="visitor", csv_file=(uploaded, "people.csv"))
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    reports = line_reports(html)
    assert "Will be invited" in reports[2] and "visitor" in reports[2]
    assert "not a complete e-mail address" in reports[3]
    assert "webmail" in reports[4]
    assert "Already a member of your institution (account tiijima)" in reports[5]
    assert "Invited already" in reports[6]
    assert "earlier in the list" in reports[7]
    assert "Expected an address" in reports[8]
    assert "Unknown category" in reports[9]
    assert "characters a name cannot have" in reports[10]
    # The file's lines are reported by their number in the file.
    assert "File, line 1:" in reports["file-1"]
    assert "Will be invited" in reports["file-1"] and "phd-student" in reports["file-1"]
    assert "not a complete e-mail address" in reports["file-2"]
    assert "file-3" not in reports  # a stray byte-order mark is an empty line
    assert "Send 2 invitations" in html
    assert len(smtp.messages) == before and len(invitations(root)) == 1

    sent = confirm(ir, response).get_data(as_text=True)
    assert "2 invitations sent" in sent
    assert sorted(e.portalContactMail.value for e in invitations(root)) == [
        "already@kek.example", "five@kek.example", "new.person@kek.example"]
    five = mails_to(smtp, "five@kek.example", "invited to register")
    assert five and "Dear Kenji Sato" in five[-1].get_body(("plain",)).get_content()
    assert len(mails_with(smtp, "invited to register", before)) == 2


def test_a_line_with_names_but_no_category_takes_the_default(app, root):
    ir = logged_in(app, "irkek")
    reports = line_reports(preview(ir, "sakura.ono@kek.example, Sakura, Ono",
                                   category="visitor").get_data(as_text=True))
    assert "Will be invited" in reports[1] and "visitor" in reports[1]
    assert "Sakura Ono" in reports[1] or ("Sakura" in reports[1] and "Ono" in reports[1])


def test_the_check_tells_nothing_about_other_institutions(app, root, smtp, member):
    """tiijima is a member of KEK: DESY's IR is not told (the line is invited
    like any other); if that person used the link, the registration's own
    duplicate check would answer as it does for everyone."""
    ir = logged_in(app, "irdesy")
    response = preview(ir, "toru.iijima@kek.example", institution="desy")
    reports = line_reports(response.get_data(as_text=True))
    assert "Will be invited" in reports[1] and "tiijima" not in response.get_data(as_text=True)


def test_a_request_waiting_for_approval_is_reported(app, client, root, smtp,
                                                    register_and_verify):
    register_and_verify()
    ir = logged_in(app, "irkek")
    reports = line_reports(preview(ir, INVITEE).get_data(as_text=True))
    assert "waits for approval at your institution" in reports[1]


def test_a_list_with_nothing_to_invite_sends_nothing(app, root, smtp):
    ir = logged_in(app, "irkek")
    response = preview(ir, "nobody@gmail.com")
    assert "No line can be invited" in response.get_data(as_text=True)
    response = preview(ir, "   \n")
    assert response.status_code == 400 and "at least one address" in response.get_data(
        as_text=True)
    response = preview(ir, "", csv_file=(b"\xff\xfe\x00bad", "bad.csv"))
    assert response.status_code == 400 and "not a text (CSV) file" in response.get_data(
        as_text=True)
    assert not invitations(root) and not mails_with(smtp, "invited to register")


def test_the_confirmation_is_checked_again(app, root, smtp):
    """Between preview and confirmation someone else invited the address, or
    a forged confirmation carries a bad line: neither is sent."""
    ir = logged_in(app, "irkek")
    shown = preview(ir, INVITEE)
    invite(logged_in(app, "irkek"), INVITEE)
    html = ir.get("/invitations").get_data(as_text=True)
    forged = ir.post("/invitations/send", data={
        "csrf_token": csrf_token(html), "emails": "x@gmail.com\nbroken", "category": "",
        "institution": "kek"})
    assert "0 invitations sent" in forged.get_data(as_text=True)
    again = confirm(ir, shown).get_data(as_text=True)
    assert "0 invitations sent" in again and "Invited already" in again
    assert len(invitations(root)) == 1


# -- links that no longer work -------------------------------------------------------------

def token_of(path: str) -> str:
    return path.rsplit("/", 1)[1]


def nothing_registered(root) -> bool:
    return read_entry(root, f"uid=tiijima,{REQUESTS}") is None


@pytest.fixture
def invited(app, root, smtp):
    """irkek invited INVITEE; returns (the IR's client, the link's path)."""
    ir = logged_in(app, "irkek")
    invite(ir, f"{INVITEE}, Toru, Iijima, phd-student")
    return ir, invitation_link(smtp)


def test_a_tampered_link_says_so_and_changes_nothing(app, client, root, invited):
    _, path = invited
    token = token_of(path)
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (f"/register/invited/{tampered}", "/register/invited/x",
                # Genuine signature, another purpose: a review link's token.
                "/register/invited/" + forge_link(app, "review-request", {"r": "x"}),
                "/register/invited/" + forge_link(app, "invitation", {"i": "nosuch", "n": "x"})):
        for response in (client.get(bad), register_invited_post(client, bad)):
            assert response.status_code == 404, bad
            assert "invitation link is not valid" in response.get_data(as_text=True)
    assert nothing_registered(root)
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == "open"


def test_an_expired_link_says_so(app, client, root, invited):
    _, path = invited
    [entry] = invitations(root)
    payload = {"i": entry.portalInvitationId.value, "n": entry.portalInvitationNonce.value}
    old = forge_link(app, "invitation", payload, age_seconds=15 * 86400)
    response = client.get(f"/register/invited/{old}")
    assert response.status_code == 410 and "has expired" in response.get_data(as_text=True)
    # Past the stored date (e.g. a shorter PORTAL_INVITATION_DAYS since): expired too.
    root.modify(entry.entry_dn, {"portalInvitationExpires": [
        (ldap3.MODIFY_REPLACE, ["20200101000000Z"])]})
    response = register_invited_post(client, path)
    assert response.status_code == 410 and "has expired" in response.get_data(as_text=True)
    assert nothing_registered(root)
    ir, _ = invited
    assert "Expired on" in ir.get("/invitations").get_data(as_text=True)


def register_invited_post(client, path: str, **changes):
    """A POST without opening the page first (the page may not open)."""
    token = csrf_token(client.get("/login").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token, **valid_form(**changes)})


def test_a_used_link_says_so(app, client, root, smtp, invited):
    _, path = invited
    assert register_invited(client, path).status_code == 302
    other = app.test_client()
    for method in (other.get, lambda p: register_invited_post(other, p, account_name="tiijim2")):
        response = method(path)
        assert response.status_code == 410 and "used already" in response.get_data(as_text=True)
    assert read_entry(root, f"uid=tiijim2,{REQUESTS}") is None


def test_a_revoked_link_says_so(app, client, root, smtp, invited):
    ir, path = invited
    [entry] = invitations(root)
    html = ir.get("/invitations").get_data(as_text=True)
    revoked = ir.post(f"/invitations/{entry.portalInvitationId.value}/revoke",
                      data={"csrf_token": csrf_token(html)}, follow_redirects=True)
    assert "was revoked" in revoked.get_data(as_text=True)
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == "revoked"
    assert any(json.loads(r)["action"] == "invitation.revoked" and json.loads(r)["actor"] ==
               "irkek" for r in entry.portalAuditEvent.values)
    for response in (client.get(path), register_invited_post(client, path)):
        assert response.status_code == 410 and "withdrawn" in response.get_data(as_text=True)
    assert nothing_registered(root)
    # A revoked invitation cannot be resent or revoked again.
    again = ir.post(f"/invitations/{entry.portalInvitationId.value}/resend",
                    data={"csrf_token": csrf_token(html)}, follow_redirects=True)
    assert "used or revoked already" in again.get_data(as_text=True)


def test_a_resent_invitation_kills_the_old_link(app, client, root, smtp, invited):
    ir, old_path = invited
    [entry] = invitations(root)
    html = ir.get("/invitations").get_data(as_text=True)
    before = len(smtp.messages)
    response = ir.post(f"/invitations/{entry.portalInvitationId.value}/resend",
                       data={"csrf_token": csrf_token(html)}, follow_redirects=True)
    assert "earlier link no longer works" in response.get_data(as_text=True)
    assert len(mails_with(smtp, "invited to register", before)) == 1
    new_path = invitation_link(smtp)
    assert new_path != old_path
    for response in (client.get(old_path), register_invited_post(client, old_path)):
        assert response.status_code == 410 and "replaced by a newer one" in response.get_data(
            as_text=True)
    assert nothing_registered(root)
    assert register_invited(client, new_path).status_code == 302
    assert not nothing_registered(root)


def test_a_failed_submission_leaves_the_link_working(app, client, root, smtp, invited,
                                                     member):
    """The account name is taken (by the fixture's member): the form comes
    back and the link still works."""
    _, path = invited
    # tiijima is taken: the name check refuses it on the form.
    response = register_invited(client, path)
    assert response.status_code == 400 and "already taken" in response.get_data(as_text=True)
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == "open"
    assert client.get(path).status_code == 200


# -- who may do what -----------------------------------------------------------------------

NAF_MANAGERS = f"cn=naf-managers,ou=groups,{BASE_DN}"


@pytest.fixture
def plain_member(app, member, root):
    """tiijima, a plain member past the initial password, also a manager of
    the extra group naf (cn=naf-managers) for the test."""
    from helpers import NEW_PASSWORD, change_password
    client = app.test_client()
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    assert client.get("/account").status_code == 200
    dn = f"uid=tiijima,{PEOPLE}"
    root.modify(NAF_MANAGERS, {"member": [(ldap3.MODIFY_ADD, [dn])]})
    yield client
    root.modify(NAF_MANAGERS, {"member": [(ldap3.MODIFY_DELETE, [dn])]})


def console_calls(invitation_id: str, token: str | None) -> list[tuple[str, str, dict]]:
    data = {"csrf_token": token} if token else {}
    return [
        ("get", "/invitations", {}),
        ("post", "/invitations/preview", {**data, "emails": "a@kek.example",
                                          "institution": "kek"}),
        ("post", "/invitations/send", {**data, "emails": "a@kek.example", "institution": "kek",
                                       "category": ""}),
        ("post", f"/invitations/{invitation_id}/resend", data),
        ("post", f"/invitations/{invitation_id}/revoke", data),
    ]


def unchanged(root, smtp, before: int, state: str = "open") -> None:
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == state
    assert len(entry.portalAuditEvent.values) == 1
    assert not mails_with(smtp, "invited to register", before)


def test_anonymous_visitors_are_sent_to_the_login(app, client, root, smtp, invited):
    [entry] = invitations(root)
    token = csrf_token(client.get("/login").get_data(as_text=True))
    before = len(smtp.messages)
    for method, url, data in console_calls(entry.portalInvitationId.value, token):
        response = getattr(client, method)(url, data=data)
        assert response.status_code == 302 and "/login" in response.headers["Location"], url
    unchanged(root, smtp, before)


def test_plain_members_and_group_managers_get_403(app, root, smtp, invited, plain_member):
    [entry] = invitations(root)
    token = csrf_token(plain_member.get("/account").get_data(as_text=True))
    before = len(smtp.messages)
    for method, url, data in console_calls(entry.portalInvitationId.value, token):
        response = getattr(plain_member, method)(url, data=data)
        assert response.status_code == 403, url
        assert INVITEE not in response.get_data(as_text=True)
    unchanged(root, smtp, before)
    # No console link in the header either.
    assert 'href="/invitations"' not in plain_member.get("/account").get_data(as_text=True)


def test_the_ir_of_another_institution_sees_and_changes_nothing(app, root, smtp, invited):
    [entry] = invitations(root)
    other = logged_in(app, "irdesy")
    page = other.get("/invitations")
    assert page.status_code == 200 and 'href="/invitations"' in page.get_data(as_text=True)
    assert INVITEE not in page.get_data(as_text=True)  # KEK's invitation is not listed
    token = csrf_token(page.get_data(as_text=True))
    before = len(smtp.messages)
    for url in (f"/invitations/{entry.portalInvitationId.value}/resend",
                f"/invitations/{entry.portalInvitationId.value}/revoke",
                "/invitations/nosuchinvitation/resend", "/invitations/Bad..id/revoke"):
        response = other.post(url, data={"csrf_token": token})
        assert response.status_code == 403, url
    # Inviting to KEK: refused on the preview (not a choice) and on the confirmation.
    response = other.post("/invitations/preview", data={
        "csrf_token": token, "emails": "x@kek.example", "institution": "kek"})
    assert response.status_code == 400
    response = other.post("/invitations/send", data={
        "csrf_token": token, "emails": "x@kek.example", "institution": "kek", "category": ""})
    assert response.status_code == 403
    unchanged(root, smtp, before)
    assert len(invitations(root)) == 1


def test_missing_or_foreign_csrf_tokens_are_refused(app, root, smtp, invited):
    ir, _ = invited
    [entry] = invitations(root)
    foreign = csrf_token(logged_in(app, "irdesy").get("/invitations").get_data(as_text=True))
    before = len(smtp.messages)
    for token in (None, foreign, "forged"):
        for _, url, data in console_calls(entry.portalInvitationId.value, token)[1:]:
            response = ir.post(url, data=data)
            assert response.status_code == 400, (url, token)
    unchanged(root, smtp, before)
    assert len(invitations(root)) == 1


def test_the_link_allows_registering_and_nothing_else(app, client, root, invited):
    _, path = invited
    assert client.get(path).status_code == 200
    assert client.get("/account").headers["Location"].endswith("/login")
    assert client.get("/invitations").headers["Location"].endswith("/login")
    assert "Log in" in client.get("/").get_data(as_text=True)


# -- settings: closed self-registration, approval by the invitation ------------------------

def test_closed_registration_explains_the_routes_and_refuses_the_form(slapd, smtp, root):
    smtp.clear()
    closed = create_app(portal_environment(slapd, smtp, PORTAL_OPEN_REGISTRATION="false"))
    client = closed.test_client()
    page = client.get("/register")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Registration is by invitation" in html
    assert "invite you" in html and "paper registration form" in html
    assert 'name="account_name"' not in html
    token = csrf_token(client.get("/login").get_data(as_text=True))
    response = client.post("/register", data={"csrf_token": token, **valid_form()})
    assert response.status_code == 403 and "Registration is by invitation" in response.get_data(
        as_text=True)
    assert nothing_registered(root) and not mails_to(smtp, INVITEE)
    # The invited route stays open.
    ir = logged_in(closed, "irkek")
    invite(ir)
    assert register_invited(client, invitation_link(smtp)).status_code == 302
    assert not nothing_registered(root)


def test_open_registration_is_the_default(app, client):
    assert 'name="account_name"' in client.get("/register").get_data(as_text=True)


def test_a_category_whose_invitations_approve_creates_the_member_at_once(
        slapd, smtp, root, tmp_path):
    smtp.clear()
    collaboration = tmp_path / "collaboration.toml"
    collaboration.write_text(DEFAULT_COLLABORATION_FILE.read_text().replace(
        'key = "phd-student"\n', 'key = "phd-student"\ninvitation_approves = true\n'))
    approving = create_app(portal_environment(slapd, smtp,
                                              PORTAL_COLLABORATION_FILE=str(collaboration)))
    assert approving.extensions["portal"].settings.invitation_approves("phd-student")
    ir = logged_in(approving, "irkek")
    invite(ir, f"{INVITEE}, Toru, Iijima, phd-student")
    client = approving.test_client()
    before = len(smtp.messages)
    response = register_invited(client, invitation_link(smtp))
    assert response.status_code == 302
    assert "Your account was created" in client.get(response.headers["Location"]).get_data(
        as_text=True)
    request = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert request.portalRequestStatus.value == "approved"
    events = [json.loads(r) for r in request.portalAuditEvent.values]
    by_invitation = [e for e in events if e["action"] == "request.approved-by-invitation"]
    assert by_invitation and by_invitation[0]["actor"] == "irkek"
    assert "approved by the invitation" in by_invitation[0]["reason"]
    assert any(e["action"] == "request.account-created" for e in events)
    assert not mails_with(smtp, "membership request from", before)  # nobody was asked
    assert mails_to(smtp, INVITEE, "")[-1] is not None
    assert binds(slapd, f"uid=tiijima,{PEOPLE}", STRONG_PASSWORD)


def test_other_categories_still_ask_the_ir(slapd, smtp, root, tmp_path, app):
    ir = logged_in(app, "irkek")
    invite(ir, f"{INVITEE}, Toru, Iijima, visitor")
    client = app.test_client()
    before = len(smtp.messages)
    register_invited(client, invitation_link(smtp), category="visitor")
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").portalRequestStatus.value == \
        "pending-approval"
    assert mails_with(smtp, "membership request from", before)


# -- languages ------------------------------------------------------------------------------

@pytest.mark.parametrize("lang, title, webmail, fixed", [
    ("de", "Einladungen", "Eine Webmail-Adresse", "stammen aus Ihrer Einladung"),
    ("ja", "招待", "ウェブメールのアドレスです", "招待に基づくもので")])
def test_console_and_invited_form_in_german_and_japanese(app, root, smtp, lang, title, webmail,
                                                         fixed):
    ir = logged_in(app, "irkek")
    ir.set_cookie("lang", lang)
    page = ir.get("/invitations").get_data(as_text=True)
    assert f'<html lang="{lang}">' in page and title in page
    shown = preview(ir, f"{INVITEE}\nx@gmail.com").get_data(as_text=True)
    assert webmail in shown and "A webmail address" not in shown
    invite(ir, INVITEE)
    # The IR's language is the invitation mail's: irkek's stored language is the default.
    invitee = app.test_client()
    invitee.set_cookie("lang", lang)
    path = invitation_link(smtp)
    form = invitee.get(path).get_data(as_text=True)
    assert f'<html lang="{lang}">' in form and INVITEE in form and fixed in form
    used = app.test_client()
    used.set_cookie("lang", lang)
    assert register_invited(invitee, path).status_code == 302
    problem = used.get(path).get_data(as_text=True)
    assert f'<html lang="{lang}">' in problem


def test_the_invitation_mail_is_in_the_inviting_irs_language(app, root, smtp):
    root.modify(f"uid=irkek,{PEOPLE}", {"preferredLanguage": [(ldap3.MODIFY_REPLACE, ["ja"])]})
    ir = logged_in(app, "irkek")
    invite(ir, INVITEE)
    mail = mails_to(smtp, INVITEE)[-1]
    assert mail["Subject"] and "invited to register" not in str(mail["Subject"])
    assert "招待" in str(mail["Subject"]) or "招待" in mail.get_body(("plain",)).get_content()


def test_an_ir_of_two_institutions_chooses_one(app, root, smtp):
    desy = f"portalInstitutionId=desy,ou=institutions,{BASE_DN}"
    root.modify(desy, {"portalRepresentative": [(ldap3.MODIFY_ADD, [f"uid=irkek,{PEOPLE}"])]})
    ir = logged_in(app, "irkek")
    page = ir.get("/invitations").get_data(as_text=True)
    assert re.search(r"<select[^>]*name=\"institution\"", page)
    assert 'value="desy"' in page and 'value="kek"' in page
    response = preview(ir, "anna@desy.example", institution="infn")  # not one of theirs
    assert response.status_code == 400 and "institutions you represent" in response.get_data(
        as_text=True)
    invite(ir, "anna@desy.example", institution="desy")
    [entry] = invitations(root)
    assert entry.portalHomeInstitution.value == "desy"
    form = app.test_client().get(invitation_link(smtp, "anna@desy.example"))
    assert "DESY" in form.get_data(as_text=True)


def test_invitations_are_readable_by_the_portal_only(app, root, slapd, smtp, invited,
                                                     plain_member):
    from helpers import NEW_PASSWORD
    for dn, password in ((f"uid=tiijima,{PEOPLE}", NEW_PASSWORD),
                         (f"uid=irkek,{PEOPLE}", DEMO_IR_PASSWORD), ("", "")):
        conn = ldap3.Connection(ldap3.Server(slapd.url), dn, password, auto_bind=True)
        conn.search(BASE_DN, "(objectClass=portalInvitation)", attributes=["*"])
        assert conn.entries == [], dn
        conn.search(BASE_DN, f"(portalContactMail={INVITEE})", attributes=["*"])
        assert all("invitations" not in e.entry_dn for e in conn.entries), dn
        conn.unbind()
    assert len(invitations(root)) == 1


def test_the_review_mail_goes_to_the_institutions_ir(app, client, root, smtp, invited):
    _, path = invited
    before = len(smtp.messages)
    register_invited(client, path)
    review = mails_with(smtp, "membership request from", before)
    ir_mail = read_entry(root, f"uid=irkek,{PEOPLE}", ["portalContactMail", "mail"])
    address = ir_mail.portalContactMail.value or ir_mail.mail.value
    assert [str(m["To"]) for m in review] == [address]


def test_concurrent_submissions_with_one_link_make_one_request(app, root, smtp, invited):
    from helpers import race
    _, path = invited
    names = ["tiijima", "tiijim2", "tiijim3", "tiijim4", "tiijim5"]

    def action(n, prepared):
        if prepared is None:
            client = app.test_client()
            page = client.get(path).get_data(as_text=True)
            return client, csrf_token(page)
        client, token = prepared
        return client.post(path, data={"csrf_token": token,
                                       **valid_form(account_name=names[n])}).status_code

    results = race(len(names), action)
    assert sorted(results) == [302] + [410] * (len(names) - 1)
    root.search(REQUESTS, "(portalContactMail=toru.iijima@kek.example)", attributes=["uid"])
    assert len(root.entries) == 1
    [entry] = invitations(root)
    assert entry.portalInvitationState.value == "used"


def test_opening_the_link_changes_and_consumes_nothing(app, root, smtp, invited):
    _, path = invited
    [before] = invitations(root)
    scanner = app.test_client()
    for method in ("GET", "HEAD", "GET"):
        response = scanner.open(path, method=method,
                                headers={"User-Agent": "Mozilla/5.0 (compatible; SafeLinks)"})
        assert response.status_code == 200
    [after] = invitations(root)
    assert after.entry_attributes_as_dict == before.entry_attributes_as_dict
    assert register_invited(app.test_client(), path).status_code == 302
