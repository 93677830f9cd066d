"""The paper route: the helpdesk types in a signed paper form, the IR
approves as for every registration (or the helpdesk, when the collaboration
allows it), and the new member sets the first password from the mail."""
from __future__ import annotations

import pytest

from app import create_app
from app.devstack.slapd import DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD
from app.extensions import limiter
from helpers import (
    NEW_PASSWORD,
    PEOPLE,
    REQUESTS,
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
)
from test_helpdesk import demo_accounts_restored, logged_in  # noqa: F401 (autouse fixture)

PAPER = {"given_name": "Toru", "family_name": "Iijima", "account_name": "tiijima",
         "email": "toru.iijima@kek.example", "institution": "kek", "category": "phd-student",
         "language": "en", "verified_by": "Yuki Sato (KEK secretariat)",
         "note": "Form received by post on 3 November"}
CONTACT = PAPER["email"]


@pytest.fixture
def helpdesk(app):
    return logged_in(app, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)


def file_paper(client, **changes):
    page = client.get("/helpdesk/requests/new").get_data(as_text=True)
    data = {k: v for k, v in {**PAPER, **changes}.items() if v is not None}
    return client.post("/helpdesk/requests/new", data={"csrf_token": csrf_token(page), **data})


def initial_password_path(smtp) -> str:
    mail = mails_to(smtp, CONTACT, "is ready")[-1]
    return next(local_path(u) for u in links_in(mail) if "/password/initial/" in u)


def set_password(client, path: str, password: str):
    page = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(page), "password": password,
                                   "password_confirm": password})


def test_paper_request_goes_to_the_ir_and_the_member_sets_the_password(
        app, helpdesk, root, smtp, slapd):
    response = file_paper(helpdesk)
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    assert response.headers["Location"].endswith("/helpdesk/requests/tiijima")
    stored = read_entry(root, f"uid=tiijima,{REQUESTS}", ["*"])
    assert stored.portalRequestStatus == "pending-approval"
    assert stored.portalPaperVerifiedBy == PAPER["verified_by"]
    assert "portalPaperRequest" in stored.objectClass.values
    assert "portalPasswordHash" not in stored.entry_attributes
    assert not mails_to(smtp, CONTACT, "confirm")  # the helpdesk saw the signed form
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert "Yuki Sato (KEK secretariat)" in page and "Paper registration filed" in page
    assert 'id="no-decision"' in page  # the IR decides (the setting is off)
    # The IR's review mail and page, as for every registration.
    review = local_path(links_in(mails_with(smtp, "membership request from")[-1])[0])
    response = decide(app.test_client(), review)
    assert response.status_code == 200
    person = read_entry(root, f"uid=tiijima,{PEOPLE}", ["*"])
    assert person.portalStatus == "active"
    mail = mails_to(smtp, CONTACT, "is ready")[-1]
    body = mail.get_body(preferencelist=("plain",)).get_content()
    assert "came on paper" in body and "initial password you chose" not in body
    path = initial_password_path(smtp)
    member = app.test_client()
    # Opening the link changes nothing; a weak password is refused and the link stays.
    assert member.get(path).status_code == 200
    response = set_password(member, path, "tiijima12345")
    assert response.status_code == 200 and form_errors(response.get_data(as_text=True))
    response = set_password(member, path, "{SSHA}" + NEW_PASSWORD)
    assert "cannot start with a word in braces such as {SSHA}" in \
        "".join(form_errors(response.get_data(as_text=True)))
    response = set_password(member, path, NEW_PASSWORD)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert binds(slapd, f"uid=tiijima,{PEOPLE}", NEW_PASSWORD)
    # Logs in as everyone else: no change asked, straight to "My account".
    response = login(member, "tiijima", NEW_PASSWORD)
    assert response.headers["Location"].endswith("/account")
    page = member.get("/account").get_data(as_text=True)
    assert "First password set" in page
    # Once only.
    used = app.test_client().get(path)
    assert used.status_code == 410 and "just log in" in used.get_data(as_text=True)


def test_the_initial_password_link_expires_after_five_days_and_is_bound_to_its_purpose(
        app, helpdesk, smtp):
    file_paper(helpdesk)
    decide(app.test_client(), local_path(links_in(
        mails_with(smtp, "membership request from")[-1])[0]))
    path = initial_password_path(smtp)
    token = path.rsplit("/", 1)[1]
    client = app.test_client()
    # The same payload signed for a reset, or five days and an hour old.
    from itsdangerous import URLSafeTimedSerializer
    payload = URLSafeTimedSerializer(app.config["SECRET_KEY"],
                                     salt="portal.link.initial-password").loads(token)
    assert client.get(f"/password/initial/{forge_link(app, 'reset-password', payload)}"
                      ).status_code == 404
    old = forge_link(app, "initial-password", payload, age_seconds=5 * 86400 + 3600)
    assert client.get(f"/password/initial/{old}").status_code == 410
    assert client.get(f"/password/initial/{token[:-2]}xx").status_code == 404
    assert client.get(path).status_code == 200


@pytest.mark.parametrize("changes, field_error", [
    ({"email": "toru@gmail.com"}, "home institution"),
    ({"given_name": "T0ru"}, "digits"),
    ({"account_name": "ab"}, "too short"),
    ({"verified_by": ""}, "checked the signed paper form"),
    ({"institution": "nowhere"}, "institution from the list"),
])
def test_the_paper_form_checks_as_the_registration_form_does(helpdesk, root, changes,
                                                             field_error):
    response = file_paper(helpdesk, **changes)
    assert response.status_code == 200
    assert any(field_error in e for e in form_errors(response.get_data(as_text=True))), \
        form_errors(response.get_data(as_text=True))
    root.search(REQUESTS, "(objectClass=portalRequest)", attributes=["uid"])
    assert not root.entries  # nothing stored


def test_someone_on_record_is_shown_to_the_helpdesk_and_no_request_is_filed(
        helpdesk, root, client, register_and_verify, smtp):
    decide(client, register_and_verify())  # tiijima is a member with this address
    before = len(smtp.messages)
    response = file_paper(helpdesk, account_name="toruiiji")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'id="matches"' in page and 'href="/helpdesk/people/tiijima"' in page
    assert read_entry(root, f"uid=toruiiji,{REQUESTS}") is None
    assert len(smtp.messages) == before  # nobody is mailed: the helpdesk sees it all


@pytest.fixture
def approving_app(slapd, smtp, root, ratestore):
    application = create_app(portal_environment(
        slapd, smtp, PORTAL_RATELIMIT_STORAGE_URI=ratestore.uri(0),
        PORTAL_HELPDESK_MAY_APPROVE_PAPER="true"))
    with application.app_context():
        limiter.reset()
    return application


def test_with_the_setting_the_helpdesk_approves_a_paper_request_itself(approving_app, root,
                                                                       smtp):
    helpdesk = logged_in(approving_app, DEMO_HELPDESK, DEMO_HELPDESK_PASSWORD)
    assert file_paper(helpdesk).status_code == 302
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert 'id="approve"' in page and 'id="preview"' in page
    response = helpdesk.post("/helpdesk/requests/tiijima/approve", data={
        "csrf_token": csrf_token(page), "reason": "Signed by the KEK IR, checked in person"})
    assert response.status_code == 302
    assert read_entry(root, f"uid=tiijima,{PEOPLE}", ["portalStatus"]).portalStatus == "active"
    page = helpdesk.get("/helpdesk/requests/tiijima").get_data(as_text=True)
    assert "Decided by the helpdesk as the approver of last resort" in page
    assert "Signed by the KEK IR, checked in person" in page
    assert initial_password_path(smtp).startswith("/password/initial/")
