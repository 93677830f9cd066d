"""Hostile or broken input: clear 4xx answers, nothing stored, no 5xx."""
from __future__ import annotations

import pytest

from helpers import REQUESTS, csrf_token, form_errors, post_registration, valid_form


def _requests(root) -> list:
    root.search(REQUESTS, "(objectClass=portalRequest)", attributes=["uid"])
    return list(root.entries)


def test_invalid_utf8_is_answered_without_a_server_error(client, root):
    html = client.get("/register").get_data(as_text=True)
    body = (f"csrf_token={csrf_token(html)}&given_name=%FF%FE&family_name=Iijima"
            "&account_name=ti%C3%28ima").encode()
    response = client.post("/register", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    assert form_errors(response.get_data(as_text=True))
    assert _requests(root) == []


@pytest.mark.parametrize("field", ["given_name", "family_name", "email", "account_name",
                                   "password"])
def test_ten_thousand_characters_are_refused_on_the_field(client, root, field):
    value = "a" * 10_000 if field != "email" else "a" * 10_000 + "@kek.example"
    confirm = {"password_confirm": value} if field == "password" else {}
    response = post_registration(client, **{field: value, **confirm})
    assert response.status_code == 200
    assert form_errors(response.get_data(as_text=True))
    assert _requests(root) == []


@pytest.mark.parametrize("value", ["To\x00ru", "To\u202eru", "To\u200bru", "To\x1bru"])
def test_control_and_bidi_characters_in_names_are_refused(client, root, value):
    response = post_registration(client, given_name=value)
    assert response.status_code == 200
    assert any("letters" in e for e in form_errors(response.get_data(as_text=True)))
    assert _requests(root) == []


def test_control_characters_in_passwords_are_refused(client, root):
    password = "Glacier-lantern\x00orbit-42"
    response = post_registration(client, password=password, password_confirm=password)
    assert any("control or invisible" in e for e in form_errors(response.get_data(as_text=True)))
    assert _requests(root) == []


def test_huge_bodies_and_too_many_fields_get_413(client, root):
    html = client.get("/register").get_data(as_text=True)
    response = client.post("/register", data={**valid_form(), "csrf_token": csrf_token(html),
                                              "junk": "x" * (10 * 1024 * 1024)})
    assert response.status_code == 413
    many = {f"f{n}": "x" for n in range(5000)}
    response = client.post("/register",
                           data={**valid_form(), "csrf_token": csrf_token(html), **many})
    assert response.status_code == 413
    assert _requests(root) == []


def test_names_are_stored_nfc_normalised(client, root):
    decomposed = "Jose\u0301"  # 'José' with a combining accent
    response = post_registration(client, given_name=decomposed, account_name="jiijima")
    assert response.status_code == 302
    root.search(REQUESTS, "(uid=jiijima)", attributes=["givenName"])
    assert root.entries[0].givenName.value == "Jos\u00e9"
