"""Values on their way into LDAP: assertion values escaped for filters
(RFC 4515) and the filters built from them, the directory's time format,
and names and identifiers checked before they become part of a DN."""
from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Iterable

from ..vocabulary import ACCOUNT_NAME_RE

# Institution ids, group names and outbox ids; validated again before they
# become part of a DN (ldap3's escape_rdn mishandles edge cases such as NUL).
IDENTIFIER_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
REQUEST_ID_RE = re.compile(r"^[a-z][a-z0-9]{3,7}-[0-9]{14}$")


def ldap_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y%m%d%H%M%SZ")


def parse_ldap_time(value: str | None) -> datetime | None:
    if not value:
        return None
    text = value.rstrip("Z").split(".")[0]
    if text.startswith("0000"):  # ppolicy's permanent lock: "since ever"
        return datetime.min.replace(tzinfo=timezone.utc)
    return datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)


def escape_filter_value(value: str) -> str:
    """RFC 4515 escaping of an assertion value: the special characters, space
    and every byte outside printable ASCII become \\XX (ldap3's
    escape_filter_chars leaves control characters such as CR as they are, and
    its filter parser drops unescaped surrounding spaces)."""
    return "".join(
        chr(byte) if 0x20 < byte < 0x7F and byte not in b"*()\\" else f"\\{byte:02x}"
        for byte in value.encode("utf-8"))


def eq(attribute: str, value: str) -> str:
    """An equality filter with the value escaped."""
    return f"({attribute}={escape_filter_value(value)})"


def any_of(attribute: str, values: Iterable[str]) -> str:
    return "(|" + "".join(eq(attribute, v) for v in values) + ")"


def checked_account_name(name: str) -> str:
    if not isinstance(name, str) or not ACCOUNT_NAME_RE.match(name):
        raise ValueError("not a valid account name")
    return name


def checked_identifier(value: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER_RE.match(value):
        raise ValueError("not a valid identifier")
    return value
