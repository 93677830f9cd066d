"""The applicant's status page of a request, reached through a signed link
(the confirmation mail, the "request created" page, the escalation mail):
where the request waits, on whom and since when; the confirmation mail
sent again; the request withdrawn."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Callable

from ..clock import Clock, utcnow
from ..directory import Directory, RequestRecord, ldap_time, parse_ldap_time
from ..settings import Settings
from ..vocabulary import IR_STAGE, OPEN_STATUSES, RequestStatus, stage_group
from .audit import Actor, audit_event, parse_events
from .errors import AlreadyDone, LinkInvalid, RequestGone, ResendTooSoon
from .links import Links, PlaceholderStatusLink, StatusLink
from .review import Reviewers

log = logging.getLogger(__name__)
# A status link lasts as long as a request may wait; it ends with the request.
STATUS_LINK_MAX_AGE_DAYS = 366


def status_link(request: RequestRecord) -> StatusLink:
    return StatusLink(request.id, request.submitted_at.isoformat() if request.submitted_at else "")


def stage_since(request: RequestRecord) -> datetime | None:
    """Since when the request waits for its current stage: its confirmation
    (or submission), or the approval of the stage before."""
    since = max((t for t in (request.submitted_at, request.email_verified_at) if t),
                default=None)
    for event in parse_events(request.audit):
        if event.get("action") == "request.stage-approved" and event.get("at"):
            try:
                at = datetime.fromisoformat(event["at"])
            except ValueError:
                continue
            since = at if since is None or at > since else since
    return since


@dataclass(frozen=True)
class StatusView:
    """What the applicant's page shows."""
    request: RequestRecord
    stages: tuple[dict, ...]  # label and state (done/current/next), as the review pages
    stage_label: str  # the stage it waits for
    waiting_on: tuple[str, ...]  # the approvers' names (an institution's stage)
    group_stage: bool  # waits for a group: named by the stage label, not by people
    since: datetime | None
    last_reminded: datetime | None
    resend_after: datetime | None  # while unconfirmed: a new mail may be asked for then
    now: datetime

    @property
    def unconfirmed(self) -> bool:
        return self.request.status == RequestStatus.PENDING_VERIFICATION

    @property
    def may_resend(self) -> bool:
        return self.unconfirmed and (self.resend_after is None or self.now >= self.resend_after)

    @property
    def may_withdraw(self) -> bool:
        return self.request.status in OPEN_STATUSES


class StatusService:
    def __init__(self, directory: Directory, links: Links, settings: Settings,
                 reviewers: Reviewers, send_verification: Callable[[RequestRecord], None],
                 clock: Clock = utcnow):
        self._directory = directory
        self._links = links
        self._settings = settings
        self._reviewers = reviewers
        self._send_verification = send_verification
        self._clock = clock

    def url(self, request: RequestRecord) -> str:
        return self._links.url(status_link(request))

    def request_for(self, token: str) -> RequestRecord:
        """The request a status link is for. LinkInvalid when tampered with or
        made for another purpose, LinkExpired, RequestGone when the request
        no longer exists, was replaced or withdrawn."""
        max_age = STATUS_LINK_MAX_AGE_DAYS * 86400
        try:
            link = self._links.load(StatusLink, token, max_age_seconds=max_age)
        except LinkInvalid:
            return self._placeholder(self._links.load(PlaceholderStatusLink, token,
                                                      max_age_seconds=max_age))
        if not link.request_id:
            raise LinkInvalid("no request")
        request = self._directory.request(link.request_id)
        if request is None or request.submitted_at is None or \
                request.submitted_at.isoformat() != link.submitted_at:
            raise RequestGone(None)
        if request.status == RequestStatus.WITHDRAWN:
            raise RequestGone(request)
        return request

    def _placeholder(self, link: PlaceholderStatusLink) -> RequestRecord:
        """A registration that matched an earlier record made no request: as
        long as an unconfirmed one would wait, its link shows the page of an
        unconfirmed request (the account name and time from the link, nothing
        else), then that it is gone, like any other."""
        try:
            submitted = datetime.fromisoformat(link.submitted_at)
        except ValueError as exc:
            raise LinkInvalid("bad time") from exc
        if self._clock() - submitted > timedelta(days=self._settings.unconfirmed_request_days):
            raise RequestGone(None)
        return RequestRecord(
            dn="", id="", account_name=link.request_id,
            status=RequestStatus.PENDING_VERIFICATION, given_name="", middle_name="",
            family_name="", contact_mail="", institution="", category="", collab_mail="",
            conditions_version="", submitted_at=submitted, submitted_from="", decided_by="",
            decided_at=None, decision_reason="", completed_at=None)

    def view(self, token: str) -> StatusView:
        return self._view(self.request_for(token))

    def _view(self, request: RequestRecord) -> StatusView:
        index = request.approval_stage
        chain = request.approval_chain
        waiting = request.status == RequestStatus.PENDING_APPROVAL
        stages = []
        for position, stage in enumerate(chain):
            if request.status == RequestStatus.APPROVED or position < index:
                state = "done"
            elif waiting and position == index:
                state = "current"
            else:
                state = "next"
            stages.append({"label": self._reviewers.stage_label(stage), "state": state})
        stage = chain[index] if 0 <= index < len(chain) else IR_STAGE
        names: tuple[str, ...] = ()
        if waiting and stage == IR_STAGE:
            names = tuple(p.display_name for p in self._reviewers.approvers(request, index))
        since = stage_since(request) if waiting else None
        reminded = request.last_reminded_at if waiting and request.last_reminded_at and \
            request.reminded_stage == index else None
        resend_after = None
        if request.status == RequestStatus.PENDING_VERIFICATION and request.confirmation_sent_at:
            resend_after = request.confirmation_sent_at + timedelta(
                minutes=self._settings.resend_interval_minutes)
        return StatusView(request, tuple(stages), str(self._reviewers.stage_label(stage)),
                          names, bool(stage_group(stage)), since, reminded, resend_after,
                          self._clock())

    def now(self) -> datetime:
        return self._clock()

    def token(self, request: RequestRecord) -> str:
        return self._links.token(status_link(request))

    def placeholder_token(self, account_name: str, submitted_at: datetime) -> str:
        """A status link for a registration that made no request (the
        applicant matched an earlier record; the stored address was written
        to): it looks like any other and shows the page of an unconfirmed
        request, so the "request created" page tells nobody who is on record."""
        # Stored times have whole seconds: the token looks like a real one's.
        submitted_at = parse_ldap_time(ldap_time(submitted_at))
        return self._links.token(PlaceholderStatusLink(account_name, submitted_at.isoformat()))

    def institution_name(self, institution_id: str) -> str:
        institution = self._directory.institution(institution_id)
        return institution.name if institution else institution_id

    def resend_confirmation(self, token: str, actor: Actor) -> StatusView:
        """Send the confirmation mail again (the earlier link keeps working:
        both went to the same address). AlreadyDone once the address is
        confirmed; ResendTooSoon within PORTAL_RESEND_INTERVAL_MINUTES of
        the last one asked for (also from another worker)."""
        request = self.request_for(token)
        view = self._view(request)
        if not view.unconfirmed:
            raise AlreadyDone(request)
        if not view.may_resend:
            raise ResendTooSoon(view.resend_after)
        if not request.id:
            return view  # a placeholder: the applicant's stored address was written to
        now = self._clock()
        if not self._directory.claim_confirmation_resend(
                request.id, request.confirmation_sent_at, now,
                audit_event("request.confirmation-resent", actor, now)):
            raise ResendTooSoon(now + timedelta(minutes=self._settings.resend_interval_minutes))
        request = self._directory.request(request.id)
        self._send_verification(request)
        log.info("confirmation mail sent again", extra={
            "event": "request.confirmation-resent", "account": request.account_name})
        return self._view(request)

    def withdraw(self, token: str, actor: Actor) -> RequestRecord:
        """The applicant withdraws the open request: it keeps its history,
        holds no account name any more, and the approvers' links say it was
        withdrawn. AlreadyDone when it was decided (or withdrawn) meanwhile."""
        request = self.request_for(token)
        if request.status not in OPEN_STATUSES:
            raise AlreadyDone(request)
        if not request.id:
            return replace(request, status=RequestStatus.WITHDRAWN)  # a placeholder
        now = self._clock()
        if not self._directory.withdraw_request(request.id, request.status, now, audit_event(
                "request.withdrawn", actor, now, stage=str(request.approval_stage))):
            raise AlreadyDone(self._directory.request(request.id) or request)
        log.info("request withdrawn", extra={"event": "request.withdrawn",
                                             "account": request.account_name})
        return self._directory.request(request.id) or request
