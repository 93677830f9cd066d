"""The mail outbox (ou=outbox): messages that wait to be sent; every app
host sees them."""
from __future__ import annotations

from .connection import DirectoryConnection
from .mapping import Attr, AttributeMap, int_attr, time_attr
from .records import OutboxMessage

OUTBOX = AttributeMap(
    id="portalOutboxId",
    message=Attr("portalOutboxMessage", raw=True),
    recipients=Attr("portalOutboxRecipient", multi=True),
    attempts=int_attr("portalOutboxAttempts", default=0),
    last_error="portalOutboxLastError",
    queued_at=time_attr("portalSubmittedAt"),
    object_classes=Attr("objectClass", multi=True),
)
_FIELDS = ("id", "message", "recipients", "attempts", "last_error", "queued_at")


def _error_text(error: str) -> str:
    return error[:1000] or "-"


class Outbox(DirectoryConnection):
    def add_outbox_message(self, message: OutboxMessage) -> None:
        self._add(self.outbox_entry_dn(message.id), OUTBOX.entry(
            object_classes=["portalOutboxEntry"], id=message.id, message=message.message,
            attempts=message.attempts, last_error=_error_text(message.last_error),
            queued_at=message.queued_at, recipients=message.recipients))

    def outbox_messages(self) -> list[OutboxMessage]:
        entries = self._search(self.outbox_dn, "(objectClass=portalOutboxEntry)",
                               OUTBOX.names(*_FIELDS))
        return sorted((OutboxMessage(**OUTBOX.read(e, *_FIELDS)) for e in entries),
                      key=lambda m: (m.queued_at, m.id))

    def record_outbox_failure(self, message_id: str, attempts: int, error: str) -> None:
        self._modify(self.outbox_entry_dn(message_id), OUTBOX.replace(
            attempts=attempts, last_error=_error_text(error)))

    def remove_outbox_message(self, message_id: str) -> None:
        self._delete(self.outbox_entry_dn(message_id))
