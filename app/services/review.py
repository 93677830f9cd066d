"""Who approves a request, stage by stage, and asking them.

A request carries its approval chain (from the category, or the kind of
request): "ir" = the representatives of the request's institution,
"group:<cn>" = the members of that group (e.g. the institutional board).
"""
from __future__ import annotations

import logging
from typing import Callable

from ..directory import Directory, Institution, Person, Request
from ..mail import Mailer
from ..clock import Clock, utcnow
from ..settings import Settings
from ..vocabulary import IR_STAGE, MemberStatus, stage_group
from . import tokens
from .audit import SYSTEM, audit_event, parse_events

log = logging.getLogger(__name__)


class Reviewers:
    def __init__(self, directory: Directory, mailer: Mailer, links: tokens.LinkTokens,
                 settings: Settings, url_for_link: Callable[[str, str | None], str],
                 clock: Clock = utcnow):
        self._clock = clock
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._url_for_link = url_for_link

    def _active(self, dns) -> list[Person]:
        people = (self._directory.person_by_dn(dn) for dn in dns)
        return [p for p in people if p is not None and p.status == MemberStatus.ACTIVE]

    def representatives(self, institution_id: str) -> list[Person]:
        """The active IRs of an institution."""
        institution = self._directory.institution(institution_id)
        return self._active(institution.representative_dns if institution else ())

    def approvers(self, request: Request, stage: str) -> list[Person]:
        """Who may decide ``stage`` of ``request``."""
        group = stage_group(stage)
        if stage == IR_STAGE:
            candidates = self.representatives(request.institution)
        elif group:
            candidates = self._active(self._directory.group_member_dns(group))
        else:
            candidates = []
        return [p for p in candidates if self._independent(p, request, stage)]

    @staticmethod
    def _independent(person: Person, request: Request, stage: str) -> bool:
        """Not the person the request is about, and no approver of an earlier stage."""
        earlier = {e.get("actor") for e in parse_events(request.audit)
                   if e.get("action") == "request.stage-approved" and e.get("stage") != stage}
        return person.account_name != request.account_name and person.account_name not in earlier

    def may_approve(self, person: Person, request: Request, stage: str) -> bool:
        return any(p.dn == person.dn for p in self.approvers(request, stage))

    def stage_label(self, stage: str) -> str:
        if stage == IR_STAGE:
            return "institute representative"
        name = stage_group(stage) or stage
        return self._settings.stage_labels.get(name, name)

    def notify_objection(self, request: Request, institution_id: str) -> int:
        """Tell the IRs of the member's current institution about a move away,
        with a link where they can object (reject) while it is pending."""
        institution = self._directory.institution(institution_id)
        representatives = self.representatives(institution_id)
        target = self._directory.institution(request.institution)
        for ir in representatives:
            token = self._links.issue(tokens.REVIEW_REQUEST, {
                "r": request.id, "ir": ir.account_name, "st": 0, "obj": 1})
            self._mailer.send("institution_change_notice", [ir.contact_mail or ir.mail],
                              request=request, representative=ir, institution=institution,
                              target=target, link=self._url_for_link("review.review", token),
                              max_age_days=self._settings.link_max_age_days)
        return len(representatives)

    def notify(self, request: Request) -> int:
        """Mail everyone of the stage the request waits for a personal link."""
        stage = request.approval_chain[request.approval_stage]
        institution: Institution | None = self._directory.institution(request.institution)
        approvers = self.approvers(request, stage)
        for approver in approvers:
            token = self._links.issue(tokens.REVIEW_REQUEST, {
                "r": request.id, "ir": approver.account_name, "st": request.approval_stage})
            self._mailer.send(
                "review_request", [approver.contact_mail or approver.mail], request=request,
                representative=approver, institution=institution,
                category=self._settings.category_label(request.category),
                stage_label=self.stage_label(stage),
                link=self._url_for_link("review.review", token),
                max_age_days=self._settings.link_max_age_days,
            )
        if not approvers:
            log.warning("request %s: nobody to approve stage %s", request.id, stage)
            self._mailer.send("no_representative", [self._settings.helpdesk_email],
                              request=request, institution=institution,
                              stage_label=self.stage_label(stage))
        # Recorded last: a request without it for its stage is asked again by
        # 'flask portal complete-approvals' (the mails may not have gone out).
        self._directory.update_request(request.id, {}, audit_event(
            "request.notified", SYSTEM, self._clock(),
            stage=str(request.approval_stage)))
        return len(approvers)

    def notified(self, request: Request) -> bool:
        """The approvers of the stage the request waits for were asked."""
        return any(e.get("action") == "request.notified"
                   and e.get("stage") == str(request.approval_stage)
                   for e in parse_events(request.audit))
