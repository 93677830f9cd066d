"""The IR console's workflows: the requests waiting for a representative,
the roster of their institution(s), the yearly roster confirmation, and the
helpdesk's view of which institutions have not confirmed.

Every method takes the institutions the actor represents (``within``, from
RoleService) and refuses (NotAuthorised) anything outside them; the
decisions themselves stay with ApprovalService (a review link minted for the
logged-in IR is checked like the one in the mail) and LifecycleService."""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Iterator

from ..clock import Clock, utcnow
from ..directory import Directory, Institution, RequestRecord, RosterMember
from ..settings import Settings
from ..vocabulary import IR_STAGE, MemberStatus, RequestKind, RequestStatus
from .audit import Actor, audit_event
from .errors import NotAuthorised
from .lifecycle import LifecycleError, LifecycleService
from .links import Links, ReviewLink
from .review import Reviewers

# Kinds an IR decides (group applications are the group managers' business).
IR_KINDS = (RequestKind.REGISTRATION, RequestKind.REACTIVATION,
            RequestKind.INSTITUTION_CHANGE, RequestKind.CATEGORY_CHANGE)
# One confirmation form holds at most this many members (one field each).
CONFIRMATION_LIMIT = 5000


@dataclass(frozen=True)
class PendingRequest:
    request: RequestRecord
    institution: Institution | None
    waiting_since: datetime | None
    age_days: int


@dataclass(frozen=True)
class RosterLine:
    member: RosterMember
    password_expires: datetime | None

    @property
    def ending(self) -> bool:
        """Ended by the IR or the helpdesk, in the grace period."""
        return self.member.status == MemberStatus.ACTIVE and \
            self.member.membership_ended_at is not None


@dataclass(frozen=True)
class RosterPage:
    lines: list[RosterLine]
    page: int
    more: bool


@dataclass(frozen=True)
class RosterStatus:
    """One institution's roster confirmation, as the helpdesk sees it."""
    institution: Institution
    due_at: datetime | None  # None: never confirmed
    overdue: bool


class RosterService:
    def __init__(self, directory: Directory, reviewers: Reviewers, links: Links,
                 lifecycle: LifecycleService, settings: Settings, clock: Clock = utcnow):
        self._directory = directory
        self._reviewers = reviewers
        self._links = links
        self._lifecycle = lifecycle
        self._period = timedelta(days=settings.roster_confirmation_days)
        self._clock = clock

    @staticmethod
    def _check(institution_id: str, within: frozenset[str]) -> None:
        if institution_id not in within:
            raise NotAuthorised("not a representative of this institution")

    # -- requests waiting for the IR -------------------------------------------------------

    def pending(self, account_name: str, within: frozenset[str]) -> list[PendingRequest]:
        """Requests of these institutions whose current stage is the IR's and
        which this IR may approve, oldest first."""
        person = self._directory.person(account_name)
        if person is None or not within:
            return []
        now = self._clock()
        found = []
        for request in self._directory.requests_waiting_in(sorted(within),
                                                           RequestStatus.PENDING_APPROVAL):
            if not self._decides(person, request):
                continue
            since = request.submitted_at
            found.append(PendingRequest(request, self._directory.institution(request.institution),
                                        since, (now - since).days if since else 0))
        return sorted(found, key=lambda p: p.waiting_since or now)

    def _decides(self, person, request: RequestRecord) -> bool:
        return request.kind in IR_KINDS and \
            request.status == RequestStatus.PENDING_APPROVAL and \
            request.approval_chain[request.approval_stage] == IR_STAGE and \
            self._reviewers.may_approve(person, request, request.approval_stage)

    def review_token(self, account_name: str, request_id: str, within: frozenset[str]) -> str:
        """A fresh review link's token for this IR and the request's current
        stage (the mail's link may have expired). The review page checks it
        again, and the decision once more."""
        request = self._directory.request(request_id)
        person = self._directory.person(account_name)
        if request is None or person is None or request.institution not in within or \
                not self._decides(person, request):
            raise NotAuthorised("not a request this representative decides")
        return self._links.token(ReviewLink(request.id, account_name, request.approval_stage))

    # -- the roster --------------------------------------------------------------------------

    def _lines(self, members: Iterable[RosterMember]) -> Iterator[RosterLine]:
        for member in members:
            expires = None
            if member.password_changed_at:
                policy = member.password_policy or self._directory.default_policy_dn
                max_age = self._directory.policy_max_age(policy)
                if max_age:
                    expires = member.password_changed_at + timedelta(seconds=max_age)
            yield RosterLine(member, expires)

    def members(self, institution_id: str, within: frozenset[str], *, status: str = "",
                category: str = "", page: int = 1, per_page: int = 100) -> RosterPage:
        """One page of the roster (in the directory's order): slapd filters,
        the walk stops after the page."""
        self._check(institution_id, within)
        page = max(1, page)
        start = (page - 1) * per_page
        walk = self._directory.roster(institution_id, status=status, category=category)
        try:
            chunk = list(itertools.islice(walk, start, start + per_page + 1))
        finally:
            walk.close()
        return RosterPage(list(self._lines(chunk[:per_page])), page, len(chunk) > per_page)

    def export(self, institution_id: str, within: frozenset[str], *, status: str = "",
               category: str = "") -> Iterator[RosterLine]:
        """Every matching member, streamed (the CSV export)."""
        self._check(institution_id, within)
        return self._lines(self._directory.roster(institution_id, status=status,
                                                  category=category))

    def member(self, account_name: str, within: frozenset[str]):
        """One member of the IR's institutions (their page in the console)."""
        person = self._directory.person(account_name)
        if person is None or not person.status or person.institution not in within:
            raise NotAuthorised("not a member of this representative's institutions")
        return person

    # -- the yearly confirmation --------------------------------------------------------------

    def due_at(self, institution: Institution) -> datetime | None:
        confirmed = institution.roster_confirmed_at
        return confirmed + self._period if confirmed else None

    def confirmation_due(self, institution: Institution, now: datetime | None = None) -> bool:
        due = self.due_at(institution)
        return due is None or due <= (now or self._clock())

    def confirmation_list(self, institution_id: str, within: frozenset[str]) -> list[RosterLine]:
        """The active members to confirm (at most CONFIRMATION_LIMIT + 1, so a
        caller sees when there are more)."""
        self._check(institution_id, within)
        walk = self._directory.roster(institution_id, status=MemberStatus.ACTIVE)
        try:
            return list(self._lines(itertools.islice(walk, CONFIRMATION_LIMIT + 1)))
        finally:
            walk.close()

    def confirm_roster(self, institution_id: str, by: Actor, leaving: Iterable[str],
                       reason: str, within: frozenset[str],
                       listed: Iterable[str]) -> list[str]:
        """The IR confirms the roster in one pass: everyone ``listed`` stays
        but those ``leaving``, whose memberships end (grace period, mail). All
        names are checked first: one not an active member of the institution
        and nothing is done. Returns the accounts whose membership ends now."""
        self._check(institution_id, within)
        leaving, listed = set(leaving), set(listed)
        reason = (reason or "").strip()
        active = {line.member.account_name: line
                  for line in self.confirmation_list(institution_id, within)}
        if not leaving <= listed or not listed <= set(active):
            raise NotAuthorised("the confirmation names people who are not active members here")
        if leaving and not reason:
            raise LifecycleError("ending a membership needs a reason")
        ended = []
        for account in sorted(leaving):
            if active[account].ending:
                continue  # ending already
            self._lifecycle.end_membership(account, by, reason, within=frozenset({institution_id}))
            ended.append(account)
        now = self._clock()
        self._directory.record_roster_confirmed(
            institution_id, at=now, by=by.name, audit_event=audit_event(
                "institution.roster-confirmed", by, now, reason=reason if ended else "",
                members=str(len(listed)), leaving=" ".join(ended)))
        return ended

    def roster_status(self, now: datetime | None = None) -> list[RosterStatus]:
        """Every institution with its confirmation: overdue ones first."""
        now = now or self._clock()
        statuses = [RosterStatus(i, self.due_at(i), self.confirmation_due(i, now))
                    for i in self._directory.institutions()]
        return sorted(statuses, key=lambda s: (not s.overdue, s.institution.name.lower()))
