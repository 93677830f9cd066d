"""Approvers never decide on themselves or twice; interrupted steps are
finished by 'flask portal complete-approvals'; withdrawn members lose their
sessions; members' private attributes stay private."""
from __future__ import annotations

import ldap3
import pytest
from itsdangerous import URLSafeTimedSerializer

from app.directory import DirectoryUnavailable
from app.services import tokens
from app.services.audit import Actor
from conftest import (
    PEOPLE, STRONG_PASSWORD, csrf_token, links_in, local_path, mails_to, read_entry,
)


def forged(app, payload):
    return "/review/" + URLSafeTimedSerializer(
        app.config["SECRET_KEY"], salt=f"portal.link.{tokens.REVIEW_REQUEST}").dumps(payload)


def test_a_manager_cannot_approve_their_own_group_application(app, client, smtp, root):
    portal = app.extensions["portal"]
    with app.app_context():
        request = portal.changes.apply_for_group("irdesy", "naf", Actor("irdesy"))
    assert not [m for m in mails_to(smtp, "anna.schmidt@desy.example") if "applies" in m["Subject"]]
    assert mails_to(smtp, "helpdesk@example.org")  # nobody else can approve: the helpdesk is told
    assert client.get(forged(app, {"r": request.id, "ir": "irdesy", "st": 0})).status_code == 403


def test_one_person_cannot_approve_two_stages(app, client, smtp, root, register_and_verify):
    review = register_and_verify(category="physicist-permanent", institution="infn")
    html = client.get(review).get_data(as_text=True)
    client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})
    # irinfn is both INFN's IR and the only board member.
    response = client.get(forged(app, {"r": "tiijima", "ir": "irinfn", "st": 1}))
    assert response.status_code == 403
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None


def test_approvers_never_asked_are_asked_by_complete_approvals(app, client, smtp, root):
    portal = app.extensions["portal"]
    original = portal.reviewers.notify

    def fail(request):
        raise DirectoryUnavailable("down")
    portal.reviewers.notify = fail
    from conftest import post_registration
    post_registration(client)
    path = local_path(links_in(mails_to(smtp, "toru.iijima@kek.example")[-1])[0])
    html = client.get(path).get_data(as_text=True)
    assert client.post(path, data={"csrf_token": csrf_token(html)}).status_code == 503
    portal.reviewers.notify = original
    assert not mails_to(smtp, "toru.sato@kek.example")
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 1" in result.output, result.output
    assert mails_to(smtp, "toru.sato@kek.example")
    assert "completed 0" in app.test_cli_runner().invoke(args=["portal", "complete-approvals"]).output


def test_complete_approvals_goes_on_after_a_failing_request(app, client, root, register_and_verify):
    portal = app.extensions["portal"]
    register_and_verify()
    portal.directory.transition_request("tiijima", "pending-approval", "approved", {}, '{"a": 1}')
    original = portal.approval.complete
    calls = []

    def flaky(request):
        calls.append(request.id)
        if len(calls) == 1:
            raise DirectoryUnavailable("flap")
        return original(request)
    portal.approval.complete = flaky
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert result.exit_code == 1 and "1 failed" in result.output
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 1" in result.output and read_entry(root, f"uid=tiijima,{PEOPLE}") is not None


@pytest.fixture
def member(client, register_and_verify):
    review = register_and_verify()
    html = client.get(review).get_data(as_text=True)
    client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})
    return "tiijima"


def test_suspension_ends_the_members_sessions(app, client, member):
    html = client.get("/login").get_data(as_text=True)
    client.post("/login", data={"csrf_token": csrf_token(html), "account_name": "tiijima",
                                "password": STRONG_PASSWORD})
    assert client.get("/account/password").status_code == 200
    app.test_cli_runner().invoke(args=["members", "suspend", "tiijima", "--reason", "x",
                                       "--by", "helpdesk"])
    assert client.get("/account/password").headers["Location"].endswith("/login")


def test_reactivation_interrupted_never_revives_the_old_password(app, client, root, slapd, smtp,
                                                                register_and_verify):
    review = register_and_verify(category="student")
    html = client.get(review).get_data(as_text=True)
    client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})
    portal = app.extensions["portal"]
    app.test_cli_runner().invoke(args=["members", "expire", "--now", "2099-01-01T00:00:00Z"])
    person = portal.directory.person("tiijima")
    with app.app_context():
        portal.reactivation.send_link(person, "kek")
        link = local_path(links_in([m for m in smtp.messages if "reactivate your" in m["Subject"]][-1])[0])
        request = portal.reactivation.submit(link.rsplit("/", 1)[1], "kek", "phd-student",
                                             Actor("tiijima"))
    portal.directory.transition_request(request.id, "pending-approval", "approved", {}, '{"b": 1}')
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
    assert [m for m in smtp.messages if "reset your password" in m["Subject"]]


def test_members_cannot_read_each_others_private_attributes(member, slapd):
    irkek = ldap3.Connection(ldap3.Server(slapd.url, get_info=ldap3.NONE),
                             f"uid=irkek,{PEOPLE}", "Demo-representative-2026", auto_bind=True)
    irkek.search(f"uid=tiijima,{PEOPLE}", "(objectClass=*)", ldap3.BASE,
                 attributes=["cn", "mail", "portalAuditEvent", "portalContactMail",
                             "portalSessionEpoch"])
    attributes = irkek.response[0]["attributes"]
    assert attributes["cn"] and attributes["mail"]
    assert not attributes.get("portalAuditEvent") and not attributes.get("portalContactMail")
    irkek.search(f"uid=irkek,{PEOPLE}", "(objectClass=*)", ldap3.BASE,
                 attributes=["portalContactMail"])
    # One's own neither: the portal shows it ("My account"); no service needs it.
    assert not irkek.response[0]["attributes"]["portalContactMail"]
