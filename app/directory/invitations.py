"""Invitations in ou=invitations: who was invited by which IR, to which
institution, and the state of the personal link. Every state change is a
compare-and-swap on the state (and, for a resend, on the link's nonce), so
a link works once and a resent link replaces the old one."""
from __future__ import annotations

from datetime import datetime

from ..vocabulary import InvitationState
from .connection import DirectoryConnection
from .errors import NoSuchEntry, StateConflict
from .mapping import Attr, AttributeMap, time_attr
from .records import Invitation
from .values import any_of, checked_identifier, eq

INVITATION = AttributeMap(
    id="portalInvitationId",
    state="portalInvitationState",
    email="portalContactMail",
    institution="portalHomeInstitution",
    invited_by="portalInvitedBy",
    given_name="givenName",
    family_name="sn",
    category="portalCategory",
    created_at=time_attr("portalSubmittedAt"),
    expires_at=time_attr("portalInvitationExpires"),
    nonce="portalInvitationNonce",
    request_id="portalInvitationRequest",
    language="preferredLanguage",
    audit=Attr("portalAuditEvent", multi=True),
    object_classes=Attr("objectClass", multi=True),
)
_FIELDS = ("id", "state", "email", "institution", "invited_by", "given_name", "family_name",
           "category", "created_at", "expires_at", "nonce", "request_id", "language", "audit")
_ATTRS = INVITATION.names(*_FIELDS)


def invitation_record(entry: dict) -> Invitation:
    return Invitation(dn=entry["dn"], **INVITATION.read(entry, *_FIELDS))


class Invitations(DirectoryConnection):
    @property
    def invitations_dn(self) -> str:
        return f"ou=invitations,{self.base_dn}"

    def invitation_dn(self, invitation_id: str) -> str:
        return f"portalInvitationId={checked_identifier(invitation_id)},{self.invitations_dn}"

    def add_invitation(self, invitation: Invitation, audit_event: str) -> None:
        attributes = INVITATION.entry(
            object_classes=["portalInvitation"], id=invitation.id, state=invitation.state,
            email=invitation.email, institution=invitation.institution,
            invited_by=invitation.invited_by, given_name=invitation.given_name,
            family_name=invitation.family_name, category=invitation.category,
            created_at=invitation.created_at, expires_at=invitation.expires_at,
            nonce=invitation.nonce, language=invitation.language, audit=[audit_event])
        dn = self.invitation_dn(invitation.id)
        try:
            self._add(dn, attributes)
        except NoSuchEntry:
            # A directory bootstrapped before invitations existed: the
            # container is made on the first invitation.
            self._add(self.invitations_dn, {"objectClass": ["organizationalUnit"],
                                            "ou": ["invitations"]})
            self._add(dn, attributes)

    def invitation(self, invitation_id: str) -> Invitation | None:
        try:
            dn = self.invitation_dn(invitation_id)
        except ValueError:
            return None
        entry = self._read(dn, _ATTRS)
        return invitation_record(entry) if entry else None

    def invitations_for(self, institutions: list[str]) -> list[Invitation]:
        """Every invitation to these institutions, newest first."""
        if not institutions:
            return []
        entries = self._search(self.invitations_dn, (
            f"(&(objectClass=portalInvitation)"
            f"{any_of(INVITATION['institution'], institutions)})"), _ATTRS)
        found = [invitation_record(e) for e in entries]
        return sorted(found, key=lambda i: (i.created_at is not None, i.created_at),
                      reverse=True)

    def open_invitations_to(self, email: str) -> list[Invitation]:
        """Open invitations (expired ones included) for an address."""
        entries = self._search(self.invitations_dn, (
            f"(&(objectClass=portalInvitation){eq(INVITATION['email'], email)}"
            f"{eq(INVITATION['state'], InvitationState.OPEN)})"), _ATTRS)
        return [invitation_record(e) for e in entries]

    def renew_invitation(self, invitation_id: str, old_nonce: str, new_nonce: str,
                         expires_at: datetime, audit_event: str) -> None:
        """A new link (resend): the old nonce dies. StateConflict unless the
        invitation is still open with ``old_nonce``."""
        self._modify(self.invitation_dn(invitation_id), {
            **INVITATION.swap("nonce", old_nonce, new_nonce),
            **INVITATION.swap("state", InvitationState.OPEN, InvitationState.OPEN),
            **INVITATION.replace(expires_at=expires_at),
            **INVITATION.add(audit=[audit_event])})

    def end_invitation(self, invitation_id: str, nonce: str, state: InvitationState,
                       audit_event: str, request_id: str = "") -> None:
        """open (with the link ``nonce``) -> used or revoked, once;
        StateConflict when it was used, revoked or resent meanwhile."""
        self._modify(self.invitation_dn(invitation_id), {
            **INVITATION.swap("state", InvitationState.OPEN, state),
            **INVITATION.swap("nonce", nonce, nonce),
            **({**INVITATION.replace(request_id=request_id)} if request_id else {}),
            **INVITATION.add(audit=[audit_event])})

    def reopen_invitation(self, invitation_id: str, nonce: str, audit_event: str) -> bool:
        """used -> open again (the registration it was used for could not be
        written); False if it changed meanwhile."""
        try:
            self._modify(self.invitation_dn(invitation_id), {
                **INVITATION.swap("state", InvitationState.USED, InvitationState.OPEN),
                **INVITATION.swap("nonce", nonce, nonce),
                **INVITATION.replace(request_id=None),
                **INVITATION.add(audit=[audit_event])})
        except (StateConflict, NoSuchEntry):
            return False
        return True

    def record_invitation_request(self, invitation_id: str, request_id: str) -> None:
        """The request a used invitation became."""
        self._modify(self.invitation_dn(invitation_id), INVITATION.replace(request_id=request_id))
