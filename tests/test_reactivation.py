"""Reactivation: same account name and history, IR approval, new password."""
from __future__ import annotations

import json

import ldap3
import pytest
from itsdangerous import URLSafeTimedSerializer

from app.directory import DirectoryUnavailable
from app.services.audit import Actor
from helpers import (
    MAIN_GROUP,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    binds,
    csrf_token,
    decide,
    forge_link,
    links_in,
    local_path,
    mails_to,
    mails_with,
    post_registration,
    read_entry,
    record_approval_only,
    wait_for_mail,
)

DN = f"uid=tiijima,{PEOPLE}"
CONTACT = "toru.iijima@kek.example"


def ask(client, login: str, institution: str = "desy"):
    html = client.get("/reactivate").get_data(as_text=True)
    response = client.post("/reactivate", data={"csrf_token": csrf_token(html), "login": login,
                                                "institution": institution})
    response.close()  # the mail goes out once the response is done
    return response


@pytest.fixture
def expired_member(app, client, register_and_verify, root):
    decide(client, register_and_verify(category="student"))
    result = app.test_cli_runner().invoke(
        args=["members", "expire", "--now", "2099-01-01T00:00:00Z"])
    assert "expired 1" in result.output
    return "tiijima"


def test_full_reactivation_by_mail_link(client, expired_member, root, slapd, smtp):
    uid_number = read_entry(root, DN).uidNumber.value
    before = len(smtp.messages)
    page = ask(client, "tiijima").get_data(as_text=True)
    assert "If we know this account name or address" in page
    mail = wait_for_mail(smtp, "reactivate your membership", before)
    assert mail["To"] == CONTACT
    path = local_path(links_in(mail)[0])

    html = client.get(path).get_data(as_text=True)  # GET: nothing changes
    assert '<option selected value="desy">' in html
    root.search(REQUESTS, "(portalRequestType=reactivation)", attributes=["uid"])
    assert root.entries == []

    before = len(smtp.messages)
    response = client.post(path, data={"csrf_token": csrf_token(html), "institution": "desy",
                                       "category": "phd-student"})
    assert "Reactivation requested" in response.get_data(as_text=True)
    assert "asked before" in client.get(path).get_data(as_text=True)
    review_mail = [m for m in smtp.messages[before:] if m["To"] == "anna.schmidt@desy.example"][0]
    assert "reactivation request from Toru Iijima" in review_mail["Subject"]
    assert "Reactivation of the existing account tiijima" in \
        review_mail.get_body(preferencelist=("plain",)).get_content()
    review = local_path(links_in(review_mail)[0])
    html = client.get(review).get_data(as_text=True)
    assert "reactivation of an existing account" in html
    before = len(smtp.messages)
    client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})

    person = read_entry(root, DN)
    assert person.portalStatus.value == "active"
    assert person.portalHomeInstitution.value == "desy"
    assert person.portalCategory.value == "phd-student"
    assert "portalMemberUntil" not in person.entry_attributes  # open-ended category
    assert person.uidNumber.value == uid_number  # the same account
    root.search(MAIN_GROUP, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert DN in root.entries[0].member.values
    assert not binds(slapd, DN, STRONG_PASSWORD)  # a new password must be set
    actions = [json.loads(e)["action"] for e in person.portalAuditEvent.values]
    assert {"member.created", "member.expired", "member.reactivated"} <= set(actions)

    # Not the reset mail ("if you did not ask for it..."): active again, and
    # a link that still works days later (people read mail once a week).
    ready = wait_for_mail(smtp, "your membership is active again", before)
    body = ready.get_body(preferencelist=("plain",)).get_content()
    assert "reactivation was approved" in body and "14 days" in body
    assert "did not ask" not in body and not mails_with(smtp, "reset your password", before)
    path = local_path(links_in(ready)[0])
    token = path.rsplit("/", 1)[1]
    _, payload = URLSafeTimedSerializer("-").loads_unsafe(token)
    path = path.replace(token, forge_link(client.application, "reset-password", payload,
                                          age_seconds=6 * 86400))
    html = client.get(path).get_data(as_text=True)
    assert "csrf_token" in html, html
    client.post(path, data={"csrf_token": csrf_token(html), "password": "Harbour-lantern-quartz-58",
                            "password_confirm": "Harbour-lantern-quartz-58"})
    assert binds(slapd, DN, "Harbour-lantern-quartz-58")


def test_same_answer_for_unknown_and_active_accounts(client, root, smtp):
    before = len(smtp.messages)
    # One after the other, the active account last: once its mail is in, the
    # work after the earlier responses is done too.
    pages = {ask(client, login).get_data(as_text=True).split("<main")[1]
             for login in ("nobody1", "nobody@nowhere.example", "irkek")}
    assert len(pages) == 1
    mail = wait_for_mail(smtp, "your membership is active", before)
    assert mail["To"] == "toru.sato@kek.example"
    assert not mails_with(smtp, "reactivate your", before)


def test_host_lab_account_is_prepared_instead_of_a_new_one(client, root, slapd, smtp):
    host_dn = f"uid=hlabacct,{PEOPLE}"
    assert root.add(host_dn, ["inetOrgPerson"], {
        "uid": "hlabacct", "cn": "Maria Lopez", "givenName": "Maria", "sn": "Lopez",
        "mail": "maria.lopez@lab.example", "userPassword": "Old-lab-password-1"})
    # Registering and naming the old account leads to it, with the new
    # address (confirmed first), never to a second account or a dead end.
    response = post_registration(client, given_name="Maria", family_name="Lopez",
                                 account_name="mlopez", email="maria.lopez@kek.example",
                                 previous_account="hlabacct", category="technical-staff")
    assert response.status_code == 302
    assert not mails_to(smtp, "maria.lopez@lab.example")
    verify = local_path(links_in(mails_to(smtp, "maria.lopez@kek.example", "confirm")[-1])[0])
    html = client.get(verify).get_data(as_text=True)
    before = len(smtp.messages)
    client.post(verify, data={"csrf_token": csrf_token(html)})
    review_mail = [m for m in smtp.messages[before:] if m["To"] == "toru.sato@kek.example"][0]
    assert "reactivation request from Maria Lopez" in review_mail["Subject"]
    review = local_path(links_in(review_mail)[0])
    html = client.get(review).get_data(as_text=True)
    client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})

    entry = read_entry(root, host_dn)
    assert {"portalMember", "posixAccount", "inetOrgPerson"} <= set(entry.objectClass.values)
    assert entry.portalStatus.value == "active"
    assert entry.portalHomeInstitution.value == "kek"
    assert "maria.lopez@example.org" in entry.mail.values  # collaboration address added
    assert "maria.lopez@lab.example" in entry.mail.values  # the lab's kept
    assert entry.uidNumber.value >= 40000 and entry.gidNumber.value == 30000
    root.search(MAIN_GROUP, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert host_dn in root.entries[0].member.values
    root.search(PEOPLE, "(uid=mlopez)", attributes=["uid"])
    assert root.entries == []  # no second account
    assert entry.portalContactMail.value == "maria.lopez@kek.example"
    assert wait_for_mail(smtp, "your membership is active again", before)["To"] == \
        "maria.lopez@kek.example"


def test_reactivation_interrupted_never_revives_the_old_password(app, client, root, slapd, smtp,
                                                                register_and_verify):
    decide(client, register_and_verify(category="student"))
    portal = app.extensions["portal"]
    app.test_cli_runner().invoke(args=["members", "expire", "--now", "2099-01-01T00:00:00Z"])
    person = portal.directory.person("tiijima")
    with app.app_context():
        portal.reactivation.send_link(person, "kek")
        link = local_path(links_in(mails_with(smtp, "reactivate your")[-1])[0])
        request = portal.reactivation.submit(link.rsplit("/", 1)[1], "kek", "phd-student",
                                             Actor("tiijima"))
    record_approval_only(portal, request.id)
    original = portal.directory.set_password

    def fail(*args):
        raise DirectoryUnavailable("down")
    portal.directory.set_password = fail
    with app.app_context(), pytest.raises(DirectoryUnavailable):
        portal.approval.complete(portal.directory.request(request.id))
    portal.directory.set_password = original
    bind = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE), f"uid=tiijima,{PEOPLE}",
                            STRONG_PASSWORD)
    assert not bind.bind()  # still locked, old password never works again
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 1" in result.output
    assert not bind.bind()  # replaced: only the reset link mailed now sets one
    assert [m for m in smtp.messages if "your membership is active again" in m["Subject"]]
