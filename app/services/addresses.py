"""The collaboration mail address of a person: ``given.middle.family@domain``
(names folded to ASCII, spaces as dots), the first free one with a digit
on collision. Used by registration (preview, approval) and reactivation."""
from __future__ import annotations

from ..directory import Directory
from . import names


class CollaborationAddresses:
    def __init__(self, directory: Directory, mail_domain: str):
        self._directory = directory
        self._domain = mail_domain

    def free_address(self, given: str, middle: str, family: str,
                     exclude_account: str = "") -> str:
        """The first address not held by someone else ("" for unusable names);
        ``exclude_account``'s own addresses count as free."""
        local = names.mail_local_part(given, middle, family)
        if not local:
            return ""
        candidates = names.mail_candidates(local, self._domain)
        taken = self._directory.mail_addresses_in_use(candidates, exclude_account=exclude_account)
        return next((c for c in candidates if c not in taken), candidates[-1])
