"""Issue 12, "Applicant": the status page of a request through its signed
link (from the confirmation mail and the "request created" page): the
stage, who decides, since when, when last reminded; resending the
confirmation mail and withdrawing the request, each once."""
from __future__ import annotations

import html as htmllib
import re
from datetime import datetime, timedelta, timezone

import pytest

from helpers import (
    REQUESTS,
    assert_accessible,
    csrf_token,
    decide,
    forge_link,
    links_in,
    local_path,
    mails_to,
    post_registration,
    read_entry,
)
from test_languages import assert_no_english, heading, translator

APPLICANT = "toru.iijima@kek.example"
IR = "toru.sato@kek.example"  # irkek, Toru Sato (demo data)
IB_MEMBER = "giulia.rossi@infn.example"  # irinfn, on the board
ENTRY = f"uid=tiijima,{REQUESTS}"


def text(page: str) -> str:
    page = re.sub(r"<(script|style|title)\b.*?</\1>", " ", page, flags=re.S)
    return re.sub(r"\s+", " ", htmllib.unescape(re.sub(r"<[^>]+>", " ", page))).strip()


def main_part(page: str) -> str:
    return page.split("<main", 1)[1].split("</main>", 1)[0]


def field(page: str, label: str) -> str:
    """The value of a <dt>label</dt><dd>value</dd> row."""
    match = re.search(rf"<dt>{re.escape(label)}</dt><dd>(.*?)</dd>", page, re.S)
    assert match, f"no {label!r} on the page"
    return text(match.group(1))


def payload(path: str) -> str:
    """A link's signed payload (tokens signed at another second differ after it)."""
    return path.rsplit("/", 1)[1].split(".", 1)[0]


def register(client, **changes) -> str:
    """Register; the status page's path from the "request created" page."""
    response = post_registration(client, **changes)
    assert response.status_code == 302, response.get_data(as_text=True)
    created = client.get("/register/created").get_data(as_text=True)
    match = re.search(r'href="(/register/status/[^"]+)"', created)
    assert match, "the created page has no status link"
    return match.group(1)


def verify_mail_links(smtp, address=APPLICANT) -> tuple[str, str]:
    """(confirmation, status) paths of the newest confirmation mail."""
    links = links_in(mails_to(smtp, address, "confirm")[-1])
    assert len(links) == 2, links
    return local_path(links[0]), local_path(links[1])


def confirm(client, path: str):
    page = client.get(path).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_token(page)})


def post_button(client, status_path: str, action: str, token_page: str | None = None):
    page = token_page or client.get(status_path).get_data(as_text=True)
    return client.post(f"{status_path}/{action}", data={"csrf_token": csrf_token(page)})


def review_path(smtp, address):
    return local_path(links_in(mails_to(smtp, address, "membership request")[-1])[0])


# -- the pages that lead there -----------------------------------------------------------------

def test_created_and_confirmed_pages_say_what_happens_next_and_link_the_status(client, smtp):
    status_path = register(client)
    created = text(client.get("/register/created").get_data(as_text=True))
    assert "a decision usually takes about 5 days" in created
    confirm_path, mailed_status = verify_mail_links(smtp)
    assert payload(mailed_status) == payload(status_path)  # one page from mail and page

    page = client.get(status_path)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    body = page.get_data(as_text=True)
    assert "waits for you to confirm your e-mail address" in text(body)
    assert "Resend the confirmation mail</button>" in body
    assert IR not in body and "Toru Sato" not in body  # nobody else yet

    confirmed = confirm(client, confirm_path).get_data(as_text=True)
    assert "A decision usually takes about 5 days" in text(confirmed)
    linked = re.search(r'href="(/register/status/[^"]+)"', confirmed).group(1)
    assert payload(linked) == payload(status_path)


def test_the_typical_time_is_a_setting(slapd, smtp, root, ratestore):
    from app import create_app
    from helpers import portal_environment
    app = create_app(portal_environment(slapd, smtp, PORTAL_TYPICAL_APPROVAL_DAYS="1"))
    client = app.test_client()
    register(client)
    assert "a decision usually takes about 1 day;" in text(
        client.get("/register/created").get_data(as_text=True))


# -- what the page shows, stage by stage -------------------------------------------------------

def test_each_stage_of_a_two_stage_chain_with_the_right_names(client, smtp, root):
    status_path = register(client, category="physicist-permanent")
    confirm(client, verify_mail_links(smtp)[0])

    page = client.get(status_path).get_data(as_text=True)
    assert "Approval stages" in page
    assert re.search(r'<li class="stage-current">institute representative — waiting', page)
    assert '<li class="stage-next">institutional board</li>' in page
    assert field(page, "Waits for") == "institute representative"
    assert field(page, "Who decides") == "Toru Sato"  # KEK's IR, by name, no address
    assert IR not in page and "irkek" not in page
    assert field(page, "Last reminded") == "not yet"
    since = read_entry(root, ENTRY).portalEmailVerifiedAt.value
    assert str(since.year) in field(page, "Waiting since")

    decide(client, review_path(smtp, IR))
    page = client.get(status_path).get_data(as_text=True)
    assert re.search(r'<li class="stage-done">institute representative ✔', page)
    assert re.search(r'<li class="stage-current">institutional board — waiting', page)
    assert field(page, "Waits for") == "institutional board"
    # A group's stage is named by the group, not by its members.
    assert field(page, "Who decides") == "institutional board"
    assert "Giulia Rossi" not in page and IB_MEMBER not in page and "Toru Sato" not in page

    board = review_path(smtp, IB_MEMBER)
    board_page = client.get(board).get_data(as_text=True)
    client.post(board, data={"csrf_token": csrf_token(board_page), "decision": "approve",
                             "reference": "Letter 7"})
    page = client.get(status_path).get_data(as_text=True)
    assert "Your request was approved" in page
    assert "Withdraw the request" not in page and "Waits for" not in page


# -- links that are not this request's ---------------------------------------------------------

def test_tampered_foreign_and_ended_links(app, client, smtp, root):
    status_path = register(client)
    confirm_path, _ = verify_mail_links(smtp)
    token = status_path.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert client.get(f"/register/status/{tampered}").status_code == 404
    # A confirmation link's token is for another purpose.
    verify_token = confirm_path.rsplit("/", 1)[1]
    assert client.get(f"/register/status/{verify_token}").status_code == 404
    assert client.get("/register/status/nonsense").status_code == 404
    # A genuine link for another request: the submission time does not match.
    other = forge_link(app, "request-status", {"r": "tiijima", "t": "2026-01-01T00:00:00+00:00"})
    assert client.get(f"/register/status/{other}").status_code == 410
    # A link whose request is long gone.
    gone = forge_link(app, "request-status", {"r": "tnobody", "t": "2020-01-01T00:00:00+00:00"})
    response = client.get(f"/register/status/{gone}")
    assert response.status_code == 410 and "no longer exists" in response.get_data(as_text=True)
    # A second registration with the same address replaces nothing (the
    # address is mailed its links): the first link keeps working, and the
    # second registrant's page looks like a new one's.
    assert client.get(status_path).status_code == 200
    new_path = register(app.test_client(), account_name="toruiiji")
    assert new_path != status_path
    assert client.get(status_path).status_code == 200
    assert client.get(new_path).status_code == 200
    assert read_entry(root, f"uid=tiijima,{REQUESTS}", ["uid"]) is not None


def test_a_known_applicants_status_link_shows_the_page_of_a_new_one(app, smtp, root):
    new, known = app.test_client(), app.test_client()
    new_path = register(new)
    # irkek's address, another account name: a strong match, no request made.
    known_path = register(known, account_name="tsato", email=IR, given_name="Toru",
                          family_name="Sato")
    assert read_entry(root, f"uid=tsato,{REQUESTS}") is None
    new_page = main_part(new.get(new_path).get_data(as_text=True))
    known_response = known.get(known_path)
    assert known_response.status_code == 200
    known_page = main_part(known_response.get_data(as_text=True))

    def same(page: str) -> str:
        page = re.sub(r"/register/status/[^\"/]+", "/register/status/T", page)
        return re.sub(r'name="csrf_token"[^>]*', "", page.replace("tsato", "tiijima"))

    # The minute of submission may differ; nothing else does.
    assert re.sub(r"<dt>Submitted</dt><dd>.*?</dd>", "", same(known_page)) == \
        re.sub(r"<dt>Submitted</dt><dd>.*?</dd>", "", same(new_page))
    before = len(smtp.messages)
    assert post_button(known, known_path, "resend").status_code == 200
    assert len(smtp.messages) == before  # nothing is sent to the typed address


# -- resend ------------------------------------------------------------------------------------

def test_resend_once_then_refused_and_the_earlier_link_still_works(client, smtp, root):
    status_path = register(client)
    first_confirm, _ = verify_mail_links(smtp)
    page = client.get(status_path).get_data(as_text=True)
    # Without the CSRF token: refused, nothing sent.
    assert client.post(f"{status_path}/resend").status_code == 400
    assert len(mails_to(smtp, APPLICANT, "confirm")) == 1

    response = post_button(client, status_path, "resend", page)
    assert response.status_code == 200
    assert "We sent the confirmation mail again" in response.get_data(as_text=True)
    assert len(mails_to(smtp, APPLICANT, "confirm")) == 2
    second_confirm, _ = verify_mail_links(smtp)
    assert any('"request.confirmation-resent"' in e
               for e in read_entry(root, ENTRY).portalAuditEvent.values)
    # At once again: throttled, nothing sent.
    again = post_button(client, status_path, "resend", page)
    assert again.status_code == 429
    assert "You can ask for it again after" in text(again.get_data(as_text=True))
    assert len(mails_to(smtp, APPLICANT, "confirm")) == 2
    assert "Resend the confirmation mail</button>" not in client.get(status_path).get_data(
        as_text=True)

    # Decided: the earlier link keeps working (both went to the same address).
    assert "your address is confirmed" in confirm(client, first_confirm).get_data(as_text=True)
    assert "used before" in client.get(second_confirm).get_data(as_text=True) or \
        read_entry(root, ENTRY).portalRequestStatus.value == "pending-approval"
    assert read_entry(root, ENTRY).portalRequestStatus.value == "pending-approval"
    confirmed = post_button(client, status_path, "resend", page)
    assert confirmed.status_code == 409
    assert len(mails_to(smtp, APPLICANT, "confirm")) == 2


def test_resend_is_allowed_again_after_the_interval(slapd, smtp, root, ratestore):
    from app import create_app
    from helpers import portal_environment
    smtp.clear()
    app = create_app(portal_environment(slapd, smtp, PORTAL_RESEND_INTERVAL_MINUTES="1"))
    client = app.test_client()
    status_path = register(client)
    page = client.get(status_path).get_data(as_text=True)
    assert post_button(client, status_path, "resend", page).status_code == 200
    assert post_button(client, status_path, "resend", page).status_code == 429
    # A minute later (the service's clock moved on).
    status = app.extensions["portal"].status
    later = datetime.now(timezone.utc) + timedelta(minutes=2)
    status._clock = lambda: later
    assert post_button(client, status_path, "resend", page).status_code == 200
    assert len(mails_to(smtp, APPLICANT, "confirm")) == 3


# -- withdraw ----------------------------------------------------------------------------------

def test_withdraw_with_a_confirmation_step_frees_the_name_once(app, client, smtp, root):
    status_path = register(client)
    confirm(client, verify_mail_links(smtp)[0])
    ir_path = review_path(smtp, IR)

    step = client.get(f"{status_path}/withdraw")
    assert step.status_code == 200
    assert "Yes, withdraw the request</button>" in step.get_data(as_text=True)
    assert read_entry(root, ENTRY).portalRequestStatus.value == "pending-approval"
    assert client.post(f"{status_path}/withdraw").status_code == 400  # no CSRF token
    assert read_entry(root, ENTRY).portalRequestStatus.value == "pending-approval"

    done = client.post(f"{status_path}/withdraw",
                       data={"csrf_token": csrf_token(step.get_data(as_text=True))})
    assert done.status_code == 200 and "is withdrawn" in done.get_data(as_text=True)
    entry = read_entry(root, ENTRY)
    assert entry.portalRequestStatus.value == "withdrawn"
    assert not entry.entry_attributes_as_dict.get("portalPasswordHash")
    events = [e for e in entry.portalAuditEvent.values if '"request.withdrawn"' in e]
    assert len(events) == 1 and '"actor": "applicant"' in events[0]

    # Refused afterwards: the link says it was withdrawn.
    again = client.post(f"{status_path}/withdraw",
                        data={"csrf_token": csrf_token(step.get_data(as_text=True))})
    assert again.status_code == 410 and "was withdrawn" in again.get_data(as_text=True)
    assert client.get(status_path).status_code == 410
    # The approver's link says so, with no buttons.
    ir_page = client.get(ir_path).get_data(as_text=True)
    assert "The applicant withdrew this request" in ir_page and "Approve</button>" not in ir_page
    approve = client.post(ir_path, data={"csrf_token": csrf_token(step.get_data(as_text=True)),
                                         "decision": "approve"})
    assert approve.status_code == 200 and "withdrew" in approve.get_data(as_text=True)
    assert read_entry(root, ENTRY).portalRequestStatus.value == "withdrawn"
    # The account name is free again: the same person registers anew.
    with app.app_context():
        assert not app.extensions["portal"].registration.account_name_taken("tiijima")
    assert post_registration(app.test_client()).status_code == 302


def test_an_unconfirmed_request_can_be_withdrawn_too(client, smtp, root):
    status_path = register(client)
    confirm_path, _ = verify_mail_links(smtp)
    step = client.get(f"{status_path}/withdraw").get_data(as_text=True)
    assert client.post(f"{status_path}/withdraw",
                       data={"csrf_token": csrf_token(step)}).status_code == 200
    assert read_entry(root, ENTRY).portalRequestStatus.value == "withdrawn"
    # Its confirmation link no longer confirms anything; it says why.
    page = client.get(confirm_path).get_data(as_text=True)
    assert "Request withdrawn" in page and "Confirm my address</button>" not in page
    assert client.post(confirm_path, data={"csrf_token": csrf_token(step)}).status_code == 200
    assert read_entry(root, ENTRY).portalRequestStatus.value == "withdrawn"
    assert not mails_to(smtp, IR)


def test_a_decided_request_cannot_be_withdrawn(client, smtp, root):
    status_path = register(client)
    confirm(client, verify_mail_links(smtp)[0])
    page = client.get(f"{status_path}/withdraw").get_data(as_text=True)
    decide(client, review_path(smtp, IR))
    response = client.post(f"{status_path}/withdraw", data={"csrf_token": csrf_token(page)})
    assert response.status_code == 409
    assert "decided already" in response.get_data(as_text=True)
    assert read_entry(root, ENTRY).portalRequestStatus.value == "approved"


# -- languages ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["de", "ja"])
def test_status_pages_in_german_and_japanese(client, smtp, lang):
    t = translator(lang)
    status_path = register(client)
    client.set_cookie("lang", lang)
    page = client.get(status_path).get_data(as_text=True)
    assert f'<html lang="{lang}">' in page
    assert heading(page) == t.gettext("Status of your request")
    assert t.gettext("Resend the confirmation mail") in page
    assert_no_english(page, lang)
    page = client.get("/register/created").get_data(as_text=True)
    assert t.gettext("See the status of your request") in page

    confirm(client, verify_mail_links(smtp)[0])
    page = client.get(status_path).get_data(as_text=True)
    assert t.gettext("Waiting since") in page and t.gettext("Last reminded") in page
    # The IR's name and the institution are directory data.
    assert_no_english(page.replace("Toru Sato", "").replace("High Energy Accelerator Research "
                                                            "Organization (KEK)", ""), lang)
    page = client.get(f"{status_path}/withdraw").get_data(as_text=True)
    assert heading(page) == t.gettext("Withdraw the request")
    assert_no_english(page, lang)
    page = client.post(f"{status_path}/withdraw",
                       data={"csrf_token": csrf_token(page)}).get_data(as_text=True)
    assert heading(page) == t.gettext("Request withdrawn")
    assert_no_english(page, lang)


# -- accessibility -----------------------------------------------------------------------------

@pytest.mark.browser
def test_the_status_page_is_accessible(page, live_server, client, smtp):
    status_path = register(client, category="physicist-permanent")
    assert page.goto(status_path).ok
    assert_accessible(page, "status page, address unconfirmed")
    confirm(client, verify_mail_links(smtp)[0])
    assert page.goto(status_path).ok
    assert_accessible(page, "status page, first of two stages")
    with page.expect_navigation():
        page.get_by_role("link", name="Withdraw the request").click()
    assert_accessible(page, "withdrawal's confirmation step")
    with page.expect_navigation():
        page.get_by_role("button", name="Yes, withdraw the request").click()
    assert "is withdrawn" in page.content()
    assert_accessible(page, "request withdrawn")
    assert not page.console_errors
