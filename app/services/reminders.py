"""Reminders and escalation (``flask requests remind``, cron, idempotent).

A request waiting for a stage longer than PORTAL_REMINDER_DAYS reminds the
stage's approvers, then every as many days, each time with a fresh review
link. After PORTAL_ESCALATION_DAYS the stage is escalated once: for an
institution's stage its deputies become approvers too, the helpdesk is
mailed (at the escalation and with every later reminder) and the applicant
is told. Registrations never confirmed are expired by the registration's
own ``expire_unconfirmed`` (one implementation). Every mark is a
compare-and-swap on the request: two runs at once send each mail once."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from ..clock import Clock, utcnow
from ..directory import Directory, DirectoryError, Person, RequestRecord
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import IR_STAGE, RequestKind, RequestStatus
from .audit import SYSTEM, audit_event
from .links import Links, Page, ReviewLink
from .review import Reviewers
from .status import stage_since

log = logging.getLogger(__name__)


@dataclass
class RemindReport:
    lines: list[str] = field(default_factory=list)
    reminded: int = 0
    escalated: int = 0
    expired: int = 0
    failed: int = 0


class Reminders:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 reviewers: Reviewers, status_url: Callable[[RequestRecord], str],
                 expire_unconfirmed: Callable[[datetime], list[RequestRecord]],
                 clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._reviewers = reviewers
        self._status_url = status_url
        self._expire_unconfirmed = expire_unconfirmed
        self._clock = clock

    def run(self, now: datetime | None = None) -> RemindReport:
        now = now or self._clock()
        report = RemindReport()
        for request in self._expire_unconfirmed(now):
            report.expired += 1
            report.lines.append(
                f"expired {request.id}: address never confirmed within "
                f"{self._settings.unconfirmed_request_days} days; account name "
                f"{request.account_name} is free again")
        for request in self._directory.requests_with_status(RequestStatus.PENDING_APPROVAL):
            try:
                self._follow_up(request, now, report)
            except DirectoryError:
                report.failed += 1
                report.lines.append(f"failed {request.id}: the directory refused (see the log)")
                log.exception("request %s could not be followed up", request.id)
        return report

    def _follow_up(self, request: RequestRecord, now: datetime, report: RemindReport) -> None:
        since = stage_since(request)
        if since is None:
            return
        index = request.approval_stage
        # Kept lazy: each mail writes it in its recipient's language.
        label = self._reviewers.stage_label(request.approval_chain[index])
        waited = now - since
        escalate = waited >= timedelta(days=self._settings.escalation_days) and \
            request.escalated_stage != index
        previous = request.last_reminded_at
        last = previous if request.reminded_stage == index else None
        remind = now >= (last or since) + timedelta(days=self._settings.reminder_days)
        if escalate:
            if not self._directory.claim_escalation(
                    request.id, request.escalated_stage, index,
                    audit_event("request.escalated", SYSTEM, now, stage=str(index))):
                return  # another run escalated it a moment ago
            request = self._directory.request(request.id)
            deputies = self._reviewers.deputies(request.institution) \
                if request.approval_chain[index] == IR_STAGE else []
            self._mail_applicant(request, since, label)
            report.escalated += 1
            report.lines.append(
                f"escalated {request.id} (stage {label}, waiting since {since:%Y-%m-%d}): "
                f"deputies {_names(deputies) or '-'}, helpdesk {self._settings.helpdesk_email}, "
                f"applicant {request.contact_mail} told")
            remind = True  # everyone asked now, deputies included
        if not remind:
            return
        approvers = self._reviewers.approvers(request, index)
        if not approvers and not request.escalated:
            return  # nobody to remind: the stage is stalled, the helpdesk knows
        if not self._directory.claim_reminder(
                request.id, index, previous, now,
                audit_event("request.reminded", SYSTEM, now, stage=str(index))):
            return
        request = self._directory.request(request.id)
        for approver in approvers:
            self._mail_approver(request, approver, since, label, now)
        if request.escalated:
            self._mail_helpdesk(request, approvers, since, label, first=escalate)
        report.reminded += 1
        report.lines.append(
            f"reminded {request.id} (stage {label}, waiting since {since:%Y-%m-%d}): "
            f"{_names(approvers) or 'nobody can approve it'}"
            f"{', helpdesk' if request.escalated else ''}")

    def _context(self, request: RequestRecord) -> dict:
        institution = self._directory.institution(request.institution)
        member = self._directory.person(request.account_name) \
            if request.kind == RequestKind.INSTITUTION_CHANGE else None
        current = self._directory.institution(member.institution) if member else None
        return dict(request=request, institution=institution, current_institution=current,
                    category=self._settings.category_label(request.category))

    def _mail_approver(self, request: RequestRecord, approver: Person, since: datetime,
                       label: str, now: datetime) -> None:
        index = request.approval_stage
        # A fresh link: the one of the first mail may have expired meanwhile.
        link = self._links.url(ReviewLink(request.id, approver.account_name, index))
        self._mailer.send(
            "review_reminder", [approver.contact_mail or approver.mail], approver.language,
            **self._context(request), representative=approver, stage_label=label,
            later_stage=index > 0, since=since, days=max(1, (now - since).days),
            escalated=request.escalated, link=link, max_age_days=self._links.max_age_days)

    def _mail_helpdesk(self, request: RequestRecord, approvers: list[Person],
                       since: datetime, label: str, first: bool) -> None:
        self._mailer.send(
            "request_escalated_helpdesk", [self._settings.helpdesk_email],
            **self._context(request), approvers=approvers, stage_label=label, since=since,
            first=first, console=self._links.page(Page.HELPDESK_REQUEST, request_id=request.id))

    def _mail_applicant(self, request: RequestRecord, since: datetime, label: str) -> None:
        self._mailer.send(
            "request_escalated", [request.contact_mail], request.language, request=request,
            stage_label=label, since=since, link=self._status_url(request))


def _names(people: list[Person]) -> str:
    return ", ".join(f"{p.display_name} ({p.account_name})" for p in people)
