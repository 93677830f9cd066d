"""The institutions, cached for a short time: every registration page and
every "My account" lists them, and they change rarely (operators edit
ou=institutions in the directory, the helpdesk's console writes them).

Each process keeps the sorted list for ``ttl_seconds`` (60 by default): an
institution added, renamed or removed in the directory appears on the pages
within that time, in every worker; ``invalidate()`` forgets the list at once
(the helpdesk's changes call it: this process sees them at once)."""
from __future__ import annotations

import threading
import time
from typing import Callable

from ..directory import Directory, Institution


class InstitutionCatalog:
    def __init__(self, directory: Directory, ttl_seconds: float = 60,
                 monotonic: Callable[[], float] = time.monotonic):
        self._directory = directory
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._list: tuple[Institution, ...] = ()
        self._by_id: dict[str, Institution] = {}
        self._by_representative: dict[str, tuple[Institution, ...]] = {}
        self._until = float("-inf")

    def all(self) -> list[Institution]:
        """Every institution, by name (from the cache while it is fresh)."""
        now = self._monotonic()
        if now >= self._until:
            institutions = tuple(self._directory.institutions())
            by_representative: dict[str, tuple[Institution, ...]] = {}
            for institution in institutions:
                for dn in institution.representative_dns:
                    key = dn.lower()
                    by_representative[key] = (*by_representative.get(key, ()), institution)
            with self._lock:
                self._list, self._by_id = institutions, {i.id: i for i in institutions}
                self._by_representative = by_representative
                self._until = now + self._ttl
        return list(self._list)

    def get(self, institution_id: str) -> Institution | None:
        """One institution (from the cached list; None when it is not known)."""
        self.all()
        return self._by_id.get(institution_id)

    def represented_by(self, person_dn: str) -> tuple[Institution, ...]:
        """The institutions that name ``person_dn`` as a representative, in
        the cached list (by name)."""
        self.all()
        return self._by_representative.get(person_dn.lower(), ())

    def invalidate(self) -> None:
        with self._lock:
            self._until = float("-inf")
