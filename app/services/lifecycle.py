"""Membership lifecycle: expiry, suspension and their reversal. A record is
never deleted; every change is locked into the directory and audited."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

from ..clock import Clock, utcnow
from ..directory import Directory, Person, StateConflict
from ..mail import Mailer
from ..vocabulary import MemberStatus
from .audit import SYSTEM, Actor, audit_event, parse_events
from .errors import NotAuthorised
from .links import Links, Page

log = logging.getLogger(__name__)

ACTIVE, EXPIRED, SUSPENDED = MemberStatus.ACTIVE, MemberStatus.EXPIRED, MemberStatus.SUSPENDED
# How far ahead a member-until date may be set by hand.
MAX_MEMBER_UNTIL_YEARS = 10

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
                 clock: Clock = utcnow, grace_days: int = 30):
        self._grace = timedelta(days=grace_days)
        self._links = links
        self._directory = directory
        self._mailer = mailer
        self._clock = clock

    def _withdraw(self, person: Person, new_status: str, actor: Actor, reason: str,
                  template: str, now: datetime) -> bool:
        """Lock (suspension) or the expired policy (expiry) and leave the extra
        groups first (both repeatable), then the status change, which only one
        caller wins (and which takes the member out of the dynamic main
        group); that caller mails. Suspension: the administrative lock (no
        bind ever succeeds, right password or not). Expiry: the expired
        policy, under which only the portal learns that a password was right
        (passwords.py)."""
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
        expired = 0
        for person in self._directory.members_due_to_expire(now):
            if self._withdraw(person, EXPIRED, SYSTEM, PERIOD_ENDED,
                              "membership_expired", now):
                expired += 1
                if person.membership_ended_at:
                    # Ended by the IR: the grace period is over, nothing to undo.
                    self._directory.forget_membership_ending(person.account_name)
        return expired

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
        # Back in the main group by the status change below (a dynamic group).
        self._directory.transition_member(
            account_name, SUSPENDED, ACTIVE,
            audit_event("member.unsuspended", actor, now, reason=reason.strip()))
        self._mailer.send("membership_restored", [person.contact_mail], person.language,
                          person=person)

    # -- ended by the IR (or the helpdesk): a grace period, undo, member-until --------------
    # ``within``: the institutions the actor acts for (an IR's); None for any
    # (the helpdesk). A person outside them is NotAuthorised, as is one who
    # does not exist: a foreign IR learns nothing.

    def _member_for(self, account_name: str, within: frozenset[str] | None) -> Person:
        person = self._directory.person(account_name)
        if person is None or not person.status or \
                (within is not None and person.institution not in within):
            raise NotAuthorised("not a member of the actor's institutions")
        return person

    def grace_end(self, now: datetime | None = None) -> datetime:
        return (now or self._clock()) + self._grace

    def end_membership(self, account_name: str, by: Actor, reason: str, *,
                       within: frozenset[str] | None = None) -> Person:
        """The person left: the membership ends after the grace period
        (member-until = now + grace, or the earlier date it had), then
        'flask members expire' expires it. The member is mailed; undo is
        possible until then. LifecycleError when not active or ended already."""
        person = self._member_for(account_name, within)
        reason = (reason or "").strip()
        if not reason:
            raise LifecycleError("ending a membership needs a reason")
        if person.status != ACTIVE:
            raise LifecycleError(f"{account_name} is not an active member")
        if person.membership_ended_at:
            raise LifecycleError(f"the membership of {account_name} ends already")
        now = self._clock()
        until = self.grace_end(now)
        if person.member_until and person.member_until < until:
            until = person.member_until
        try:
            self._directory.record_membership_ended(
                account_name, at=now, until=until, previous_until=person.member_until,
                audit_event=audit_event("member.ending", by, now, reason=reason,
                                        until=until.isoformat(timespec="seconds")))
        except StateConflict as exc:
            raise LifecycleError(f"the membership of {account_name} ends already") from exc
        log.info("membership ended", extra={"event": "member.ending", "account": account_name,
                                           "actor": by.name})
        self._mailer.send("membership_ending", [person.contact_mail or person.mail],
                          person.language, person=person, reason=reason, when=until)
        return self._directory.person(account_name)

    def undo_end_membership(self, account_name: str, by: Actor, reason: str = "", *,
                            within: frozenset[str] | None = None) -> Person:
        """While in grace: the membership goes on, member-until is what it
        was before. LifecycleError when there is nothing to undo."""
        person = self._member_for(account_name, within)
        if person.status != ACTIVE or not person.membership_ended_at:
            raise LifecycleError(f"the membership of {account_name} is not ending")
        now = self._clock()
        try:
            self._directory.record_membership_end_undone(
                account_name, ended_at=person.membership_ended_at,
                restore_until=person.previous_member_until,
                audit_event=audit_event("member.ending-undone", by, now,
                                        reason=(reason or "").strip()))
        except StateConflict as exc:
            raise LifecycleError(f"the membership of {account_name} is not ending") from exc
        self._mailer.send("membership_continues", [person.contact_mail or person.mail],
                          person.language, person=person, when=person.previous_member_until)
        return self._directory.person(account_name)

    def set_member_until(self, account_name: str, until: date, by: Actor, reason: str = "", *,
                         within: frozenset[str] | None = None) -> Person:
        """Extend or set member-until (the end of that day, UTC) of an active
        member: not in the past, at most MAX_MEMBER_UNTIL_YEARS ahead. An
        ending in grace is replaced by it."""
        person = self._member_for(account_name, within)
        if person.status != ACTIVE:
            raise LifecycleError(f"{account_name} is not an active member")
        now = self._clock()
        today = now.astimezone(timezone.utc).date()
        if until < today:
            raise LifecycleError("member-until cannot be in the past")
        if (until - today).days > 366 * MAX_MEMBER_UNTIL_YEARS:
            raise LifecycleError(f"member-until is at most {MAX_MEMBER_UNTIL_YEARS} years ahead")
        moment = datetime.combine(until, time(23, 59, 59), tzinfo=timezone.utc)
        self._directory.set_member_until(account_name, moment, audit_event(
            "member.until-set", by, now, reason=(reason or "").strip(),
            until=moment.isoformat(timespec="seconds"),
            previous=person.member_until.isoformat(timespec="seconds")
            if person.member_until else "open-ended"))
        return self._directory.person(account_name)

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
