"""People as they really use the portal, end to end through the pages and
the mails: the one who lost the mail, the rejected one, the board member
who approved both stages' worth, the one who moves, the returning member."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import ldap3

from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    change_password,
    csrf_token,
    decide,
    form_errors,
    links_in,
    local_path,
    login,
    mails_to,
    post_registration,
    read_entry,
)

ADDRESS = "aiko.fujiwara@kek.example"
AIKO = dict(given_name="Aiko", family_name="Fujiwara", email=ADDRESS, institution="kek")


def body(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def requests_in(root) -> dict[str, str]:
    root.search(REQUESTS, "(objectClass=portalRequest)",
                attributes=["portalRequestId", "uid", "portalRequestStatus"])
    return {(e.portalRequestId.value or e.uid.value): e.portalRequestStatus.value
            for e in root.entries}


def register(client, **changes):
    response = post_registration(client, **changes)
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))


def confirm(client, smtp, address=ADDRESS):
    path = local_path(links_in(mails_to(smtp, address, "confirm your e-mail")[-1])[0])
    page = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(page)}).get_data(as_text=True)


def review_path(smtp, address="toru.sato@kek.example", about="membership request"):
    return local_path(links_in(mails_to(smtp, address, about)[-1])[0])


# -- the one who lost the confirmation mail --------------------------------------------------

def test_registering_again_mails_the_unconfirmed_registrations_links(client, root, smtp):
    register(client, account_name="afujiwar", **AIKO)
    first = local_path(links_in(mails_to(smtp, ADDRESS, "confirm")[-1])[0])
    # The mail is lost; she registers again, under another account name:
    # nothing is replaced, the address is told what is waiting.
    response = post_registration(client, account_name="aikof", **AIKO)
    assert response.headers["Location"].endswith("/register/created")
    assert "aikof" in client.get("/register/created").get_data(as_text=True)  # as typed
    assert requests_in(root) == {"afujiwar": "pending-verification"}
    [mail] = mails_to(smtp, ADDRESS, "you have an unconfirmed registration")
    assert "afujiwar" in body(mail)
    confirm_link, restart_link = (local_path(url) for url in links_in(mail)[:2])
    # The same link, signed anew (the signature's time may be a second later).
    assert confirm_link.rsplit(".", 2)[0] == first.rsplit(".", 2)[0]
    still = client.get(first)  # the first link still works (GET: nothing changes)
    assert still.status_code == 200 and "afujiwar" in still.get_data(as_text=True)

    # She starts over: GET changes nothing, the POST withdraws it.
    page = client.get(restart_link).get_data(as_text=True)
    assert "was never confirmed" in page and "afujiwar" in page
    assert requests_in(root) == {"afujiwar": "pending-verification"}
    response = client.post(restart_link, data={"csrf_token": csrf_token(page)})
    assert response.headers["Location"].endswith("/register")
    assert requests_in(root) == {}
    assert client.get(first).status_code == 404
    assert client.get(restart_link).status_code == 404  # once

    register(client, account_name="aikof", **AIKO)
    assert requests_in(root) == {"aikof": "pending-verification"}
    assert "Thank you: your address is confirmed" in confirm(client, smtp)
    assert "was created" in decide(client, review_path(smtp)).get_data(as_text=True)
    root.search(PEOPLE, f"(portalContactMail={ADDRESS})", attributes=["uid"])
    assert [e.uid.value for e in root.entries] == ["aikof"]
    # The freed name can be registered by someone else.
    register(client, account_name="afujiwar", given_name="Akira", family_name="Fujiwara",
             email="akira.fujiwara@kek.example", institution="kek")


def test_nobody_replaces_someone_elses_unconfirmed_registration(app, client, root, smtp):
    """Knowing an address is not enough to take over its registration: a
    second registration with it changes nothing and gets the answer of a
    new one; the owner's link still confirms the first."""
    register(client, account_name="afujiwar", **AIKO)
    owners_link = local_path(links_in(mails_to(smtp, ADDRESS, "confirm")[-1])[0])
    other = app.test_client()
    response = post_registration(other, account_name="mallory", given_name="Aiko",
                                 family_name="Fujiwara", email=ADDRESS, institution="kek")
    assert response.status_code == 302
    page = other.get("/register/created").get_data(as_text=True)
    assert "mallory" in page and "afujiwar" not in page
    assert requests_in(root) == {"afujiwar": "pending-verification"}
    assert read_entry(root, f"uid=mallory,{REQUESTS}") is None
    assert mails_to(smtp, ADDRESS, "you have an unconfirmed registration")
    assert "Thank you: your address is confirmed" in confirm_path(client, owners_link)


def confirm_path(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(page)}).get_data(as_text=True)


def test_a_second_account_for_one_address_is_refused_at_approval(client, root, smtp):
    """A request that slipped through (written by an older version, or at
    the same moment): checked again at confirmation, shown to the IR with
    what matched, and approving a second account refused."""
    register(client, account_name="afujiwar", **AIKO)
    confirm(client, smtp)
    assert "was created" in decide(client, review_path(smtp)).get_data(as_text=True)
    register(client, account_name="aikof", given_name="Aiko", family_name="Fujiwara",
             email="aiko.f@desy.example", institution="desy", not_me="y")
    # As an older version let it through: the same address and institution.
    root.modify(f"uid=aikof,{REQUESTS}", {
        "portalContactMail": [(ldap3.MODIFY_REPLACE, [ADDRESS])],
        "portalHomeInstitution": [(ldap3.MODIFY_REPLACE, ["kek"])]})
    confirm(client, smtp, "aiko.f@desy.example")
    entry = read_entry(root, f"uid=aikof,{REQUESTS}")
    assert any("request.possible-duplicate" in e for e in entry.portalAuditEvent.values)
    path = review_path(smtp)
    page = client.get(path).get_data(as_text=True)
    assert "This may be someone we know" in page and "afujiwar" in page
    assert "the same e-mail address" in page and "Approve</button>" not in page
    response = decide(client, path)
    assert response.status_code == 409
    assert read_entry(root, f"uid=aikof,{PEOPLE}") is None
    assert read_entry(root, f"uid=aikof,{REQUESTS}").portalRequestStatus.value == \
        "pending-approval"
    assert "Rejected" in decide(client, path, "reject", "You are afujiwar").get_data(as_text=True)


def test_expired_unconfirmed_requests_free_their_names(app, client, root, smtp):
    register(client, account_name="afujiwar", **AIKO)
    runner = app.test_cli_runner()
    soon = (datetime.now(timezone.utc) + timedelta(days=6)).isoformat()
    later = (datetime.now(timezone.utc) + timedelta(days=8)).isoformat()
    result = runner.invoke(args=["requests", "expire-unconfirmed", "--now", soon])
    assert "withdrew 0" in result.output
    assert requests_in(root) == {"afujiwar": "pending-verification"}
    result = runner.invoke(args=["requests", "expire-unconfirmed", "--now", later])
    assert "withdrew 1" in result.output, result.output
    assert requests_in(root) == {}
    assert "withdrew 0" in runner.invoke(args=["requests", "expire-unconfirmed",
                                               "--now", later]).output
    register(client, account_name="afujiwar", given_name="Akira", family_name="Fujiwara",
             email="akira.fujiwara@kek.example", institution="kek")


# -- the rejected one -------------------------------------------------------------------------

def test_a_rejected_applicant_may_apply_again_and_the_ir_sees_the_rejection(client, root, smtp):
    register(client, account_name="afujiwar", **AIKO)
    confirm(client, smtp)
    decide(client, review_path(smtp), "reject", "Please register with your KEK address first")
    [rejected] = mails_to(smtp, ADDRESS, "not approved")
    text = body(rejected)
    assert "You may apply again" in text and "helpdesk@example.org" in text
    assert "http://portal.test/register" in links_in(rejected)

    # The same account name again: the earlier request keeps its history.
    register(client, account_name="afujiwar", **AIKO)
    statuses = requests_in(root)
    assert statuses.pop("afujiwar") == "rejected"
    [(again, status)] = statuses.items()
    assert again.startswith("afujiwar-") and status == "pending-verification"
    assert not mails_to(smtp, ADDRESS, "already registered")
    confirm(client, smtp)
    page = client.get(review_path(smtp)).get_data(as_text=True)
    assert "Rejected before" in page and "Please register with your KEK address first" in page
    assert "Toru Sato (irkek)" in page
    assert "was created" in decide(client, review_path(smtp)).get_data(as_text=True)
    assert read_entry(root, f"uid=afujiwar,{PEOPLE}").portalStatus.value == "active"


def test_a_rejected_applicant_may_choose_another_name(client, root, smtp):
    register(client, account_name="afujiwar", **AIKO)
    confirm(client, smtp)
    decide(client, review_path(smtp), "reject", "Wrong category")
    register(client, account_name="aikof", **AIKO)
    confirm(client, smtp)
    page = client.get(review_path(smtp)).get_data(as_text=True)
    assert "Rejected before" in page and "Wrong category" in page


# -- the board member -------------------------------------------------------------------------

def test_a_stage_without_approvers_is_reported_and_asked_when_one_appears(app, client, root,
                                                                          smtp):
    applicant = "marco.bianchi@infn.example"
    register(client, account_name="mbianchi", given_name="Marco", family_name="Bianchi",
             email=applicant, institution="infn", category="physicist-permanent")
    confirm(client, smtp, applicant)
    ir_path = review_path(smtp, "giulia.rossi@infn.example")
    # The only board member is the IR who approves stage 1 (four eyes).
    page = decide(client, ir_path).get_data(as_text=True)
    assert "Nobody can approve the next stage" in page
    assert "have been asked by mail" not in page
    [helpdesk] = mails_to(smtp, "helpdesk@example.org", "nobody to approve")
    text = body(helpdesk)
    assert '"ib"' in text and "irinfn" in text and "no active representative" not in text
    [waiting] = mails_to(smtp, applicant, "your request waits")
    assert "institutional board" in body(waiting)

    runner = app.test_cli_runner()
    assert "completed 0" in runner.invoke(args=["portal", "complete-approvals"]).output
    assert len(mails_to(smtp, "helpdesk@example.org", "nobody to approve")) == 1  # once
    board_dn = f"cn=ib,ou=groups,{PEOPLE.split(',', 1)[1]}"
    root.modify(board_dn, {"member": [(ldap3.MODIFY_ADD, [f"uid=irkek,{PEOPLE}"])]})
    try:
        assert "completed 1" in runner.invoke(args=["portal", "complete-approvals"]).output
        board = review_path(smtp, "toru.sato@kek.example")
        assert "completed 0" in runner.invoke(args=["portal", "complete-approvals"]).output
        page = client.get(board).get_data(as_text=True)
        assert "You are asked as: institutional board" in page
        response = client.post(board, data={"csrf_token": csrf_token(page), "decision": "approve",
                                            "reference": "IB minutes 2026-12"})
        assert "<h1>Approved</h1>" in response.get_data(as_text=True)
    finally:  # the directory fixture restores only the main group
        root.modify(board_dn, {"member": [(ldap3.MODIFY_DELETE, [f"uid=irkek,{PEOPLE}"])]})
    assert read_entry(root, f"uid=mbianchi,{PEOPLE}").portalStatus.value == "active"


# -- the one who moves ------------------------------------------------------------------------

def test_a_move_says_where_from_and_the_old_irs_link_says_who_approved(client, member, smtp):
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    html = client.get("/account").get_data(as_text=True)
    client.post("/account/institution", data={"csrf_token": csrf_token(html),
                                              "institution": "desy"})
    [ask] = mails_to(smtp, "anna.schmidt@desy.example", "asks to move")
    text = body(ask)
    assert "asks to move from High Energy Accelerator" in text
    assert "asks for membership" not in text and "As its representative" not in text
    page = client.get(local_path(links_in(ask)[0])).get_data(as_text=True)
    assert "Current institution: High Energy Accelerator" in page
    assert "You are asked as a representative of Deutsches" in page

    [notice] = mails_to(smtp, "toru.sato@kek.example", "asks to move")
    objection = local_path(links_in(notice)[0])
    page = client.get(objection).get_data(as_text=True)
    assert "approve or reject" not in page and "Object</button>" in page
    decide(client, local_path(links_in(ask)[0]))
    # The member has moved: the old IR's link tells who decided.
    page = client.get(objection).get_data(as_text=True)
    assert "already approved by Anna Schmidt (irdesy)" in page


def test_a_group_application_is_not_described_as_a_membership(client, member, smtp):
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    html = client.get("/account").get_data(as_text=True)
    client.post("/account/groups/naf/apply", data={"csrf_token": csrf_token(html)})
    [ask] = mails_to(smtp, "anna.schmidt@desy.example", "applies to join")
    assert "asks for membership" not in body(ask) and "As its representative" not in body(ask)
    page = client.get(local_path(links_in(ask)[0])).get_data(as_text=True)
    assert "You are asked as a manager of the group naf" in page


# -- the one with an old account --------------------------------------------------------------

def test_naming_an_expired_account_reactivates_it_with_the_new_address(
        app, client, register_and_verify, root, smtp):
    decide(client, register_and_verify(category="student"))
    assert "expired 1" in app.test_cli_runner().invoke(
        args=["members", "expire", "--now", "2099-01-01T00:00:00Z"]).output
    new_address = "toru.iijima@desy.example"
    smtp.clear()
    register(client, account_name="toruiiji", email=new_address, institution="desy",
             previous_account="tiijima")
    # No second account and no dead end: the new address is confirmed first.
    assert not mails_to(smtp, "toru.iijima@kek.example")
    assert "tiijima" in body(mails_to(smtp, new_address, "confirm")[-1])
    assert "Thank you: your address is confirmed" in confirm(client, smtp, new_address)
    ask = mails_to(smtp, "anna.schmidt@desy.example", "reactivation request from")[-1]
    path = local_path(links_in(ask)[0])
    page = client.get(path).get_data(as_text=True)
    assert "reactivation of an existing account" in page
    assert "toru.iijima@kek.example" in page and new_address in page
    decide(client, path)
    person = read_entry(root, f"uid=tiijima,{PEOPLE}")
    assert person.portalStatus.value == "active"
    assert person.portalHomeInstitution.value == "desy"
    assert person.portalContactMail.value == new_address
    assert read_entry(root, f"uid=toruiiji,{PEOPLE}") is None
    [ready] = mails_to(smtp, new_address, "your membership is active again")
    assert "tiijima" in body(ready)


def test_a_failed_login_says_how_an_expired_member_gets_back(client, member):
    """The same answer for every failure (nothing tells whether the account
    exists or expired), but it names the way back."""
    page = login(client, password="Not-the-password-1").get_data(as_text=True)
    assert "If your membership expired" in page and 'href="/reactivate"' in page


# -- the member who corrects their record -----------------------------------------------------

def test_a_member_asks_for_another_category_and_the_ir_approves(client, member, root, smtp):
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    html = client.get("/account").get_data(as_text=True)
    assert "Change category" in html
    client.post("/account/category", data={"csrf_token": csrf_token(html),
                                           "category": "physicist-postdoc"})
    assert "waits for approval" in client.get("/account").get_data(as_text=True)
    [ask] = mails_to(smtp, "toru.sato@kek.example", "asks for the category")
    assert "Physicist - postdoc" in body(ask) and "asks for membership" not in body(ask)
    path = local_path(links_in(ask)[0])
    page = client.get(path).get_data(as_text=True)
    assert "Change of category to Physicist - postdoc" in page
    decide(client, path)
    person = read_entry(root, f"uid=tiijima,{PEOPLE}")
    assert person.portalCategory.value == "physicist-postdoc"
    assert any("member.category-changed" in e for e in person.portalAuditEvent.values)
    [done] = mails_to(smtp, "toru.iijima@kek.example", "your category is now")
    assert "Toru Sato (irkek)" in body(done)


def test_a_member_changes_the_institutional_address_through_a_link(client, member, root, smtp):
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    html = client.get("/account").get_data(as_text=True)
    client.post("/account/address", data={"csrf_token": csrf_token(html),
                                          "email": "t.iijima@desy.example"})
    person = read_entry(root, f"uid=tiijima,{PEOPLE}")
    assert person.portalContactMail.value == "toru.iijima@kek.example"  # not yet
    [mail] = mails_to(smtp, "t.iijima@desy.example", "confirm your new address")
    path = local_path(links_in(mail)[0])
    page = client.get(path).get_data(as_text=True)  # opening changes nothing
    assert read_entry(root, f"uid=tiijima,{PEOPLE}").portalContactMail.value == \
        "toru.iijima@kek.example"
    response = client.post(path, data={"csrf_token": csrf_token(page)})
    assert "Address changed" in response.get_data(as_text=True)
    assert read_entry(root, f"uid=tiijima,{PEOPLE}").portalContactMail.value == \
        "t.iijima@desy.example"
    assert mails_to(smtp, "toru.iijima@kek.example", "institutional address was changed")
    assert client.get(path).status_code == 404  # acts once


def test_a_member_corrects_names_and_keeps_the_old_address_as_alias(client, member, root):
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    html = client.get("/account").get_data(as_text=True)
    response = client.post("/account/names", data={
        "csrf_token": csrf_token(html), "given_name": "Tooru", "middle_name": "",
        "family_name": "Iijima"}, follow_redirects=True)
    assert "tooru.iijima@example.org" in response.get_data(as_text=True)
    person = read_entry(root, f"uid=tiijima,{PEOPLE}")
    assert person.givenName.value == "Tooru" and person.cn.value == "Tooru Iijima"
    assert person.mail.values[0] == "tooru.iijima@example.org"
    assert "toru.iijima@example.org" in person.mail.values  # the old one, an alias
    assert "tooru" in person.portalNameKey.value  # the duplicate check finds the new name
