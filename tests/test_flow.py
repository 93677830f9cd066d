"""Register -> confirm -> IR approves from the mail link -> member in LDAP,
against a real slapd and a real SMTP server."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import ldap3
import pytest

from app.directory import DirectoryUnavailable, NoSuchEntry
from app.services.links import ReviewLink
from helpers import (
    MAIN_GROUP,
    PEOPLE,
    REQUESTS,
    STRONG_PASSWORD,
    binds,
    csrf_token,
    forge_link,
    form_errors,
    links_in,
    local_path,
    mails_to,
    post_registration,
    race,
    read_entry,
    record_approval_only,
    valid_form,
)


def test_registration_writes_a_pending_request_and_mails_a_confirmation_link(client, root, smtp):
    response = post_registration(client)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "We received your registration for Example Collaboration. Desired account name:" in page
    assert "tiijima" in page

    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert entry.portalRequestStatus.value == "pending-verification"
    assert entry.portalContactMail.value == "toru.iijima@kek.example"
    assert entry.portalCollabMail.value == "toru.iijima@example.org"
    assert entry.portalConditionsVersion.value == "2026-01"
    stored_hash = entry.portalPasswordHash.raw_values[0]
    assert stored_hash.startswith(b"{ARGON2}$argon2id$")
    assert STRONG_PASSWORD.encode() not in stored_hash

    [mail] = mails_to(smtp, "toru.iijima@kek.example")
    assert "confirm your e-mail address" in mail["Subject"]
    assert mail.get_body(preferencelist=("html",)) is not None
    # The confirmation, then the status page (tests/test_status.py).
    link, status = links_in(mail)
    assert link.startswith("http://portal.test/register/verify/")
    assert status.startswith("http://portal.test/register/status/")
    assert STRONG_PASSWORD not in mail.as_string()


def test_whole_flow_ends_with_a_member_who_can_bind(client, root, smtp, slapd):
    post_registration(client)
    verify_path = local_path(links_in(mails_to(smtp, "toru.iijima@kek.example")[0])[0])

    # GET (as a mail scanner would) changes nothing.
    for _ in range(2):
        page = client.get(verify_path, headers={"User-Agent": "Mail-Scanner/1.0"})
        assert page.status_code == 200
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").portalRequestStatus.value == \
        "pending-verification"
    assert not [m for m in smtp.messages if "membership request from" in str(m["Subject"])]

    client.post(verify_path, data={"csrf_token": csrf_token(page.get_data(as_text=True))})
    request_entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert request_entry.portalRequestStatus.value == "pending-approval"
    [review_mail] = mails_to(smtp, "toru.sato@kek.example")  # the KEK IR
    review_path = local_path(links_in(review_mail)[0])

    page = client.get(review_path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for shown in ("Toru Iijima", "toru.iijima@kek.example", "PhD student",
                  "toru.iijima@example.org", "High Energy Accelerator Research Organization"):
        assert shown in html
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None

    response = client.post(review_path, data={"csrf_token": csrf_token(html),
                                              "decision": "approve"})
    assert response.status_code == 200
    assert "Approved" in response.get_data(as_text=True)

    person = read_entry(root, f"uid=tiijima,{PEOPLE}")
    classes = set(person.objectClass.values)
    assert {"inetOrgPerson", "posixAccount", "portalMember"} <= classes
    assert person.portalStatus.value == "active"
    assert person.portalHomeInstitution.value == "kek"
    assert person.portalCategory.value == "phd-student"
    assert person.mail.value == "toru.iijima@example.org"
    assert person.gidNumber.value == 30000
    assert person.uidNumber.value >= 40000
    assert person.pwdPolicySubentry.value == "cn=initial,ou=policies,dc=example,dc=org"
    deadline = person.portalInitialPasswordDeadline.value - person.portalMemberSince.value
    assert deadline.days == 5
    root.search(MAIN_GROUP, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert f"uid=tiijima,{PEOPLE}" in root.entries[0].member.values
    root.search(f"uid=tiijima,{PEOPLE}", "(objectClass=*)", ldap3.BASE, attributes=["memberOf"])
    assert MAIN_GROUP in root.entries[0].memberOf.values

    request_entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert request_entry.portalRequestStatus.value == "approved"
    assert "irkek" in request_entry.portalDecidedBy.value
    assert request_entry.portalDecidedFrom.value == "127.0.0.1"
    assert "portalPasswordHash" not in request_entry.entry_attributes
    actions = [e for e in request_entry.portalAuditEvent.values]
    assert any('"request.approved"' in a and '"irkek"' in a for a in actions)

    [ready] = mails_to(smtp, "toru.iijima@kek.example", "is ready")
    body = ready.get_body(preferencelist=("plain",)).get_content()
    assert "tiijima" in body and "5 days" in body
    assert STRONG_PASSWORD not in ready.as_string()

    # Another service binds as the new member with the initial password.
    assert binds(slapd, f"uid=tiijima,{PEOPLE}", STRONG_PASSWORD)

    # The link works once: a second click says who approved it and when.
    again = client.get(review_path).get_data(as_text=True)
    assert "already approved by Toru Sato (irkek)" in again
    again = client.post(review_path, data={"csrf_token": csrf_token(html), "decision": "approve"})
    assert "already approved by" in again.get_data(as_text=True)
    root.search(PEOPLE, "(uid=tiijima)", attributes=["uid"])
    assert len(root.entries) == 1


def test_reject_needs_a_reason_and_mails_it(client, root, smtp, register_and_verify):
    review_path = register_and_verify()
    html = client.get(review_path).get_data(as_text=True)
    response = client.post(review_path, data={"csrf_token": csrf_token(html),
                                              "decision": "reject", "reason": "  "})
    assert response.status_code == 400
    assert "Give the reason" in response.get_data(as_text=True)
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").portalRequestStatus.value == \
        "pending-approval"

    reason = "Not a member of our group <b>&</b>"
    client.post(review_path, data={"csrf_token": csrf_token(html), "decision": "reject",
                                   "reason": reason})
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert entry.portalRequestStatus.value == "rejected"
    assert entry.portalDecisionReason.value == reason
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None
    [mail] = mails_to(smtp, "toru.iijima@kek.example", "not approved")
    text = mail.get_body(preferencelist=("plain",)).get_content()
    assert reason in text
    assert "Decided by Toru Sato (irkek) on " in text  # who decided, and when
    assert "&lt;b&gt;" in mail.get_body(preferencelist=("html",)).get_content()
    assert "already rejected by" in client.get(review_path).get_data(as_text=True)


def test_state_changes_need_the_csrf_token(client, root, register_and_verify):
    review_path = register_and_verify()
    response = client.post(review_path, data={"decision": "approve"})
    assert response.status_code == 400
    response = client.post(review_path, data={"decision": "approve", "csrf_token": "forged"})
    assert response.status_code == 400
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").portalRequestStatus.value == \
        "pending-approval"


def test_tampered_and_swapped_purpose_links_are_refused(client, root, smtp, register_and_verify):
    review_path = register_and_verify()
    token = review_path.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get(f"/review/{tampered}").status_code == 404
    verify_link = links_in(mails_to(smtp, "toru.iijima@kek.example")[0])[0]
    verify_token = verify_link.rsplit("/", 1)[1]
    # A (genuine) confirmation link used as a review link.
    assert client.get(f"/review/{verify_token}").status_code == 404
    assert client.get(f"/register/verify/{token}").status_code == 404
    assert read_entry(root, f"uid=tiijima,{REQUESTS}").portalRequestStatus.value == \
        "pending-approval"


def test_expired_review_link_is_refused(app, client, root, register_and_verify):
    register_and_verify()
    old = forge_link(app, ReviewLink.purpose, {"r": "tiijima", "ir": "irkek"},
                 age_seconds=15 * 86400)
    fresh = forge_link(app, ReviewLink.purpose, {"r": "tiijima", "ir": "irkek"})
    response = client.get(f"/review/{old}")
    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert client.get(f"/review/{fresh}").status_code == 200


def test_representative_of_another_institution_cannot_decide(app, client, root,
                                                             register_and_verify):
    review_path = register_and_verify()  # a KEK request
    foreign = forge_link(app, ReviewLink.purpose, {"r": "tiijima", "ir": "irdesy"})
    response = client.get(f"/review/{foreign}")
    assert response.status_code == 403
    html = client.get(review_path).get_data(as_text=True)
    response = client.post(f"/review/{foreign}", data={"csrf_token": csrf_token(html),
                                                      "decision": "approve"})
    assert response.status_code == 403
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None


def test_two_concurrent_approvals_create_one_account(app, root, smtp, register_and_verify):
    review_path = register_and_verify()

    def approve(n, prepared):
        if prepared is None:
            client = app.test_client()
            return client, csrf_token(client.get(review_path).get_data(as_text=True))
        client, token = prepared
        response = client.post(review_path, data={"csrf_token": token, "decision": "approve"})
        return response.get_data(as_text=True)

    results = race(2, approve)
    assert sum("already approved by" in r for r in results) == 1
    assert sum("<h1>Approved</h1>" in r for r in results) == 1
    root.search(PEOPLE, "(uid=tiijima)", attributes=["uid"])
    assert len(root.entries) == 1
    assert len([m for m in smtp.messages if "is ready" in str(m["Subject"])]) == 1
    entry = read_entry(root, f"uid=tiijima,{REQUESTS}")
    assert sum('"request.approved"' in a for a in entry.portalAuditEvent.values) == 1


COUNTER = "cn=uidnumber,ou=counters,dc=example,dc=org"


def test_concurrent_approvals_take_each_uid_number_once_without_retrying(app, root):
    """16 approvals at once, 5 each: every number once, in one run from
    the counter's value, and one directory operation per number (the
    increment returns its own value; a compare-and-swap retried 2.4 times
    an approval at this concurrency)."""
    directory = app.extensions["portal"].directory
    root.search(COUNTER, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber"])
    start = root.entries[0].uidNumber.value
    operations: list[int] = []
    original_call = directory._call

    def counting(operation):
        operations.append(1)
        return original_call(operation)

    directory._call = counting
    try:
        results = race(16, lambda n, ready: [directory.allocate_uid_number() for _ in range(5)]
                       if ready else True)
    finally:
        del directory._call
    taken = sorted(number for numbers in results for number in numbers)
    assert taken == list(range(start, start + 80))
    assert len(operations) == 80
    root.search(COUNTER, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber"])
    assert root.entries[0].uidNumber.value == start + 80


def test_a_missing_uid_counter_is_an_error_not_a_number(app, root):
    directory = app.extensions["portal"].directory
    root.search(COUNTER, "(objectClass=*)", ldap3.BASE, attributes=["uidNumber"])
    start = root.entries[0].uidNumber.value
    root.delete(COUNTER)
    try:
        with pytest.raises(NoSuchEntry, match="uidnumber"):
            directory.allocate_uid_number()
    finally:
        assert root.add(COUNTER, ["portalCounter"], {"cn": "uidnumber", "uidNumber": start})


def test_the_decision_and_the_new_member_come_back_as_written(app, client, root,
                                                             register_and_verify):
    """The records the decision's modify and the member's add return (the
    post-read control) are those a read gives afterwards; a stored value
    that is not ASCII where the bytes count (a hash) is read again rather
    than taken from the control's decoded text."""
    register_and_verify()
    directory = app.extensions["portal"].directory
    stored_hash = directory.request("tiijima", with_password_hash=True).password_hash
    odd_hash = b"{X}\xff\xfe\x80abc"
    root.modify(f"uid=tiijima,{REQUESTS}", {"portalPasswordHash": [(ldap3.MODIFY_REPLACE,
                                                                      [odd_hash])]})
    decided = directory.record_decision(
        "tiijima", 0, "approved", approver="irkek", approver_label="Toru Sato (irkek)",
        at=datetime(2026, 12, 2, tzinfo=timezone.utc), from_="127.0.0.1",
        audit_event='{"action": "request.approved"}')
    assert decided == directory.request("tiijima", with_password_hash=True)
    assert decided.password_hash == odd_hash and decided.status == "approved"
    request = replace(decided, password_hash=stored_hash)
    completion = app.extensions["portal"].registration
    member = completion.member_entry_for(request, datetime.now(timezone.utc),
                                         mail="toru.iijima@example.org", uid_number=45678)
    added = directory.add_member(member)
    assert added == replace(directory.person("tiijima"), groups=())
    assert directory.person("tiijima").groups  # the dynamic main group's memberOf


def test_two_concurrent_registrations_of_one_name_make_one_request(app, root):
    def register(n, prepared):
        if prepared is None:
            client = app.test_client()
            return client, csrf_token(client.get("/register").get_data(as_text=True))
        client, token = prepared
        return client.post("/register", data={"csrf_token": token, **valid_form(
            email=f"person{n}@kek.example", given_name="Toru", family_name="Iijima")})

    results = race(2, register)
    assert sorted(r.status_code for r in results) == [200, 302]
    [refused] = [r for r in results if r.status_code == 200]
    assert any("taken" in e for e in form_errors(refused.get_data(as_text=True)))
    root.search(REQUESTS, "(uid=tiijima)", attributes=["uid"])
    assert len(root.entries) == 1


def test_approval_interrupted_after_the_decision_is_completed_later(app, client, root, smtp,
                                                                   register_and_verify):
    """The decision is recorded first; the account is completed by the CLI
    (opening the review link again completes nothing)."""
    review = register_and_verify()
    portal = app.extensions["portal"]
    # Record the decision only, as if the process died right after it.
    record_approval_only(portal, "tiijima")
    assert client.get(review).status_code == 200
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is None
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 1" in result.output
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is not None
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 0" in result.output
    assert len([m for m in smtp.messages if "is ready" in str(m["Subject"])]) == 1


@pytest.mark.parametrize("institution,ir_mail", [("desy", "anna.schmidt@desy.example"),
                                                 ("infn", "giulia.rossi@infn.example")])
def test_the_request_goes_to_the_representative_of_the_chosen_institution(
        client, smtp, register_and_verify, institution, ir_mail):
    register_and_verify(institution=institution)
    assert mails_to(smtp, ir_mail)
    assert not mails_to(smtp, "toru.sato@kek.example")


def test_a_crash_after_the_entry_was_added_is_completed_once(app, client, root, smtp,
                                                             register_and_verify):
    """Killed between the member entry and the completion/mail step: recovery
    finishes the rest, once. The member is in the (dynamic) main group as
    soon as the entry is there."""
    register_and_verify()
    portal = app.extensions["portal"]
    record_approval_only(portal, "tiijima")
    original = portal.directory.claim_completion

    def crash(*args):
        raise SystemExit("killed")  # the process dies right after the entry was added
    portal.directory.claim_completion = crash
    with pytest.raises(SystemExit):
        portal.approval.complete(portal.directory.request("tiijima"))
    portal.directory.claim_completion = original
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is not None
    assert not [m for m in smtp.messages if "is ready" in str(m["Subject"])]

    runner = app.test_cli_runner()
    assert "completed 1" in runner.invoke(args=["portal", "complete-approvals"]).output
    assert "completed 0" in runner.invoke(args=["portal", "complete-approvals"]).output
    root.search(MAIN_GROUP, "(objectClass=*)", ldap3.BASE, attributes=["member"])
    assert f"uid=tiijima,{PEOPLE}" in root.entries[0].member.values
    assert len([m for m in smtp.messages if "is ready" in str(m["Subject"])]) == 1


def test_approval_stands_when_mail_is_down_and_the_mail_follows(app, client, root, smtp,
                                                                register_and_verify):
    review = register_and_verify()
    html = client.get(review).get_data(as_text=True)
    smtp.refuse_with = "421 4.3.2 service not available"
    response = client.post(review, data={"csrf_token": csrf_token(html), "decision": "approve"})
    assert "<h1>Approved</h1>" in response.get_data(as_text=True)
    assert read_entry(root, f"uid=tiijima,{PEOPLE}") is not None
    smtp.refuse_with = None
    assert "sent 1" in app.test_cli_runner().invoke(args=["mail", "retry"]).output
    assert [m for m in smtp.messages if "is ready" in str(m["Subject"])]


def test_approvers_never_asked_are_asked_by_complete_approvals(app, client, smtp, root):
    portal = app.extensions["portal"]
    original = portal.reviewers.notify

    def fail(request):
        raise DirectoryUnavailable("down")
    portal.reviewers.notify = fail
    post_registration(client)
    path = local_path(links_in(mails_to(smtp, "toru.iijima@kek.example")[-1])[0])
    html = client.get(path).get_data(as_text=True)
    assert client.post(path, data={"csrf_token": csrf_token(html)}).status_code == 503
    portal.reviewers.notify = original
    assert not mails_to(smtp, "toru.sato@kek.example")
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 1" in result.output, result.output
    assert mails_to(smtp, "toru.sato@kek.example")
    result = app.test_cli_runner().invoke(args=["portal", "complete-approvals"])
    assert "completed 0" in result.output


def test_complete_approvals_goes_on_after_a_failing_request(app, client, root, register_and_verify):
    portal = app.extensions["portal"]
    register_and_verify()
    record_approval_only(portal, "tiijima")
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
