"""What the helpdesk's console, its decisions and its institution pages
share: the refusal shown to the helpdesk, the reason every action needs,
and an entry's history in rows."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from ...directory import Directory
from ..audit import parse_events
from ..errors import ServiceError
from ..history import describe


class HelpdeskRefused(ServiceError):
    """The action does not fit the record's state; the message is shown."""


@dataclass(frozen=True)
class HistoryRow:
    at: str
    what: str
    by: str
    why: str
    from_: str


def given_reason(reason: str) -> str:
    """The reason an action is recorded with; refused when there is none."""
    reason = (reason or "").strip()
    if not reason:
        raise HelpdeskRefused(str(_l("Give a reason: it is recorded in the history.")))
    return reason


def history(directory: Directory, audit: tuple[str, ...], owner: str,
            owner_label: str) -> list[HistoryRow]:
    """An entry's audit trail in words, each actor by name (the owner, or
    the applicant, as ``owner_label``)."""
    cache: dict[str, str] = {}

    def name_of(account: str) -> str:
        if account not in cache:
            other = directory.person(account)
            cache[account] = other.display_name or account if other else account
        return cache[account]

    rows = []
    for event, entry in zip(parse_events(audit), describe(audit, owner, name_of), strict=True):
        by = owner_label if event.get("actor") in (owner, "applicant") else entry.by
        rows.append(HistoryRow(entry.at, entry.what, by, entry.why, event.get("from", "")))
    return rows
