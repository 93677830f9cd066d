"""The helpdesk as the approver of last resort: a request stuck at a stage
(its approvers asked long ago, or nobody able to decide it) is approved or
rejected through the approval service, with the reason recorded; the mail a
request waits on is sent again; an abandoned registration is released."""
from __future__ import annotations

from datetime import timedelta

from flask_babel import lazy_gettext as _l

from ...clock import Clock, utcnow
from ...directory import Directory, RequestRecord
from ...mail import Mailer
from ...settings import Settings
from ...vocabulary import IR_STAGE, RequestStatus
from ..approval import ApprovalService, Review
from ..audit import Actor, audit_event
from ..errors import AlreadyDone, NotAuthorised
from ..links import Links, VerifyLink
from ..review import Reviewers
from .common import HelpdeskRefused, given_reason

# A request waiting this long (or for a stage nobody can decide) is stuck:
# the helpdesk may decide it as the approver of last resort.
STUCK_AFTER = timedelta(days=3)


class HelpdeskDecisions:
    def __init__(self, directory: Directory, settings: Settings, approval: ApprovalService,
                 reviewers: Reviewers, mailer: Mailer, links: Links, clock: Clock = utcnow):
        self._directory = directory
        self._settings = settings
        self._approval = approval
        self._reviewers = reviewers
        self._mailer = mailer
        self._links = links
        self._clock = clock

    def refusal(self, request: RequestRecord) -> str:
        """Why the helpdesk may not decide the request ("": it may)."""
        if request.status != RequestStatus.PENDING_APPROVAL:
            return str(_l("The request does not wait for an approval."))
        if self._directory.paper_details(request.id) is not None:
            if self._settings.helpdesk_may_approve_paper:
                return ""
            return str(_l("A paper request is decided by the institute representative "
                          "(PORTAL_HELPDESK_MAY_APPROVE_PAPER is off)."))
        waited = self._clock() - request.submitted_at if request.submitted_at else timedelta(0)
        if request.stalled or waited >= STUCK_AFTER:
            return ""
        return str(_l("The request is not stuck: its approvers were asked less than "
                      "%(days)s days ago and can decide it.", days=STUCK_AFTER.days))

    def _review(self, request_id: str, actor: Actor) -> Review:
        request = self._directory.request(request_id)
        if request is None:
            raise HelpdeskRefused(str(_l("There is no such request.")))
        refusal = self.refusal(request)
        if refusal:
            raise HelpdeskRefused(refusal)
        helper = self._directory.person(actor.name)
        if helper is None:
            raise NotAuthorised("no such helpdesk member")
        stage = request.approval_stage
        formal = self._settings.formal_application(request.category) \
            if request.approval_chain[stage] != IR_STAGE else ""
        return Review(request, helper, self._directory.institution(request.institution), stage,
                      formal_application=formal)

    def _record_last_resort(self, review: Review, decision: str, reason: str,
                            actor: Actor) -> None:
        self._directory.add_request_audit(review.request.id, audit_event(
            "request.helpdesk-decision", actor, self._clock(), reason=reason,
            decision=decision, stage=review.request.approval_chain[review.stage],
            role="helpdesk, approver of last resort"))

    def approve(self, request_id: str, reason: str, actor: Actor) -> RequestRecord:
        """Approve the stage a stuck request waits for (paper requests when
        allowed), through the approval service; the history records the
        helpdesk as the approver of last resort, with the reason. Raises
        HelpdeskRefused, DuplicateAccount."""
        reason = given_reason(reason)
        review = self._review(request_id, actor)
        self._record_last_resort(review, str(RequestStatus.APPROVED), reason, actor)
        try:
            return self._approval.approve(review, actor.address, reference=reason
                                          if review.formal_application else "")
        except AlreadyDone as exc:
            raise HelpdeskRefused(str(_l("The request was decided meanwhile."))) from exc

    def reject(self, request_id: str, reason: str, actor: Actor) -> RequestRecord:
        reason = given_reason(reason)
        request = self._directory.request(request_id)
        if request is None or request.status != RequestStatus.PENDING_APPROVAL:
            raise HelpdeskRefused(str(_l("The request does not wait for an approval.")))
        helper = self._directory.person(actor.name)
        review = Review(request, helper, self._directory.institution(request.institution),
                        request.approval_stage)
        self._record_last_resort(review, str(RequestStatus.REJECTED), reason, actor)
        try:
            return self._approval.reject(review, reason, actor.address)
        except AlreadyDone as exc:
            raise HelpdeskRefused(str(_l("The request was decided meanwhile."))) from exc

    def resend_review(self, request_id: str, reason: str, actor: Actor) -> int:
        """The mail the request waits on, again: fresh review links to the
        approvers of its stage (the number asked; 0: nobody can decide it),
        or the confirmation link to an applicant who has not confirmed."""
        reason = given_reason(reason)
        request = self._directory.request(request_id)
        if request is not None and request.status == RequestStatus.PENDING_VERIFICATION:
            self._directory.add_request_audit(request.id, audit_event(
                "request.confirmation-resent", actor, self._clock(), reason=reason))
            self._mailer.send("verify_email", [request.contact_mail], request.language,
                              request=request, replaced=[],
                              link=self._links.url(VerifyLink(request.id,
                                                              request.submitted_at.isoformat())),
                              max_age_days=self._links.max_age_days)
            return 1
        if request is None or request.status != RequestStatus.PENDING_APPROVAL:
            raise HelpdeskRefused(str(_l("The request does not wait for an approval.")))
        self._directory.add_request_audit(request.id, audit_event(
            "request.review-resent", actor, self._clock(), reason=reason))
        return self._reviewers.notify(self._directory.request(request.id))

    def release(self, request_id: str, reason: str, actor: Actor) -> None:
        """An abandoned registration (the address never confirmed) is
        withdrawn now instead of at its expiry: the account name and the
        person are free; the request keeps its history. A rejected one
        holds nothing already (issue 10: rejected people apply again)."""
        reason = given_reason(reason)
        request = self._directory.request(request_id)
        if request is None or request.status != RequestStatus.PENDING_VERIFICATION:
            raise HelpdeskRefused(str(_l(
                "Only a request whose address was never confirmed can be released; a "
                "rejected request holds no name or address already.")))
        if not self._directory.release_unconfirmed(request.id, audit_event(
                "request.released", actor, self._clock(), reason=reason)):
            raise HelpdeskRefused(str(_l("The request was decided meanwhile.")))
