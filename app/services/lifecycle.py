"""Membership lifecycle: expiry, suspension and their reversal. A record is
never deleted; every change is locked into the directory and audited."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from ..clock import Clock, utcnow
from ..directory import Directory, Person, StateConflict
from ..mail import Mailer
from ..vocabulary import MemberStatus
from .audit import SYSTEM, Actor, audit_event, parse_events
from .links import Links, Page

log = logging.getLogger(__name__)

ACTIVE, EXPIRED, SUSPENDED = MemberStatus.ACTIVE, MemberStatus.EXPIRED, MemberStatus.SUSPENDED
# The reason recorded when a membership period ends (shown in words).
PERIOD_ENDED = "membership period ended"


@dataclass(frozen=True)
class Withdrawal:
    """When and why a member was withdrawn (the last such audit record)."""
    since: datetime | None
    reason: str
    by_portal: bool

    @property
    def period_ended(self) -> bool:
        return self.reason == PERIOD_ENDED


class LifecycleError(Exception):
    """The member is not in a state that allows this change."""


class LifecycleService:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links,
                 clock: Clock = utcnow):
        self._links = links
        self._directory = directory
        self._mailer = mailer
        self._clock = clock

    def _withdraw(self, person: Person, new_status: str, actor: Actor, reason: str,
                  template: str, now: datetime) -> bool:
        """Lock and leave the main group first (both repeatable), then the
        status change, which only one caller wins; that caller mails.
        Suspension: the administrative lock (no bind ever succeeds, right
        password or not). Expiry: the expired policy, under which only the
        portal learns that a password was right (passwords.py)."""
        if new_status == EXPIRED:
            self._directory.expire_account(person.account_name)
        else:
            self._directory.lock_account(person.account_name)
        self._directory.new_session_epoch(person.account_name, secrets.token_urlsafe(12))
        # Out of every group: extra groups are applied for again after a reactivation.
        self._directory.remove_from_every_group(person.dn)
        try:
            self._directory.transition_member(
                person.account_name, ACTIVE, new_status,
                audit_event(f"member.{new_status}", actor, now, reason=reason))
        except StateConflict:
            return False
        log.info("member withdrawn", extra={"event": f"member.{new_status}",
                                            "account": person.account_name})
        self._mailer.send(template, [person.contact_mail], person.language, person=person,
                          reason=reason,
                          reactivate_link=self._links.page(Page.REACTIVATION))
        return True

    def expire_due(self, now: datetime | None = None) -> int:
        """Members past their member-until date become expired (for cron)."""
        now = now or self._clock()
        return sum(self._withdraw(person, EXPIRED, SYSTEM, PERIOD_ENDED,
                                  "membership_expired", now)
                   for person in self._directory.members_due_to_expire(now))

    def release_expired_locks(self) -> int:
        """Expired members (just now or before the expired policy existed)
        whose password the expired policy refuses by itself lose the
        administrative lock: they may log in to see their status and ask
        for reactivation; every service still refuses them (for cron, after
        expire_due; idempotent)."""
        return self._directory.release_expired_locks()

    def suspend(self, account_name: str, reason: str, actor: Actor) -> None:
        person = self._directory.person(account_name)
        if person is None or person.status != ACTIVE:
            raise LifecycleError(f"{account_name} is not an active member")
        if not reason.strip():
            raise LifecycleError("a suspension needs a reason")
        self._withdraw(person, SUSPENDED, actor, reason.strip(), "membership_suspended",
                       self._clock())

    def unsuspend(self, account_name: str, reason: str, actor: Actor) -> None:
        person = self._directory.person(account_name)
        if person is None or person.status != SUSPENDED:
            raise LifecycleError(f"{account_name} is not suspended")
        now = self._clock()
        # Repeatable steps first, the status change (once) last, as in _withdraw.
        self._directory.unlock_account(account_name)
        self._directory.add_group_member(self._directory.main_group_dn, person.dn)
        self._directory.transition_member(
            account_name, SUSPENDED, ACTIVE,
            audit_event("member.unsuspended", actor, now, reason=reason.strip()))
        self._mailer.send("membership_restored", [person.contact_mail], person.language,
                          person=person)

    # -- for the pages ----------------------------------------------------------------------

    def expired_policy_present(self) -> bool:
        """The directory has the expired members' policy (`flask portal check`)."""
        return self._directory.expired_policy_present()

    def withdrawal(self, person: Person) -> Withdrawal:
        """Since when and why ``person`` is no longer active."""
        action = f"member.{person.status}"
        events = [e for e in parse_events(person.audit) if e.get("action") == action]
        if not events:
            return Withdrawal(None, "", True)
        event = events[-1]
        try:
            since = datetime.fromisoformat(event.get("at", ""))
        except ValueError:
            since = None
        return Withdrawal(since, event.get("reason", ""), event.get("actor") == SYSTEM.name)

    def history(self, account_name: str) -> list[dict] | None:
        """The audit records of a member, oldest first; None for no such member."""
        person = self._directory.person(account_name)
        return None if person is None else parse_events(person.audit)
