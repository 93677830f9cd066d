"""The collaboration's members list, as the helpdesk imported it (``flask
members-list import``): one entry, cn=members-list,ou=counters, readable by
the portal only. Each row is kept whole (JSON) and its address and
certificate subject once more as values that equality filters find."""
from __future__ import annotations

import json
from datetime import datetime

from ldap3 import BASE

from .connection import DirectoryConnection
from .errors import NoSuchEntry
from .mapping import Attr, AttributeMap, time_attr
from .records import ListedMember
from .values import eq

MEMBERS_LIST = AttributeMap(
    rows=Attr("portalListedMember", multi=True),
    mails=Attr("portalListedMail", multi=True),
    certificates=Attr("portalListedCertificate", multi=True),
    imported_at=time_attr("portalSubmittedAt"),
    object_classes=Attr("objectClass", multi=True),
    cn="cn",
)


def _row(member: ListedMember) -> str:
    return json.dumps({"email": member.email, "given": member.given, "family": member.family,
                       "institution": member.institution, "certificate": member.certificate},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class MembersList(DirectoryConnection):
    @property
    def members_list_dn(self) -> str:
        return f"cn=members-list,ou=counters,{self.base_dn}"

    def replace_members_list(self, members: list[ListedMember], now: datetime) -> None:
        """The list becomes exactly ``members`` (an import replaces the one before)."""
        rows = sorted({_row(m) for m in members})
        mails = sorted({m.email.lower() for m in members if m.email})
        certificates = sorted({m.certificate for m in members if m.certificate},
                              key=str.lower)
        # Case-insensitive attributes refuse values that differ only in case.
        certificates = list({c.lower(): c for c in certificates}.values())
        if self._read(self.members_list_dn, ["cn"]) is None:
            self._add(self.members_list_dn, MEMBERS_LIST.entry(
                object_classes=["applicationProcess", "portalCertificates"],
                cn="members-list", rows=rows, mails=mails, certificates=certificates,
                imported_at=now))
            return
        self._modify(self.members_list_dn, MEMBERS_LIST.replace(
            rows=rows or None, mails=mails or None, certificates=certificates or None,
            imported_at=now))

    def members_list(self) -> tuple[list[ListedMember], datetime | None]:
        entry = self._read(self.members_list_dn, MEMBERS_LIST.names("rows", "imported_at"))
        if entry is None:
            return [], None
        values = MEMBERS_LIST.read(entry, "rows", "imported_at")
        rows = [ListedMember(**json.loads(row)) for row in values["rows"]]
        return sorted(rows, key=lambda m: m.email), values["imported_at"]

    def on_members_list(self, email: str = "", cert_subject: str = "") -> list[str]:
        """What of an address and a certificate subject is on the list:
        ``["email"]``, ``["certificate"]``, both or neither."""
        found = []
        for what, field, value in (("email", "mails", email),
                                   ("certificate", "certificates", cert_subject)):
            if not value:
                continue
            try:
                entries = self._search(self.members_list_dn,
                                       eq(MEMBERS_LIST[field], value), ["cn"], scope=BASE)
            except NoSuchEntry:
                entries = []
            if entries:
                found.append(what)
        return found
