"""Who approves a request, stage by stage, and asking them.

A request carries its approval chain (from the category, or the kind of
request): "ir" = the representatives of the request's institution,
"group:<cn>" = the members of that group (e.g. the institutional board).
Nobody approves two stages of one request, nor their own request.
"""
from __future__ import annotations

import logging

from flask_babel import lazy_gettext as _l

from ..clock import Clock, utcnow
from ..directory import Directory, Institution, Person, RequestRecord
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import IR_STAGE, MemberStatus, RequestKind, stage_group
from .audit import SYSTEM, audit_event
from .links import Links, ReviewLink

log = logging.getLogger(__name__)


class Reviewers:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links,
                 settings: Settings, clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._clock = clock

    def _active(self, dns) -> list[Person]:
        people = (self._directory.person_by_dn(dn) for dn in dns)
        return [p for p in people if p is not None and p.status == MemberStatus.ACTIVE]

    def representatives(self, institution_id: str) -> list[Person]:
        """The active IRs of an institution."""
        institution = self._directory.institution(institution_id)
        return self._active(institution.representative_dns if institution else ())

    def deputies(self, institution_id: str) -> list[Person]:
        """The active deputies of an institution's IRs (asked once a request
        is escalated)."""
        institution = self._directory.institution(institution_id)
        return self._active(institution.deputy_dns if institution else ())

    def approvers(self, request: RequestRecord, stage: int) -> list[Person]:
        """Who may decide stage ``stage`` (an index into the chain) of
        ``request``: for an institution's stage once it is escalated, its
        deputies too."""
        name = request.approval_chain[stage]
        group = stage_group(name)
        if name == IR_STAGE:
            candidates = self.representatives(request.institution)
            if request.escalated_stage == stage:
                known = {p.dn for p in candidates}
                candidates += [p for p in self.deputies(request.institution)
                               if p.dn not in known]
        elif group:
            candidates = self._active(self._directory.group_member_dns(group))
        else:
            candidates = []
        excluded = request.approvers_of_other_stages(stage) | {request.account_name}
        return [p for p in candidates if p.account_name not in excluded]

    def may_approve(self, person: Person, request: RequestRecord, stage: int,
                    institution: Institution | None = None) -> bool:
        """Whether ``person`` may decide stage ``stage``: the same answer as
        ``person in approvers(...)``, from the person's own record and the
        institution's (or group's) list of DNs, without reading every other
        approver's entry. ``institution``: the request's, when read already."""
        name = request.approval_chain[stage]
        group = stage_group(name)
        if name == IR_STAGE:
            if institution is None or institution.id != request.institution:
                institution = self._directory.institution(request.institution)
            dns = institution.representative_dns if institution else ()
            if institution and request.escalated_stage == stage:
                dns = (*dns, *institution.deputy_dns)  # as approvers() has it
        elif group:
            dns = self._directory.group_member_dns(group)
        else:
            dns = ()
        excluded = request.approvers_of_other_stages(stage) | {request.account_name}
        return (person.status == MemberStatus.ACTIVE and person.account_name not in excluded
                and person.dn.lower() in {dn.lower() for dn in dns})

    def stage_label(self, stage: str) -> str:
        if stage == IR_STAGE:
            return _l("institute representative")
        name = stage_group(stage) or stage
        return self._settings.stage_labels.get(name, name)

    def notify_objection(self, request: RequestRecord, institution_id: str) -> int:
        """Tell the IRs of the member's current institution about a move away,
        with a link where they can object (reject) while it is pending."""
        institution = self._directory.institution(institution_id)
        representatives = self.representatives(institution_id)
        target = self._directory.institution(request.institution)
        for ir in representatives:
            link = self._links.url(ReviewLink(request.id, ir.account_name, 0, objection=True))
            self._mailer.send("institution_change_notice", [ir.contact_mail or ir.mail],
                              ir.language, request=request, representative=ir,
                              institution=institution,
                              target=target, link=link, max_age_days=self._links.max_age_days)
        return len(representatives)

    def notify(self, request: RequestRecord) -> int:
        """Mail everyone of the stage the request waits for a personal link."""
        index = request.approval_stage
        stage = request.approval_chain[index]
        institution = self._directory.institution(request.institution)
        approvers = self.approvers(request, index)
        member = self._directory.person(request.account_name) \
            if request.kind == RequestKind.INSTITUTION_CHANGE else None
        current = self._directory.institution(member.institution) if member else None
        for approver in approvers:
            self._mailer.send(
                "review_request", [approver.contact_mail or approver.mail], approver.language,
                request=request,
                representative=approver, institution=institution, current_institution=current,
                category=self._settings.category_label(request.category),
                stage_label=self.stage_label(stage), later_stage=index > 0,
                formal_application=self._settings.formal_application(request.category)
                if index > 0 else "",
                link=self._links.url(ReviewLink(request.id, approver.account_name, index)),
                max_age_days=self._links.max_age_days,
            )
        if not approvers:
            self._stalled(request, index, institution)
            return 0
        if index > 0 and request.notified_stage != index:
            # The applicant learns what the request waits for now.
            self._mailer.send("request_next_stage", [request.contact_mail], request.language,
                              request=request, stage_label=self.stage_label(stage),
                              formal_application=self._settings.formal_application(
                                  request.category))
        # Recorded last: a request not marked for its stage is asked again by
        # 'flask portal complete-approvals' (the mails may not have gone out).
        self._directory.record_notified(request.id, index, audit_event(
            "request.notified", SYSTEM, self._clock(), stage=str(index)))
        return len(approvers)

    def _stalled(self, request: RequestRecord, index: int, institution) -> None:
        """Nobody may decide the stage: tell the helpdesk precisely what is
        missing and the applicant that it waits, once per stage. The stage
        stays unasked, so 'flask portal complete-approvals' asks its
        approvers as soon as there is one."""
        stage = request.approval_chain[index]
        log.warning("request %s: nobody to approve stage %s", request.id, stage)
        if request.stalled_stage == index:
            return
        group = stage_group(stage)
        candidates = self.representatives(request.institution) if stage == IR_STAGE else \
            self._active(self._directory.group_member_dns(group)) if group else []
        excluded = [p for p in candidates if p.account_name in
                    request.approvers_of_other_stages(index) | {request.account_name}]
        self._mailer.send("no_representative", [self._settings.helpdesk_email],
                          request=request, institution=institution, group=group or "",
                          stage_label=self.stage_label(stage), excluded=excluded,
                          ir_stage=stage == IR_STAGE)
        self._mailer.send("request_waiting", [request.contact_mail], request.language,
                          request=request, stage_label=self.stage_label(stage))
        self._directory.record_stalled(request.id, index, audit_event(
            "request.stalled", SYSTEM, self._clock(), stage=str(index)))

    @staticmethod
    def notified(request: RequestRecord) -> bool:
        """The approvers of the stage the request waits for were asked."""
        return request.notified_stage == request.approval_stage
