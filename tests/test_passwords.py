"""Unit tests of app/services/passwords.py."""
from __future__ import annotations

import secrets
import string

import argon2
import pytest
from flask import Flask
from flask_babel import Babel

from app.services.passwords import MAX_PASSWORD_LENGTH, hash_password, password_problems

STRONG = "Glacier-lantern-orbit-42"


@pytest.fixture(scope="module")
def babel_app():
    """The messages are lazy strings: they need an app context to be rendered.
    A bare Flask app with Babel is enough (no directory needed)."""
    app = Flask(__name__)
    Babel(app)
    return app


@pytest.fixture
def problems(babel_app):
    def run(password, min_length=12, **kwargs) -> list[str]:
        with babel_app.app_context():
            return [str(p) for p in password_problems(password, min_length, **kwargs)]
    return run


def random_password(length: int) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.!"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def test_a_strong_password_is_accepted(problems):
    assert problems(STRONG) == []
    assert problems(STRONG, account_name="tiijima", name_parts=("Toru", "", "Iijima"),
                    other_inputs=("toru.iijima",)) == []


def test_too_short_is_refused_with_the_minimum(problems):
    assert problems("Gl4c!er-orb") == ["Use at least 12 characters."]  # 11 characters
    assert problems("Gl4c!er-orbX-z") == []
    assert problems("Gl4c!er-orbX-z", min_length=16) == ["Use at least 16 characters."]


def test_the_minimum_counts_characters_not_bytes(problems):
    # 12 characters, more than 12 bytes in UTF-8.
    password = "Glätscher-Ør"
    assert len(password) == 12 and len(password.encode()) > 12
    assert not any(p.startswith("Use at least") for p in problems(password))
    assert problems(password, min_length=13) == ["Use at least 13 characters."]


def test_a_password_that_starts_like_a_stored_hash_is_refused_with_the_reason(problems):
    reason = ["The password cannot start with a word in braces such as {SSHA}, which "
              "marks a stored hash. Put another character first."]
    for typed in ("{SSHA}Glacier-lantern-orbit-42", "{CLEARTEXT}Glacier-lantern-orbit",
                  "{crypt}Glacier-lantern-orbit", "{ARGON2}$argon2id$v=19$m=65536"):
        assert problems(typed) == reason, typed
    # Braces elsewhere, or not around a scheme-like word, are fine.
    for typed in ("Glacier-{lantern}-orbit-42", "{Glacier lantern} orbit 42", "{}Glacier-orbit-42"):
        assert problems(typed) == [], typed


def test_too_long_is_refused(problems):
    assert problems(random_password(MAX_PASSWORD_LENGTH + 1)) == ["Use at most 128 characters."]
    assert MAX_PASSWORD_LENGTH == 128


def test_the_longest_allowed_password_is_accepted(problems):
    assert problems(random_password(MAX_PASSWORD_LENGTH)) == []


@pytest.mark.parametrize("password", ["tiijima-Lantern-orbit-42", "Lantern-TIIJIMA-orbit-42",
                                      "Lantern-orbit-42-TiiJima"])
def test_containing_the_account_name_is_refused(problems, password):
    assert problems(password, account_name="tiijima") == [
        "The password must not contain your account name."]
    assert problems(password, account_name="someone") == []


@pytest.mark.parametrize("password,name_parts", [
    ("Lantern-iijima-orbit-42", ("Toru", "", "Iijima")),
    ("Lantern-TORU-orbit-4242", ("Toru", "", "Iijima")),
    ("Lantern-angelo-orbit-42", ("Nino", "", "de Angelo")),
    ("Lantern-pierre-orbit-42", ("Jean-Pierre", "", "Dupont")),
    ("Lantern-ronald-orbit-42", ("John", "Ronald", "Tolkien")),
    # Accents folded both ways.
    ("Lantern-jurgen-orbit-42", ("Jürgen", "", "Müller")),
    ("Lantern-JÜRGEN-orbit-42", ("Jurgen", "", "Muller")),
    ("Lantern-muller-orbit-42", ("Jürgen", "", "Müller")),
])
def test_containing_a_name_is_refused(problems, password, name_parts):
    assert problems(password, name_parts=name_parts) == [
        "The password must not contain your names."]
    assert problems(password, name_parts=("Xavier", "", "Quentin")) == []


def test_name_parts_shorter_than_three_letters_are_ignored(problems):
    # 'Li' and 'Wu' occur inside too many passwords to be refused.
    assert problems("Glacier-Wu-lantern-Li-42", name_parts=("Li", "", "Wu")) == []
    assert problems("Glacier-Wu-lantern-Li-42", name_parts=("Lia", "", "Wu")) == []
    assert problems("Glacier-lia-lantern-42", name_parts=("Lia", "", "Wu")) == [
        "The password must not contain your names."]


def test_account_name_and_names_are_both_reported(problems):
    found = problems("tiijima-Iijima-orbit-42", account_name="tiijima",
                     name_parts=("Toru", "", "Iijima"))
    assert found == ["The password must not contain your account name.",
                     "The password must not contain your names."]


@pytest.mark.parametrize("password", ["Password1234!", "qwertyuiop123", "123456789012",
                                      "iloveyou1234", "aaaaaaaaaaaaaaaa"])
def test_common_passwords_are_refused(problems, password):
    [problem] = problems(password)
    assert problem.startswith("This password is too common or too easy to guess.")


def test_guessable_from_the_mail_address_is_refused(problems):
    password = "toru.iijima.kek1"
    assert problems(password) == []
    [problem] = problems(password, other_inputs=("toru.iijima",))
    assert "too common or too easy to guess" in problem


def test_messages_are_lazy_and_need_an_app_context():
    result = password_problems("short", 12)
    assert len(result) == 1
    assert not isinstance(result[0], str)  # a lazy string, rendered later


def test_hash_is_argon2id_in_userpassword_form():
    hashed = hash_password(STRONG)
    assert isinstance(hashed, bytes)
    assert hashed.startswith(b"{ARGON2}$argon2id$")
    encoded = hashed[len(b"{ARGON2}"):].decode()
    assert argon2.PasswordHasher().verify(encoded, STRONG)
    with pytest.raises(argon2.exceptions.VerifyMismatchError):
        argon2.PasswordHasher().verify(encoded, STRONG + "x")
    assert STRONG.encode() not in hashed


def test_hash_is_salted_and_uses_owasp_parameters():
    first, second = hash_password(STRONG), hash_password(STRONG)
    assert first != second
    params = argon2.extract_parameters(first[len(b"{ARGON2}"):].decode())
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19456 and params.time_cost >= 2


@pytest.mark.parametrize("character", ["\x07", "\x1b", "\u200b", "\u00ad", "\u2060", "\ufeff"],
                         ids=["bell", "escape", "zero-width-space", "soft-hyphen", "word-joiner",
                              "byte-order-mark"])
def test_control_and_invisible_characters_are_refused_with_their_own_message(problems, character):
    """What would not type the same in every client (a service's login form,
    a mail client) is refused at the form, with a message that says why."""
    assert problems(f"Glacier{character}lantern-orbit-42") == [
        "The password cannot contain control or invisible formatting characters."]
