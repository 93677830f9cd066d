"""Unit tests of app/directory/ppolicy.py: the password policy response
control, decoded from hand-built BER values.

    30 len                      PasswordPolicyResponseValue ::= SEQUENCE
       A0 len 80 len <int>        warning [0] { timeBeforeExpiration [0] }
       A0 len 81 len <int>        warning [0] { graceAuthNsRemaining [1] }
       81 len <enum>              error [1] ENUMERATED
"""
from __future__ import annotations

import random

import pytest

from app.directory.ppolicy import ERRORS, OID, REQUEST_CONTROL, PolicyResponse, decode

NOTHING = PolicyResponse()


def ber(hex_string: str) -> bytes:
    return bytes.fromhex(hex_string.replace(" ", ""))


def hex_id(value):
    """Test ids: the bytes in hex."""
    return value.hex(" ") if isinstance(value, bytes) else None


def test_the_request_control_asks_for_the_policy_and_is_not_critical():
    assert OID == "1.3.6.1.4.1.42.2.27.8.5.1"
    assert REQUEST_CONTROL == (OID, False, None)


@pytest.mark.parametrize("value", [None, b"", ber("30 00")], ids=hex_id)
def test_no_value_or_an_empty_sequence_says_nothing(value):
    assert decode(value) == NOTHING


@pytest.mark.parametrize("value,seconds", [
    (ber("30 05 a0 03 80 01 2a"), 42),
    (ber("30 05 a0 03 80 01 00"), 0),
    (ber("30 06 a0 04 80 02 00 c8"), 200),          # a leading 00: 200 is not negative
    (ber("30 07 a0 05 80 03 01 51 80"), 86400),
    (ber("30 09 a0 07 80 05 00 ff ff ff ff"), 2**32 - 1),
], ids=hex_id)
def test_warning_time_before_expiration(value, seconds):
    assert decode(value) == PolicyResponse(time_before_expiration=seconds)


@pytest.mark.parametrize("value,logins", [
    (ber("30 05 a0 03 81 01 03"), 3),
    (ber("30 05 a0 03 81 01 00"), 0),                # none left is not "not said"
    (ber("30 06 a0 04 81 02 01 00"), 256),
], ids=hex_id)
def test_warning_grace_logins_remaining(value, logins):
    assert decode(value) == PolicyResponse(grace_logins_remaining=logins)


@pytest.mark.parametrize("code,name", [
    (0, "passwordExpired"), (1, "accountLocked"), (2, "changeAfterReset"),
    (3, "passwordModNotAllowed"), (4, "mustSupplyOldPassword"),
    (5, "insufficientPasswordQuality"), (6, "passwordTooShort"), (7, "passwordTooYoung"),
    (8, "passwordInHistory"), (9, "passwordTooLong"),
])
def test_each_error_code_by_its_name(code, name):
    assert ERRORS[code] == name
    assert decode(bytes([0x30, 0x03, 0x81, 0x01, code])) == PolicyResponse(error=name)


def test_an_unknown_error_code_keeps_its_number():
    assert decode(ber("30 03 81 01 0a")) == PolicyResponse(error="error10")
    assert decode(ber("30 04 81 02 01 00")) == PolicyResponse(error="error256")


def test_warning_and_error_together():
    # What slapd sends for a bind with an expired password and grace logins left.
    value = ber("30 08 a0 03 81 01 02 81 01 00")
    assert decode(value) == PolicyResponse(error="passwordExpired", grace_logins_remaining=2)
    # The other order decodes the same.
    assert decode(ber("30 08 81 01 00 a0 03 81 01 02")) == decode(value)


def test_long_form_lengths():
    assert decode(ber("30 81 03 81 01 01")) == PolicyResponse(error="accountLocked")
    assert decode(ber("30 82 00 07 a0 82 00 03 80 01 05")) == \
        PolicyResponse(time_before_expiration=5)
    assert decode(ber("30 81 06 a0 04 81 81 01 07")) == PolicyResponse(grace_logins_remaining=7)


def test_unknown_elements_are_skipped():
    # A context tag [2] the draft does not define, before and after known ones.
    assert decode(ber("30 08 82 01 ff 81 01 01 82 00")) == PolicyResponse(error="accountLocked")
    # An unknown choice inside the warning says nothing.
    assert decode(ber("30 05 a0 03 82 01 05")) == NOTHING
    # Empty warning and error elements say nothing.
    assert decode(ber("30 04 a0 00 81 00")) == NOTHING


def test_bytes_after_the_sequence_are_ignored():
    assert decode(ber("30 03 81 01 02 ff ff")) == PolicyResponse(error="changeAfterReset")


@pytest.mark.parametrize("value", [
    ber("31 03 81 01 01"),                 # a SET, not a SEQUENCE
    ber("04 03 81 01 01"),                 # an OCTET STRING
    ber("81 01 01"),                       # the error alone, no SEQUENCE around it
    b"\xff",
], ids=hex_id)
def test_not_a_sequence_says_nothing(value):
    assert decode(value) == NOTHING


@pytest.mark.parametrize("value", [
    ber("30"),                             # no length
    ber("30 03"),                          # no contents
    ber("30 03 81"),                       # an element with no length
    ber("30 03 81 01"),                    # an error with no code
    ber("30 04 81 02 00"),                 # a two-byte code cut after its first byte
    ber("30 05 a0 03 80 01"),              # a warning with no number
    ber("30 07 a0 05 80 03 01 51"),        # a number cut short
    ber("30 05 a0 03 80"),                 # a warning's choice with no length
    ber("30 06 81 01 01 a0 03 80"),        # a good error, then a cut warning
    ber("30 81"),                          # a long-form length with no length bytes
    ber("30 84 ff ff ff ff 81 01 01"),     # a length far past the end
    ber("30 03 81 84 ff ff ff ff"),        # an element's length far past the end
], ids=hex_id)
def test_truncated_values_do_not_crash_and_say_nothing(value):
    # A cut value must not be read as something the server did not send
    # (a cut accountLocked code must not become passwordExpired).
    assert decode(value) == NOTHING


def test_every_truncation_of_a_full_value_is_safe():
    full = ber("30 0b a0 05 80 03 01 51 80 81 02 00 01")
    assert decode(full) == PolicyResponse(error="accountLocked", time_before_expiration=86400)
    for end in range(len(full)):
        assert decode(full[:end]) == NOTHING, full[:end].hex(" ")


def test_random_bytes_never_crash():
    chance = random.Random(20260101)
    for _ in range(5000):
        value = bytes(chance.randrange(256) for _ in range(chance.randrange(1, 16)))
        result = decode(b"\x30" + value)
        assert isinstance(result, PolicyResponse)
        assert result.error is None or isinstance(result.error, str)
