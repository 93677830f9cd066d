"""Approval: an approver decides one stage of a request from the link in
their mail. An approval before the last stage moves the request on; the
last approval hands the request to the workflow of its kind (registration,
reactivation, group application, move), which carries it out."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping

from ..clock import Clock, utcnow
from ..directory import (
    Directory,
    DirectoryError,
    EarlierRecord,
    Institution,
    Person,
    RequestRecord,
    StateConflict,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import IR_STAGE, RequestKind, RequestStatus
from .audit import Actor, audit_event
from .duplicates import Duplicates, Match
from .errors import (
    AlreadyDone,
    DuplicateAccount,
    FormalApplicationMissing,
    LinkInvalid,
    NotAuthorised,
)
from .links import Links, Page, ReviewLink
from .review import Reviewers

log = logging.getLogger(__name__)
# Carries out an approved request (repeatable); True when this call did it.
Completion = Callable[[RequestRecord], bool]


@dataclass(frozen=True)
class Review:
    """What the approver sees: the request, themselves and the institution."""
    request: RequestRecord
    representative: Person
    institution: Institution | None
    stage: int = 0
    # The IR of the member's current institution, who may only object to a move.
    objection_only: bool = False
    # Who this may also be (registrations), and earlier rejections of them.
    duplicates: tuple[Match, ...] = ()
    earlier_rejections: tuple[EarlierRecord, ...] = ()
    # Moves: the member's current institution.
    current_institution: Institution | None = None
    # Reactivations: the address on record, when the request brings a new one.
    address_on_record: str = ""
    # What this stage needs recorded besides the request (a formal application).
    formal_application: str = ""
    # What of the request is on the imported members list ("email", "certificate").
    on_members_list: tuple[str, ...] = ()

    @property
    def blocked_by(self) -> tuple[Match, ...]:
        """Matches that make an approval a second account for one person."""
        return tuple(m for m in self.duplicates if m.blocks_approval)

    @property
    def waits_for_this_stage(self) -> bool:
        return self.request.status == RequestStatus.PENDING_APPROVAL and \
            self.request.approval_stage == self.stage

    @property
    def is_last_stage(self) -> bool:
        return self.stage == len(self.request.approval_chain) - 1


class ApprovalService:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links,
                 reviewers: Reviewers, duplicates: Duplicates, settings: Settings,
                 completions: Mapping[str, Completion], clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._reviewers = reviewers
        self._duplicates = duplicates
        self._settings = settings
        self._completions = completions
        self._clock = clock

    def review(self, token: str) -> Review:
        """Check a review link (GET: nothing changes).

        The person named in the link must still be an approver of the stage
        the link was made for (for the first stage: an active representative
        of the request's institution).
        """
        link = self._links.load(ReviewLink, token)
        request = self._directory.request(link.request_id)
        if request is None:
            raise LinkInvalid("unknown request")
        if not 0 <= link.stage < len(request.approval_chain):
            raise LinkInvalid("unknown stage")
        approver = self._directory.person(link.approver)
        institution = self._directory.institution(request.institution)
        member = self._directory.person(request.account_name) \
            if request.kind in (RequestKind.INSTITUTION_CHANGE, RequestKind.REACTIVATION) else None
        current = self._directory.institution(member.institution) \
            if member and request.kind == RequestKind.INSTITUTION_CHANGE else None
        on_record = (member.contact_mail or member.mail) if member else ""
        on_record = on_record if on_record.lower() != request.contact_mail.lower() else ""
        if link.objection:
            if request.status != RequestStatus.PENDING_APPROVAL:
                # Decided: the page says by whom (the member may have moved already).
                raise AlreadyDone(request)
            current_irs = self._reviewers.representatives(member.institution) if member else []
            if approver is None or approver.dn not in {p.dn for p in current_irs}:
                raise NotAuthorised("not a representative of the member's institution")
            return Review(request, approver, institution, request.approval_stage,
                          objection_only=True, current_institution=current)
        if approver is None or institution is None or not self._reviewers.may_approve(
                approver, request, link.stage, institution):
            if request.status != RequestStatus.PENDING_APPROVAL and approver is not None:
                raise AlreadyDone(request)
            raise NotAuthorised("not an approver of this request")
        formal = self._settings.formal_application(request.category) \
            if request.approval_chain[link.stage] != IR_STAGE else ""
        duplicates, rejections = self._duplicates.for_review(request)
        return Review(request, approver, institution, link.stage, formal_application=formal,
                      duplicates=tuple(duplicates), earlier_rejections=tuple(rejections),
                      current_institution=current, address_on_record=on_record,
                      on_members_list=tuple(self._directory.on_members_list(
                          request.contact_mail, request.cert_subject)))

    def approve(self, review: Review, actor_address: str, reference: str = "") -> RequestRecord:
        """Approve the stage of ``review``; DuplicateAccount (nothing
        recorded) when the person is a member or approved already,
        FormalApplicationMissing when the stage records one and
        ``reference`` is empty."""
        reference = reference.strip()
        if review.formal_application and not reference and review.waits_for_this_stage:
            raise FormalApplicationMissing()
        # The duplicates the review found a moment ago, in this same request
        # (review() and approve() run in one POST): not looked up twice.
        blocked = review.waits_for_this_stage and list(review.blocked_by)
        if blocked:
            raise DuplicateAccount(blocked)
        request = self._decide(review, actor_address, RequestStatus.APPROVED,
                               reference=reference)
        if request.status == RequestStatus.APPROVED:
            self.complete(request)
        return request  # as decided (the page says what the decision did)

    def reject(self, review: Review, reason: str, actor_address: str) -> RequestRecord:
        reason = reason.strip()
        if not reason:
            raise ValueError("a rejection needs a reason")
        request = self._decide(review, actor_address, RequestStatus.REJECTED, reason)
        self._mailer.send("request_rejected", [request.contact_mail], request.language,
                          request=request, reason=reason,
                          register_link=self._links.page(Page.REGISTRATION))
        return request

    def _decide(self, review: Review, actor_address: str, outcome: RequestStatus,
                reason: str = "", reference: str = "") -> RequestRecord:
        """Record a decision at the stage of ``review``, once.

        Raises AlreadyDone when this stage was decided before, also by a
        concurrent decision that won the compare-and-swap.
        """
        request = review.request
        if not review.waits_for_this_stage:
            raise AlreadyDone(request)
        if review.objection_only and outcome == RequestStatus.APPROVED:
            raise NotAuthorised("an objection link cannot approve")
        now = self._clock()
        approver = review.representative
        actor = Actor(approver.account_name, actor_address)
        stage_name = request.approval_chain[review.stage]
        extra = {"formal_application": reference} if reference else {}
        try:
            if outcome == RequestStatus.APPROVED and not review.is_last_stage:
                action = "request.stage-approved"
                decided = self._directory.record_stage_approved(
                    request.id, review.stage, approver.account_name,
                    audit_event(action, actor, now, stage=stage_name, **extra))
            else:
                action = f"request.{outcome}"
                decided = self._directory.record_decision(
                    request.id, review.stage, outcome, approver=approver.account_name,
                    approver_label=f"{approver.display_name} ({approver.account_name})",
                    at=now, from_=actor_address, reason=reason,
                    audit_event=audit_event(action, actor, now, reason=reason, stage=stage_name,
                                            **extra))
        except StateConflict as exc:
            raise AlreadyDone(self._directory.request(request.id)) from exc
        log.info("request decided", extra={"event": action, "account": request.account_name,
                                           "actor": actor.name})
        if action == "request.stage-approved":
            self._reviewers.notify(decided)
            # Read again: notify() recorded whether the next stage was asked
            # or has nobody to ask, and the page says which.
            return self._directory.request(request.id)
        # As the decision's own write left it (approved: with the hash its
        # completion writes into the member's entry).
        return decided

    def complete(self, request: RequestRecord) -> bool:
        """Carry out an approved request through the workflow of its kind
        (safe to repeat: each workflow marks completion once)."""
        if request.status != RequestStatus.APPROVED or request.completed_at:
            return False
        return self._completions[request.kind](request)

    def complete_pending(self) -> tuple[int, int]:
        """Finish what a fault interrupted: approved requests not carried out
        yet, and pending ones whose approvers were never asked (also those
        that had none when the stage began). Returns
        (completed, failed); one failing request does not stop the others."""
        completed = failed = 0
        for request in self._directory.requests_with_status(RequestStatus.APPROVED):
            try:
                if self.complete(request):
                    completed += 1
            except DirectoryError:
                failed += 1
                log.exception("approved request %s could not be completed", request.id)
        for request in self._directory.requests_with_status(RequestStatus.PENDING_APPROVAL):
            try:
                # A stage without approvers is asked again each run: as soon
                # as an approver appears they get their mail.
                if not self._reviewers.notified(request) and self._reviewers.notify(request):
                    completed += 1
            except DirectoryError:
                failed += 1
                log.exception("approvers of request %s could not be asked", request.id)
        return completed, failed
