"""Never register twice: earlier people and requests are found, strong
matches stop the registration, weak ones ask; nothing about others leaks."""
from __future__ import annotations

import pytest

from app import create_app
from helpers import (
    PEOPLE,
    REQUESTS,
    csrf_token,
    decide,
    form_errors,
    links_in,
    local_path,
    mails_to,
    portal_environment,
    post_registration,
    read_entry,
    valid_form,
)


def told_nothing(response) -> bool:
    """The answer a new applicant gets too (issue 10, point 15): the detail
    is only in the mail to the stored address."""
    return response.status_code == 302 and \
        response.headers["Location"].endswith("/register/created")


def requests_in(root) -> set[str]:
    root.search(REQUESTS, "(objectClass=portalRequest)", attributes=["uid"])
    return {e.uid.value for e in root.entries}


def register_juergen(client) -> None:
    response = post_registration(client, given_name="Jürgen", family_name="Müller",
                                 account_name="jmuller", email="juergen.mueller@desy.example",
                                 institution="desy")
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))


@pytest.mark.parametrize("email,owner_address,account", [
    ("toru.sato@kek.example", "toru.sato@kek.example", "irkek"),   # institutional address
    ("toru.sato@example.org", "toru.sato@kek.example", "irkek"),   # collaboration address
])
def test_same_address_as_a_member_stops_and_mails_the_stored_address(client, root, smtp,
                                                                     email, owner_address, account):
    response = post_registration(client, email=email)
    assert told_nothing(response)
    page = response.get_data(as_text=True)
    assert account not in page and owner_address not in page
    assert requests_in(root) == set()
    [mail] = mails_to(smtp, owner_address)
    assert "already registered" in mail["Subject"]
    assert account in mail.get_body(preferencelist=("plain",)).get_content()


def test_previous_account_leads_to_the_existing_record(client, root, smtp):
    response = post_registration(client, previous_account="irdesy")
    assert told_nothing(response)
    assert requests_in(root) == set()
    assert mails_to(smtp, "anna.schmidt@desy.example")


def test_unknown_previous_account_is_a_field_error(client, root):
    response = post_registration(client, previous_account="nosuch1")
    errors = form_errors(response.get_data(as_text=True))
    assert any("We have no account with this name" in e for e in errors)
    assert requests_in(root) == set()


@pytest.mark.parametrize("given,family", [
    ("Jürgen", "Müller"), ("Juergen", "Mueller"), ("Jurgen", "Muller"), ("JÜRGEN", "MÜLLER"),
    ("Müller", "Jürgen"),  # swapped order
])
def test_same_person_by_name_at_the_same_institution_is_stopped(client, root, smtp, given, family):
    register_juergen(client)
    confirm_juergen(client, smtp)
    smtp.clear()
    response = post_registration(client, given_name=given, family_name=family,
                                 account_name="jmueller", email="j.m@desy.example",
                                 institution="desy", names_confirmed="y")
    assert told_nothing(response)
    assert requests_in(root) == {"jmuller"}
    assert mails_to(smtp, "juergen.mueller@desy.example")  # the earlier request's address


@pytest.mark.parametrize("given,family", [("Jürgen", "Miller"), ("Jörg", "Müller"),
                                          ("Jürgen", "Müllner")])
def test_near_misses_are_not_matched(client, root, given, family):
    register_juergen(client)
    response = post_registration(client, given_name=given, family_name=family,
                                 account_name="jmueller", email="j.m@desy.example",
                                 institution="desy")
    assert response.status_code == 302, form_errors(response.get_data(as_text=True))
    assert requests_in(root) == {"jmuller", "jmueller"}


def test_same_name_elsewhere_asks_for_confirmation(client, root, smtp):
    register_juergen(client)
    confirm_juergen(client, smtp)
    changes = dict(given_name="Juergen", family_name="Muller", account_name="jmueller",
                   email="j.m@infn.example", institution="infn")
    response = post_registration(client, **changes)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and 'name="not_me"' in page
    assert "juergen.mueller@desy.example" not in page and "jmuller" not in page
    assert requests_in(root) == {"jmuller"}
    response = post_registration(client, not_me="y", **changes)
    assert response.status_code == 302
    assert requests_in(root) == {"jmuller", "jmueller"}


def confirm_juergen(client, smtp) -> None:
    path = local_path(links_in(mails_to(smtp, "juergen.mueller@desy.example")[-1])[0])
    html = client.get(path).get_data(as_text=True)
    client.post(path, data={"csrf_token": csrf_token(html)})


def test_an_unconfirmed_request_cannot_keep_someone_out(client, root, smtp):
    """Anyone can send a request in another's name; until its address is
    confirmed it blocks nobody."""
    response = post_registration(client, given_name="Toru", family_name="Iijima",
                                 account_name="squat1", email="mallory@kek.example")
    assert response.status_code == 302
    response = post_registration(client)  # the real Toru Iijima at KEK
    assert response.status_code == 302
    assert requests_in(root) == {"squat1", "tiijima"}


def test_a_confirmed_request_counts(client, root, smtp):
    register_juergen(client)
    confirm_juergen(client, smtp)
    smtp.clear()
    response = post_registration(client, given_name="Hans", family_name="Meier",
                                 account_name="hmeier", email="juergen.mueller@desy.example",
                                 institution="kek")
    assert told_nothing(response)
    [mail] = mails_to(smtp, "juergen.mueller@desy.example")
    assert "jmuller" in mail.get_body(preferencelist=("plain",)).get_content()


def test_the_answer_is_the_same_for_every_strong_match(client, root):
    answers = {(r.status_code, r.headers["Location"]) for r in (
        post_registration(client, **changes)
        for changes in ({"email": "toru.sato@kek.example"}, {"previous_account": "irinfn"},
                        {"given_name": "Toru", "family_name": "Sato"}))}
    assert answers == {(302, "/register/created")}


def test_approved_members_carry_the_name_key(client, root, register_and_verify):
    decide(client, register_and_verify())
    assert read_entry(root, f"uid=tiijima,{PEOPLE}").portalNameKey.value == "toru|iijima"


def test_live_hint_says_only_that_the_name_is_on_record(client, root):
    known = client.get("/register/hints?given_name=Sato&family_name=Toru").get_json()
    unknown = client.get("/register/hints?given_name=Toru&family_name=Satou").get_json()
    assert known["maybe_known"] is True and unknown["maybe_known"] is False
    assert "irkek" not in str(known) and "kek.example" not in str(known)


def test_same_certificate_subject_stops_the_registration(app, slapd, smtp, root):
    behind_proxy = create_app(portal_environment(
        slapd, smtp, PORTAL_TRUSTED_PROXIES="127.0.0.1"))
    client = behind_proxy.test_client()
    subject = "CN=Toru Iijima,OU=CRC,O=KEK,C=JP"
    # What the TLS terminator passes on (config/nginx/portal.conf).
    headers = {"X-SSL-Client-S-DN": subject, "X-SSL-Client-I-DN": "CN=Grid CA,C=JP",
               "X-SSL-Client-Verify": "SUCCESS"}
    page = client.get("/register", headers=headers).get_data(as_text=True)
    response = client.post("/register", headers=headers,
                           data={"csrf_token": csrf_token(page), **valid_form()})
    assert response.status_code == 302
    root.search(REQUESTS, "(uid=tiijima)", attributes=["portalCertSubject"])
    assert root.entries[0].portalCertSubject.value == subject
    path = local_path(links_in(mails_to(smtp, "toru.iijima@kek.example")[-1])[0])
    client.post(path, data={"csrf_token": csrf_token(client.get(path).get_data(as_text=True))})
    other = valid_form(given_name="Tohru", family_name="Iyjima", account_name="tohru",
                       email="tohru@infn.example", institution="infn")
    response = client.post("/register", headers=headers,
                           data={"csrf_token": csrf_token(page), **other})
    assert told_nothing(response)
    assert requests_in(root) == {"tiijima"}
