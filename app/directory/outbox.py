"""The mail outbox (ou=outbox): every message waits here until the sender
(``flask mail send``) has delivered it; every app host sees them.

A sender claims a message before sending it: a compare-and-swap on
portalOutboxClaim (delete the value it read, add its own, in one modify),
so of two senders exactly one wins; a claim older than the sender's timeout
is taken over the same way (its sender died)."""
from __future__ import annotations

from datetime import datetime

from .connection import DirectoryConnection
from .errors import ConstraintViolation, NoSuchEntry, StateConflict, ValueExists
from .mapping import Attr, AttributeMap, int_attr, time_attr
from .records import OutboxMessage
from .values import ldap_time, parse_ldap_time

OUTBOX = AttributeMap(
    id="portalOutboxId",
    message=Attr("portalOutboxMessage", raw=True),
    recipients=Attr("portalOutboxRecipient", multi=True),
    attempts=int_attr("portalOutboxAttempts", default=0),
    last_error="portalOutboxLastError",
    queued_at=time_attr("portalSubmittedAt"),
    claim="portalOutboxClaim",
    not_before=time_attr("portalOutboxNotBefore"),
    object_classes=Attr("objectClass", multi=True),
)
_FIELDS = ("id", "message", "recipients", "attempts", "last_error", "queued_at", "claim",
           "not_before")
UNCLAIMED = "-"
# Lost races: another sender changed the claim first, or sent and removed it.
_LOST = (StateConflict, ConstraintViolation, ValueExists, NoSuchEntry)


def claim_text(sender: str, now: datetime) -> str:
    return f"{sender} {ldap_time(now)}"


def claimed_since(claim: str) -> datetime | None:
    """When the claim was made; None when free (or unreadable: free too)."""
    if claim in ("", UNCLAIMED) or " " not in claim:
        return None
    try:
        return parse_ldap_time(claim.rpartition(" ")[2])
    except ValueError:
        return None


def _error_text(error: str) -> str:
    return error[:1000] or "-"


class Outbox(DirectoryConnection):
    def add_outbox_message(self, message: OutboxMessage) -> None:
        self._add(self.outbox_entry_dn(message.id), OUTBOX.entry(
            object_classes=["portalOutboxEntry"], id=message.id, message=message.message,
            attempts=message.attempts, last_error=_error_text(message.last_error),
            queued_at=message.queued_at, recipients=message.recipients,
            claim=message.claim or UNCLAIMED, not_before=message.not_before))

    def outbox_messages(self) -> list[OutboxMessage]:
        entries = self._search(self.outbox_dn, "(objectClass=portalOutboxEntry)",
                               OUTBOX.names(*_FIELDS))
        return sorted((OutboxMessage(**OUTBOX.read(e, *_FIELDS)) for e in entries),
                      key=lambda m: (m.queued_at, m.id))

    def claim_outbox_message(self, message_id: str, seen: str, claim: str) -> bool:
        """Replace the claim ``seen`` (as read; "" for none) by ``claim``; False
        when another sender changed it first or the message is gone."""
        dn = self.outbox_entry_dn(message_id)
        change = OUTBOX.swap("claim", seen, claim) if seen else OUTBOX.add(claim=claim)
        try:
            self._modify(dn, change)
        except _LOST:
            return False
        return True

    def record_outbox_failure(self, message_id: str, claim: str, attempts: int, error: str,
                              not_before: datetime) -> bool:
        """A failed attempt: counted, the next one not before ``not_before``,
        the claim given back (False if it was no longer ours)."""
        try:
            self._modify(self.outbox_entry_dn(message_id), {
                **OUTBOX.replace(attempts=attempts, last_error=_error_text(error),
                                 not_before=not_before),
                **OUTBOX.swap("claim", claim, UNCLAIMED)})
        except _LOST:
            return False
        return True

    def remove_outbox_message(self, message_id: str) -> None:
        self._delete(self.outbox_entry_dn(message_id))
