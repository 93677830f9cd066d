"""A member's history in words: the audit records (app/services/audit.py)
as "what" and "by whom", for "My account"."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from flask_babel import lazy_gettext as _l

from ..vocabulary import MemberStatus, RequestStatus
from .audit import SYSTEM, parse_events

# The audit actions recorded on a member's entry, in words. An action not
# listed (a newer one) reads as a change to the record.
ACTIONS = {
    "member.created": _l("Account created: membership approved"),
    "member.reactivated": _l("Membership reactivated"),
    "member.moved": _l("Moved to another institution"),
    "member.joined-group": _l("Joined a group"),
    "member.left-group": _l("Left a group"),
    f"member.{MemberStatus.EXPIRED}": _l("Membership expired"),
    f"member.{MemberStatus.SUSPENDED}": _l("Membership suspended"),
    "member.unsuspended": _l("Suspension lifted"),
    "member.language-changed": _l("Language of the mails changed"),
    "member.certificate-added": _l("Certificate added"),
    "member.certificate-removed": _l("Certificate removed"),
    "account.conditions-accepted": _l("Conditions of use accepted"),
    "account.password-changed": _l("Password changed"),
    "account.password-reset": _l("Password set with a reset link"),
    "account.expiry-warning": _l("Reminded by mail that the password expires"),
    "member.ending": _l("Membership ended: access until the end of the grace period"),
    "member.ending-undone": _l("End of the membership withdrawn"),
    "member.until-set": _l("Member-until date set"),
    # Requests, and the helpdesk's actions (its console shows these histories).
    "request.submitted": _l("Registration submitted"),
    "request.paper-submitted": _l("Paper registration filed by the helpdesk"),
    "request.email-verified": _l("Address confirmed"),
    "request.notified": _l("Approvers asked"),
    "request.stalled": _l("Nobody could approve the stage"),
    "request.possible-duplicate": _l("Possibly a known person"),
    "request.stage-approved": _l("Stage approved"),
    f"request.{RequestStatus.APPROVED}": _l("Request approved"),
    f"request.{RequestStatus.REJECTED}": _l("Request rejected"),
    "request.account-created": _l("Account created"),
    "request.helpdesk-decision": _l("Decided by the helpdesk as the approver of last resort"),
    "request.review-resent": _l("Fresh review links sent"),
    "member.unlocked": _l("Account unlocked"),
    "member.category-changed": _l("Category changed"),
    "member.institution-changed": _l("Institution changed"),
    "account.initial-password-set": _l("First password set"),
    "member.initial-password-link-resent": _l("New link to set the password sent"),
    "member.representative-added": _l("Named institute representative"),
    "member.deputy-added": _l("Named deputy of the institute representatives"),
    "member.deputy-removed": _l("No longer deputy of the institute representatives"),
    "institution.deputy-added": _l("Deputy added"),
    "institution.deputy-removed": _l("Deputy removed"),
    "member.representative-removed": _l("No longer institute representative"),
    "request.confirmation-resent": _l("Confirmation mail sent again"),
    "request.released": _l("Released by the helpdesk: name and address free"),
    "institution.created": _l("Institution created"),
    "institution.changed": _l("Name or country changed"),
    "institution.representative-added": _l("Representative added"),
    "institution.representative-removed": _l("Representative removed"),
}
OTHER = _l("Record changed")
# Details worth naming after the words.
_DETAILS = ("group", "institution", "version", "language")


@dataclass(frozen=True)
class HistoryEntry:
    at: str      # ISO time
    what: str
    by: str
    why: str = ""


def describe(audit: tuple[str, ...], owner: str,
             name_of: Callable[[str], str]) -> list[HistoryEntry]:
    """The audit records of ``owner``'s entry, oldest first, in words: the
    member is "you", the portal's own steps name the approver where known,
    other actors by name (``name_of``: account name -> display name)."""
    entries = []
    for event in parse_events(audit):
        what = str(ACTIONS.get(event.get("action", ""), OTHER))
        details = [str(event[key]) for key in _DETAILS if event.get(key)]
        if details:
            what = f"{what} ({', '.join(details)})"
        entries.append(HistoryEntry(at=event.get("at", ""), what=what,
                                    by=_actor(event, owner, name_of),
                                    why=event.get("reason", "")))
    return entries


def _actor(event: dict, owner: str, name_of: Callable[[str], str]) -> str:
    actor = event.get("actor", "")
    if actor in (owner, "applicant"):
        return str(_l("You"))
    if actor == SYSTEM.name or not actor:
        # The portal's step after a decision: the decider is recorded as a
        # label ("Name (account)") or an account name.
        approver = event.get("approved_by", "")
        if approver:
            return approver if "(" in approver else name_of(approver)
        return str(_l("The portal"))
    return name_of(actor)
