"""Invitations by institute representatives (IRs): the IR names people by
address (with names and category when known), the portal checks each line,
then mails each invitee a personal link to the registration form with the
address and institution fixed. The link works until the registration is
submitted (or it is revoked, resent or expires); the request goes straight
to approval, since the link went to the address.

What an IR learns about an address: only what concerns the institutions
they represent (a member or a request waiting for approval there, or an
open invitation there, with the account name or date). People and requests
of other institutions are never mentioned: such a line is invited like any
other, and if the invitee then registers, the duplicate check of every
registration applies (the owner of the earlier record is written to at the
stored address; the invitee sees the usual answer)."""
from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from enum import StrEnum

from ..clock import Clock, utcnow
from ..directory import Directory, Institution, Invitation, RequestRecord, StateConflict
from ..mail import Mailer
from ..settings import Settings
from ..vocabulary import (
    IR_STAGE,
    InvitationState,
    MemberStatus,
    RequestKind,
    RequestStatus,
)
from .approval import ApprovalService, Review
from .audit import Actor, audit_event
from .errors import (
    DuplicateAccount,
    InvitationNotOpen,
    InvitationUnusable,
    LinkInvalid,
    NotAuthorised,
    PossiblyKnown,
)
from .links import InvitationLink, Links
from .registration import Application, RegistrationService
from .review import Reviewers
from .roles import Roles

log = logging.getLogger(__name__)
MAX_INVITEES = 100  # lines per batch


@dataclass(frozen=True)
class Invitee:
    """One person to invite, as the IR named them (checked for format)."""
    email: str
    given_name: str = ""
    family_name: str = ""
    category: str = ""


class Conflict(StrEnum):
    """Why an address cannot be invited (only about the IR's own institutions)."""
    MEMBER = "member"  # a member (any status) of the IR's institution has the address
    REQUEST = "request"  # a request waiting for approval (or approved) there
    INVITED = "invited"  # an open invitation there that has not expired
    REPEATED = "repeated"  # the same address earlier in the list


@dataclass(frozen=True)
class Checked:
    invitee: Invitee
    conflict: Conflict | None = None
    detail: str = ""  # the account name, or the date of the open invitation


@dataclass(frozen=True)
class InvitedRegistration:
    """What the invited applicant's submission led to."""
    request: RequestRecord | None  # None: we know them (mailed at the address on record)
    approved_by_invitation: bool = False


class InvitationService:
    def __init__(self, directory: Directory, mailer: Mailer, links: Links, settings: Settings,
                 registration: RegistrationService, approval: ApprovalService,
                 reviewers: Reviewers, clock: Clock = utcnow):
        self._directory = directory
        self._mailer = mailer
        self._links = links
        self._settings = settings
        self._registration = registration
        self._approval = approval
        self._reviewers = reviewers
        self._clock = clock

    # -- the IR's console ----------------------------------------------------------------

    def check(self, roles: Roles, invitees: list[Invitee]) -> list[Checked]:
        """Each invitee with what stands against inviting them (format was
        checked by the form). Read only."""
        own = roles.institution_ids
        now = self._clock()
        seen: set[str] = set()
        result = []
        for invitee in invitees:
            email = invitee.email.lower()
            if email in seen:
                result.append(Checked(invitee, Conflict.REPEATED))
                continue
            seen.add(email)
            result.append(self._conflict(invitee, own, now) or Checked(invitee))
        return result

    def _conflict(self, invitee: Invitee, own: frozenset[str], now) -> Checked | None:
        email = invitee.email.lower()
        for record in self._directory.earlier_records(emails=[email]):
            if record.institution not in own:
                continue  # never told: see the module's doc
            if record.is_person and record.status != MemberStatus.NONE:
                return Checked(invitee, Conflict.MEMBER, record.account_name)
            if not record.is_person and record.status in (
                    RequestStatus.PENDING_APPROVAL, RequestStatus.APPROVED):
                return Checked(invitee, Conflict.REQUEST, record.account_name)
        for invitation in self._directory.open_invitations_to(email):
            if invitation.institution in own and \
                    invitation.state_at(now) == InvitationState.OPEN:
                return Checked(invitee, Conflict.INVITED,
                               invitation.created_at.isoformat() if invitation.created_at
                               else "")
        return None

    def send(self, roles: Roles, institution: str, invitees: list[Invitee],
             actor: Actor) -> list[Checked]:
        """Check again (things change between preview and confirmation) and
        invite every line without a conflict: an entry in ou=invitations and
        a mail with the personal link, in the IR's language."""
        if not roles.represents(institution):
            raise NotAuthorised("not a representative of this institution")
        inviter = self._directory.person(roles.account_name)
        checked = self.check(roles, invitees)
        for line in checked:
            if line.conflict is None:
                self._invite(inviter, institution, line.invitee, actor)
        return checked

    def _invite(self, inviter, institution: str, invitee: Invitee, actor: Actor) -> Invitation:
        now = self._clock()
        invitation = Invitation(
            dn="", id=secrets.token_hex(8), state=InvitationState.OPEN,
            email=invitee.email.lower(), institution=institution,
            invited_by=inviter.account_name, given_name=invitee.given_name,
            family_name=invitee.family_name, category=invitee.category, created_at=now,
            expires_at=now + timedelta(days=self._settings.invitation_days),
            nonce=secrets.token_urlsafe(16), language=inviter.language)
        self._directory.add_invitation(invitation, audit_event(
            "invitation.created", actor, now, email=invitation.email, institution=institution))
        log.info("invitation sent", extra={"event": "invitation.created",
                                           "actor": actor.name})
        self._mail(invitation, inviter)
        return invitation

    def _mail(self, invitation: Invitation, inviter) -> None:
        institution = self._directory.institution(invitation.institution)
        self._mailer.send(
            "invitation", [invitation.email], invitation.language, invitation=invitation,
            representative=inviter, institution=institution,
            category=self._settings.category_label(invitation.category)
            if invitation.category else "",
            link=self._links.url(InvitationLink(invitation.id, invitation.nonce)),
            max_age_days=self._settings.invitation_days)

    def invitations(self, roles: Roles) -> list[tuple[Invitation, str]]:
        """The invitations to the IR's institutions with their state now."""
        now = self._clock()
        return [(i, i.state_at(now))
                for i in self._directory.invitations_for(sorted(roles.institution_ids))]

    def _own(self, roles: Roles, invitation_id: str) -> Invitation:
        invitation = self._directory.invitation(invitation_id)
        if invitation is None or not roles.represents(invitation.institution):
            # The same answer for an unknown id and another institution's.
            raise NotAuthorised("not an invitation of this representative's institutions")
        return invitation

    def resend(self, roles: Roles, invitation_id: str, actor: Actor) -> Invitation:
        """A new link (valid PORTAL_INVITATION_DAYS from now) by mail; the
        old link stops working. Also for an expired invitation."""
        invitation = self._own(roles, invitation_id)
        if invitation.state != InvitationState.OPEN:
            raise InvitationNotOpen(invitation.state)
        now = self._clock()
        renewed = replace(invitation, nonce=secrets.token_urlsafe(16),
                          expires_at=now + timedelta(days=self._settings.invitation_days))
        try:
            self._directory.renew_invitation(
                invitation.id, invitation.nonce, renewed.nonce, renewed.expires_at,
                audit_event("invitation.resent", actor, now))
        except StateConflict as exc:
            raise InvitationNotOpen("changed meanwhile") from exc
        self._mail(renewed, self._directory.person(invitation.invited_by)
                   or self._directory.person(roles.account_name))
        return renewed

    def revoke(self, roles: Roles, invitation_id: str, actor: Actor) -> None:
        invitation = self._own(roles, invitation_id)
        if invitation.state != InvitationState.OPEN:
            raise InvitationNotOpen(invitation.state)
        try:
            self._directory.end_invitation(invitation.id, invitation.nonce,
                                           InvitationState.REVOKED,
                                           audit_event("invitation.revoked", actor, self._clock()))
        except StateConflict as exc:
            raise InvitationNotOpen("changed meanwhile") from exc

    # -- the invitee -----------------------------------------------------------------------

    def invitation_for(self, token: str) -> Invitation:
        """The open invitation of a link (GET: nothing changes). LinkInvalid
        (tampered, unknown), LinkExpired (signature older than allowed) or
        InvitationUnusable (used, revoked, replaced by a resend, expired)."""
        link = self._links.load(InvitationLink, token,
                                max_age_seconds=self._settings.invitation_days * 86400)
        invitation = self._directory.invitation(link.invitation_id)
        if invitation is None:
            raise LinkInvalid("unknown invitation")
        if invitation.state == InvitationState.REVOKED:
            raise InvitationUnusable("revoked")
        if invitation.state == InvitationState.USED:
            raise InvitationUnusable("used")
        if invitation.nonce != link.nonce:
            raise InvitationUnusable("replaced")
        if invitation.state_at(self._clock()) == InvitationState.EXPIRED:
            raise InvitationUnusable("expired")
        return invitation

    def institution_of(self, invitation: Invitation) -> Institution | None:
        """The institution an invitation is to (its registration form shows it)."""
        return self._directory.institution(invitation.institution)

    def register(self, token: str, application: Application,
                 actor: Actor) -> InvitedRegistration:
        """Submit the invited registration: the address and institution are
        the invitation's, whatever was posted. The link is used up first
        (a compare-and-swap: it works once); when the registration cannot be
        written (a name taken, someone similar) it works again.

        Then the approvers are asked, unless the category's
        ``invitation_approves`` says the invitation approved the IR stage:
        then that approval is recorded (the audit record says so) and an
        approved request is completed at once (the member is created)."""
        invitation = self.invitation_for(token)
        application = replace(application, email=invitation.email,
                              institution=invitation.institution)
        now = self._clock()
        try:
            self._directory.end_invitation(
                invitation.id, invitation.nonce, InvitationState.USED,
                audit_event("invitation.used", actor, now, account=application.account_name))
        except StateConflict as exc:
            raise InvitationUnusable("used") from exc
        try:
            request = self._registration.submit_invited(
                application, actor, invitation_id=invitation.id,
                invited_by=invitation.invited_by)
        except PossiblyKnown:
            # Known already: the address on record was written to; the link is spent.
            return InvitedRegistration(None)
        except Exception:
            self._directory.reopen_invitation(invitation.id, invitation.nonce, audit_event(
                "invitation.reopened", actor, self._clock()))
            raise
        self._directory.record_invitation_request(invitation.id, request.id)
        if request.kind != RequestKind.REGISTRATION:
            return InvitedRegistration(request)  # a reactivation: confirmed by mail as always
        approved = self._approve_by_invitation(request, invitation)
        if not approved:
            self._reviewers.notify(request)
        return InvitedRegistration(self._directory.request(request.id), approved)

    def _approve_by_invitation(self, request: RequestRecord, invitation: Invitation) -> bool:
        if not self._settings.invitation_approves(request.category) or \
                request.approval_chain[0] != IR_STAGE:
            return False
        inviter = self._directory.person(invitation.invited_by)
        if inviter is None or not self._reviewers.may_approve(inviter, request, 0):
            return False  # no longer an IR there: the current IRs are asked
        review = Review(request, inviter, self._directory.institution(request.institution), 0)
        try:
            self._approval.approve(review, f"invitation {invitation.id}")
        except DuplicateAccount:
            return False  # the IR decides, seeing the match
        self._directory.add_request_audit(request.id, audit_event(
            "request.approved-by-invitation", Actor(inviter.account_name), self._clock(),
            reason="the category's invited requests are approved by the invitation",
            invitation=invitation.id, stage=IR_STAGE))
        return True
