"""Who may do what beyond their own account: representatives (IRs) of
institutions and the helpdesk. Read from the directory on every check, so a
representative removed from an institution, a person taken out of the
helpdesk group or a member no longer active loses access at once.

- A representative is an active member named in ``portalRepresentative``
  of one or more institutions; they act on those institutions' people only.
- The helpdesk is every active member of the group ``PORTAL_HELPDESK_GROUP``
  (default ``helpdesk``) in ou=groups.

The header's links to the consoles follow ``shown_roles_for``, which takes
the representatives from the institutions' short-lived catalog instead of
a search on every page: a link may appear or stay up to the catalog's
lifetime late, while the consoles themselves check ``roles_for``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

from ..directory import Directory, Institution, Person
from ..vocabulary import MemberStatus
from .institutions import InstitutionCatalog


@dataclass(frozen=True)
class Roles:
    account_name: str
    represented: tuple[Institution, ...] = ()  # institutions this person is an IR of
    helpdesk: bool = False

    @property
    def is_representative(self) -> bool:
        return bool(self.represented)

    @property
    def institution_ids(self) -> frozenset[str]:
        return frozenset(i.id for i in self.represented)

    def represents(self, institution_id: str) -> bool:
        return institution_id in self.institution_ids


NO_ROLES = Roles("")


class RoleService:
    def __init__(self, directory: Directory, helpdesk_group: str,
                 institutions: InstitutionCatalog):
        self._directory = directory
        self._helpdesk_group = helpdesk_group
        self._institutions = institutions

    def roles_of(self, account_name: str) -> Roles:
        """The roles of ``account_name`` now (none unless it is an active member)."""
        return self.roles_for(self._directory.person(account_name))

    def roles_for(self, person: Person | None) -> Roles:
        """The roles of a person just read (the helpdesk from its memberOf)."""
        return self._roles(person, self._directory.institutions_represented_by)

    def shown_roles_for(self, person: Person | None) -> Roles:
        """The roles the header's links show: as ``roles_for``, with the
        institutions from the catalog (no search). Never for access."""
        return self._roles(person, self._institutions.represented_by)

    def _roles(self, person: Person | None,
               represented_by: Callable[[str], Iterable[Institution]]) -> Roles:
        if person is None or person.status != MemberStatus.ACTIVE:
            return NO_ROLES
        helpdesk_dn = self._directory.group_dn(self._helpdesk_group).lower()
        helpdesk = any(group.lower() == helpdesk_dn for group in person.groups)
        return Roles(person.account_name, tuple(represented_by(person.dn)), helpdesk)
