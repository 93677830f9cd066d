"""Attribute maps: for each entity, which LDAP attribute holds which record
field and how its values are read and written. Each entity module has ONE
map; its reader builds the frozen record from it and its writers name
attributes only through it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ldap3 import MODIFY_ADD, MODIFY_DELETE, MODIFY_INCREMENT, MODIFY_REPLACE

from .values import ldap_time, parse_ldap_time


@dataclass(frozen=True)
class Attr:
    """One attribute: ``multi`` reads every value as a tuple, ``raw`` the
    first value as bytes; ``load``/``dump`` convert a single text value."""
    name: str
    multi: bool = False
    raw: bool = False
    load: Callable[[str], Any] | None = None
    dump: Callable[[Any], str] | None = None
    default: Any = ""

    def read(self, entry: dict) -> Any:
        if self.raw:
            values = (entry.get("raw_attributes") or {}).get(self.name) or [b""]
            return bytes(values[0])
        values = (entry.get("attributes") or {}).get(self.name)
        if values is None or values == []:
            values = []
        elif not isinstance(values, list):
            values = [values]
        if self.multi:
            return tuple(str(v) for v in values)
        if not values or str(values[0]) == "":
            return self.default
        return self.load(str(values[0])) if self.load else str(values[0])

    def write(self, value: Any) -> list:
        """The values to store; empty (remove) for None, "" and b""."""
        if value is None or value == "" or value == b"":
            return []
        if self.multi:
            return list(value)
        return [self.dump(value) if self.dump else value]


def time_attr(name: str) -> Attr:
    return Attr(name, load=parse_ldap_time, dump=ldap_time, default=None)


def int_attr(name: str, default: int | None = None) -> Attr:
    return Attr(name, load=int, dump=str, default=default)


class AttributeMap:
    def __init__(self, **fields: Attr | str):
        self.fields = {f: a if isinstance(a, Attr) else Attr(a) for f, a in fields.items()}

    def __getitem__(self, field: str) -> str:
        return self.fields[field].name

    def names(self, *fields: str) -> list[str]:
        """LDAP names of ``fields`` (every field but the raw ones when none
        are given: secrets are read only when asked for by name)."""
        if fields:
            return [self.fields[f].name for f in fields]
        return [a.name for a in self.fields.values() if not a.raw]

    def read(self, entry: dict, *only: str) -> dict[str, Any]:
        """Field values of an entry (every field, or ``only`` these)."""
        return {f: self.fields[f].read(entry) for f in only or self.fields}

    def entry(self, **values: Any) -> dict[str, list]:
        """Attributes of a new entry; empty values are left out."""
        attributes = {self.fields[f].name: self.fields[f].write(v) for f, v in values.items()}
        return {name: v for name, v in attributes.items() if v}

    def replace(self, **values: Any) -> dict[str, list]:
        """A modification replacing each field (None or "" removes it)."""
        return {self.fields[f].name: [(MODIFY_REPLACE, self.fields[f].write(v))]
                for f, v in values.items()}

    def add(self, **values: Any) -> dict[str, list]:
        return {self.fields[f].name: [(MODIFY_ADD, self.fields[f].write(v))]
                for f, v in values.items()}

    def delete(self, **values: Any) -> dict[str, list]:
        return {self.fields[f].name: [(MODIFY_DELETE, self.fields[f].write(v))]
                for f, v in values.items()}

    def increment(self, field: str, by: int = 1) -> dict[str, list]:
        """Add ``by`` to an integer field in one atomic modify (RFC 4525)."""
        return {self.fields[field].name: [(MODIFY_INCREMENT, [str(by)])]}

    def swap(self, field: str, expected: Any, new: Any) -> dict[str, list]:
        """Compare-and-swap: delete the expected value, add the new one; the
        modify fails (StateConflict) when the entry no longer holds ``expected``."""
        attr = self.fields[field]
        old_values, new_values = attr.write(expected), attr.write(new)
        if not old_values or not new_values:
            raise ValueError("a compare-and-swap needs both values")  # [] would delete all
        return {attr.name: [(MODIFY_DELETE, old_values), (MODIFY_ADD, new_values)]}


# -- certificates: one value holds subject and issuer (portalCertificate) ----------------

def certificate_value(certificate) -> str:
    """The stored form of a Certificate: canonical JSON, so that equality
    filters find it (the same subject from another issuer is another value)."""
    import json
    return json.dumps({"issuer": certificate.issuer, "subject": certificate.subject},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def certificate_from(value: str):
    import json

    from .records import Certificate
    try:
        data = json.loads(value)
        return Certificate(subject=str(data["subject"]), issuer=str(data["issuer"]))
    except (ValueError, KeyError, TypeError):
        return None


def certificate_attr(name: str) -> Attr:
    return Attr(name, load=certificate_from, dump=certificate_value, default=None)
