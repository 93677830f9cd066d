"""From My account: extra group applications and institution moves."""
from __future__ import annotations

import json

import ldap3
import pytest

from app.services.audit import Actor
from app.services.links import ReviewLink
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    STRONG_PASSWORD,
    change_password,
    csrf_token,
    decide,
    forge_link,
    links_in,
    local_path,
    login,
    mails_to,
    read_entry,
)

DN = f"uid=tiijima,{PEOPLE}"
NAF = "cn=naf,ou=groups,dc=example,dc=org"
MANAGER = "anna.schmidt@desy.example"     # irdesy is in cn=naf-managers


@pytest.fixture
def logged_in(client, member):
    """The KEK member logged in with a password of their own."""
    login(client)
    change_password(client, STRONG_PASSWORD, NEW_PASSWORD)
    return client


def post_from_account(client, path, **data):
    html = client.get("/account").get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(html), **data})


def member_of(root) -> tuple:
    root.search(DN, "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
    return tuple(root.entries[0].memberOf.values) if "memberOf" in root.entries[0] else ()


def test_group_application_approved_and_left(logged_in, root, smtp, client):
    assert "Apply to join" in client.get("/account").get_data(as_text=True)
    post_from_account(client, "/account/groups/naf/apply")
    assert "your application waits" in client.get("/account").get_data(as_text=True)
    response = post_from_account(client, "/account/groups/naf/apply")
    assert "already waiting" in client.get(response.headers["Location"]).get_data(as_text=True)

    # The group by its label in the collaboration file.
    [mail] = mails_to(smtp, MANAGER, "applies to join Analysis facility (NAF)")
    assert "join the group Analysis facility (NAF)" in mail.get_body(
        preferencelist=("plain",)).get_content()
    review = local_path(links_in(mail)[0])
    assert "Application to join the group Analysis facility (NAF)" in client.get(
        review).get_data(as_text=True)
    client.set_cookie("lang", "de")
    assert "Analyse-Infrastruktur (NAF)" in client.get(review).get_data(as_text=True)
    client.set_cookie("lang", "en")
    decide(client, review)
    assert NAF in member_of(root)
    assert mails_to(smtp, "toru.iijima@kek.example", "you joined")
    assert "Leave" in client.get("/account").get_data(as_text=True)

    post_from_account(client, "/account/groups/naf/leave")
    assert NAF not in member_of(root)
    actions = [json.loads(e)["action"] for e in read_entry(root, DN).portalAuditEvent.values]
    assert "member.joined-group" in actions and "member.left-group" in actions


def test_group_application_rejected_with_reason(logged_in, root, smtp, client):
    post_from_account(client, "/account/groups/naf/apply")
    [mail] = mails_to(smtp, MANAGER, "applies to join")
    decide(client, local_path(links_in(mail)[0]), "reject", "Quota exhausted")
    assert NAF not in member_of(root)
    [rejected] = mails_to(smtp, "toru.iijima@kek.example", "not approved")
    body = rejected.get_body(preferencelist=("plain",)).get_content()
    assert "join the group Analysis facility (NAF)" in body and "Quota exhausted" in body


def test_unknown_groups_cannot_be_applied_for(logged_in, client, root):
    response = post_from_account(client, "/account/groups/members/apply")
    assert "no such group" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_institution_move_approved_by_the_new_ir(logged_in, root, smtp, client):
    post_from_account(client, "/account/institution", institution="desy")
    [ask] = mails_to(smtp, "anna.schmidt@desy.example", "asks to move to Deutsches")
    [notice] = mails_to(smtp, "toru.sato@kek.example")[-1:]
    assert "asks to move" in notice["Subject"]
    objection = local_path(links_in(notice)[0])
    page = client.get(objection).get_data(as_text=True)
    assert "Object</button>" in page and "Approve</button>" not in page
    # An objection link cannot approve.
    assert decide(client, objection).status_code == 403
    assert read_entry(root, DN).portalHomeInstitution.value == "kek"

    decide(client, local_path(links_in(ask)[0]))
    person = read_entry(root, DN)
    assert person.portalHomeInstitution.value == "desy"
    assert "cn=members,ou=groups,dc=example,dc=org" in member_of(root)  # groups kept
    actions = [json.loads(e)["action"] for e in person.portalAuditEvent.values]
    assert "member.moved" in actions and "member.created" in actions  # history kept
    assert mails_to(smtp, "toru.iijima@kek.example", "home institution is now")


def test_the_old_ir_can_object(logged_in, root, smtp, client):
    post_from_account(client, "/account/institution", institution="infn")
    notice = mails_to(smtp, "toru.sato@kek.example", "asks to move")[0]
    decide(client, local_path(links_in(notice)[0]), "reject", "Still under contract with us")
    assert read_entry(root, DN).portalHomeInstitution.value == "kek"
    [rejected] = mails_to(smtp, "toru.iijima@kek.example", "not approved")
    assert "Still under contract" in rejected.get_body(preferencelist=("plain",)).get_content()
    # The new IR's link now shows the decision.
    ask = mails_to(smtp, "giulia.rossi@infn.example", "asks to move")[0]
    assert "already rejected" in client.get(local_path(links_in(ask)[0])).get_data(as_text=True)


def test_a_manager_cannot_approve_their_own_group_application(app, client, smtp, root):
    portal = app.extensions["portal"]
    with app.app_context():
        request = portal.changes.apply_for_group("irdesy", "naf", Actor("irdesy"))
    assert not mails_to(smtp, "anna.schmidt@desy.example", "applies")
    assert mails_to(smtp, "helpdesk@example.org")  # nobody else can approve: the helpdesk is told
    own = forge_link(app, ReviewLink.purpose, {"r": request.id, "ir": "irdesy", "st": 0})
    assert client.get(f"/review/{own}").status_code == 403
