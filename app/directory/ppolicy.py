"""The password policy response control (draft-behera-ldap-password-policy),
which ldap3 returns undecoded.

    PasswordPolicyResponseValue ::= SEQUENCE {
        warning [0] CHOICE { timeBeforeExpiration [0] INTEGER (0 .. maxInt),
                             graceAuthNsRemaining [1] INTEGER (0 .. maxInt) } OPTIONAL,
        error   [1] ENUMERATED { passwordExpired (0), accountLocked (1), changeAfterReset (2),
                                 passwordModNotAllowed (3), mustSupplyOldPassword (4),
                                 insufficientPasswordQuality (5), passwordTooShort (6),
                                 passwordTooYoung (7), passwordInHistory (8),
                                 passwordTooLong (9) } OPTIONAL }
"""
from __future__ import annotations

from dataclasses import dataclass

OID = "1.3.6.1.4.1.42.2.27.8.5.1"
REQUEST_CONTROL = (OID, False, None)
ERRORS = (
    "passwordExpired", "accountLocked", "changeAfterReset", "passwordModNotAllowed",
    "mustSupplyOldPassword", "insufficientPasswordQuality", "passwordTooShort",
    "passwordTooYoung", "passwordInHistory", "passwordTooLong",
)


@dataclass(frozen=True)
class PolicyResponse:
    error: str | None = None
    time_before_expiration: int | None = None
    grace_logins_remaining: int | None = None


def _read(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """One BER element at ``offset``: (tag, contents, next offset).
    IndexError when ``data`` ends before the element does."""
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        size = length & 0x7F
        if offset + size > len(data):
            raise IndexError("BER length cut short")
        length = int.from_bytes(data[offset:offset + size], "big")
        offset += size
    if offset + length > len(data):
        raise IndexError("BER contents cut short")
    return tag, data[offset:offset + length], offset + length


def decode(value: bytes | None) -> PolicyResponse:
    if not value:
        return PolicyResponse()
    try:
        tag, body, _ = _read(value, 0)
        if tag != 0x30:
            return PolicyResponse()
        error = before = grace = None
        offset = 0
        while offset < len(body):
            tag, contents, offset = _read(body, offset)
            if tag == 0xA0 and contents:  # warning
                inner_tag, number, _ = _read(contents, 0)
                if inner_tag == 0x80:
                    before = int.from_bytes(number, "big")
                elif inner_tag == 0x81:
                    grace = int.from_bytes(number, "big")
            elif tag == 0x81 and contents:  # error
                code = int.from_bytes(contents, "big")
                error = ERRORS[code] if code < len(ERRORS) else f"error{code}"
        return PolicyResponse(error, before, grace)
    except IndexError:
        return PolicyResponse()
