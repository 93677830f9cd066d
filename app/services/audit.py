"""Audit records: who did what, when, from where and why (requirement 14).

Each record is one JSON line stored with the entry it is about
(``portalAuditEvent``), so it is readable in the portal and with ldapsearch.
"""
from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Actor:
    """Who acts: an account name (or "applicant"/"system") and the client address."""
    name: str
    address: str = ""


SYSTEM = Actor("system")


def audit_event(action: str, actor: Actor, at: datetime, reason: str = "", **details) -> str:
    # The id keeps two records of one second apart (values of an LDAP
    # attribute are a set).
    record = {"id": secrets.token_hex(4), "at": at.isoformat(timespec="seconds"),
              "action": action, "actor": actor.name, "from": actor.address}
    if reason:
        record["reason"] = reason
    record.update({k: v for k, v in details.items() if v})
    return json.dumps(record, sort_keys=True, ensure_ascii=False)


def parse_events(records: tuple[str, ...]) -> list[dict]:
    """Audit records as dicts, oldest first (unreadable ones are shown raw)."""
    events = []
    for record in records:
        try:
            events.append(json.loads(record))
        except ValueError:
            events.append({"action": record})
    return sorted(events, key=lambda e: e.get("at", ""))
