"""Issue 10, points 11, 12 and 15 through the test client: what the
registration form says when it comes back, one name rule live and on
submit, and an answer that does not tell whether someone is on record."""
from __future__ import annotations

import html
import re

from app import create_app
from helpers import (
    REQUESTS,
    form_errors,
    mails_to,
    portal_environment,
    post_registration,
    read_entry,
)

NOT_LATIN = ("Please write this name in Latin letters (accents are fine): the collaboration "
             "mail address and the directory entry are made from it.")
SWAPPED = ("Given and family name look swapped. The given name is your first name (for example "
           "Toru), the family name your last name (Iijima). Correct them or confirm below that "
           "they are right.")


def hints(client, **params) -> dict:
    response = client.get("/register/hints", query_string=params)
    assert response.status_code == 200
    return response.get_json()


def field_errors(page: str, field: str) -> list[str]:
    return [html.unescape(re.sub(r"\s+", " ", e)).strip() for e in re.findall(
        rf'<p class="error" id="{field}-error">(.*?)</p>', page, re.S)]


def main_part(page: str) -> str:
    """The page's main part, the signed token of its status link left out
    (each link has its own; see tests/test_status.py for where they lead)."""
    main = page.split("<main", 1)[1].split("</main>", 1)[0]
    return re.sub(r"/register/status/[^\"/]+", "/register/status/TOKEN", main)


# -- point 15: the same answer for a new and a known applicant -------------------------------

def test_a_known_address_gets_the_answer_of_a_new_applicant(app, smtp, root):
    new = app.test_client()
    known = app.test_client()
    answer_new = post_registration(new)
    # irkek's address, another account name: a strong match.
    answer_known = post_registration(known, account_name="tsato", email="toru.sato@kek.example",
                                     given_name="Toru", family_name="Sato")
    for answer in (answer_new, answer_known):
        assert answer.status_code == 302, form_errors(answer.get_data(as_text=True))
        assert answer.headers["Location"] == "/register/created"
    page_new = main_part(new.get("/register/created").get_data(as_text=True))
    page_known = main_part(known.get("/register/created").get_data(as_text=True))
    assert page_known.replace("tsato", "tiijima").replace("toru.sato@", "toru.iijima@") == \
        page_new
    assert "irkek" not in page_known
    # Said once, naming the collaboration (point 13).
    assert page_new.count("We received your registration for Example Collaboration.") == 1
    # Only the stored address learns that it is on record.
    [stored] = mails_to(smtp, "toru.sato@kek.example")
    assert "already registered" in stored["Subject"]
    assert read_entry(root, f"uid=tsato,{REQUESTS}") is None


def test_the_same_person_at_the_same_institution_gets_the_same_answer(client, root):
    response = post_registration(client, given_name="Toru", family_name="Sato",
                                 account_name="tsato", email="t.sato@kek.example")
    assert response.status_code == 302 and response.headers["Location"] == "/register/created"
    assert read_entry(root, f"uid=tsato,{REQUESTS}") is None


def test_the_live_hints_are_throttled(slapd, smtp, root):
    app = create_app(portal_environment(slapd, smtp, PORTAL_RATE_LIMIT_HINTS="3 per minute"))
    client = app.test_client()
    answers = [client.get("/register/hints", query_string={
        "given_name": "Toru", "family_name": "Sato"}).status_code for _ in range(4)]
    assert answers == [200, 200, 200, 429]


# -- point 12: one name rule, live and on submit ----------------------------------------------

def test_a_name_outside_the_latin_script_gets_one_answer_live_and_on_submit(client, root):
    live = hints(client, given_name="Ivan", family_name="Иванов")
    assert live["mail_preview"] == "" and live["suggestions"] == []
    assert live["names"] == {"family_name": NOT_LATIN}
    page = post_registration(client, given_name="Ivan", family_name="Иванов",
                             account_name="iivanov", email="ivan@kek.example").get_data(
        as_text=True)
    assert field_errors(page, "family_name") == [NOT_LATIN]


def test_swapped_names_are_flagged_live_as_on_submit(client, root):
    assert hints(client, given_name="IIJIMA", family_name="Toru")["swapped"] == SWAPPED
    assert hints(client, given_name="Toru", family_name="Iijima")["swapped"] == ""
    page = post_registration(client, given_name="IIJIMA", family_name="Toru").get_data(
        as_text=True)
    assert SWAPPED in field_errors(page, "given_name")


def test_the_form_says_which_script_names_are_written_in(client):
    page = client.get("/register").get_data(as_text=True)
    assert "Write your names in Latin letters, as in your passport" in page
    assert "Names in other scripts cannot be stored." in page


def test_particles_typed_in_lower_case_stay_lower_case(client, root):
    assert hints(client, given_name="nino", family_name="de angelo")["mail_preview"] == \
        "nino.de.angelo@example.org"
    response = post_registration(client, given_name="nino", family_name="de angelo",
                                 account_name="ndeangel", email="nino.deangelo@kek.example")
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    entry = read_entry(root, f"uid=ndeangel,{REQUESTS}")
    assert entry.givenName.value == "Nino" and entry.sn.value == "de Angelo"


# -- point 11: the form after an error ----------------------------------------------------------

def test_the_form_after_an_error_says_why_at_the_top_and_keeps_the_tick(client, root):
    page = post_registration(client, password_confirm="Something-else-entirely-9").get_data(
        as_text=True)
    assert "<title>Please check your registration" in page
    summary = page.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert page.index('id="error-summary"') < page.index("<form")
    assert 'autofocus' in page.split('id="error-summary"', 1)[0].rsplit("<div", 1)[1] + \
        summary.split(">", 1)[0]
    assert '<a href="#password_confirm">The two passwords are not the same.</a>' in summary
    assert "please type both passwords again" in summary
    checkbox = re.search(r'<input[^>]*id="accept_conditions"[^>]*>', page).group(0)
    assert re.search(r"\bchecked\b", checkbox)
    assert 'role="alert"' not in "".join(re.findall(r"<li[^>]*>", page))


def test_a_pasted_address_as_account_name_is_not_cut_and_the_rule_is_said_once(client, root):
    page = client.get("/register").get_data(as_text=True)
    account_input = re.search(r'<input[^>]*id="account_name"[^>]*>', page).group(0)
    assert "maxlength" not in account_input
    page = post_registration(client, account_name="toru.iijima@kek.example").get_data(
        as_text=True)
    assert field_errors(page, "account_name")[0].startswith(
        "The account name is not an e-mail address")
    assert main_part(page).count("starting with a letter") == 1


def test_the_not_me_question_is_announced_at_the_top(client, root):
    # Toru Sato is a member at KEK: the same name at DESY asks "this is not me".
    page = post_registration(client, given_name="Toru", family_name="Sato",
                             account_name="tsato", email="toru.sato@desy.example",
                             institution="desy").get_data(as_text=True)
    assert 'name="not_me"' in page
    summary = page.split('id="error-summary"', 1)[1].split("</div>", 1)[0]
    assert '<a href="#not_me">We may already know you' in summary


def test_the_conditions_error_is_tied_to_the_checkbox(client, root):
    page = post_registration(client, accept_conditions=None).get_data(as_text=True)
    checkbox = re.search(r'<input[^>]*id="accept_conditions"[^>]*>', page).group(0)
    assert 'aria-describedby="accept_conditions-error"' in checkbox
    assert 'aria-invalid="true"' in checkbox
