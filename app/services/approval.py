"""Approval: an IR decides from the link in their mail; on approval the
member entry is written to the directory at once."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from ..clock import Clock, utcnow
from ..directory import (
    Directory, DirectoryError, EntryExists, Institution, NewMember, Person, Request, StateConflict,
)
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import MemberStatus, RequestKind, RequestStatus
from . import names, tokens
from .audit import SYSTEM, Actor, audit_event
from .errors import AlreadyDone, LinkInvalid, NotAuthorised
from .review import Reviewers
from .registration import RegistrationService

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Review:
    """What the IR sees: the request, themselves and the institution."""
    request: Request
    representative: Person
    institution: Institution
    stage: int = 0
    # The IR of the member's current institution, who may only object to a move.
    objection_only: bool = False

    @property
    def waits_for_this_stage(self) -> bool:
        return self.request.status == RequestStatus.PENDING_APPROVAL and self.request.approval_stage == self.stage

    @property
    def is_last_stage(self) -> bool:
        return self.stage == len(self.request.approval_chain) - 1


class ApprovalService:
    def __init__(self, directory: Directory, mailer: Mailer, links: tokens.LinkTokens,
                 settings: Settings, registration: RegistrationService,
                 reviewers: Reviewers, send_reset_link: Callable[[Person], None],
                 clock: Clock = utcnow):
        self._send_reset_link = send_reset_link
        self._reviewers = reviewers
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._registration = registration
        self._clock = clock

    def review(self, token: str) -> Review:
        """Check a review link (GET: nothing changes).

        The person named in the link must still be an approver of the stage
        the link was made for (for the first stage: an active representative
        of the request's institution).
        """
        payload = self._links.load(tokens.REVIEW_REQUEST, token)
        request = self._directory.request(str(payload.get("r", "")))
        if request is None:
            raise LinkInvalid("unknown request")
        stage = payload.get("st", 0)
        if not isinstance(stage, int) or not 0 <= stage < len(request.approval_chain):
            raise LinkInvalid("unknown stage")
        approver = self._directory.person(str(payload.get("ir", "")))
        institution = self._directory.institution(request.institution)
        if payload.get("obj"):
            member = self._directory.person(request.account_name)
            current_irs = self._reviewers.representatives(member.institution) if member else []
            if approver is None or approver.dn not in {p.dn for p in current_irs}:
                raise NotAuthorised("not a representative of the member's institution")
            return Review(request, approver, institution, request.approval_stage,
                          objection_only=True)
        if approver is None or institution is None or not self._reviewers.may_approve(
                approver, request, request.approval_chain[stage]):
            raise NotAuthorised("not an approver of this request")
        return Review(request, approver, institution, stage)

    def approve(self, token: str, actor_address: str) -> Request:
        def changes(request: Request) -> dict:
            if request.kind != RequestKind.REGISTRATION:
                return {}
            # The final collaboration address is fixed now (another member may
            # have taken the previewed one since the request was submitted).
            return {"portalCollabMail": self._registration.collaboration_mail(
                request.given_name, request.middle_name, request.family_name,
                exclude_account=request.account_name)}

        request = self._decide(token, actor_address, RequestStatus.APPROVED, changes)
        if request.status == RequestStatus.APPROVED:
            self.complete(request)
        return self._directory.request(request.id)

    def reject(self, token: str, reason: str, actor_address: str) -> Request:
        reason = reason.strip()
        if not reason:
            raise ValueError("a rejection needs a reason")
        request = self._decide(
            token, actor_address, RequestStatus.REJECTED,
            lambda _: {"portalDecisionReason": reason, "portalPasswordHash": None},
            reason=reason)
        self._mailer.send("request_rejected", [request.contact_mail], request=request,
                          reason=reason)
        return request

    def _decide(self, token: str, actor_address: str, outcome: str,
                changes: Callable[[Request], dict], reason: str = "") -> Request:
        """Record a decision at the stage the link is for, once.

        An approval before the last stage moves the request on to the next
        stage (whose approvers are mailed); the last approval or any
        rejection decides it. Raises AlreadyDone when this stage was decided
        before, also by a concurrent decision that won the compare-and-swap.
        """
        review = self.review(token)
        request = review.request
        if not review.waits_for_this_stage:
            raise AlreadyDone(request)
        if review.objection_only and outcome == RequestStatus.APPROVED:
            raise NotAuthorised("an objection link cannot approve")
        now = self._clock()
        actor = Actor(review.representative.account_name, actor_address)
        stage_name = request.approval_chain[review.stage]
        try:
            if outcome == RequestStatus.APPROVED and not review.is_last_stage:
                action = "request.stage-approved"
                self._directory.advance_stage(request.id, review.stage, audit_event(
                    action, actor, now, stage=stage_name))
            else:
                action = f"request.{outcome}"
                self._directory.transition_request(
                    request.id, RequestStatus.PENDING_APPROVAL, outcome,
                    {"portalDecidedBy": _decider(review.representative), "portalDecidedAt": now,
                     "portalDecidedFrom": actor_address, **changes(request)},
                    audit_event(action, actor, now, reason=reason, stage=stage_name),
                    stage=review.stage)
        except StateConflict as exc:
            raise AlreadyDone(self._directory.request(request.id)) from exc
        log.info("request decided", extra={"event": action, "account": request.account_name,
                                           "actor": actor.name})
        decided = self._directory.request(request.id)
        if action == "request.stage-approved":
            self._reviewers.notify(decided)
        return decided

    def complete(self, request: Request) -> bool:
        """Carry out an approved request of either kind (safe to repeat)."""
        if request.kind == RequestKind.REACTIVATION:
            return self.complete_reactivation(request.id)
        if request.kind in (RequestKind.GROUP, RequestKind.INSTITUTION_CHANGE):
            return self.complete_change(request.id)
        return self.complete_account(request.id)

    def complete_change(self, request_id: str) -> bool:
        """An approved group application or institution move (repeatable)."""
        request = self._directory.request(request_id)
        if request is None or request.status != RequestStatus.APPROVED or request.account_created_at:
            return False
        now = self._clock()
        person = self._directory.person(request.account_name)
        if person is None or person.status != MemberStatus.ACTIVE:
            # Approved, but the member was suspended or expired meanwhile.
            self._directory.claim_account_created(request.id, now, audit_event(
                "request.not-applied", SYSTEM, now, reason="member not active"))
            return False
        person_dn = person.dn
        if request.kind == RequestKind.GROUP:
            self._directory.add_group_member(self._directory.group_dn(request.target_group),
                                             person_dn)
            self._directory.add_person_audit(request.account_name, audit_event(
                "member.joined-group", SYSTEM, now, group=request.target_group,
                approved_by=request.decided_by))
        else:
            self._directory.set_home_institution(
                request.account_name, request.institution,
                audit_event("member.moved", SYSTEM, now, institution=request.institution,
                            approved_by=request.decided_by))
        if not self._directory.claim_account_created(
                request.id, now, audit_event("request.completed", SYSTEM, now)):
            return False
        group = self._settings.extra_group(request.target_group)
        institution = self._directory.institution(request.institution)
        self._mailer.send("change_done", [request.contact_mail], request=request,
                          group=group.label if group else request.target_group,
                          institution=institution.name if institution else request.institution)
        return True

    def complete_account(self, account_name: str) -> bool:
        """Create the member entry of an approved request; safe to repeat.

        Each step is idempotent (an existing entry or group value counts as
        done) and the request is marked complete last, so a step interrupted
        by a fault is finished by the next call (``flask portal
        complete-approvals`` or the next visit of the review link). True when
        this call completed the account.
        """
        request = self._directory.request(account_name, with_password_hash=True)
        if request is None or request.status != RequestStatus.APPROVED or request.account_created_at:
            return False
        now = self._clock()
        person_dn = self._directory.person_dn(account_name)
        if self._directory.person(account_name) is None:
            member = NewMember(
                account_name=request.account_name,
                given_name=request.given_name,
                middle_name=request.middle_name,
                family_name=request.family_name,
                mail=request.collab_mail,
                contact_mail=request.contact_mail,
                institution=request.institution,
                category=request.category,
                conditions_version=request.conditions_version,
                member_since=now,
                initial_password_deadline=now + self._directory.initial_password_period(),
                uid_number=self._directory.allocate_uid_number(),
                gid_number=self._directory.group_gid_number(self._directory.main_group_dn),
                audit_event=audit_event("member.created", SYSTEM, now,
                                        request=request.account_name,
                                        approved_by=request.decided_by),
                password_hash=request.password_hash,
                name_key=names.person_key(request.given_name, request.family_name),
                member_until=self._member_until(request.category, now),
                cert_subject=request.cert_subject,
            )
            try:
                self._directory.add_member(member)
            except EntryExists:
                log.info("member %s was created by a concurrent completion", account_name)
        self._directory.add_group_member(self._directory.main_group_dn, person_dn)
        if not self._directory.claim_account_created(
                account_name, now, audit_event("request.account-created", SYSTEM, now)):
            return False
        person = self._directory.person(account_name)
        self._mailer.send("account_ready", [request.contact_mail], request=request,
                          person=person, deadline=person.initial_password_deadline,
                          initial_password_days=self._directory.initial_password_period().days)
        return True

    def complete_reactivation(self, request_id: str) -> bool:
        """Make the account of an approved reactivation a working membership
        again: the same entry and account name, the (new) institution and
        category, unlocked, in the main group; the old password is replaced
        and a reset link mailed. Repeatable steps first, marked complete once."""
        request = self._directory.request(request_id)
        if request is None or request.status != RequestStatus.APPROVED or request.account_created_at:
            return False
        now = self._clock()
        account = request.account_name
        self._directory.prepare_member(
            account, institution=request.institution, category=request.category,
            member_until=self._member_until(request.category, now), collab_mail=request.collab_mail,
            name_key=names.person_key(request.given_name, request.family_name),
            contact_mail=request.contact_mail, now=now,
            gid_number=self._directory.group_gid_number(self._directory.main_group_dn),
            audit_event=audit_event("member.reactivated", SYSTEM, now, request=request.id,
                                    approved_by=request.decided_by))
        # The member sets a new password: the old one must never work again,
        # so it is replaced before the account is unlocked (repeatable).
        self._directory.set_password(account, secrets.token_urlsafe(32))
        self._directory.unlock_account(account)
        self._directory.add_group_member(self._directory.main_group_dn,
                                         self._directory.person_dn(account))
        if not self._directory.claim_account_created(
                request.id, now, audit_event("request.account-reactivated", SYSTEM, now)):
            return False
        self._send_reset_link(self._directory.person(account))
        return True

    def _member_until(self, category: str, now: datetime) -> datetime | None:
        days = self._settings.membership_days(category)
        return now + timedelta(days=days) if days else None

    def complete_pending(self) -> tuple[int, int]:
        """Finish what a fault interrupted: approved requests not carried out
        yet, and pending ones whose approvers were never asked. Returns
        (completed, failed); one failing request does not stop the others."""
        completed = failed = 0
        for request in self._directory.requests_with_status(RequestStatus.APPROVED):
            try:
                if not request.account_created_at and self.complete(request):
                    completed += 1
            except DirectoryError:
                failed += 1
                log.exception("approved request %s could not be completed", request.id)
        for request in self._directory.requests_with_status(RequestStatus.PENDING_APPROVAL):
            try:
                if not self._reviewers.notified(request):
                    self._reviewers.notify(request)
                    completed += 1
            except DirectoryError:
                failed += 1
                log.exception("approvers of request %s could not be asked", request.id)
        return completed, failed


def _decider(person: Person) -> str:
    return f"{person.display_name} ({person.account_name})"
