"""Groups (ou=groups) and institutions (ou=institutions)."""
from __future__ import annotations

from .connection import IDENTIFIER_RE, DirectoryConnection
from .errors import NoSuchEntry, StateConflict, ValueExists
from .mapping import Attr, AttributeMap, int_attr
from .records import Institution

INSTITUTION = AttributeMap(
    id="portalInstitutionId",
    name="o",
    country="c",
    representative_dns=Attr("portalRepresentative", multi=True),
)
GROUP = AttributeMap(
    members=Attr("member", multi=True),
    gid_number=int_attr("gidNumber"),
)


def institution_record(entry: dict) -> Institution:
    return Institution(**INSTITUTION.read(entry))


class Groups(DirectoryConnection):
    def institutions(self) -> list[Institution]:
        entries = self._search(self.institutions_dn, "(objectClass=portalInstitution)",
                               INSTITUTION.names())
        return sorted((institution_record(e) for e in entries), key=lambda i: i.name.lower())

    def institution(self, institution_id: str) -> Institution | None:
        if not IDENTIFIER_RE.match(institution_id or ""):
            return None
        entry = self._read(self.institution_dn(institution_id), INSTITUTION.names())
        return institution_record(entry) if entry else None

    def group_member_dns(self, group_cn: str) -> tuple[str, ...]:
        entry = self._read(self.group_dn(group_cn), GROUP.names("members"))
        return GROUP.read(entry, "members")["members"] if entry else ()

    def add_group_member(self, group_dn: str, member_dn: str) -> None:
        """Add ``member_dn`` to a groupOfNames; already a member is fine."""
        try:
            self._modify(group_dn, GROUP.add(members=[member_dn]))
        except ValueExists:
            return

    def remove_group_member(self, group_dn: str, member_dn: str) -> None:
        """Remove ``member_dn`` from a groupOfNames; not a member is fine."""
        try:
            self._modify(group_dn, GROUP.delete(members=[member_dn]))
        except StateConflict:
            return

    def group_gid_number(self, group_dn: str) -> int:
        entry = self._read(group_dn, GROUP.names("gid_number"))
        gid = GROUP.read(entry, "gid_number")["gid_number"] if entry else None
        if gid is None:
            raise NoSuchEntry(f"group {group_dn} or its gidNumber is missing")
        return gid
