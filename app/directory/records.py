"""Typed, immutable records the gateway hands to the services, each built in
one place from a directory entry."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..vocabulary import IR_STAGE, RequestKind


@dataclass(frozen=True)
class Institution:
    id: str
    name: str
    country: str
    representative_dns: tuple[str, ...]
    deputy_dns: tuple[str, ...] = ()  # asked too once a request is escalated
    roster_confirmed_at: datetime | None = None  # the IR's last roster confirmation
    roster_confirmed_by: str = ""


@dataclass(frozen=True)
class Certificate:
    """A client certificate verified by the TLS terminator: its subject and
    issuer DN (RFC 2253). The same subject from another issuer is another
    certificate."""
    subject: str
    issuer: str


@dataclass(frozen=True)
class Person:
    dn: str
    account_name: str
    given_name: str
    middle_name: str
    family_name: str
    display_name: str
    mail: str
    contact_mail: str
    institution: str
    category: str
    status: str
    member_since: datetime | None
    initial_password_deadline: datetime | None
    uid_number: int | None
    groups: tuple[str, ...]
    member_until: datetime | None = None
    audit: tuple[str, ...] = ()
    conditions_version: str = ""
    language: str = ""  # preferredLanguage: the member's mails are in it ("" = default)
    # Ended by the IR or helpdesk and in the grace period until member_until;
    # previous_member_until is what an undo restores (None: open-ended).
    membership_ended_at: datetime | None = None
    previous_member_until: datetime | None = None
    certificates: tuple[Certificate, ...] = ()  # Grid user certificates (login, registration)


@dataclass(frozen=True)
class PasswordState:
    """What the directory's password policy knows about one account."""
    changed_at: datetime | None
    max_age_seconds: int  # 0: never expires
    initial: bool  # still under the initial-password policy
    locked_at: datetime | None
    expiry_notices: tuple[str, ...] = ()
    reset_nonce_hash: str = ""

    @property
    def expires_at(self) -> datetime | None:
        if not self.changed_at or not self.max_age_seconds:
            return None
        return self.changed_at + timedelta(seconds=self.max_age_seconds)


@dataclass(frozen=True)
class Account:
    """A member's entry as a logged-in request needs it, read at once:
    the person, what the password policy knows, the session epoch."""
    person: Person
    password: PasswordState
    session_epoch: str


@dataclass(frozen=True)
class RequestRecord:
    """A request in ou=requests: a registration, reactivation, group
    application or move, with its state."""
    dn: str
    id: str  # the account name for registrations, <account>-<time> otherwise
    account_name: str
    status: str
    given_name: str
    middle_name: str
    family_name: str
    contact_mail: str
    institution: str
    category: str
    collab_mail: str
    conditions_version: str
    submitted_at: datetime | None
    submitted_from: str
    decided_by: str
    decided_at: datetime | None
    decision_reason: str
    completed_at: datetime | None  # the approved request was carried out
    audit: tuple[str, ...] = ()
    password_hash: bytes = field(default=b"", repr=False)
    previous_account: str = ""
    kind: str = RequestKind.REGISTRATION
    approval_chain: tuple[str, ...] = (IR_STAGE,)
    approval_stage: int = 0  # index into approval_chain
    stage_approvals: tuple[str, ...] = ()  # "<index>:<account>" per approved stage
    notified_stage: int | None = None  # the last stage whose approvers were asked
    stalled_stage: int | None = None  # the last stage found without any approver
    target_group: str = ""  # group applications
    cert_subject: str = ""
    language: str = ""  # the applicant's language, for the mails about the request
    last_reminded_at: datetime | None = None  # the approvers were last reminded
    reminded_stage: int | None = None  # ... the approvers of this stage
    escalated_stage: int | None = None  # the last stage escalated (deputies, helpdesk)
    confirmation_sent_at: datetime | None = None  # the confirmation mail was last sent again
    email_verified_at: datetime | None = None  # the applicant confirmed the address
    certificate: Certificate | None = None  # subject and issuer, from /register/certificate
    on_paper: bool = False  # filed by the helpdesk from a signed paper form

    @property
    def escalated(self) -> bool:
        """The stage it waits for was escalated to deputies and the helpdesk."""
        return self.escalated_stage == self.approval_stage

    @property
    def display_name(self) -> str:
        return " ".join(p for p in (self.given_name, self.middle_name, self.family_name) if p)

    @property
    def stalled(self) -> bool:
        """It waits for a stage nobody can approve yet (its approvers never asked)."""
        return self.stalled_stage == self.approval_stage and \
            self.notified_stage != self.approval_stage

    def approvers_of_other_stages(self, stage: int) -> set[str]:
        """Account names that approved a stage other than ``stage``."""
        approvals = (value.split(":", 1) for value in self.stage_approvals if ":" in value)
        return {account for index, account in approvals if index != str(stage)}


@dataclass(frozen=True)
class NewRequest:
    """What registration writes: a request in its first state."""
    account_name: str
    given_name: str
    middle_name: str
    family_name: str
    contact_mail: str
    institution: str
    category: str
    collab_mail: str
    conditions_version: str
    submitted_at: datetime
    submitted_from: str
    status: str
    audit_event: str
    password_hash: bytes = field(repr=False)
    name_key: str = ""
    previous_account: str = ""
    kind: str = RequestKind.REGISTRATION
    request_id: str = ""  # empty: filed under the account name
    approval_chain: tuple[str, ...] = (IR_STAGE,)
    target_group: str = ""
    cert_subject: str = ""
    language: str = ""
    certificate: Certificate | None = None


@dataclass(frozen=True)
class NewMember:
    """What approval writes: a member entry in ou=people."""
    account_name: str
    given_name: str
    middle_name: str
    family_name: str
    mail: str
    contact_mail: str
    institution: str
    category: str
    conditions_version: str
    member_since: datetime
    initial_password_deadline: datetime
    uid_number: int
    gid_number: int
    audit_event: str
    password_hash: bytes = field(repr=False)
    name_key: str = ""
    member_until: datetime | None = None
    cert_subject: str = ""
    language: str = ""
    certificate: Certificate | None = None


@dataclass(frozen=True)
class EarlierRecord:
    """A person or request that may be the same applicant (duplicate check)."""
    dn: str
    is_person: bool
    account_name: str
    institution: str
    contact_mail: str
    mail: str
    name_keys: tuple[str, ...]
    status: str
    cert_subjects: tuple[str, ...] = ()
    language: str = ""
    request_id: str = ""  # requests: the request's id
    kind: str = ""  # requests: the kind of request
    decided_by: str = ""  # requests: who decided, and why (rejections)
    decision_reason: str = ""
    decided_at: datetime | None = None


@dataclass(frozen=True)
class OutboxMessage:
    id: str
    message: bytes = field(repr=False)
    recipients: tuple[str, ...] = ()
    attempts: int = 0
    last_error: str = ""
    queued_at: datetime | None = None
    claim: str = ""  # "<sender> <time>" while a sender has it; "-" or "" when free
    not_before: datetime | None = None  # the next attempt after a failure


@dataclass(frozen=True)
class RosterMember:
    """One line of an institution's roster: only what the IR console shows."""
    account_name: str
    display_name: str
    category: str
    status: str
    member_since: datetime | None
    member_until: datetime | None
    membership_ended_at: datetime | None
    password_changed_at: datetime | None
    password_policy: str  # the entry's pwdPolicySubentry ("" = the default policy)


@dataclass(frozen=True)
class ListedMember:
    """One row of the collaboration's members list (flask members-list import)."""
    email: str
    given: str
    family: str
    institution: str
    certificate: str = ""  # a certificate subject DN


@dataclass(frozen=True)
class Invitation:
    """An IR's invitation to register (ou=invitations): stored state open,
    used or revoked; ``state_at`` tells an open one past its date apart."""
    dn: str
    id: str
    state: str
    email: str
    institution: str
    invited_by: str  # the representative's account name
    given_name: str = ""
    family_name: str = ""
    category: str = ""
    created_at: datetime | None = None
    expires_at: datetime | None = None
    nonce: str = ""
    request_id: str = ""  # the request the invitation was used for
    language: str = ""  # the inviting IR's: the invitation mail is in it
    audit: tuple[str, ...] = ()

    def state_at(self, now: datetime) -> str:
        from ..vocabulary import InvitationState
        if self.state == InvitationState.OPEN and self.expires_at and self.expires_at <= now:
            return InvitationState.EXPIRED
        return self.state
